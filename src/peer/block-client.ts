// Fetches byte ranges of a file from one peer over HTTP (SPEC §3) with undici keep-alive connections: exact body
// length, no redirects, no compression, a deadline per request. Used by the download coordinator.

import { Agent, errors as undiciErrors, request } from 'undici';
import { KfetchError } from '../errors.js';
import { Bitfield } from '../util/bitfield.js';

export interface BlockClientOptions {
  /** Connections kept per peer (one request per connection at a time). */
  connectionsPerPeer: number;
  connectTimeoutMs: number;
}

/** Host part of a URL for `ip:port` / `[v6]:port` / `host:port` peer addresses. */
export function peerOrigin(peer: string): string {
  return `http://${peer}`;
}

/** One client for all peers of a process: an undici Agent keeps a keep-alive pool per peer. */
export class BlockClient {
  private readonly agent: Agent;

  constructor(opts: BlockClientOptions) {
    this.agent = new Agent({
      connections: opts.connectionsPerPeer,
      pipelining: 1,
      connect: { timeout: opts.connectTimeoutMs },
      keepAliveTimeout: 30_000,
    });
  }

  /**
   * GET `/<swarmId>` with `Range: bytes=first-last` from `peer` into `into` (at least last-first+1 bytes); resolves
   * when exactly that many bytes arrived, or throws a KfetchError with a KF_E_PEER_* code (and `detail.status`
   * when the peer answered).
   */
  async fetchRange(peer: string, swarmId: string, first: number, last: number, into: Buffer, signal: AbortSignal): Promise<void> {
    const want = last - first + 1;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${peerOrigin(peer)}/${swarmId}`, {
        dispatcher: this.agent,
        method: 'GET',
        headers: { range: `bytes=${first}-${last}` },
        signal,
      });
    } catch (err) {
      throw mapError(err, peer, signal);
    }
    // A late abort (the endgame cancelling a copy that already arrived) must not surface as an unhandled error.
    res.body.on('error', () => undefined);
    try {
      if (res.statusCode !== 206) {
        const code = res.statusCode === 400 || res.statusCode === 404 || res.statusCode === 416 ? 'KF_E_PEER_LIED' : 'KF_E_PEER_PROTOCOL';
        throw new KfetchError(code, `peer answered ${res.statusCode} for bytes ${first}-${last}`, {
          peer,
          detail: { status: res.statusCode },
        });
      }
      const enc = res.headers['content-encoding'];
      if (enc !== undefined && enc !== 'identity') {
        throw new KfetchError('KF_E_PEER_PROTOCOL', `peer sent an encoded body (${String(enc)})`, { peer });
      }
      const cr = res.headers['content-range'];
      if (typeof cr === 'string' && !cr.startsWith(`bytes ${first}-${last}/`)) {
        throw new KfetchError('KF_E_PEER_PROTOCOL', `peer sent Content-Range ${cr}, asked for ${first}-${last}`, { peer });
      }
      if (into.length < want) throw new RangeError(`buffer of ${into.length} bytes for a ${want}-byte range`);
      let got = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (got + chunk.length > want) {
          throw new KfetchError('KF_E_PEER_LONG', `peer sent more than the ${want} bytes asked for`, { peer });
        }
        chunk.copy(into, got);
        got += chunk.length;
      }
      if (got !== want) throw new KfetchError('KF_E_PEER_SHORT', `peer sent ${got} of ${want} bytes`, { peer });
    } catch (err) {
      res.body.destroy();
      throw mapError(err, peer, signal);
    }
  }

  /** GET `/<swarmId>/blocks?blocksize=B` (kfetch extension); undefined when the peer does not offer it. */
  async fetchBitfield(peer: string, swarmId: string, blockSize: number, blockCount: number, signal: AbortSignal): Promise<Bitfield | undefined> {
    try {
      const res = await request(`${peerOrigin(peer)}/${swarmId}/blocks?blocksize=${blockSize}`, {
        dispatcher: this.agent,
        method: 'GET',
        signal,
      });
      const cap = Math.ceil(blockCount / 8) * 2 + 2;
      let text = '';
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        text += chunk.toString('latin1');
        if (text.length > cap) {
          res.body.destroy();
          return undefined;
        }
      }
      if (res.statusCode !== 200) return undefined;
      return Bitfield.fromHex(text.trim(), blockCount);
    } catch (err) {
      throw mapError(err, peer, signal);
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

function mapError(err: unknown, peer: string, signal: AbortSignal): KfetchError {
  if (err instanceof KfetchError) return err;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    const timedOut = reason instanceof DOMException && reason.name === 'TimeoutError';
    return new KfetchError(timedOut ? 'KF_E_PEER_TIMEOUT' : 'KF_E_PEER_CONNECT', timedOut ? 'peer did not answer in time' : 'request aborted', {
      peer,
      cause: err,
      detail: { aborted: !timedOut },
    });
  }
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new KfetchError('KF_E_PEER_TIMEOUT', `peer timed out (${err.message})`, { peer, cause: err });
  }
  if (err instanceof undiciErrors.ResponseContentLengthMismatchError) {
    return new KfetchError('KF_E_PEER_SHORT', `peer body did not match its Content-Length`, { peer, cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new KfetchError('KF_E_PEER_CONNECT', `peer connection failed: ${msg}`, { peer, cause: err });
}
