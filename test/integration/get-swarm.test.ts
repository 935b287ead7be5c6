// `kfetch get` against a real local swarm (the tracker we ship + `kfetch seed` children): a plain download, a
// seeder killed mid-download, and the tracker going down mid-download.

import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllChildren, startCli } from '../helpers/cli.js';
import { startSwarm, type Swarm } from '../helpers/swarm.js';

const swarms: Swarm[] = [];
afterEach(() => {
  killAllChildren();
  for (const s of swarms.splice(0)) rmSync(s.dir, { recursive: true, force: true });
});

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('kfetch get from a real swarm', () => {
  it('finds the seeders through the tracker and downloads a verified file', async () => {
    const s = await startSwarm({ size: 8 * 1024 * 1024 + 123, blockSize: 64 * 1024, seeders: 3 });
    swarms.push(s);
    const run = startCli(['get', s.kascadePath, '--out', join(s.dir, 'out'), '--json', '--timeout', '30']);
    expect(await run.exited(60_000), run.stderr()).toBe(0);
    expect(sha(join(s.dir, 'out', 'payload.bin'))).toBe(s.filehash);
    const added = run.stdout().split('\n').filter((l) => l.includes('"action":"added"'));
    expect(added.length).toBe(3);
  });

  it('with --no-serve still learns the seeders from the tracker (it announces port 0: told the peers, never listed)', async () => {
    const s = await startSwarm({ size: 2 * 1024 * 1024 + 5, blockSize: 64 * 1024, seeders: 2, seed: 'no-serve' });
    swarms.push(s);
    const run = startCli(['get', s.kascadePath, '--out', join(s.dir, 'out'), '--json', '--timeout', '30', '--no-serve']);
    expect(await run.exited(60_000), run.stderr()).toBe(0);
    expect(sha(join(s.dir, 'out', 'payload.bin'))).toBe(s.filehash);
    expect(run.stderr()).not.toContain('KF_E_TRACKER_REFUSED');
  });

  it('survives a seeder killed mid-download and the tracker going down mid-download', async () => {
    const s = await startSwarm({ size: 24 * 1024 * 1024, blockSize: 64 * 1024, seeders: 3, seed: 'kill' });
    swarms.push(s);
    // --max-in-flight 2 keeps the download slow enough to be interrupted in the middle.
    const run = startCli(['get', s.kascadePath, '--out', join(s.dir, 'out'), '--json', '--timeout', '30', '--max-in-flight', '2']);
    await run.waitForLine(/"event":"progress".*"verified":[1-9]/, 30_000);
    s.seeders[0]!.run.child.kill('SIGKILL');
    s.tracker.child.kill('SIGKILL');
    expect(await run.exited(90_000), run.stderr()).toBe(0);
    expect(sha(join(s.dir, 'out', 'payload.bin'))).toBe(s.filehash);
  }, 120_000);
});
