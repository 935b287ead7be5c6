// Issue 10 points 2 and 3: the main database file alone always knows every download. `kill -9` during a download
// and then the loss of the -wal (a copy without it, a careless clean-up) must not make kfetch forget the download
// and call the partial file complete; a database without kfetch's tables is KF_E_STATE_CORRUPT, not KF_E_IO; and a
// home without downloads says so instead of "every download is complete".

import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { STATE_FILE } from '../../src/store/state-db.js';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { runCli, startCli, tempHome } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

it('issue 10: kill -9 mid-download, then the -wal lost: status and resume still know the download', async () => {
  const dir = scope.dir('kfetch-lostwal-');
  const bytes = payloadBytes(0, 64 * 4096, 'lost-wal');
  const k = kascadeJsonFor(bytes, { filename: 'lost.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [4096] });
  const path = writeKascade(join(dir, 'lost.json'), k);
  // A peer that never answers: the download stays in progress until it is killed.
  const stall = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: 4096, mode: () => 'stall-headers' }));
  const home = tempHome();
  const run = startCli(['get', path, '--out', join(dir, 'out'), '--json', '--peer', stall.addr], { home });
  await run.waitForLine(/"event":"start"/, 20_000);
  run.child.kill('SIGKILL');
  await run.exited(10_000);
  for (const f of [`${STATE_FILE}-wal`, `${STATE_FILE}-shm`]) rmSync(join(home, f), { force: true });
  expect(existsSync(join(home, STATE_FILE))).toBe(true);

  const status = await runCli(['status', '--json'], { home });
  expect(status.code, status.stderr).toBe(0);
  const rows = JSON.parse(status.stdout) as { name?: string; filename?: string }[];
  expect(JSON.stringify(rows)).toContain('lost.bin');
  const resume = await runCli(['resume', '--json', '--timeout', '1', '--peer', stall.addr], { home, timeoutMs: 30_000 });
  expect(resume.stderr).not.toContain('every download is complete');
  expect(resume.stdout).toContain('"event":"start"');
}, 60_000);

it('issue 10: a database without kfetch\'s tables is KF_E_STATE_CORRUPT (exit 5), not KF_E_IO', async () => {
  const home = tempHome();
  const db = new Database(join(home, STATE_FILE));
  db.exec('CREATE TABLE something_else (a)');
  db.close();
  const status = await runCli(['status'], { home });
  expect(status.code).toBe(5);
  expect(status.stderr).toContain('KF_E_STATE_CORRUPT');
  expect(status.stderr).toContain('no kfetch tables');
});

it('issue 10: resume in a home without downloads says so', async () => {
  const home = tempHome();
  const r = await runCli(['resume'], { home });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toContain(`no downloads in ${home}`);
  expect(r.stderr).not.toContain('every download is complete');
});

it.each(['get', 'resume'])('issue 10 point 5: kill -9 between recording a download and creating its file, then %s finishes it', async (next) => {
  const dir = scope.dir('kfetch-crash-create-');
  const bytes = payloadBytes(0, 32 * 4096 + 9, 'crash-create');
  const k = kascadeJsonFor(bytes, { filename: 'crash.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [4096] });
  const path = writeKascade(join(dir, 'crash.json'), k);
  const peer = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: 4096 }));
  const home = tempHome();
  const out = join(dir, 'out');
  const args = ['get', path, '--out', out, '--json', '--peer', peer.addr, '--timeout', '20'];
  const crashed = startCli(args, { home, env: { KFETCH_CRASH_AT: 'between-record-and-create' } });
  await crashed.exited(20_000);
  expect(crashed.child.signalCode).toBe('SIGKILL');
  expect(existsSync(join(out, 'crash.bin'))).toBe(false);
  const r = await runCli(next === 'get' ? args : ['resume', '--json', '--peer', peer.addr, '--timeout', '20'], { home, timeoutMs: 40_000 });
  expect(r.code, r.stderr).toBe(0);
  const { createHash } = await import('node:crypto');
  const { readFileSync } = await import('node:fs');
  expect(createHash('sha256').update(readFileSync(join(out, 'crash.bin'))).digest('hex')).toBe(k.filehash);
}, 60_000);
