// Writes a Kascade as a 2015-dialect .kascade (pretty JSON, stable key order, lowercase hex).
// Used by `kfetch create` and by anything that stores or re-exports a .kascade.
//
// A 2014 Kascade is written in the 2015 dialect: blockhashes becomes an object keyed by its block size, and a
// swarm id that differs from filehash is written as `trackhash` (which parse.ts honours in either dialect), so
// the file still joins the same swarm. parse(serialize(k)) equals k for 2015 values, and for 2014 values except
// `dialect`.

import type { Kascade } from './kascade.js';

export { trackerUrlFor } from './tracker-url.js';

/** Keys serialize() writes itself; an `extra` entry with one of these names is skipped, never allowed to override. */
const OWN_KEYS = new Set(['filename', 'filesize', 'filehash', 'tracker', 'trackers', 'trackhash', 'kascadehash', 'blockhashes', 'blocksize', 'peers', 'created by']);

/**
 * The .kascade text for `k`: keys in the order filename, filesize, filehash, tracker, (trackers: the failover
 * trackers after `tracker`, only when there are any), (trackhash), blockhashes
 * (ascending block sizes), peers (if any), "created by" (if set in extra), then the other extra keys in their
 * order. Two-space indentation and a final newline.
 */
export function serializeKascade(k: Kascade): string {
  // A null-prototype object, so an extra key named `__proto__` is written as data like any other.
  const out = Object.create(null) as Record<string, unknown>;
  const put = (key: string, value: unknown): void => {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  };
  put('filename', k.filename);
  put('filesize', k.filesize);
  put('filehash', k.filehash.toLowerCase());
  put('tracker', k.tracker);
  if (k.trackers.length > 1) put('trackers', k.trackers.slice(1));
  if (k.swarmId.toLowerCase() !== k.filehash.toLowerCase()) put('trackhash', k.swarmId.toLowerCase());
  const blocks = Object.create(null) as Record<string, unknown>;
  for (const size of [...k.blockhashes.keys()].sort((a, b) => a - b)) {
    blocks[String(size)] = (k.blockhashes.get(size) ?? []).map((h) => h.toLowerCase());
  }
  put('blockhashes', blocks);
  if (k.peers.length > 0) put('peers', [...k.peers]);
  const extra = k.extra;
  if (Object.hasOwn(extra, 'created by')) put('created by', extra['created by']);
  for (const key of Object.keys(extra)) {
    if (!OWN_KEYS.has(key)) put(key, extra[key]);
  }
  return `${JSON.stringify(out, null, 2)}\n`;
}
