// MD5 of many independent blocks in one call, for the workers' block checks (block-write.ts, hash.ts): the md5x
// addon (src/native/md5x, built at install by scripts/build-native.mjs) hashes one block per SIMD lane, 16 at once
// with AVX-512 or 8 with AVX2; without it (not built, another CPU, or KFETCH_MD5=openssl) node:crypto hashes them
// one after another. Both give the same digests; test/unit/md5-multi.test.ts holds them to node:crypto.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type Md5Implementation = 'avx512x16' | 'avx2x8' | 'openssl';

interface Md5xAddon {
  md5(kernel: number, views: readonly ArrayBufferView[], out: ArrayBufferView): void;
  readonly kernels: readonly { name: string; index: number; lanes: number }[];
  /** The calling thread's CPU ns (CLOCK_THREAD_CPUTIME_ID); -1 if the clock failed. Older builds lack it. */
  threadCpuNs?: () => number;
}

/** Where the addon is built, seen from dist/workers/ (the build) and from workers/ (tests run on the sources). */
const CANDIDATES = ['../../src/native/md5x/build/Release/md5x.node', '../src/native/md5x/build/Release/md5x.node'];

/** Views per native call (the addon takes up to 4096); create's 8 MiB chunks of 1 KiB blocks are 8192. */
const PER_CALL = 1024;

interface Active {
  name: Md5Implementation;
  lanes: number;
  hash: (views: readonly ArrayBufferView[], out: ArrayBufferView) => void;
  /** Why the addon is not used, when it is not. */
  reason?: string;
}

/** node:crypto, one view after another. */
function opensslHash(views: readonly ArrayBufferView[], out: ArrayBufferView): void {
  const o = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  for (let k = 0; k < views.length; k++) {
    const v = views[k]!;
    o.set(createHash('md5').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest(), 16 * k);
  }
}

function openssl(reason: string): Active {
  return { name: 'openssl', lanes: 1, reason, hash: opensslHash };
}

let loaded: Md5xAddon | string | undefined;
/** The addon, or why it is not to be had; loaded once per thread. */
function loadAddon(): Md5xAddon | string {
  if (loaded !== undefined) return loaded;
  const path = CANDIDATES.map((c) => fileURLToPath(new URL(c, import.meta.url))).find((p) => existsSync(p));
  if (path === undefined) loaded = 'the md5x addon is not built (npm ci builds it; see scripts/build-native.mjs)';
  else {
    try {
      loaded = createRequire(import.meta.url)(path) as Md5xAddon;
    } catch (err) {
      loaded = `the md5x addon at ${path} does not load: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return loaded;
}

/** The addon's exact thread CPU clock (ns), or undefined where the addon is not built (workers/thread-cpu.ts). */
export function addonThreadCpuClock(): (() => number) | undefined {
  const addon = loadAddon();
  if (typeof addon === 'string' || addon.threadCpuNs === undefined) return undefined;
  const clock = addon.threadCpuNs;
  return clock() >= 0 ? clock : undefined;
}

/** The addon's best kernel (or the one KFETCH_MD5 names), else OpenSSL; decided once per thread, at first use. */
function choose(): Active {
  const want = process.env.KFETCH_MD5;
  if (want === 'openssl') return openssl('KFETCH_MD5=openssl');
  const addon = loadAddon();
  if (typeof addon === 'string') return openssl(addon);
  const kernel = want === undefined || want === '' ? addon.kernels[0] : addon.kernels.find((k) => k.name === want);
  if (kernel === undefined) {
    return openssl(want === undefined || want === '' ? 'this CPU runs neither AVX-512 nor AVX2' : `this CPU does not run KFETCH_MD5=${want}`);
  }
  const index = kernel.index;
  return { name: kernel.name as Md5Implementation, lanes: kernel.lanes, hash: (views, out) => addon.md5(index, views, out) };
}

let active: Active | undefined;
function impl(): Active {
  active ??= choose();
  return active;
}

/** The implementation in use in this thread: 'avx512x16', 'avx2x8' or 'openssl'. */
export function md5Implementation(): Md5Implementation {
  return impl().name;
}

/** Why OpenSSL is in use, or undefined when the addon is. */
export function md5FallbackReason(): string | undefined {
  return impl().reason;
}

/** Blocks hashed at once by the implementation in use: a batch of a multiple of this keeps every lane busy. */
export function md5Lanes(): number {
  return impl().lanes;
}

/**
 * MD5 of every view (any lengths, any byte offsets, SharedArrayBuffer or not), digest k written to
 * `out[16k .. 16k+16)`. `out` must hold 16 bytes per view and must not overlap the views.
 */
export function md5Many(views: readonly ArrayBufferView[], out: Uint8Array): void {
  if (out.byteLength < 16 * views.length) throw new RangeError(`md5Many: ${out.byteLength} bytes of output for ${views.length} digests`);
  const { hash } = impl();
  // One view alone: OpenSSL's scalar MD5 is a little faster than one busy SIMD lane (619 vs 568 MB/s, AVX-512).
  if (views.length === 1) opensslHash(views, out);
  else if (views.length <= PER_CALL) hash(views, out);
  else for (let k = 0; k < views.length; k += PER_CALL) hash(views.slice(k, k + PER_CALL), out.subarray(16 * k));
}

/**
 * Hash every view into `digests` (16 bytes each) and compare with `expected` (16 bytes each, in the same order):
 * `matched[k]` becomes 1 when view k's MD5 is expected[k], else 0. Returns how many differ.
 */
export function verifyMany(views: readonly ArrayBufferView[], expected: Uint8Array, digests: Uint8Array, matched: Uint8Array): number {
  const n = views.length;
  if (expected.byteLength < 16 * n || matched.length < n) throw new RangeError(`verifyMany: ${n} views, ${expected.byteLength} bytes expected, ${matched.length} flags`);
  md5Many(views, digests);
  let bad = 0;
  for (let k = 0; k < n; k++) {
    let same = 1;
    for (let i = 16 * k; i < 16 * k + 16; i++) {
      if (digests[i] !== expected[i]) {
        same = 0;
        break;
      }
    }
    matched[k] = same;
    bad += 1 - same;
  }
  return bad;
}

/**
 * The 16-byte digests of MD5 hex strings, back to back in `out` from digest index `at` (allocated when not given),
 * e.g. once per download for its block list. Throws on a string that is not 32 hex digits.
 */
export function md5DigestsFromHex(hexes: readonly string[], out: Buffer = Buffer.allocUnsafe(16 * hexes.length), at = 0): Buffer {
  for (let k = 0; k < hexes.length; k++) {
    const h = hexes[k]!;
    if (h.length !== 32 || out.write(h, 16 * (at + k), 16, 'hex') !== 16) throw new RangeError(`md5DigestsFromHex: ${JSON.stringify(h)} is not an MD5 in hex`);
  }
  return out;
}
