// A FIFO of tasks with a fixed number of slots, for the seeding box's downloads and verifications. Unlike
// p-queue's clear(), a waiting task whose signal aborts settles at once (it resolves false, never run), so the box's
// stop can always wait for everything it started (issue 10 point 7). A running task is never cut off here: it sees
// its own signal and finishes, so a download still checkpointing ends before the database closes. The number of
// slots may change at run time (the API's `maxDownloads`): more slots start waiters at once, fewer let running
// tasks finish and hand no slot on until the count is under the new number.

interface Waiter {
  go: () => void;
}

export class SlotQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  private slots: number;

  constructor(concurrency: number) {
    this.slots = checkConcurrency(concurrency);
  }

  /** Tasks allowed to run at once. */
  get concurrency(): number {
    return this.slots;
  }

  /**
   * Change the number of slots: raising it starts waiting tasks at once (in arrival order); lowering it cuts no
   * running task, the surplus slots are simply not handed on when their tasks end.
   */
  setConcurrency(n: number): void {
    this.slots = checkConcurrency(n);
    while (this.running < this.slots) {
      const next = this.waiting.shift();
      if (next === undefined) break;
      this.running++;
      next.go();
    }
  }

  /** Tasks waiting for a slot. */
  get size(): number {
    return this.waiting.length;
  }

  /** Tasks holding a slot. */
  get pending(): number {
    return this.running;
  }

  /**
   * Run `task` once a slot is free. Resolves true when it ran (after it settled; its rejection is passed on), false
   * when `signal` aborted before its turn (it never runs).
   */
  async run(signal: AbortSignal, task: () => Promise<void>): Promise<boolean> {
    if (signal.aborted) return false;
    if (this.running < this.slots) this.running++;
    else if (!(await this.turn(signal))) return false;
    try {
      await task();
      return true;
    } finally {
      // The slot passes straight to the next waiter, so the count never dips and lets a newcomer jump the line;
      // unless the slots were lowered below the tasks running, then it is given up.
      const next = this.running <= this.slots ? this.waiting.shift() : undefined;
      if (next !== undefined) next.go();
      else this.running--;
    }
  }

  /** Wait for a slot handed over by a finishing task; false if `signal` aborts first. */
  private turn(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const w: Waiter = {
        go: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
    });
  }
}

function checkConcurrency(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${n}`);
  return n;
}
