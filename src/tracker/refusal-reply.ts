// How the tracker words a refusal, by client. Pure: the client's User-Agent and the refusal in, the status, body
// and headers to send out. Used by tracker-server.ts.
//
// The rule: a request whose `User-Agent` header starts with `kfetch/` (exactly, case-sensitive; kfetch's announce
// client sends `kfetch/<version>`) is a kfetch client and gets the SPEC §2 errors: the real status (403 +
// Retry-After, 400, 404, 405, 413, 415, 503) with a JSON object `{"error": …, "field"?: …}`.
// Every other client (original 2015 peers send no User-Agent at all) parses each reply as a JSON array and crashes
// on an object (SPEC §6), so on an announce path it always gets `200` with an array: the swarm's current peers
// (never the caller) when the swarm is known and the refusal is about the caller (too soon, swarm full), else
// `[]`. A path that is not an announce path gets `404` with `[]`. Either way the reason is in `X-Kascade-Error`.

/** True iff the request comes from kfetch (see the module comment). */
export function isKfetchClient(userAgent: string | undefined): boolean {
  return userAgent !== undefined && userAgent.startsWith('kfetch/');
}

export interface Refusal {
  /** The status a kfetch client gets. */
  status: number;
  message: string;
  field?: string;
  /** Headers a kfetch client gets besides the JSON type (Retry-After, Allow). */
  headers?: Record<string, string>;
  /** False when the request did not name a swarm (not an announce path). */
  announcePath: boolean;
}

export interface Reply {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/** Longest X-Kascade-Error value sent. */
const MAX_ERROR_HEADER = 200;

/**
 * The reply for a refusal. `peers` is what an original client may be given instead (the caller's swarm without the
 * caller, or `[]`); `intervalSeconds` goes into X-Kascade-Interval on announce paths.
 */
export function refusalReply(kfetch: boolean, refusal: Refusal, peers: readonly unknown[], intervalSeconds: number): Reply {
  if (kfetch) {
    const body: Record<string, string> = { error: refusal.message };
    if (refusal.field !== undefined) body.field = refusal.field;
    return { status: refusal.status, body, headers: { ...refusal.headers } };
  }
  const headers: Record<string, string> = { 'X-Kascade-Error': headerSafe(refusal.message) };
  if (!refusal.announcePath) return { status: 404, body: [], headers };
  headers['X-Kascade-Interval'] = String(intervalSeconds);
  return { status: 200, body: [...peers], headers };
}

/** Printable ASCII only (a field name from a multipart body could hold anything), bounded. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_ERROR_HEADER);
}
