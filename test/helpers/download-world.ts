// A small download world for end-to-end engine tests: a generated payload, its .kascade (tracker down), two slow
// honest peers that log requests, a temporary --home and output dir; plus helpers to read the checkpointed set
// from the real state database and to check a resume.

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { StateDb } from '../../src/store/state-db.js';
import { startAdversarialPeer, type AdversarialPeer } from './adversarial-peer.js';
import { killAllChildren, runCli, tempHome } from './cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from './make-file.js';

export const WORLD = { BLOCK: 16 * 1024, BLOCKS: 96, SIZE: 96 * 16 * 1024 - 500 };
const { BLOCK, SIZE } = WORLD;
const peers: AdversarialPeer[] = [];
const dirs: string[] = [];

/** Stop every peer and child and remove every directory made by world() (call in afterEach). */
export async function closeWorlds(): Promise<void> {
  killAllChildren();
  for (const p of peers.splice(0)) await p.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface World {
  dir: string;
  home: string;
  bytes: Buffer;
  kascadePath: string;
  out: string;
  peers: AdversarialPeer[];
}

export async function world(seed: string): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-world-'));
  const home = tempHome();
  dirs.push(dir);
  const bytes = payloadBytes(0, SIZE, seed);
  const k = kascadeJsonFor(bytes, { filename: 'data.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK] });
  const kascadePath = writeKascade(join(dir, 'data.json'), k);
  const ps: AdversarialPeer[] = [];
  // Slow enough that the download spans many checkpoints (--checkpoint-ms 20).
  for (let i = 0; i < 2; i++) ps.push(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, delayMs: 15, bitfield: true }));
  peers.push(...ps);
  return { dir, home, bytes, kascadePath, out: join(dir, 'out'), peers: ps };
}

export function getArgs(w: World): string[] {
  // Two-block ranges: enough separate writes for the crash points, and multi-block writes under crash too.
  const a = ['get', w.kascadePath, '--out', w.out, '--checkpoint-ms', '20', '--max-in-flight', '4', '--max-range-bytes', String(2 * BLOCK), '--timeout', '30', '--json'];
  for (const p of w.peers) a.push('--peer', p.addr);
  return a;
}

/** Blocks the state database says are checkpointed (complete), for download `index` (0: the first). */
export function checkpointed(home: string, index = 0): Set<number> {
  const db = StateDb.open(home, { readonly: true });
  try {
    const row = db.listDownloads()[index]!;
    const s = new Set<number>();
    for (let i = 0; i < row.blockCount; i++) if (row.complete.has(i)) s.add(i);
    return s;
  } finally {
    db.close();
  }
}

export function requestsSoFar(w: World): number[] {
  return w.peers.map((p) => p.requests.length);
}

export function requestsSince(w: World, marks: number[]): number[] {
  return w.peers.flatMap((p, i) => p.requests.slice(marks[i]));
}

export function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Run `kfetch resume`, expect exit 0 and the right file; returns the blocks fetched during the resume. */
export async function resumeAndCheck(w: World, extra: string[] = []): Promise<{ refetched: number[]; durable: Set<number>; stdout: string }> {
  const durable = checkpointed(w.home);
  const marks = requestsSoFar(w);
  const r = await runCli(['resume', '--json', '--timeout', '30', ...extra], { home: w.home, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha(readFileSync(join(w.out, 'data.bin')))).toBe(sha(w.bytes));
  return { refetched: requestsSince(w, marks), durable, stdout: r.stdout };
}
