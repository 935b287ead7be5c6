// The disk preflight (issue 10 point 17): its message names the margin it adds, against the real statfs of a
// temp dir (free space is whatever the machine has: the test asks for more than that).

import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { FREE_SPACE_MARGIN_BYTES, checkFreeSpace } from '../../src/store/free-space.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

describe('checkFreeSpace', () => {
  it('says "needs X + 16 MiB margin, Y free" when the margin is what is missing', () => {
    const d = scope.dir('kf-free-');
    const s = statfsSync(d);
    const free = s.bavail * s.bsize;
    // Needs fit in what is free, but not with the margin on top (other writers move `free` a little: use half a margin).
    const needed = Math.max(0, free - FREE_SPACE_MARGIN_BYTES / 2);
    let err: unknown;
    try {
      checkFreeSpace(join(d, 'f.bin'), needed);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KfetchError);
    const e = err as KfetchError;
    expect([e.code, e.file]).toEqual(['KF_E_DISK_FULL', join(d, 'f.bin')]);
    expect(e.message).toMatch(new RegExp(`: needs ${needed} bytes \\(\\d+\\.\\d MiB\\) \\+ 16 MiB margin, \\d+ bytes \\(\\d+\\.\\d MiB\\) free$`));
    expect(e.detail).toMatchObject({ needed, margin: FREE_SPACE_MARGIN_BYTES });
  });

  it('passes when the data and the margin fit', () => {
    const d = scope.dir('kf-free-');
    expect(() => checkFreeSpace(join(d, 'f.bin'), 0, 0)).not.toThrow();
  });
});
