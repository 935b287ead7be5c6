// The kfetch home lock: one process per --home, held for the process's life (as Transmission locks its config
// dir). A lock file created exclusively holds our pid; a lock left by a dead process is taken over.

import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KfetchError, fromFsError } from '../errors.js';

export interface HomeLock {
  readonly path: string;
  release(): void;
}

const LOCK_NAME = 'kfetch.lock';
const MAX_ATTEMPTS = 3;

/** Take the lock on `home` (created if missing) or throw KF_E_HOME_LOCKED naming the other process. */
export function lockHome(home: string): HomeLock {
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fromFsError(err, home, 'cannot create the kfetch home');
  }
  const path = join(home, LOCK_NAME);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(err, path, 'cannot create the lock file');
      const holder = readHolder(path);
      if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
        throw new KfetchError('KF_E_HOME_LOCKED', `home ${home} is in use by another kfetch process (pid ${holder})`, {
          file: path,
          detail: { pid: holder, home },
        });
      }
      // Stale lock (its process is gone, or the file is empty from a crash between create and write): take it over.
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
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
