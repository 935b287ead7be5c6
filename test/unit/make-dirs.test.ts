// The bounded directory walk (issue 10 point 16): one non-recursive mkdir per level, existing entries checked to
// be directories, a bound on the levels, and a clear error naming the path where Node 20's recursive mkdirSync
// spins forever (a pseudo file system answering ENOENT although the parent exists).

import { lstatSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { makeDirs } from '../../src/util/make-dirs.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

function errorOf(f: () => void): KfetchError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(KfetchError);
    return err as KfetchError;
  }
  throw new Error('expected a KfetchError');
}

describe('makeDirs', () => {
  it('creates every missing level with the mode, and is a no-op on an existing directory', () => {
    const d = scope.dir('kf-mkdirs-');
    const deep = join(d, 'a', 'b', 'c');
    makeDirs(deep, 'cannot create x', { mode: 0o700 });
    for (const p of [join(d, 'a'), join(d, 'a', 'b'), deep]) {
      expect(lstatSync(p).isDirectory(), p).toBe(true);
      expect(lstatSync(p).mode & 0o077, p).toBe(0);
    }
    makeDirs(deep, 'cannot create x');
    makeDirs(d, 'cannot create x');
  });

  it('follows a symlink to a directory and refuses a file in the path, naming it', () => {
    const d = scope.dir('kf-mkdirs-');
    mkdirSync(join(d, 'real'));
    symlinkSync(join(d, 'real'), join(d, 'link'));
    makeDirs(join(d, 'link', 'sub'), 'cannot create x');
    expect(statSync(join(d, 'real', 'sub')).isDirectory()).toBe(true);

    writeFileSync(join(d, 'file'), 'x');
    for (const p of [join(d, 'file'), join(d, 'file', 'sub', 'deeper')]) {
      const e = errorOf(() => makeDirs(p, 'cannot create the output directory'));
      expect([e.code, e.file], p).toEqual(['KF_E_IO', join(d, 'file')]);
      expect(e.message, p).toBe(`cannot create the output directory: ${join(d, 'file')} exists and is not a directory`);
    }
  });

  it('creates no more than maxLevels missing levels, and creates nothing when over', () => {
    const d = scope.dir('kf-mkdirs-');
    makeDirs(join(d, '1', '2', '3'), 'x', { maxLevels: 3 });
    const e = errorOf(() => makeDirs(join(d, 'a', 'b', 'c', 'd'), 'cannot create x', { maxLevels: 3 }));
    expect(e.code).toBe('KF_E_IO');
    expect(e.message).toMatch(/more than 3 missing directory levels/);
    expect(statSync(join(d, 'a'), { throwIfNoEntry: false })).toBeUndefined();
  });

  it('refuses /proc/x/y at once, naming /proc/x (recursive mkdirSync spins there)', () => {
    const e = errorOf(() => makeDirs('/proc/x/y', 'cannot create the output directory'));
    expect([e.code, e.file]).toEqual(['KF_E_IO', '/proc/x']);
    expect(e.message).toMatch(/^cannot create the output directory: cannot create \/proc\/x: /);
  });

  it('names a device that is not a directory (/dev/null/x)', () => {
    const e = errorOf(() => makeDirs('/dev/null/x', 'cannot create x'));
    expect([e.code, e.file]).toEqual(['KF_E_IO', '/dev/null']);
  });
});
