// The download's verify+write work in few worker tasks (issue 11): runs of fetched blocks wait here while every
// worker is busy and go out together, one task and one mtime restore for all of them, instead of one task per run
// (~0.1-0.15 ms of CPU each in piscina's dispatch and the thread wake-ups, measured here). With a worker free, a
// run goes out at the end of the event-loop turn it came in (setImmediate: after the callbacks of every socket read
// of this turn and their promise jobs): the runs those reads completed (pipelined peer-wire replies of 4 KiB on
// several connections) share a task, and batching adds no timer and no wait on I/O. Used by download-session.ts.

import type { BlockOutcome, VerifyWriteBatchResult, VerifyWriteTask } from '../../workers/block-write.js';
import type { HashPool } from '../hashing/pool.js';
import { crashArmed, crashPoint } from './crash-point.js';

/** Consecutive blocks of the file in shared memory the caller holds until `submit` settles. */
export type WriteRun = Pick<VerifyWriteTask, 'shared' | 'byteOffset' | 'blocks'>;

/** What became of a run: per block written, bad or unwritten; `io` when a write of the task failed. */
export interface RunOutcome {
  blocks: BlockOutcome[];
  io?: { code: string; message: string };
}

export interface WriteBatcherOptions {
  pool: HashPool;
  /** The session's data file. */
  fd: number;
  mtimeSec: number;
  /** Tasks in flight at once (the worker threads). */
  maxTasks: number;
  /** Bytes of blocks in one task (at least one run goes out whatever its size). */
  maxTaskBytes: number;
  /** Each task's result, for the CPU account. */
  onTask?: (r: VerifyWriteBatchResult) => void;
}

interface Waiting {
  run: WriteRun;
  bytes: number;
  resolve: (o: RunOutcome) => void;
  reject: (e: unknown) => void;
}

export class WriteBatcher {
  private readonly o: WriteBatcherOptions;
  private queue: Waiting[] = [];
  private inFlight = 0;
  private pumpQueued = false;

  constructor(o: WriteBatcherOptions) {
    this.o = o;
  }

  /**
   * Verify `run`'s blocks and write the good ones. Rejects only when the worker task failed as a whole (a crashed
   * worker: every run of that task rejects with the same error).
   */
  submit(run: WriteRun): Promise<RunOutcome> {
    const bytes = run.blocks.reduce((a, b) => a + b.length, 0);
    return new Promise<RunOutcome>((resolve, reject) => {
      this.queue.push({ run, bytes, resolve, reject });
      if (!this.pumpQueued) {
        this.pumpQueued = true;
        setImmediate(this.pumpSoon);
      }
    });
  }

  private readonly pumpSoon = (): void => {
    this.pumpQueued = false;
    this.pump();
  };

  private pump(): void {
    while (this.inFlight < this.o.maxTasks && this.queue.length > 0) {
      let take = 1;
      let bytes = this.queue[0]!.bytes;
      while (take < this.queue.length && bytes + this.queue[take]!.bytes <= this.o.maxTaskBytes) bytes += this.queue[take++]!.bytes;
      const batch = this.queue.slice(0, take);
      this.queue = this.queue.slice(take);
      this.inFlight++;
      // The mid-write crash point counts tasks as they are sent, so with tasks overlapping the n-th is still the one
      // killed mid-write; only the armed one is counted (and killed) on completion if the worker did not.
      const armed = crashArmed('mid-write');
      if (!armed) crashPoint('mid-write');
      this.o.pool
        .verifyWrite({
          kind: 'verify-write-batch',
          fd: this.o.fd,
          mtimeSec: this.o.mtimeSec,
          runs: batch.map((w) => w.run),
          ...(armed ? { crashMidWrite: true } : {}),
        })
        .then(
          (r) => {
            if (armed) crashPoint('mid-write'); // the worker did not get to a mid-write kill (nothing to write)
            this.o.onTask?.(r);
            batch.forEach((w, k) => {
              const blocks = r.runs[k] ?? w.run.blocks.map((): BlockOutcome => ({ status: 'unwritten' }));
              // Any I/O error of the task (a write, or the mtime restore after them) ends the session: every run says so.
              w.resolve({ blocks, ...(r.io === undefined ? {} : { io: r.io }) });
            });
          },
          (err: unknown) => {
            for (const w of batch) w.reject(err);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
