// Issue 10 point 6: a box download without progress gives its --max-downloads slot up. Two kascades no peer can
// serve take both slots first (they sort first); the third, with a live seeder, must still complete, and the
// stalled ones show as `stalled` with their next try in /status.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { BLOCK, boxPayload, boxWorld, entryOf, startBox, waitBoxStatus } from '../helpers/box-world.js';
import { runCli } from '../helpers/cli.js';
import { writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

describe('issue 10 point 6: stalled box downloads give their slot up', () => {
  // Up to 70 s: on a loaded machine the servable one may itself stall once (no verified block within the 1 s
  // stall timeout) and come back after its 30 s (±25%) back-off; that is the behaviour under test, not a failure.
  it('two unservable kascades and --max-downloads 2: the servable one still completes; the others are stalled with a next try', { timeout: 70_000 }, async () => {
    const w = boxWorld(scope);
    for (const n of ['a', 'b']) writeKascade(join(w.watch, `${n}-unservable.kascade`), boxPayload(`${n}.bin`, n).k);
    const good = boxPayload('c.bin', 'c');
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true }));
    writeKascade(join(w.watch, 'c-servable.kascade'), { ...good.k, peers: [peer.addr] });

    const box = await startBox(w, ['--max-downloads', '2', '--stall-timeout', '1']);
    const s = await waitBoxStatus(box.url, (x) => entryOf(x, 'c-servable.kascade')?.state === 'seeding', 'the servable kascade seeding', 55_000);
    expect(createHash('sha256').update(readFileSync(join(w.data, 'c.bin'))).digest('hex')).toBe(good.filehash);
    const stalled = s.files.filter((f) => f.path.includes('-unservable'));
    for (const f of stalled) {
      expect(['stalled', 'queued', 'downloading']).toContain(f.state);
      if (f.state === 'stalled') expect(Date.parse(f.nextTry!)).toBeGreaterThan(Date.now() - 60_000);
    }
    // Both slots went to the unservable ones first (they sort first); the servable one got to run only once one of
    // them gave its slot up. Read from the log, in order, not from a status snapshot that a loaded machine can miss.
    const log = box.run.stderr();
    const gaveUp = log.search(/no verified block for 1 s: giving the download slot up/);
    const done = log.search(/c-servable\.kascade[^\n]*download complete|download complete[^\n]*c-servable\.kascade/);
    expect(gaveUp).toBeGreaterThanOrEqual(0);
    expect(done).toBeGreaterThan(gaveUp);
    await waitBoxStatus(box.url, (x) => x.files.some((f) => f.state === 'stalled' && f.nextTry !== undefined), 'a stalled entry with its next try');
    // `kfetch status` names it too (the back-off is ≥ 22 s, so it is still stalled when status asks).
    const st = await runCli(['status'], { home: w.home });
    expect(st.stdout).toMatch(/stalled: \S+-unservable\.kascade: .*\(next try \d{4}-/);
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
  });
});
