// Issue 10 point 17: a file-size limit (EFBIG) was reported as "no space left". A real `kfetch get` under
// `ulimit -f` (Node ignores SIGXFSZ, so sizing the data file past the limit fails with EFBIG instead of killing
// the process) must say the file is too large, with the disk-full exit status (the download stays resumable).

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

describe('get under a file-size limit (issue 10 point 17)', () => {
  it('exits 5 with "file too large … (EFBIG)", not "no space left"', async () => {
    const d = scope.dir('kf-efbig-');
    const size = 8 * 1024 * 1024; // past `ulimit -f 4096` (2 or 4 MiB in sh's 512- or bash's 1024-byte units)
    const body = Buffer.alloc(size, 3);
    const hashes: string[] = [];
    for (let at = 0; at < size; at += 65536) hashes.push(createHash('md5').update(body.subarray(at, at + 65536)).digest('hex'));
    const kascade = join(d, 'big.json');
    writeFileSync(
      kascade,
      JSON.stringify({
        filename: 'big.bin',
        filesize: size,
        filehash: createHash('sha256').update(body).digest('hex'),
        tracker: 'http://127.0.0.1:9/peers/x.json',
        blockhashes: { '65536': hashes },
      }),
    );
    const run = startCli(['get', kascade, '--out', join(d, 'out'), '--timeout', '10'], { ulimitF: 4096 });
    const code = await run.exited(30_000);
    expect(run.stderr()).toMatch(/file too large for this file system or the process's file-size limit \(EFBIG\)/);
    expect(run.stderr()).not.toMatch(/no space left/);
    expect(run.stderr()).toMatch(/KF_E_DISK_FULL/);
    expect(code).toBe(5);
  });
});
