// Bytes and requests of block fetches by the way they came (issue 14): over the binary peer wire or over HTTP, and
// how many runs fell back from the wire to HTTP. A download session keeps one for its `done` event (`transport`),
// the BlockClient one for the process (the box's /metrics). Plain counters: bumped once per completed request.

import type { FetchVia } from './wire-client.js';

export interface TransportCounts {
  /** Bytes of completed requests that came over the peer wire. */
  wireBytes: number;
  /** Bytes of completed requests that came over HTTP (fallbacks included). */
  httpBytes: number;
  wireRequests: number;
  /** HTTP requests completed (fallbacks included). */
  httpRequests: number;
  /** Of `httpRequests`, runs tried on the wire first and fetched over HTTP instead. */
  wireFallbacks: number;
}

export function emptyTransportCounts(): TransportCounts {
  return { wireBytes: 0, httpBytes: 0, wireRequests: 0, httpRequests: 0, wireFallbacks: 0 };
}

/** Count one completed request of `bytes` that came `via`. */
export function countTransport(t: TransportCounts, via: FetchVia, bytes: number): void {
  if (via === 'wire') {
    t.wireBytes += bytes;
    t.wireRequests++;
    return;
  }
  t.httpBytes += bytes;
  t.httpRequests++;
  if (via === 'fallback') t.wireFallbacks++;
}
