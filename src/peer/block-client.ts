// Talks to peers over HTTP (SPEC §3) for the download coordinator: block ranges through the lean keep-alive
// RangeClient (exact body length, no redirects, no compression, a deadline per request), and the /blocks
// bitfield extension through undici.

import { Agent, errors as undiciErrors, request } from 'undici';
import { RangeClient, abortError } from './range-client.js';
import { KfetchError } from '../errors.js';
import { Bitfield } from '../util/bitfield.js';
import { policedConnector } from './dial-guard.js';

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
  private readonly ranges: RangeClient;

  constructor(opts: BlockClientOptions) {
    this.ranges = new RangeClient({ connectionsPerPeer: opts.connectionsPerPeer, connectTimeoutMs: opts.connectTimeoutMs });
    this.agent = new Agent({
      connections: opts.connectionsPerPeer,
      pipelining: 1,
      connect: policedConnector({ timeout: opts.connectTimeoutMs }),
      keepAliveTimeout: 30_000,
    });
  }

  /**
   * GET `/<swarmId>` with `Range: bytes=first-last` from `peer` into `into` (at least last-first+1 bytes); resolves
   * when exactly that many bytes arrived, or throws a KfetchError with a KF_E_PEER_* code (and `detail.status`
   * when the peer answered). The hot path: see range-client.ts.
   */
  fetchRange(peer: string, swarmId: string, first: number, last: number, into: Buffer, signal: AbortSignal): Promise<void> {
    return this.ranges.fetchRange(peer, swarmId, first, last, into, signal);
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
    await this.ranges.close();
    await this.agent.destroy();
  }
}

function mapError(err: unknown, peer: string, signal: AbortSignal): KfetchError {
  if (err instanceof KfetchError) return err;
  if (signal.aborted) return abortError(peer, signal);
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new KfetchError('KF_E_PEER_TIMEOUT', `peer timed out (${err.message})`, { peer, cause: err });
  }
  if (err instanceof undiciErrors.ResponseContentLengthMismatchError) {
    return new KfetchError('KF_E_PEER_SHORT', `peer body did not match its Content-Length`, { peer, cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new KfetchError('KF_E_PEER_CONNECT', `peer connection failed: ${msg}`, { peer, cause: err });
}
