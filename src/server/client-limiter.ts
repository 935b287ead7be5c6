// Admission control for the block server: at most N requests in flight overall and M per client address, so
// one client (or a flood) cannot take every slot. Pure bookkeeping, no I/O; block-server.ts releases on response close.

/** Counts in-flight requests overall and per client address. */
export class ClientLimiter {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerClient: number,
  ) {}

  /**
   * Take a slot for `client`; returns the release function (idempotent), or undefined when a cap is reached.
   */
  tryAcquire(client: string): (() => void) | undefined {
    const mine = this.perClient.get(client) ?? 0;
    if (this.total >= this.maxTotal || mine >= this.maxPerClient) return undefined;
    this.total++;
    this.perClient.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const now = (this.perClient.get(client) ?? 1) - 1;
      if (now <= 0) this.perClient.delete(client);
      else this.perClient.set(client, now);
    };
  }

  /** Requests in flight overall. */
  get inFlight(): number {
    return this.total;
  }

  /** Requests in flight for one client. */
  inFlightFor(client: string): number {
    return this.perClient.get(client) ?? 0;
  }
}
