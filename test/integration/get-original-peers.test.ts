// Issue 9 (points 6 and 10), end to end: `kfetch get` as a real child process downloads from seeders that answer
// exactly like the original 2015 Python peer (test/helpers/original-server.ts): HTTP/1.0 206 with a `Range:` header
// and `Content-length`, one request per connection, and a 404 whose head never ends for /blocks, multi-block
// ranges and blocks it will not serve. The headerless 404 must read as "not here" (KF_E_PEER_LIED), never as a
// broken connection (KF_E_PEER_CONNECT, which costs the peer a backoff and a strike).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { startOriginalServer, type OriginalServer, type OriginalServerOptions } from '../helpers/original-server.js';
import { testScope } from '../helpers/test-scope.js';

const LATENCY_MS = 20;
const scope = testScope();

/** A payload of `blocks` blocks (the last one short) and a kascade offering only `blockSize`, as the course's were. */
function setup(seed: string, blockSize: number, blocks: number): { dir: string; bytes: Buffer; kascadePath: string; id: string } {
  const dir = scope.dir('kfetch-orig-');
  const bytes = payloadBytes(0, blocks * blockSize - 100, seed);
  // Tracker on a port nothing listens on: peers come from --peer only.
  const k = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [blockSize] });
  return { dir, bytes, kascadePath: writeKascade(join(dir, 'payload.json'), k), id: k.filehash as string };
}

async function seeder(o: OriginalServerOptions): Promise<OriginalServer> {
  return scope.keep(await startOriginalServer({ latencyMs: LATENCY_MS, ...o }));
}

type Event = Record<string, unknown>;

async function get(kascadePath: string, dir: string, peers: OriginalServer[]): Promise<{ code: number; stderr: string; events: Event[] }> {
  const args = ['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '20'];
  for (const p of peers) args.push('--peer', p.addr);
  const r = await runCli(args, { timeoutMs: 45_000 });
  const events = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
  return { code: r.code, stderr: r.stderr, events };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const peerWarnings = (events: Event[], code: string): Event[] => events.filter((e) => e.event === 'warning' && e.code === code);

describe('kfetch get from original 2015 seeders (issue 9)', () => {
  it.each([1024, 4096])('fetches a file from one original seeder with %d-byte blocks', async (blockSize) => {
    const { dir, bytes, kascadePath, id } = setup(`one-${blockSize}`, blockSize, 120);
    const s = await seeder({ bytes, id, blockSize });
    const r = await get(kascadePath, dir, [s]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(id);
    expect(r.events.at(-1)).toMatchObject({ event: 'done', filehash: id });
    // The headerless 404 was met (for /blocks, and for the first multi-block ranges) and read as "not here".
    expect(s.log.filter((q) => q.status === 404).length).toBeGreaterThanOrEqual(2);
    expect(s.log.some((q) => q.path.endsWith('/blocks?blocksize=' + blockSize))).toBe(true);
    expect(peerWarnings(r.events, 'KF_E_PEER_CONNECT')).toEqual([]);
    expect(r.events.some((e) => e.event === 'peer' && (e.action === 'banned' || e.action === 'dropped'))).toBe(false);
    // Every block was served by the seeder exactly as the original does: one request per connection.
    expect(s.log.filter((q) => q.status === 206).length).toBeGreaterThanOrEqual(120);
    expect(s.connections()).toBe(s.log.length);
  }, 60_000);

  it.each([1024, 4096])('fetches a file from three original seeders with %d-byte blocks, using each', async (blockSize) => {
    const { dir, bytes, kascadePath, id } = setup(`three-${blockSize}`, blockSize, 240);
    const seeds = [await seeder({ bytes, id, blockSize }), await seeder({ bytes, id, blockSize }), await seeder({ bytes, id, blockSize })];
    const r = await get(kascadePath, dir, seeds);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
    expect(peerWarnings(r.events, 'KF_E_PEER_CONNECT')).toEqual([]);
    for (const s of seeds) {
      expect(s.log.some((q) => q.status === 404)).toBe(true);
      expect(s.log.filter((q) => q.status === 206).length).toBeGreaterThan(10);
    }
  }, 60_000);

  it('a headerless 404 for a block the seeder will not serve puts it in no backoff: it serves the rest without pauses', async () => {
    const blockSize = 1024;
    const { dir, bytes, kascadePath, id } = setup('holes', blockSize, 200);
    const full = await seeder({ bytes, id, blockSize });
    const holey = await seeder({ bytes, id, blockSize, refuse: (b) => b % 5 === 2 });
    const r = await get(kascadePath, dir, [full, holey]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(id);
    expect(peerWarnings(r.events, 'KF_E_PEER_CONNECT')).toEqual([]);
    // Single-block requests it refused: each is a "not here" warning for that peer, not a connection failure.
    const refused = holey.log.filter((q) => q.status === 404 && q.block !== undefined && q.block % 5 === 2 && q.range === singleRange(q.block, blockSize, bytes.length));
    expect(refused.length).toBeGreaterThanOrEqual(1);
    const lied = peerWarnings(r.events, 'KF_E_PEER_LIED').filter((e) => e.peer === holey.addr);
    // Every single-block one is a block it refuses (the others are its refusals of multi-block ranges). Not every
    // refusal gets one: an answer that comes back after kfetch cancelled the request (another copy won in the
    // endgame, or the file is complete) is not a warning.
    const singles = lied.filter((e) => {
      const m = /bytes (\d+)-(\d+)/.exec(String(e.message));
      return m !== null && Number(m[2]) - Number(m[1]) + 1 <= blockSize;
    });
    expect(singles.length).toBeGreaterThanOrEqual(1);
    expect(singles.every((e) => typeof e.block === 'number' && e.block % 5 === 2)).toBe(true);
    // No backoff: a back-off (at least 750 ms: 1 s x 0.75 jitter) would start no request to the peer in the 750 ms
    // after a refusal. Counted, not timed per gap: with no back-off the peer is asked again and again in those windows
    // (about five requests per refusal here), so at least one per refusal is far from what load can take away.
    const BACKOFF_MIN_MS = 750;
    const inWindow = (t: number): boolean => refused.some((q) => t >= q.answeredAt! && t < q.answeredAt! + BACKOFF_MIN_MS);
    const askedInBackoff = holey.log.filter((n) => inWindow(n.at)).length;
    expect(askedInBackoff, `requests inside the back-off windows of ${refused.length} refusals`).toBeGreaterThanOrEqual(refused.length);
    expect(r.events.filter((e) => e.event === 'peer' && e.peer === holey.addr && e.action !== 'added')).toEqual([]);
    // And it goes on serving blocks.
    const firstRefusal = Math.min(...refused.map((q) => q.answeredAt!));
    expect(holey.log.filter((q) => q.status === 206 && q.at > firstRefusal).length).toBeGreaterThan(20);
  }, 60_000);
});

function singleRange(block: number, blockSize: number, size: number): string {
  return `bytes=${block * blockSize}-${Math.min((block + 1) * blockSize, size) - 1}`;
}
