// The main thread's side of the download's SHA-256 thread (workers/sha256-stream.ts): hash file bytes read back
// from the data file, or bytes still in a block slot, in the order asked, and give the digest. Used by the prefix
// hasher (prefix-hasher.ts), which decides what is hashed when; this only carries requests to the thread.

import { Worker } from 'node:worker_threads';
import type { Sha256StreamData, Sha256StreamReply, Sha256StreamRequest } from '../../workers/sha256-stream.js';
import { KfetchError } from '../errors.js';
import { builtWorkerFile } from '../hashing/pool.js';

/** What the prefix hasher needs of a running SHA-256 over the file (sha256-thread.ts gives it in a thread). */
export interface PrefixHashBackend {
  /** Hash the file's bytes [position, position+length); resolves with the bytes read and hashed (fewer: EOF). */
  hashFile(position: number, length: number): Promise<number>;
  /** Hash `length` bytes at `byteOffset` of `shared`: the file's next bytes, still in a block slot held till then. */
  hashMemory(shared: SharedArrayBuffer, byteOffset: number, length: number): Promise<void>;
  /** The digest of everything hashed; the hash is done for after it. */
  digest(): Promise<string>;
  /** Stop the thread; requests in flight reject. */
  close(): Promise<void>;
}

/** A SHA-256 thread over the data file `fd`, started on the first request. */
export class Sha256Thread implements PrefixHashBackend {
  private readonly fd: number;
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: Sha256StreamReply) => void; reject: (e: Error) => void }>();
  private closed = false;
  /** Why the thread died: its running hash died with it, so every later request fails (never a fresh hash). */
  private lost: Error | undefined;
  /** CPU seconds the thread has used (from its last reply). */
  cpuSeconds = 0;
  /** Bytes hashed from slots and read back from the file (how often the in-memory path is taken). */
  readonly bytes = { memory: 0, file: 0 };

  constructor(fd: number) {
    this.fd = fd;
  }

  async hashFile(position: number, length: number): Promise<number> {
    const r = await this.call({ op: 'file', position, length });
    this.bytes.file += r.bytes;
    return r.bytes;
  }

  async hashMemory(shared: SharedArrayBuffer, byteOffset: number, length: number): Promise<void> {
    await this.call({ op: 'memory', shared, byteOffset, length });
    this.bytes.memory += length;
  }

  async digest(): Promise<string> {
    const r = await this.call({ op: 'digest' });
    return r.hex!;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w !== undefined) await w.terminate();
  }

  private start(): Worker {
    const data: Sha256StreamData = { fd: this.fd };
    const w = new Worker(builtWorkerFile('sha256-stream', 'SHA-256 worker'), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 2 } });
    w.unref(); // ref'd only while a request is in flight: an idle thread never keeps the process up
    w.on('message', (r: Sha256StreamReply) => {
      const p = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (this.waiting.size === 0) w.unref();
      this.cpuSeconds = r.cpuNs / 1e9;
      p?.resolve(r);
    });
    const failAll = (e: Error): void => {
      for (const p of this.waiting.values()) p.reject(e);
      this.waiting.clear();
      this.lost ??= e;
    };
    w.on('error', (err) => failAll(new KfetchError('KF_E_WORKER', `SHA-256 thread failed: ${err.message}`, { cause: err })));
    w.on('exit', () => failAll(new KfetchError('KF_E_WORKER', 'SHA-256 thread stopped')));
    return w;
  }

  private call(m: { op: 'file'; position: number; length: number } | { op: 'memory'; shared: SharedArrayBuffer; byteOffset: number; length: number } | { op: 'digest' }): Promise<Sha256StreamReply & { ok: true }> {
    if (this.closed) return Promise.reject(new KfetchError('KF_E_WORKER', 'SHA-256 thread closed'));
    if (this.lost !== undefined) return Promise.reject(this.lost);
    this.worker ??= this.start();
    const id = this.nextId++;
    const req = { ...m, id } as Sha256StreamRequest;
    const w = this.worker;
    if (this.waiting.size === 0) w.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, {
        resolve: (r) => {
          if (r.ok) resolve(r);
          else reject(Object.assign(new Error(`${r.code}: ${r.message}`), { code: r.code }));
        },
        reject,
      });
      w.postMessage(req);
    });
  }
}
