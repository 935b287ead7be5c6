// Talks to peers over HTTP (SPEC §3) for the download coordinator: block ranges through the lean keep-alive
// RangeClient (exact body length, no redirects, no compression, a deadline per request), and the /blocks
// bitfield extension through undici. A peer whose replies advertise the binary peer wire (`X-Kascade-Wire`,
// docs/spec-peer-wire.md) gets its later block requests over the wire (wire-client.ts), HTTP again on any doubt.

import { Agent, errors as undiciErrors, request } from 'undici';
import { RangeClient, abortError } from './range-client.js';
import { KfetchError } from '../errors.js';
import { Bitfield } from '../util/bitfield.js';
import { policedConnector } from './dial-guard.js';
import { WireClient, WireOrHttp, wirePeerFrom, type FetchVia } from './wire-client.js';
import { countTransport, emptyTransportCounts, type TransportCounts } from './transport-counts.js';
import { requestProblem } from './wire-frames.js';
import { addNewest, setNewest } from '../util/bounded-map.js';

export interface BlockClientOptions {
  /** Connections kept per peer (one request per connection at a time). */
  connectionsPerPeer: number;
  connectTimeoutMs: number;
  /** Use the peer wire with peers that advertise it (default false: HTTP only, whatever a peer says). */
  wire?: boolean;
}

/** A request's blocks as the peer wire names them (the HTTP range is the same bytes). */
export interface BlockRun {
  /** The file's SHA-256 (`filehash`), 64 hex. */
  fileId: string;
  blockSize: number;
  firstBlock: number;
  count: number;
}

/** Peers whose wire advertisement is remembered at most (each is a short string; beyond, the oldest is forgotten). */
const MAX_WIRE_PEERS = 10_000;

/** Host part of a URL for `ip:port` / `[v6]:port` / `host:port` peer addresses. */
export function peerOrigin(peer: string): string {
  return `http://${peer}`;
}

/** One client for all peers of a process: an undici Agent keeps a keep-alive pool per peer. */
export class BlockClient {
  private readonly agent: Agent;
  private readonly ranges: RangeClient;
  /** The wire, when enabled: `either` picks it per request for peers in `wirePeers` (HTTP address → wire address). */
  private readonly wire: WireClient | undefined;
  private readonly either: WireOrHttp | undefined;
  private readonly wirePeers = new Map<string, string>();
  /**
   * Peers whose own HTTP replies have spoken about their wire (with the header or, on /blocks, without it): their
   * word outranks a tracker's (`trackerWire`). Bounded like wirePeers (the oldest forgotten first).
   */
  private readonly spoke = new Set<string>();
  /** Every completed range fetch of this process by transport (the box's /metrics). */
  private readonly counts = emptyTransportCounts();

  constructor(opts: BlockClientOptions) {
    const onWireAdvert = opts.wire === true ? (peer: string, value: string | undefined): void => this.advertised(peer, value) : undefined;
    this.ranges = new RangeClient({
      connectionsPerPeer: opts.connectionsPerPeer,
      connectTimeoutMs: opts.connectTimeoutMs,
      ...(onWireAdvert === undefined ? {} : { onWireAdvert }),
    });
    if (opts.wire === true) {
      this.wire = new WireClient({ connectTimeoutMs: opts.connectTimeoutMs });
      this.either = new WireOrHttp(this.wire, this.ranges);
    }
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
   *
   * With `run` (the same bytes as blocks) and the wire enabled, a peer that advertised its wire is asked there
   * instead; a doubt about its wire sends this request, and the peer's later ones, over HTTP (WireOrHttp). Resolves
   * with the way the bytes came (`fallback`: over HTTP after the wire was tried for them), counted in `transport()`.
   * The bytes are the peer's either way: the caller verifies them the same.
   */
  async fetchRange(peer: string, swarmId: string, first: number, last: number, into: Buffer, signal: AbortSignal, run?: BlockRun): Promise<FetchVia> {
    const via = await this.fetchVia(peer, swarmId, first, last, into, signal, run);
    countTransport(this.counts, via, last - first + 1);
    return via;
  }

  private async fetchVia(peer: string, swarmId: string, first: number, last: number, into: Buffer, signal: AbortSignal, run: BlockRun | undefined): Promise<FetchVia> {
    const wirePeer = run === undefined || this.either === undefined ? undefined : this.wirePeers.get(peer);
    if (wirePeer !== undefined && this.either!.usesWire(wirePeer)) {
      const blocks = { ...run!, fileId: run!.fileId.toLowerCase(), length: last - first + 1 };
      // A run the wire cannot carry in one request (over its 4 MiB bound) goes over HTTP; nothing else changes.
      if (blocks.firstBlock * blocks.blockSize === first && requestProblem({ requestId: 0, ...blocks }) === undefined) {
        return this.either!.fetch(peer, wirePeer, swarmId, blocks, into, signal);
      }
    }
    await this.ranges.fetchRange(peer, swarmId, first, last, into, signal);
    return 'http';
  }

  /** The completed range fetches of this client so far, by transport (a copy). */
  transport(): TransportCounts {
    return { ...this.counts };
  }

  /** The wire address `peer` advertised and we still use, undefined for none (HTTP). */
  wirePeer(peer: string): string | undefined {
    const w = this.wirePeers.get(peer);
    return w !== undefined && this.either?.usesWire(w) === true ? w : undefined;
  }

  /**
   * A tracker listed `peer` (`ip:port`) with wire port `wirePort` (issue 14: the reply's `wire` key): use its wire
   * from the first request, unless the peer's own replies already said otherwise. The wire is always at the peer's
   * listed address; a wrong or closed port is a doubt like any other (WireOrHttp: HTTP at once, no strike).
   */
  trackerWire(peer: string, wirePort: number | undefined): void {
    if (this.either === undefined || wirePort === undefined || this.spoke.has(peer)) return;
    const w = wirePeerFrom(peer, String(wirePort));
    if (w !== undefined) setNewest(this.wirePeers, peer, w, MAX_WIRE_PEERS);
  }

  /** A reply of `peer` carried X-Kascade-Wire `value` (undefined: none): remember (or forget) its wire address. */
  private advertised(peer: string, value: string | undefined): void {
    addNewest(this.spoke, peer, MAX_WIRE_PEERS);
    const w = wirePeerFrom(peer, value);
    if (w === undefined) this.wirePeers.delete(peer);
    else setNewest(this.wirePeers, peer, w, MAX_WIRE_PEERS);
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
      if (this.either !== undefined) {
        const w = res.headers['x-kascade-wire'];
        this.advertised(peer, typeof w === 'string' ? w : undefined);
      }
      if (res.statusCode !== 200) return undefined;
      return Bitfield.fromHex(text.trim(), blockCount);
    } catch (err) {
      throw mapError(err, peer, signal);
    }
  }

  async close(): Promise<void> {
    await this.ranges.close();
    this.wire?.close();
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
