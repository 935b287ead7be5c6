// Issue 10 point 4: after a damaged state database, `kfetch get --adopt` takes over the existing data file: its
// blocks are verified in the workers, the good ones kept (recorded durable), the bad and missing ones fetched.
// Without --adopt, `get` on an existing file says --adopt is the way; a longer file is never cut.

import { createHash } from 'node:crypto';
import { openSync, readFileSync, truncateSync, writeSync, closeSync, writeFileSync, statSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { STATE_FILE, StateDb } from '../../src/store/state-db.js';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { runCli, tempHome } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const BLOCK = 4096;
const BLOCKS = 64;
const SIZE = BLOCKS * BLOCK - 100;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function setup(name: string): Promise<{ dir: string; out: string; data: string; kascade: string; bytes: Buffer; peer: AdversarialPeer; home: string }> {
  const dir = scope.dir(`kfetch-adopt-${name}-`);
  const bytes = payloadBytes(0, SIZE, `adopt-${name}`);
  const k = kascadeJsonFor(bytes, { filename: 'adopt.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [BLOCK] });
  const kascade = writeKascade(join(dir, 'adopt.json'), k);
  const peer = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, bitfield: true }));
  const out = join(dir, 'out');
  return { dir, out, data: join(out, 'adopt.bin'), kascade, bytes, peer, home: tempHome() };
}

const getArgs = (s: { kascade: string; out: string; peer: AdversarialPeer }, ...extra: string[]): string[] => [
  'get', s.kascade, '--out', s.out, '--json', '--timeout', '20', '--peer', s.peer.addr, ...extra,
];

it('issue 10 point 4: state corrupt → get refuses naming --adopt → get --adopt keeps the good blocks, fixes a flipped byte', async () => {
  const s = await setup('corrupt');
  const first = await runCli(getArgs(s), { home: s.home, timeoutMs: 40_000 });
  expect(first.code, first.stderr).toBe(0);

  // The state database is damaged; the data file loses its tail and one byte of block 7 flips.
  const db = openSync(join(s.home, STATE_FILE), 'r+');
  writeSync(db, Buffer.from('not a database!!'), 0, 16, 0);
  closeSync(db);
  truncateSync(s.data, 48 * BLOCK);
  const fd = openSync(s.data, 'r+');
  writeSync(fd, Buffer.from([s.bytes[7 * BLOCK + 10]! ^ 0xff]), 0, 1, 7 * BLOCK + 10);
  closeSync(fd);

  const corrupt = await runCli(getArgs(s), { home: s.home, timeoutMs: 20_000 });
  expect(corrupt.code).toBe(5);
  expect(corrupt.stderr).toContain('KF_E_STATE_CORRUPT');
  expect(corrupt.stderr).toContain('get --adopt');

  const refused = await runCli(getArgs(s), { home: s.home, timeoutMs: 20_000 });
  expect(refused.code).toBe(3);
  expect(refused.stderr).toContain('KF_E_OUTPUT_EXISTS');
  expect(refused.stderr).toContain('--adopt');

  const before = s.peer.requests.length;
  const adopted = await runCli(getArgs(s, '--adopt'), { home: s.home, timeoutMs: 40_000 });
  expect(adopted.code, adopted.stderr).toBe(0);
  expect(sha(readFileSync(s.data))).toBe(sha(s.bytes));

  const fetched = new Set(s.peer.requests.slice(before));
  const expected = new Set([7, ...Array.from({ length: BLOCKS - 48 }, (_, j) => 48 + j)]);
  expect([...fetched].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
  const events = adopted.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; phase?: string; done?: number; total?: number; have?: number });
  const verify = events.filter((e) => e.event === 'verify' && e.phase === 'blocks');
  expect(verify[0]).toMatchObject({ done: 0, total: SIZE });
  expect(verify.at(-1)).toMatchObject({ done: SIZE, total: SIZE });
  expect(events.find((e) => e.event === 'start')?.have).toBe(48 - 1);
  const state = StateDb.open(s.home, { readonly: true });
  try {
    expect(state.listDownloads()[0]!.status).toBe('complete');
  } finally {
    state.close();
  }
}, 120_000);

it('issue 10 point 4: get --adopt refuses a file longer than the kascade says and leaves it as it was', async () => {
  const s = await setup('longer');
  mkdirSync(s.out, { recursive: true });
  const longer = Buffer.concat([s.bytes, Buffer.from('a tail the user may want')]);
  writeFileSync(s.data, longer);
  const r = await runCli(getArgs(s, '--adopt'), { home: s.home, timeoutMs: 20_000 });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain('KF_E_INPUT');
  expect(r.stderr).toContain(`${longer.length} bytes`);
  expect(statSync(s.data).size).toBe(longer.length);
  expect(readFileSync(s.data).equals(longer)).toBe(true);
  expect(s.peer.requests).toEqual([]);
}, 60_000);

it('issue 10 point 4: get --adopt without a file is a plain download; with --overwrite it is refused', async () => {
  const s = await setup('plain');
  const both = await runCli(getArgs(s, '--adopt', '--overwrite'), { home: s.home, timeoutMs: 20_000 });
  expect(both.code).toBe(2);
  expect(both.stderr).toContain('KF_E_USAGE');
  expect(existsSync(s.data)).toBe(false);
  const r = await runCli(getArgs(s, '--adopt'), { home: s.home, timeoutMs: 40_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha(readFileSync(s.data))).toBe(sha(s.bytes));

  // The complete file adopted into a fresh home (no --json: the plain lines) is verified and nothing is fetched.
  const fetchedBefore = s.peer.requests.length;
  const again = await runCli(getArgs(s, '--adopt').filter((a) => a !== '--json'), { home: tempHome(), timeoutMs: 40_000 });
  expect(again.code, again.stderr).toBe(0);
  expect(again.stdout).toContain('verifying the');
  expect(again.stdout).toContain(`${BLOCKS} already here`);
  expect(s.peer.requests.length).toBe(fetchedBefore);
}, 60_000);

it('issue 10 point 4: kill -9 while adopting, then resume still keeps the good blocks', async () => {
  const s = await setup('crash');
  mkdirSync(s.out, { recursive: true });
  const partial = Buffer.from(s.bytes.subarray(0, 40 * BLOCK));
  partial[3 * BLOCK + 1] = partial[3 * BLOCK + 1]! ^ 0xff;
  writeFileSync(s.data, partial);
  const crashed = await runCli(getArgs(s, '--adopt'), { home: s.home, timeoutMs: 20_000, env: { KFETCH_CRASH_AT: 'during-adopt' } });
  expect(crashed.code).toBe(128 + 9);
  const r = await runCli(['resume', '--json', '--timeout', '20', '--peer', s.peer.addr], { home: s.home, timeoutMs: 40_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha(readFileSync(s.data))).toBe(sha(s.bytes));
  const fetched = [...new Set(s.peer.requests)].sort((a, b) => a - b);
  expect(fetched).toEqual([3, ...Array.from({ length: BLOCKS - 40 }, (_, j) => 40 + j)]);
}, 60_000);
