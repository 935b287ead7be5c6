// The kfetch home lock: one process per --home, held for the process's life (as Transmission locks its config
// dir). The lock file holds our pid and appears atomically (hard link); a lock left by a dead process is taken over.

import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KfetchError, fromFsError } from '../errors.js';
import { makeDirs } from '../util/make-dirs.js';

export interface HomeLock {
  readonly path: string;
  release(): void;
}

const LOCK_NAME = 'kfetch.lock';
const MAX_ATTEMPTS = 3;

/** Take the lock on `home` (created if missing) or throw KF_E_HOME_LOCKED naming the other process. */
export function lockHome(home: string): HomeLock {
  makeDirs(home, 'cannot create the kfetch home', { mode: 0o700 });
  const path = join(home, LOCK_NAME);
  // The pid is written to a private file first and hard-linked into place: link() is atomic and fails if the
  // lock exists, so a lock file is never seen empty or half-written.
  const mine = join(home, `${LOCK_NAME}.${process.pid}.${Date.now()}`);
  try {
    writeFileSync(mine, `${process.pid}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw fromFsError(err, mine, 'cannot create the lock file');
  }
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        linkSync(mine, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(err, path, 'cannot create the lock file');
        const holder = readHolder(path);
        if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
          throw new KfetchError('KF_E_HOME_LOCKED', `home ${home} is in use by another kfetch process (pid ${holder})`, {
            file: path,
            detail: { pid: holder, home },
          });
        }
        // Stale (its process is gone): move it aside under a unique name, then check that what moved was still
        // the stale lock (another process may have replaced it meanwhile) before trying again.
        const aside = `${path}.stale.${process.pid}.${attempt}`;
        try {
          renameSync(path, aside);
        } catch {
          continue; // someone else moved it first
        }
        const moved = readHolder(aside);
        if (moved !== holder && moved !== undefined && isAlive(moved)) {
          // We moved a live lock: put it back and report it.
          try {
            linkSync(aside, path);
          } catch {
            // it has been replaced again; the next attempt sorts it out
          }
          rmSync(aside, { force: true });
          continue;
        }
        rmSync(aside, { force: true });
        continue;
      }
      let released = false;
      return {
        path,
        release(): void {
          if (released) return;
          released = true;
          if (readHolder(path) === process.pid) rmSync(path, { force: true });
        },
      };
    }
    throw new KfetchError('KF_E_HOME_LOCKED', `could not take the lock on ${home} (another process keeps racing for it)`, {
      file: path,
    });
  } finally {
    rmSync(mine, { force: true });
  }
}

function readHolder(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
