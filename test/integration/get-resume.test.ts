// Crash safety end to end (issue 3, DESIGN.md invariants): `kfetch get` is SIGKILLed at named crash points,
// interrupted with SIGINT, run out of file-size quota, or has its data file tampered with; `kfetch resume` then
// ends with the right file and fetches again only blocks that were not checkpointed (asserted from the peers'
// request logs against the state database's checkpointed set).

import { closeSync, openSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import { WORLD, checkpointed, closeWorlds, getArgs, requestsSince, resumeAndCheck, world } from '../helpers/download-world.js';

const { BLOCK, BLOCKS, SIZE } = WORLD;

afterEach(closeWorlds);

describe('resume after kill -9 at named crash points', () => {
  for (const point of ['before-write:20', 'mid-write:20', 'after-write-before-fsync:3', 'after-fsync-before-commit:3', 'after-commit:3']) {
    it(`${point}: the file ends right and no checkpointed block is fetched again`, async () => {
      const w = await world(point);
      const r = await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: point } });
      expect(r.code, r.stderr).toBe(137);
      const { refetched, durable } = await resumeAndCheck(w);
      expect(durable.size).toBeGreaterThan(0);
      expect(durable.size).toBeLessThan(BLOCKS);
      for (const b of refetched) expect(durable.has(b), `block ${b} was checkpointed but fetched again`).toBe(false);
    });
  }

  it('during-final-hash: resume fetches nothing and finishes the hash check', async () => {
    const w = await world('final');
    const r = await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: 'during-final-hash:1' } });
    expect(r.code, r.stderr).toBe(137);
    const { refetched, durable } = await resumeAndCheck(w);
    expect(durable.size).toBe(BLOCKS);
    expect(refetched).toEqual([]);
  });
});

describe('resume after interruption, tampering and a full disk', () => {
  it('SIGINT: exits 130 after a final checkpoint; resume fetches only blocks never written', async () => {
    const w = await world('sigint');
    const run = startCli(getArgs(w), { home: w.home });
    await run.waitForLine(/"durable":[1-9]/, 20_000);
    run.child.kill('SIGINT');
    expect(await run.exited()).toBe(130);
    const written = new Set(requestsSince(w, [0, 0]));
    const { refetched, durable } = await resumeAndCheck(w);
    for (const b of refetched) expect(durable.has(b)).toBe(false);
    // Everything fetched before the interrupt was checkpointed on the way out (bar copies aborted mid-flight).
    expect(durable.size).toBeGreaterThan(0);
    expect(written.size).toBeGreaterThanOrEqual(durable.size);
  });

  it('a data file truncated after a crash is detected, re-verified and repaired', async () => {
    const w = await world('truncate');
    expect((await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: 'after-commit:4' } })).code).toBe(137);
    const before = checkpointed(w.home);
    truncateSync(join(w.out, 'data.bin'), 10 * BLOCK);
    const { refetched } = await resumeAndCheck(w);
    // Checkpointed blocks past the cut had to be fetched again; those before it did not.
    const lost = [...before].filter((b) => b >= 10);
    for (const b of lost) expect(refetched).toContain(b);
    for (const b of before) if (b < 10) expect(refetched).not.toContain(b);
  });

  it('a data file modified after a crash (same size, new mtime) is re-verified and the bad block fetched again', async () => {
    const w = await world('modify');
    expect((await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: 'after-commit:4' } })).code).toBe(137);
    const before = [...checkpointed(w.home)];
    const victim = before[0]!;
    const fd = openSync(join(w.out, 'data.bin'), 'r+');
    writeSync(fd, Buffer.from([0x55, 0xaa]), 0, 2, victim * BLOCK + 7);
    closeSync(fd);
    const { refetched } = await resumeAndCheck(w);
    expect(refetched).toContain(victim);
    for (const b of before) if (b !== victim) expect(refetched).not.toContain(b);
  });

  it('disk full (ulimit -f): a clear KF_E_DISK_FULL, exit 5, and resume finishes once space exists', async () => {
    const w = await world('diskfull');
    // First run creates the download and crashes early, so the full-size file exists.
    expect((await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: 'after-commit:1' } })).code).toBe(137);
    // ulimit -f counts 512-byte units: writes past the first half of the file fail (a short write, then EFBIG).
    const limited = await runCli(['resume', '--json', '--timeout', '30'], { home: w.home, ulimitF: Math.floor(SIZE / 2 / 512) });
    expect(limited.code, limited.stderr).toBe(5);
    expect(limited.stderr).toContain('KF_E_DISK_FULL');
    expect(limited.stderr).toContain('data.bin');
    const { refetched, durable } = await resumeAndCheck(w);
    for (const b of refetched) expect(durable.has(b)).toBe(false);
  });
});
