// Issue 10, seed-box shape: removing a kascade from the watch folder cancels its verification (each entry's work
// runs under its own AbortController), so the next file waiting to be verified gets the workers at once.

import { createHash } from 'node:crypto';
import { closeSync, openSync, ftruncateSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { boxPayload, boxWorld, entryOf, startBox, waitBoxStatus } from '../helpers/box-world.js';
import { writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';
import { until } from '../helpers/wait.js';

const scope = testScope();
const MiB = 1024 * 1024;

describe('removing a kascade cancels its verification', () => {
  it('a 4 GiB data file being verified: its kascade removed, the hashing stops and the next file is verified', async () => {
    const w = boxWorld(scope);
    // A sparse file of zeros: free to make, still seconds of MD5 for one worker thread.
    const size = 4096 * MiB;
    const fd = openSync(join(w.data, 'big.bin'), 'w');
    ftruncateSync(fd, size);
    closeSync(fd);
    const zeroMd5 = createHash('md5').update(Buffer.alloc(MiB)).digest('hex');
    const big = { filename: 'big.bin', filesize: size, filehash: 'ab'.repeat(32), tracker: 'http://127.0.0.1:9', blockhashes: { [MiB]: Array<string>(4096).fill(zeroMd5) } };
    writeKascade(join(w.watch, 'a-big.kascade'), big);
    const small = boxPayload('small.bin', 'small');
    writeFileSync(join(w.data, 'small.bin'), small.bytes);
    writeKascade(join(w.watch, 'b-small.kascade'), small.k); // waits for the verification slot behind a-big

    const box = await startBox(w, ['--threads', '1']);
    await until(() => /verifying the data file[^\n]*a-big\.kascade|a-big\.kascade[^\n]*verifying the data file/.test(box.run.stderr()), 20_000);
    // The folder's kascades are read one by one: b-small may still be unread when a-big starts hashing.
    await waitBoxStatus(box.url, (s) => entryOf(s, 'b-small.kascade')?.state === 'verifying', 'b-small waiting for the verification slot');
    expect(box.run.stderr()).not.toMatch(/verification cancelled/);
    rmSync(join(w.watch, 'a-big.kascade'));
    await until(() => /verification cancelled: the kascade was removed/.test(box.run.stderr()), 20_000);
    expect(box.run.stderr()).toMatch(/a-big\.kascade[^\n]*verification cancelled|verification cancelled[^\n]*a-big\.kascade/);
    await waitBoxStatus(box.url, (s) => entryOf(s, 'b-small.kascade')?.state === 'seeding' && entryOf(s, 'a-big.kascade') === undefined, 'small seeding, big gone');
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
  });
});
