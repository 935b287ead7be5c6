// The download's whole-file SHA-256 thread: one running hash over the data file's verified prefix, fed in order by
// src/client/sha256-thread.ts — bytes still in a block slot (shared memory, no copy), or bytes read back from the
// data file by positional reads when they were written out of order. Keeps the ~1 CPU-s per GiB of SHA-256 off the
// main thread, which moves the bytes (issue 11). Imports nothing from src/.

import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { threadCpuNs } from './thread-cpu.js';

export type Sha256StreamRequest =
  | { id: number; op: 'file'; position: number; length: number }
  | { id: number; op: 'memory'; shared: SharedArrayBuffer; byteOffset: number; length: number }
  | { id: number; op: 'digest' };

export type Sha256StreamReply =
  | { id: number; ok: true; bytes: number; hex?: string; cpuNs: number }
  | { id: number; ok: false; code: string; message: string; cpuNs: number };

export interface Sha256StreamData {
  /** The session's fd on the data file (fds are shared by every thread of the process). */
  fd: number;
}

/** Bytes per positional read of the file. */
const READ_BYTES = 1024 * 1024;

const { fd } = workerData as Sha256StreamData;
let hash: Hash | undefined = createHash('sha256');
let buf: Buffer | undefined;

function handle(m: Sha256StreamRequest): Sha256StreamReply {
  if (hash === undefined) return { id: m.id, ok: false, code: 'EINVAL', message: 'the digest was already taken', cpuNs: threadCpuNs() };
  switch (m.op) {
    case 'memory':
      hash.update(new Uint8Array(m.shared, m.byteOffset, m.length));
      return { id: m.id, ok: true, bytes: m.length, cpuNs: threadCpuNs() };
    case 'file': {
      buf ??= Buffer.allocUnsafe(READ_BYTES);
      let done = 0;
      while (done < m.length) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, m.length - done), m.position + done);
        if (n === 0) break; // the file ended: the caller sees fewer bytes than asked
        hash.update(buf.subarray(0, n));
        done += n;
      }
      return { id: m.id, ok: true, bytes: done, cpuNs: threadCpuNs() };
    }
    case 'digest': {
      const hex = hash.digest('hex');
      hash = undefined;
      return { id: m.id, ok: true, bytes: 0, hex, cpuNs: threadCpuNs() };
    }
  }
}

parentPort?.on('message', (m: Sha256StreamRequest) => {
  let reply: Sha256StreamReply;
  try {
    reply = handle(m);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply = { id: m.id, ok: false, code: e.code ?? 'EIO', message: e.message, cpuNs: threadCpuNs() };
  }
  parentPort?.postMessage(reply);
});
