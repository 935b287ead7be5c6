// Recovery paths found in review (issue 3): changes that keep the mtime (caught by the inode check or by the final
// SHA-256, then repaired), one unusable download among several at resume, `kfetch remove`, a second `get` of the
// same swarm, and a process with nothing left to wait on (--no-serve, no peer answering).

import { closeSync, copyFileSync, openSync, readFileSync, renameSync, statSync, utimesSync, writeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { WORLD, checkpointed, closeWorlds, getArgs, resumeAndCheck, sha, world } from '../helpers/download-world.js';

const { BLOCK } = WORLD;
afterEach(closeWorlds);

function flipKeepingMtime(path: string, offset: number): void {
  const st = statSync(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0x5a]), 0, 1, offset);
  closeSync(fd);
  utimesSync(path, st.atime, st.mtime);
}

describe('recovery', () => {
  it('a byte changed with the mtime restored: the final SHA-256 catches it, the block is re-fetched, exit 0', async () => {
    const w = await world('rot');
    expect((await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: 'after-commit:4' } })).code).toBe(137);
    const victim = [...checkpointed(w.home)][0]!;
    flipKeepingMtime(join(w.out, 'data.bin'), victim * BLOCK + 3);
    const { refetched, stdout } = await resumeAndCheck(w);
    expect(refetched).toContain(victim);
    expect(stdout).toContain('"code":"KF_E_FILE_HASH_MISMATCH"'); // reported as a warning, then repaired
  });

  it('a copy of the data file with preserved times put in its place is re-verified (device/inode changed)', async () => {
    const w = await world('copy');
    expect((await runCli(getArgs(w), { home: w.home, env: { KFETCH_CRASH_AT: 'after-commit:4' } })).code).toBe(137);
    const path = join(w.out, 'data.bin');
    const victim = [...checkpointed(w.home)][1]!;
    const copy = `${path}.copy`;
    copyFileSync(path, copy);
    flipKeepingMtime(copy, victim * BLOCK + 9);
    const st = statSync(path);
    utimesSync(copy, st.atime, st.mtime);
    renameSync(copy, path);
    const { refetched, stdout } = await resumeAndCheck(w);
    expect(refetched).toContain(victim);
    expect(stdout).toContain('"phase":"blocks"'); // re-verified before fetching, not at the end
  });

  it('resume goes on with the other downloads when one data file is gone, then reports it; remove forgets it', async () => {
    const a = await world('a');
    const b = await world('b');
    b.home = a.home;
    for (const w of [a, b]) expect((await runCli(getArgs(w), { home: a.home, env: { KFETCH_CRASH_AT: 'after-commit:2' } })).code).toBe(137);
    rmSync(join(b.out, 'data.bin'));
    const r = await runCli(['resume', '--json', '--timeout', '30'], { home: a.home, timeoutMs: 60_000 });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('KF_E_DATA_MISSING');
    expect(sha(readFileSync(join(a.out, 'data.bin')))).toBe(sha(a.bytes));
    const st = JSON.parse((await runCli(['status', '--json'], { home: a.home })).stdout) as { id: number; state: string }[];
    expect(st.map((x) => x.state)).toEqual(['complete', 'downloading']);
    const rm = await runCli(['remove', String(st[1]!.id)], { home: a.home });
    expect(rm.code, rm.stderr).toBe(0);
    expect(JSON.parse((await runCli(['status', '--json'], { home: a.home })).stdout)).toHaveLength(1);
  });

  it('a second get of the same swarm: to another path it is refused, to the same path it is done at once', async () => {
    const w = await world('again');
    expect((await runCli(getArgs(w), { home: w.home })).code).toBe(0);
    const other = await runCli(['get', w.kascadePath, '--out', join(w.dir, 'elsewhere')], { home: w.home });
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('already downloading to');
    const same = await runCli(getArgs(w), { home: w.home });
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain('"event":"done"');
  });

  it('--no-serve with no peer answering waits for --timeout and exits 4 (the session keeps the process alive)', async () => {
    const w = await world('noserve');
    const r = await runCli(['get', w.kascadePath, '--out', w.out, '--no-serve', '--peer', '127.0.0.1:9', '--timeout', '2'], { home: w.home });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('KF_E_NO_PEERS');
  });
});
