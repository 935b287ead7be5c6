// Admission control for the block server: at most N requests in flight overall and M per client address; a request
// that finds no free slot waits in a bounded queue, and freed slots go round-robin across client addresses (FIFO
// within one), so one busy client cannot starve the others. Pure bookkeeping, no I/O and no timers: block-server.ts
// owns the queue timeout and calls release when a response closes.

/** Why a request was refused with 503 (`queueTimeout` is decided by the caller, which owns the timer). */
export type BusyReason = 'maxClients' | 'queueFull' | 'clientQueueFull' | 'queueTimeout';

/** Bounds of an Admission; see LIMITS.server* for the defaults and their reasons. */
export interface AdmissionLimits {
  /** Requests in flight overall. */
  maxConcurrent: number;
  /** Requests in flight per client address. */
  maxPerClient: number;
  /** Requests waiting overall (0: never queue, refuse at once as before queueing existed). */
  maxQueued: number;
  /** Requests waiting per client address. */
  maxQueuedPerClient: number;
  /** Distinct client addresses with requests in flight or queued. */
  maxClients: number;
}

/** Give back a slot; idempotent. */
export type Release = () => void;

/** The outcome of `enter`. */
export type Entry =
  | { kind: 'granted'; release: Release }
  /** Waiting; `onGrant` is called later with the release. `leave()` drops the request from the queue (no-op once granted). */
  | { kind: 'queued'; leave: () => void }
  | { kind: 'refused'; reason: Exclude<BusyReason, 'queueTimeout'> };

interface Waiter {
  client: ClientState;
  onGrant: (release: Release) => void;
  enqueuedAt: number;
  done: boolean;
}

interface ClientState {
  address: string;
  inFlight: number;
  /** FIFO of this client's waiting requests (at most maxQueuedPerClient). */
  queue: Waiter[];
}

/** Slots and the fair queue in front of them. */
export class Admission {
  private total = 0;
  private queuedNow = 0;
  private active = 0;
  private readonly clients = new Map<string, ClientState>();
  /** Clients with live waiters, in round-robin order: the first eligible one is served, then moved to the back. */
  private readonly ring = new Map<string, ClientState>();
  private pumping = false;
  private pumpAgain = false;

  /** Requests that had to wait in the queue, since start. */
  queuedTotal = 0;
  /** Milliseconds spent queued, summed over requests that left the queue (granted, timed out or gone), and their count. */
  queueWaitMsSum = 0;
  queueWaitCount = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Ask for a slot for `client`. Granted at once when a slot is free and the client has nothing queued; otherwise
   * queued if the queue bounds allow (then `onGrant` runs later, synchronously inside some other release or leave),
   * else refused.
   */
  enter(client: string, onGrant: (release: Release) => void): Entry {
    let state = this.clients.get(client);
    if (state === undefined) {
      if (this.clients.size >= this.limits.maxClients) return { kind: 'refused', reason: 'maxClients' };
      state = { address: client, inFlight: 0, queue: [] };
      this.clients.set(client, state);
    }
    if (state.queue.length === 0 && this.total < this.limits.maxConcurrent && state.inFlight < this.limits.maxPerClient) {
      return { kind: 'granted', release: this.take(state) };
    }
    if (this.queuedNow >= this.limits.maxQueued || state.queue.length >= this.limits.maxQueuedPerClient) {
      const reason = this.queuedNow >= this.limits.maxQueued ? 'queueFull' : 'clientQueueFull';
      this.forgetIfIdle(state);
      return { kind: 'refused', reason };
    }
    const waiter: Waiter = { client: state, onGrant, enqueuedAt: this.now(), done: false };
    state.queue.push(waiter);
    this.queuedNow++;
    this.queuedTotal++;
    if (!this.ring.has(client)) this.ring.set(client, state);
    return {
      kind: 'queued',
      leave: () => {
        if (waiter.done) return;
        this.dequeue(waiter);
        this.forgetIfIdle(state);
      },
    };
  }

  /** Requests in flight overall. */
  get inFlight(): number {
    return this.total;
  }

  /** Requests waiting in the queue. */
  get queued(): number {
    return this.queuedNow;
  }

  /** Distinct client addresses with at least one request in flight. */
  get activeClients(): number {
    return this.active;
  }

  /** Distinct client addresses with requests in flight or queued (what maxClients bounds). */
  get knownClients(): number {
    return this.clients.size;
  }

  /** Requests in flight for one client. */
  inFlightFor(client: string): number {
    return this.clients.get(client)?.inFlight ?? 0;
  }

  /** Requests queued for one client. */
  queuedFor(client: string): number {
    return this.clients.get(client)?.queue.length ?? 0;
  }

  private take(state: ClientState): Release {
    this.total++;
    if (state.inFlight++ === 0) this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      if (--state.inFlight === 0) this.active--;
      this.forgetIfIdle(state);
      this.pump();
    };
  }

  /** Hand free slots to waiting requests, round-robin by client. Re-entrant calls (a grant that releases) loop here. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        while (this.total < this.limits.maxConcurrent) {
          const state = this.nextEligible();
          if (state === undefined) break;
          const waiter = state.queue[0]!;
          this.dequeue(waiter);
          // Served: to the back of the ring if it still waits for more.
          if (state.queue.length > 0) {
            this.ring.delete(state.address);
            this.ring.set(state.address, state);
          }
          waiter.onGrant(this.take(state));
        }
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private nextEligible(): ClientState | undefined {
    for (const state of this.ring.values()) if (state.inFlight < this.limits.maxPerClient) return state;
    return undefined;
  }

  private dequeue(waiter: Waiter): void {
    const state = waiter.client;
    waiter.done = true;
    // The head in the common case (granted); a request leaving from the middle costs at most maxQueuedPerClient.
    const i = state.queue.indexOf(waiter);
    if (i === 0) state.queue.shift();
    else state.queue.splice(i, 1);
    this.queuedNow--;
    this.queueWaitMsSum += this.now() - waiter.enqueuedAt;
    this.queueWaitCount++;
    if (state.queue.length === 0) this.ring.delete(state.address);
  }

  private forgetIfIdle(state: ClientState): void {
    if (state.inFlight === 0 && state.queue.length === 0) this.clients.delete(state.address);
  }
}
