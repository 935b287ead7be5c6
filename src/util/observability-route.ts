// The observability routes a block server (and the tracker) answers on its own port, `GET /metrics` (Prometheus text) and
// `GET /status` (JSON): which targets they are, and the reply for a request to them. They bypass the block
// admission queue and the upload rate limit. Used by block-server.ts and tracker-server.ts; the content comes from the caller (the CLI).
// Block ids are hex only (parse-request.ts), so neither path was ever a valid block URL.

/** What the owner of the server supplies to answer the observability routes. */
export interface Observability {
  /** Prometheus text exposition (format 0.0.4). */
  metrics(): string | Promise<string>;
  /** Any JSON-serialisable value. */
  status(): unknown; // a Promise of it is awaited
  /** Whether a client at this remote address (as the socket reports it) may read these routes. */
  allowed(remoteAddress: string): boolean;
}

export type ObservabilityRoute = 'metrics' | 'status';

/** A reply to send as is. */
export interface ObservabilityReply {
  status: 200 | 403 | 405;
  type: string;
  body: string;
  headers: Record<string, string>;
}

/** Content type of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/** The route a raw request target names: exactly `/metrics` or `/status`, optionally with a query (ignored). */
export function observabilityRoute(target: string): ObservabilityRoute | undefined {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  return path === '/metrics' ? 'metrics' : path === '/status' ? 'status' : undefined;
}

/**
 * The reply to `method` on `route` from `remoteAddress`: 405 for methods other than GET and HEAD, 403 when not
 * allowed, else 200 with the metrics text or the status JSON. Rejects if the supplier throws (the caller sends 500).
 */
export async function observabilityReply(
  obs: Observability,
  route: ObservabilityRoute,
  method: string,
  remoteAddress: string,
): Promise<ObservabilityReply> {
  const noStore = { 'Cache-Control': 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') {
    return { status: 405, type: JSON_TYPE, body: error(`method ${method.slice(0, 16)} not allowed`), headers: { Allow: 'GET, HEAD' } };
  }
  if (!obs.allowed(remoteAddress)) return { status: 403, type: JSON_TYPE, body: error('forbidden'), headers: {} };
  if (route === 'metrics') return { status: 200, type: METRICS_CONTENT_TYPE, body: await obs.metrics(), headers: noStore };
  return { status: 200, type: JSON_TYPE, body: `${JSON.stringify(await obs.status()) ?? 'null'}\n`, headers: noStore };
}

function error(message: string): string {
  return `${JSON.stringify({ error: message })}\n`;
}
