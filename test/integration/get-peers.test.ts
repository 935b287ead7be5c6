// `kfetch get` as a real child process against real misbehaving peers on 127.0.0.1 (issue 3 faults): bad bytes
// get the peer banned and the block fetched elsewhere; hang-ups, stalls, short and long bodies are survived;
// the tracker being down at start does not matter when peers are given with --peer.

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdversarialPeer, type AdversarialPeer, type PeerMode } from '../helpers/adversarial-peer.js';
import { killAllChildren, runCli, startCli, tempHome } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';

const BLOCK = 16 * 1024;
const SIZE = 64 * BLOCK + 1000; // 65 blocks, the last one short
const peers: AdversarialPeer[] = [];
const dirs: string[] = [];

afterEach(async () => {
  killAllChildren();
  for (const p of peers.splice(0)) await p.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(seed: string, filename = 'payload.bin'): { dir: string; bytes: Buffer; kascadePath: string; id: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-get-'));
  dirs.push(dir);
  const bytes = payloadBytes(0, SIZE, seed);
  // Tracker on a port nothing listens on: the tracker is down from the start.
  const k = kascadeJsonFor(bytes, { filename, tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK] });
  const kascadePath = writeKascade(join(dir, `${filename}.json`), k);
  return { dir, bytes, kascadePath, id: k.filehash as string };
}

async function peer(bytes: Buffer, id: string, mode: (b: number) => PeerMode, extra: { delayMs?: number; bitfield?: boolean; singleBlockOnly?: boolean } = {}): Promise<AdversarialPeer> {
  const p = await startAdversarialPeer({ bytes, id, blockSize: BLOCK, mode, ...extra });
  peers.push(p);
  return p;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('kfetch get against misbehaving peers', () => {
  it('bans a peer that sends wrong bytes, fetches those blocks elsewhere, and does not punish honest peers', async () => {
    const { dir, bytes, kascadePath, id } = setup('ban');
    // The honest peer is slower, so the liar is sure to be asked (two-block ranges keep requests many).
    const honest = await peer(bytes, id, () => 'honest', { delayMs: 40 });
    const liar = await peer(bytes, id, (b) => (b % 3 === 0 ? 'corrupt' : 'honest'));
    const home = tempHome();
    dirs.push(home);
    const r = await runCli(
      ['get', kascadePath, '--out', join(dir, 'out'), '--peer', honest.addr, '--peer', liar.addr, '--json', '--timeout', '30', '--max-range-bytes', String(2 * BLOCK)],
      { home },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const bans = events.filter((e) => e.event === 'peer' && e.action === 'banned');
    expect(bans.map((e) => e.peer)).toEqual([liar.addr]);
    expect(events.at(-1)).toMatchObject({ v: 1, event: 'done', filehash: id });
    const st = await runCli(['status', '--json'], { home });
    const [row] = JSON.parse(st.stdout) as { bannedPeers: { peer: string }[]; badBlocks: number; state: string }[];
    expect(row!.state).toBe('complete');
    expect(row!.badBlocks).toBeGreaterThanOrEqual(1);
    expect(row!.bannedPeers.map((b) => b.peer)).toEqual([liar.addr]);
  });

  it('completes from the others when peers hang up, stall, send short, long, gzip or redirect replies', async () => {
    const { dir, bytes, kascadePath, id } = setup('faults');
    const honest = await peer(bytes, id, () => 'honest', { delayMs: 2 });
    const modes: PeerMode[] = ['hangup-mid-body', 'stall-headers', 'short', 'long', 'gzip', 'redirect', 'error500', 'lie-bitfield', 'slow'];
    const bad = [];
    for (const m of modes) bad.push(await peer(bytes, id, () => m));
    const args = ['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '60', '--peer', honest.addr];
    for (const b of bad) args.push('--peer', b.addr);
    const r = await runCli(args, { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
    // None of these is proof of malice: nobody is banned for a hash mismatch.
    expect(r.stdout).not.toContain('KF_E_PEER_HASH_MISMATCH');
  }, 120_000);

  it('downloads several kascades at once in one process, each verified', async () => {
    const a = setup('multi-a', 'a.bin');
    const b = setup('multi-b', 'b.bin');
    const pa = await peer(a.bytes, a.id, () => 'honest', { delayMs: 2 });
    const pb = await peer(b.bytes, b.id, () => 'honest', { delayMs: 2 });
    const out = join(a.dir, 'both');
    const r = await runCli(['get', a.kascadePath, b.kascadePath, '--out', out, '--peer', pa.addr, '--peer', pb.addr, '--json', '--max-in-flight', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(out, 'a.bin')))).toBe(a.id);
    expect(sha256(readFileSync(join(out, 'b.bin')))).toBe(b.id);
    expect(r.stdout.split('\n').filter((l) => l.includes('"event":"done"'))).toHaveLength(2);
  });

  it('falls back to single blocks with an original peer that refuses multi-block ranges (416)', async () => {
    const { dir, bytes, kascadePath, id } = setup('single');
    const orig = await peer(bytes, id, () => 'honest', { singleBlockOnly: true });
    const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--peer', orig.addr, '--timeout', '30']);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
  });

  it('--seed keeps serving the finished file (and serves while downloading) until SIGTERM, then exits 0', async () => {
    const { dir, bytes, kascadePath, id } = setup('seed');
    const p = await peer(bytes, id, () => 'honest');
    const run = startCli(['get', kascadePath, '--out', join(dir, 'out'), '--peer', p.addr, '--json', '--seed']);
    const url = (await run.waitForLine(/"event":"serving","url":"([^"]+)"/))[1]!;
    await run.waitForLine(/"event":"done"/, 30_000);
    const res = await fetch(`${url}/${id}`, { headers: { range: `bytes=0-${BLOCK - 1}` } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(0, BLOCK))).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exited()).toBe(0);
  });

  it('downloads from a plain HTTP server without the /blocks extension', async () => {
    const { dir, bytes, kascadePath, id } = setup('plain');
    const plain = await peer(bytes, id, () => 'honest', { bitfield: false });
    const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--peer', plain.addr, '--timeout', '30']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('sha256');
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
  });

  it('refuses to clobber an existing output file and leaves it untouched', async () => {
    const { dir, bytes, kascadePath, id } = setup('clobber');
    const p = await peer(bytes, id, () => 'honest');
    const out = join(dir, 'out');
    await runCli(['get', kascadePath, '--out', out, '--peer', p.addr]);
    const r = await runCli(['get', kascadePath, '--out', out, '--peer', p.addr]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('KF_E_OUTPUT_EXISTS');
  });

  it('gives up with exit 4 (KF_E_NO_PEERS) when nobody serves, and the download stays resumable', async () => {
    const { dir, kascadePath } = setup('nopeers');
    const home = tempHome();
    dirs.push(home);
    const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--peer', '127.0.0.1:1', '--timeout', '2'], { home });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('KF_E_NO_PEERS');
    const st = await runCli(['status', '--json'], { home });
    expect((JSON.parse(st.stdout) as { state: string }[])[0]!.state).not.toBe('complete');
  });
});
