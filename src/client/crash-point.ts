// Named crash points for the kill -9 tests (RELIABILITY.md "process killed mid-write"). Only tests set
// KFETCH_CRASH_AT=<name>[:<n>]; the n-th time (default 1st) the point is reached the process SIGKILLs itself.

const spec = process.env.KFETCH_CRASH_AT;
const [crashName, crashNth] = spec === undefined ? [undefined, 0] : [spec.split(':')[0], Number(spec.split(':')[1] ?? '1')];
const hits = new Map<string, number>();

export type CrashPointName =
  | 'between-record-and-create'
  | 'during-adopt'
  | 'before-write'
  | 'mid-write'
  | 'after-write-before-fsync'
  | 'after-fsync-before-commit'
  | 'after-commit'
  | 'during-final-hash';

/** True when the next hit of `name` is the one that must crash (used to arm the worker's mid-write kill). */
export function crashArmed(name: CrashPointName): boolean {
  return crashName === name && (hits.get(name) ?? 0) + 1 === crashNth;
}

/** SIGKILL this process if KFETCH_CRASH_AT names this point and this is its n-th hit. */
export function crashPoint(name: CrashPointName): void {
  if (crashName !== name) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === crashNth) process.kill(process.pid, 'SIGKILL');
}
