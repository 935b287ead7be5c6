// Deterministic test payloads and their 2015-dialect kascade JSON, built with node:crypto only (never with kfetch's
// own code, so tests compare kfetch against an independent computation). Usable by every area's tests.
//
// Content (SPEC §1 test vector when no seed is given): SHA-256(be32(0)) ‖ SHA-256(be32(1)) ‖ …, cut to `size`.
// With a seed: SHA-256(seed ‖ be32(i)) instead, so two payloads of one size differ.

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Payloads up to this size are also returned in memory. */
const KEEP_IN_MEMORY = 64 * 1024 * 1024;

/** The deterministic bytes [offset, offset + length) of the payload for `seed`. */
export function payloadBytes(offset: number, length: number, seed?: string): Buffer {
  const out = Buffer.allocUnsafe(length);
  let i = Math.floor(offset / 32);
  let skip = offset - i * 32;
  let done = 0;
  const be = Buffer.alloc(4);
  while (done < length) {
    be.writeUInt32BE(i >>> 0);
    const h = createHash('sha256');
    if (seed !== undefined) h.update(seed);
    const digest = h.update(be).digest();
    const n = Math.min(32 - skip, length - done);
    digest.copy(out, done, skip, skip + n);
    done += n;
    skip = 0;
    i++;
  }
  return out;
}

/** Write `size` deterministic bytes to `<dir>/<name>`; `bytes` is returned for sizes up to 64 MiB. */
export function makePayload(dir: string, name: string, size: number, seed?: string): { path: string; size: number; bytes?: Buffer } {
  const path = join(dir, name);
  if (size <= KEEP_IN_MEMORY) {
    const bytes = payloadBytes(0, size, seed);
    writeFileSync(path, bytes);
    return { path, size, bytes };
  }
  const fd = openSync(path, 'w');
  try {
    const chunk = 4 * 1024 * 1024;
    for (let off = 0; off < size; off += chunk) {
      const b = payloadBytes(off, Math.min(chunk, size - off), seed);
      writeSync(fd, b, 0, b.length, off);
    }
  } finally {
    closeSync(fd);
  }
  return { path, size };
}

export interface KascadeJsonOptions {
  filename: string;
  tracker: string;
  /** Block sizes to offer (default [4096]). */
  blockSizes?: number[];
  /** Extra keys to merge in (e.g. `peers`). */
  extra?: Record<string, unknown>;
}

/**
 * The 2015 kascade object for a payload given as bytes or as a file path (read in chunks, any size):
 * `filehash` SHA-256, MD5 per block for each offered size.
 */
export function kascadeJsonFor(source: Buffer | string, opts: KascadeJsonOptions): Record<string, unknown> {
  const sizes = opts.blockSizes ?? [4096];
  const fileHash = createHash('sha256');
  const blockhashes: Record<string, string[]> = {};
  const current = new Map<number, { hash: ReturnType<typeof createHash>; filled: number }>();
  for (const s of sizes) {
    blockhashes[String(s)] = [];
    current.set(s, { hash: createHash('md5'), filled: 0 });
  }
  let total = 0;
  const feed = (data: Buffer): void => {
    fileHash.update(data);
    total += data.length;
    for (const s of sizes) {
      const c = current.get(s)!;
      let off = 0;
      while (off < data.length) {
        const n = Math.min(s - c.filled, data.length - off);
        c.hash.update(data.subarray(off, off + n));
        c.filled += n;
        off += n;
        if (c.filled === s) {
          blockhashes[String(s)]!.push(c.hash.digest('hex'));
          c.hash = createHash('md5');
          c.filled = 0;
        }
      }
    }
  };
  if (typeof source === 'string') {
    const fd = openSync(source, 'r');
    try {
      const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        feed(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
  } else {
    feed(source);
  }
  for (const s of sizes) {
    const c = current.get(s)!;
    if (c.filled > 0) blockhashes[String(s)]!.push(c.hash.digest('hex'));
  }
  return {
    filename: opts.filename,
    filesize: total,
    filehash: fileHash.digest('hex'),
    tracker: opts.tracker,
    blockhashes,
    ...opts.extra,
  };
}

/** Write a kascade object as JSON to `path`; returns the path. */
export function writeKascade(path: string, kascade: Record<string, unknown>): string {
  writeFileSync(path, `${JSON.stringify(kascade, null, 2)}\n`);
  return path;
}
