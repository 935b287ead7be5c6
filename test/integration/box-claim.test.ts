// Issue 10 point 8: two kascades naming the same data file, read in the same scan. The one already known to the
// state wins, else the one whose data file verifies; never the first alphabetically. The other is reported with a
// reason naming both kascade files. Each bogus kascade here sorts first.

import { createHash } from 'node:crypto';
import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { boxPayload, boxWorld, entryOf, startBox, waitBoxStatus } from '../helpers/box-world.js';
import { writeKascade as writeFresh } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * A kascade written a minute ago: every file of a test is settled in the box's first scan, so the claim is decided
 * in one scan (the case under test). Fresh files could otherwise straddle the settle window when the box's start-up
 * takes about as long as that window (seen once on a loaded CI machine: one kascade read a scan before the other).
 */
function writeKascade(path: string, k: Record<string, unknown>): void {
  writeFresh(path, k);
  const old = new Date(Date.now() - 60_000);
  utimesSync(path, old, old);
}

describe('issue 10 point 8: one data file named by two kascades', () => {
  it('the kascade whose data file verifies wins over a bogus one that sorts first; the bogus one is reported', async () => {
    const w = boxWorld(scope);
    const real = boxPayload('shared.bin', 'real');
    const bogus = boxPayload('shared.bin', 'bogus');
    writeFileSync(join(w.data, 'shared.bin'), real.bytes);
    writeKascade(join(w.watch, 'a-bogus.kascade'), bogus.k);
    writeKascade(join(w.watch, 'b-real.kascade'), real.k);

    const box = await startBox(w);
    const s = await waitBoxStatus(box.url, (x) => entryOf(x, 'b-real.kascade')?.state === 'seeding' && entryOf(x, 'a-bogus.kascade')?.state === 'rejected', 'real seeding, bogus rejected');
    const why = entryOf(s, 'a-bogus.kascade')!.error!;
    expect(why).toMatch(/a-bogus\.kascade/);
    expect(why).toMatch(/b-real\.kascade/);
    expect(why).toMatch(/shared\.bin/);
    expect(box.run.stderr()).toMatch(/kascade skipped.*a-bogus\.kascade|a-bogus\.kascade.*kascade skipped/);
    expect(sha(readFileSync(join(w.data, 'shared.bin')))).toBe(real.filehash); // never overwritten
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
  });

  it('a copy of the real kascade at a smaller block size (more blocks, another filehash) does not win by count', async () => {
    const w = boxWorld(scope);
    const real = boxPayload('shared.bin', 'real');
    writeFileSync(join(w.data, 'shared.bin'), real.bytes);
    // Every 16 KiB block matches the file too; only its filehash (and so its swarm) is the attacker's.
    const small = 16_384;
    const md5s = Array.from({ length: Math.ceil(real.bytes.length / small) }, (_, i) =>
      createHash('md5').update(real.bytes.subarray(i * small, (i + 1) * small)).digest('hex'),
    );
    writeKascade(join(w.watch, 'a-copy.kascade'), { ...real.k, filehash: '00'.repeat(32), blockhashes: { [small]: md5s } });
    writeKascade(join(w.watch, 'b-real.kascade'), real.k);

    const box = await startBox(w);
    const s = await waitBoxStatus(box.url, (x) => entryOf(x, 'b-real.kascade')?.state === 'seeding' && entryOf(x, 'a-copy.kascade')?.state === 'rejected', 'real seeding, copy rejected');
    expect(entryOf(s, 'a-copy.kascade')!.error).toMatch(/b-real\.kascade/);
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
  });

  it('the kascade already known to the state wins after a restart, whatever the new one is called', async () => {
    const w = boxWorld(scope);
    const real = boxPayload('shared.bin', 'real');
    const bogus = boxPayload('shared.bin', 'bogus');
    writeFileSync(join(w.data, 'shared.bin'), real.bytes);
    writeKascade(join(w.watch, 'z-real.kascade'), real.k);
    let box = await startBox(w);
    await waitBoxStatus(box.url, (x) => entryOf(x, 'z-real.kascade')?.state === 'seeding', 'real seeding');
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);

    writeKascade(join(w.watch, 'a-bogus.kascade'), bogus.k);
    box = await startBox(w);
    const s = await waitBoxStatus(box.url, (x) => entryOf(x, 'z-real.kascade')?.state === 'seeding' && entryOf(x, 'a-bogus.kascade')?.state === 'rejected', 'known one kept');
    expect(entryOf(s, 'a-bogus.kascade')!.error).toMatch(/z-real\.kascade/);
    expect(box.run.stderr()).not.toMatch(/verifying the data file/); // the known one is trusted, nothing re-hashed
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
  });

  it('neither known nor verifiable (no data file yet): both are held back and nothing is fetched; removing one lets the other go', async () => {
    const w = boxWorld(scope);
    writeKascade(join(w.watch, 'a-one.kascade'), boxPayload('shared.bin', 'one').k);
    writeKascade(join(w.watch, 'b-two.kascade'), boxPayload('shared.bin', 'two').k);
    const box = await startBox(w);
    const s = await waitBoxStatus(box.url, (x) => x.kascades.rejected === 2, 'both held back');
    expect(entryOf(s, 'a-one.kascade')!.error).toMatch(/b-two\.kascade/);
    expect(entryOf(s, 'b-two.kascade')!.error).toMatch(/a-one\.kascade/);
    rmSync(join(w.watch, 'a-one.kascade'));
    await waitBoxStatus(box.url, (x) => entryOf(x, 'a-one.kascade') === undefined && ['queued', 'downloading', 'stalled'].includes(entryOf(x, 'b-two.kascade')?.state ?? ''), 'b-two taken in');
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
  });
});
