// Download and upload rates per box entry, sampled once a second from its fetched and served byte counters and
// averaged over a few seconds (exponentially), for the API's records and `box.stats`. Used by event-publisher.ts.

export interface Rate {
  down: number;
  up: number;
}

interface Sample {
  fetched: number;
  served: number;
  down: number;
  up: number;
}

const ZERO: Rate = { down: 0, up: 0 };
/** Weight of the newest second: about a 3 s average. */
const ALPHA = 0.35;
/** A rate below this (bytes/s) reads as 0, so idle entries settle instead of decaying forever. */
const FLOOR = 1;

export class EntryRates {
  private readonly byId = new Map<string, Sample>();
  private lastAt: number | undefined;
  /** Totals over every entry at the last sample. */
  total: Rate = ZERO;

  of(id: string): Rate {
    return this.byId.get(id) ?? ZERO;
  }

  /**
   * Take one sample of every entry (`now` in ms); returns the ids whose rates changed. Entries gone since the last
   * sample are forgotten.
   */
  sample(entries: Iterable<{ id: string; fetched: number; served: number }>, now: number): string[] {
    const dt = this.lastAt === undefined ? 0 : (now - this.lastAt) / 1000;
    this.lastAt = now;
    const changed: string[] = [];
    const seen = new Set<string>();
    let down = 0;
    let up = 0;
    for (const e of entries) {
      seen.add(e.id);
      const s = this.byId.get(e.id);
      if (s === undefined) {
        this.byId.set(e.id, { fetched: e.fetched, served: e.served, down: 0, up: 0 });
        continue;
      }
      if (dt > 0) {
        const d = smooth(s.down, Math.max(0, e.fetched - s.fetched) / dt);
        const u = smooth(s.up, Math.max(0, e.served - s.served) / dt);
        if (d !== s.down || u !== s.up) changed.push(e.id);
        s.down = d;
        s.up = u;
      }
      s.fetched = e.fetched;
      s.served = e.served;
      down += s.down;
      up += s.up;
    }
    for (const id of this.byId.keys()) if (!seen.has(id)) this.byId.delete(id);
    this.total = { down: Math.round(down), up: Math.round(up) };
    return changed;
  }
}

function smooth(prev: number, now: number): number {
  const v = prev + ALPHA * (now - prev);
  return v < FLOOR ? 0 : Math.round(v);
}
