// A bound on announces in flight, shared by every Announcer of one process (a seeding box with thousands of swarms),
// so a burst of announces or retries never opens thousands of sockets to a tracker. Two limits: per tracker (URL
// origin) and overall, so one hanging tracker holds at most its own share and the others keep being announced to.
// Used by announcer.ts; created by whoever creates the announcers.

import PQueue from 'p-queue';
import { LIMITS } from '../limits.js';

export interface AnnounceQueueOptions {
  /** Announces in flight at once across every tracker (default LIMITS.announceQueueConcurrency). */
  concurrency?: number;
  /** Announces in flight at once to any one tracker origin (default LIMITS.announceQueuePerTracker). */
  perTracker?: number;
}

export interface AnnounceQueueRunOptions {
  /** Aborting while queued takes the task out of the queue (the run rejects with the reason). */
  signal?: AbortSignal;
  /** Higher runs first among the queued (Announcer uses 1 for `event=stopped`, 0 otherwise). */
  priority?: number;
}

interface TrackerSlot {
  queue: PQueue;
  /** Tasks queued or running on `queue`; the slot is dropped at 0 so the map holds only busy trackers. */
  users: number;
}

/** Shared announce bound; pass one instance as `queue` to many Announcers. */
export class AnnounceQueue {
  /** The overall bound. */
  readonly concurrency: number;
  /** The bound per tracker origin. */
  readonly perTracker: number;
  private readonly all: PQueue;
  private readonly trackers = new Map<string, TrackerSlot>();

  constructor(opts: AnnounceQueueOptions = {}) {
    this.concurrency = positive(opts.concurrency ?? LIMITS.announceQueueConcurrency, 'concurrency');
    this.perTracker = positive(opts.perTracker ?? LIMITS.announceQueuePerTracker, 'perTracker');
    this.all = new PQueue({ concurrency: this.concurrency });
  }

  /**
   * Run `task` (one announce to `trackerUrl`) once both a slot for that tracker and an overall slot are free.
   * Rejects with the signal's reason if aborted while waiting; a running task must watch the signal itself.
   */
  async run<T>(trackerUrl: string, task: () => Promise<T>, opts: AnnounceQueueRunOptions = {}): Promise<T> {
    const key = trackerKey(trackerUrl);
    let slot = this.trackers.get(key);
    if (slot === undefined) {
      slot = { queue: new PQueue({ concurrency: this.perTracker }), users: 0 };
      this.trackers.set(key, slot);
    }
    slot.users++;
    const enqueue = {
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.priority === undefined ? {} : { priority: opts.priority }),
    };
    try {
      // The tracker slot is taken first and held while waiting for an overall slot: a tracker never has more than
      // perTracker tasks counted against the overall bound.
      return await slot.queue.add(() => this.all.add(task, enqueue), enqueue);
    } finally {
      if (--slot.users === 0) this.trackers.delete(key);
    }
  }

  /** Announces running now, over all trackers. */
  get inFlight(): number {
    return this.all.pending;
  }

  /** Announces waiting for a slot. */
  get waiting(): number {
    let n = 0;
    for (const slot of this.trackers.values()) n += slot.queue.size;
    return n + this.all.size;
  }
}

/** Trackers are told apart by origin: swarms on one tracker host share its bound. */
function trackerKey(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url; // the announce itself reports the bad URL
  }
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`announce queue ${name} must be an integer >= 1, got ${n}`);
  return n;
}
