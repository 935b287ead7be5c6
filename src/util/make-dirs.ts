// Creates a directory and its missing parents with a bounded walk of our own, for every place kfetch makes
// directories (the home, a download's output directory, the box's --data folder).
//
// Why not `mkdirSync(p, { recursive: true })`: on Node 20 it loops forever at full CPU, deaf to SIGTERM (the loop
// is synchronous), when mkdir on a pseudo file system answers ENOENT although the parent exists (`/proc/x/y`:
// issue 10 point 16). Here each level is one non-recursive mkdir, the walk is bounded, and an existing entry is
// checked to be a directory.

import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KfetchError, fromFsError } from '../errors.js';

/** Most missing levels created in one call (far above any real layout; bounds the walk). */
export const MAX_DIR_LEVELS = 64;

export interface MakeDirsOptions {
  /** Mode of the directories created (default 0o777 less the umask). */
  mode?: number;
  maxLevels?: number;
}

/** The kind of an existing entry, undefined if there is none, or the error lstat gave. */
function existing(p: string): 'dir' | 'other' | undefined | NodeJS.ErrnoException {
  try {
    const st = lstatSync(p);
    // A symlink to a directory counts: users keep output folders behind links (and /tmp is one on some systems).
    if (st.isDirectory() || (st.isSymbolicLink() && statSync(p, { throwIfNoEntry: false })?.isDirectory() === true)) return 'dir';
    return 'other';
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // ENOTDIR: an ancestor is not a directory; the walk up finds it and names it.
    return e.code === 'ENOENT' || e.code === 'ENOTDIR' ? undefined : e;
  }
}

/**
 * Make `dir` (and its missing parents) a directory, or throw a KfetchError naming the path that failed:
 * `what` starts the message (`cannot create the output directory`). KF_E_DISK_FULL for ENOSPC/EDQUOT, KF_E_IO
 * otherwise (including a path component that is not a directory, and a file system that refuses the mkdir).
 */
export function makeDirs(dir: string, what: string, opts: MakeDirsOptions = {}): void {
  const maxLevels = opts.maxLevels ?? MAX_DIR_LEVELS;
  const target = resolve(dir);
  // Walk up to the deepest existing ancestor, remembering what is missing (deepest first).
  const missing: string[] = [];
  for (let p = target; ; p = dirname(p)) {
    const kind = existing(p);
    if (kind === 'dir') break;
    if (kind === 'other') throw new KfetchError('KF_E_IO', `${what}: ${p} exists and is not a directory`, { file: p });
    if (kind !== undefined) throw fromFsError(kind, p, what);
    if (missing.length >= maxLevels) {
      throw new KfetchError('KF_E_IO', `${what}: more than ${maxLevels} missing directory levels above ${target}`, { file: target });
    }
    missing.push(p);
    if (dirname(p) === p) throw new KfetchError('KF_E_IO', `${what}: the root ${p} does not exist`, { file: p });
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const p = missing[i]!;
    try {
      mkdirSync(p, opts.mode === undefined ? {} : { mode: opts.mode });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Made meanwhile by someone else: fine if it is a directory.
      if (e.code === 'EEXIST' && existing(p) === 'dir') continue;
      if (e.code === 'ENOSPC' || e.code === 'EDQUOT') throw fromFsError(e, p, what);
      const why = e.code === 'ENOENT' ? 'the file system refuses new directories there (ENOENT although the parent exists)' : `${e.code ?? e.message}`;
      throw new KfetchError('KF_E_IO', `${what}: cannot create ${p}: ${why}`, { file: p, cause: e });
    }
  }
}
