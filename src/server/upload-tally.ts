// Bytes served per swarm and client address, with a decaying rate, for the box's API (`GET /kascades/{id}/peers`:
// who downloads from us and how fast). Bounded: at most MAX_CLIENTS addresses per swarm and MAX_SWARMS swarms,
// the least recently served going first. Used by block-server.ts on each chunk written.

/** Addresses kept per swarm, and swarms kept. */
const MAX_CLIENTS = 64;
const MAX_SWARMS = 20_000;
/** The rate's time constant: about the last 2 s. */
const TAU_MS = 2_000;

export interface ClientUpload {
  address: string;
  bytes: number;
  /** Bytes per second, decayed to now. */
  rate: number;
  lastAt: number;
}

interface Tally {
  bytes: number;
  /** Decayed bytes (rate × TAU) at `at`. */
  level: number;
  at: number;
}

export class UploadTally {
  private readonly swarms = new Map<string, Map<string, Tally>>();

  add(swarmId: string, client: string, n: number, now = Date.now()): void {
    let m = this.swarms.get(swarmId);
    if (m === undefined) {
      if (this.swarms.size >= MAX_SWARMS) this.swarms.delete(this.swarms.keys().next().value!);
      m = new Map();
    } else this.swarms.delete(swarmId); // re-inserted last: most recently served
    this.swarms.set(swarmId, m);
    let t = m.get(client);
    if (t === undefined) {
      if (m.size >= MAX_CLIENTS) m.delete(m.keys().next().value!);
      t = { bytes: 0, level: 0, at: now };
    } else m.delete(client);
    m.set(client, t);
    t.level = decayed(t, now) + n;
    t.at = now;
    t.bytes += n;
  }

  /** The clients served for `swarmId`, most recent last. */
  of(swarmId: string, now = Date.now()): ClientUpload[] {
    const m = this.swarms.get(swarmId);
    if (m === undefined) return [];
    return [...m].map(([address, t]) => ({ address, bytes: t.bytes, rate: Math.round(decayed(t, now) / (TAU_MS / 1000)), lastAt: t.at }));
  }
}

function decayed(t: Tally, now: number): number {
  return t.level * Math.exp(-Math.max(0, now - t.at) / TAU_MS);
}
