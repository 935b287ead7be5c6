// Issue 4 ("make it fast"): the whole-file SHA-256 is computed over the verified prefix while the download runs, so
// the final check starts with most of the file already hashed; among equally rare blocks one of the lowest few is
// asked for first so that prefix grows from the start. A real `kfetch get` against two slow honest peers.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { WORLD, closeWorlds, getArgs, sha, world } from '../helpers/download-world.js';

const { SIZE } = WORLD;
afterEach(closeWorlds);

type Ev = { event: string; phase?: string; done?: number; total?: number; filehash?: string; code?: string; cpu?: Record<string, number> };

describe('whole-file hash while downloading', () => {
  it('the final check starts with most of the file hashed and ends with the right SHA-256', async () => {
    const w = await world('prefix');
    const r = await runCli(getArgs(w), { home: w.home });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Ev);
    const file = events.filter((e) => e.event === 'verify' && e.phase === 'file');
    // The first `verify file` event comes when every block is written: by then the prefix hash has followed them.
    expect(file[0]!.done).toBeGreaterThanOrEqual(SIZE / 2);
    expect(file.at(-1)).toMatchObject({ done: SIZE, total: SIZE });
    expect(events.filter((e) => e.code === 'KF_E_FILE_HASH_MISMATCH')).toEqual([]);
    expect(events.at(-1)).toMatchObject({ event: 'done', filehash: sha(w.bytes) });
    expect(sha(readFileSync(join(w.out, 'data.bin')))).toBe(sha(w.bytes));
    // The CPU account (issue 11): every part there, none negative; the SHA-256 ran in its own thread, so its CPU is
    // measured there (nothing of it on the main thread's `receive`).
    const cpu = events.at(-1)!.cpu!;
    for (const k of ['user', 'sys', 'startup', 'receive', 'md5', 'sha256', 'write', 'checkpoint', 'other']) expect(cpu[k]).toBeGreaterThanOrEqual(0);
    expect(cpu.user! + cpu.sys!).toBeGreaterThan(0);
    expect(cpu.startup).toBeGreaterThan(0);
    // One of the lowest few first: the requests climb the file (the first quarter asked for lies well below the
    // last quarter), which random order would not do.
    const all = w.peers.flatMap((p) => p.requests);
    const q = Math.floor(all.length / 4);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const firstMean = mean(w.peers.flatMap((p) => p.requests.slice(0, Math.ceil(p.requests.length / 4))));
    const lastMean = mean(w.peers.flatMap((p) => p.requests.slice(-Math.ceil(p.requests.length / 4))));
    expect(q).toBeGreaterThan(4);
    expect(firstMean).toBeLessThan(WORLD.BLOCKS / 4);
    expect(lastMean).toBeGreaterThan((WORLD.BLOCKS * 3) / 4 - 8);
  });
});
