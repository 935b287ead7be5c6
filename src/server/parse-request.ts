// Pure parser for requests to the block server (SPEC §3): method, raw request target and Range header in, a typed
// request (swarm id + byte range, whole file, or bitfield) or an HTTP error status out. Used by block-server.ts.
// Nothing in a request ever names a path: the target must match a strict pattern or it is refused.

/** A block server request that passed syntax checks; the server still checks the id and the range against the file. */
export type ServerRequest =
  /** `GET /<id>` with `Range: bytes=first-last` (`last` undefined for an open-ended `first-`). */
  | { kind: 'range'; swarmId: string; first: number; last: number | undefined; head: boolean }
  /** `GET /<id>` (or HEAD) without Range: the whole file, served only when complete. */
  | { kind: 'whole'; swarmId: string; head: boolean }
  /** `GET /<id>/blocks?blocksize=<B>`: the bitfield of blocks held at size B (extension). */
  | { kind: 'bitfield'; swarmId: string; blockSize: number; head: boolean };

/** Statuses the parser answers with; 416 is for ranges, 400 for garbage, 404 for a path that names nothing. */
export type ParseStatus = 400 | 404 | 405 | 416;

export type ParseResult = { ok: true; request: ServerRequest } | { ok: false; status: ParseStatus; error: string };

/** Longest request target considered at all (a 64-hex id plus `/blocks?blocksize=67108864` is ~100 bytes). */
const MAX_TARGET_LENGTH = 256;
/** Longest swarm id: 2015 ids are 64 hex (SHA-256); 2014 trackhash/kascadehash ids are no longer. */
const ID = '([0-9a-fA-F]{1,128})';
const FILE_TARGET = new RegExp(`^/${ID}$`);
const BITFIELD_TARGET = new RegExp(`^/${ID}/blocks\\?blocksize=(0|[1-9][0-9]{0,15})$`);
const BITFIELD_PATH = new RegExp(`^/${ID}/blocks(?:\\?|$)`);
/** Characters of a target that can only be an attack or an encoding trick: refused with 400 before any matching. */
const SUSPICIOUS = /\.\.|%|\\|\/\/|[\x00-\x20\x7f-\uffff]/;
/** `bytes=<first>-<last>` or `<first>-<last>`, canonical decimals (no sign, no leading zeros, no spaces), last optional. */
const RANGE = /^(?:bytes=)?(0|[1-9][0-9]*)-(0|[1-9][0-9]*)?$/;

/**
 * Parse one request. `target` is the raw request-target as sent (Node's `req.url`, never normalised),
 * `range` the Range header value (undefined when absent).
 */
export function parseRequest(method: string, target: string, range: string | undefined): ParseResult {
  if (method !== 'GET' && method !== 'HEAD') return fail(405, `method ${method.slice(0, 16)} not allowed`);
  const head = method === 'HEAD';
  if (target.length > MAX_TARGET_LENGTH) return fail(404, 'not found');
  // Absolute-form (`http://x/...`), authority-form and asterisk-form targets are not for us.
  if (!target.startsWith('/')) return fail(400, 'request target must be a path');
  if (SUSPICIOUS.test(target)) return fail(400, 'malformed request target');

  const file = FILE_TARGET.exec(target);
  if (file !== null) {
    const swarmId = file[1]!.toLowerCase();
    if (range === undefined) return { ok: true, request: { kind: 'whole', swarmId, head } };
    const r = parseRange(range);
    if (!r.ok) return r;
    return { ok: true, request: { kind: 'range', swarmId, first: r.first, last: r.last, head } };
  }

  const bits = BITFIELD_TARGET.exec(target);
  if (bits !== null) {
    const blockSize = Number(bits[2]);
    if (!Number.isSafeInteger(blockSize) || blockSize === 0) return fail(400, 'blocksize must be a positive integer');
    return { ok: true, request: { kind: 'bitfield', swarmId: bits[1]!.toLowerCase(), blockSize, head } };
  }
  if (BITFIELD_PATH.test(target)) return fail(400, 'expected /<id>/blocks?blocksize=<decimal>');
  return fail(404, 'not found');
}

/** Parse a Range header value: one canonical decimal range, or a status (416 for unsatisfiable forms, 400 for garbage). */
export function parseRange(
  value: string,
): { ok: true; first: number; last: number | undefined } | { ok: false; status: 400 | 416; error: string } {
  if (value === '') return fail(400, 'empty Range header');
  if (value.includes(',')) return fail(416, 'several ranges are not served; ask for one range');
  const m = RANGE.exec(value);
  if (m === null) {
    // A well-formed but unsupported shape (suffix range `-500`, another unit) is unsatisfiable, the rest is garbage.
    if (/^(?:bytes=)?-[0-9]+$/.test(value)) return fail(416, 'suffix ranges are not served');
    if (/^(?!bytes=)[a-z]+=[0-9]+-[0-9]*$/i.test(value)) return fail(416, 'only the bytes unit is served');
    return fail(400, 'malformed Range header');
  }
  const first = Number(m[1]);
  const last = m[2] === undefined ? undefined : Number(m[2]);
  if (!Number.isSafeInteger(first) || (last !== undefined && !Number.isSafeInteger(last))) {
    return fail(416, 'range offset beyond 2^53');
  }
  if (last !== undefined && last < first) return fail(416, 'range end before its start');
  return { ok: true, first, last };
}

function fail<S extends number>(status: S, error: string): { ok: false; status: S; error: string } {
  return { ok: false, status, error };
}
