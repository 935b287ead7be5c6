// Issue 10 point 16: `kfetch get --out /proc/x/y` spun forever at full CPU, deaf to SIGTERM (Node 20's recursive
// mkdirSync loops when /proc answers ENOENT for a mkdir whose parent exists). Now it exits at once with the path.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

describe('get --out on a pseudo file system (issue 10 point 16)', () => {
  it('exits non-zero quickly, naming the directory it cannot create', async () => {
    const d = scope.dir('kf-proc-out-');
    const body = Buffer.alloc(1000, 7);
    const kascade = join(d, 'f.json');
    writeFileSync(
      kascade,
      JSON.stringify({
        filename: 'f.bin',
        filesize: body.length,
        filehash: createHash('sha256').update(body).digest('hex'),
        tracker: 'http://127.0.0.1:9/peers/x.json',
        blockhashes: { '1024': [createHash('md5').update(body).digest('hex')] },
      }),
    );
    const run = startCli(['get', kascade, '--out', '/proc/x/y', '--timeout', '5']);
    // Bounded: the old build never exits (the test harness kills it after the test).
    const code = await run.exited(15_000);
    expect(code).toBe(5);
    expect(run.stderr()).toMatch(/KF_E_IO/);
    expect(run.stderr()).toMatch(/cannot create the output directory: cannot create \/proc\/x/);
  });
});
