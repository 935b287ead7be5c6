// Issue 10 point 10 over real HTTP: the tracker keeps no bitfield longer than its swarm's geometry, keeps the
// bitfield bytes of 120 maximal announces from one address within its caps (its own byte account), and a 22-byte
// announce cannot draw a reply over the reply budget however long the swarm's bitfields are.
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import { startTestTracker } from '../helpers/tracker-store.js';
import { VERSION } from '../../src/version.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const H = 'cd'.repeat(32);
const KF = { 'user-agent': `kfetch/${VERSION}` };
/** The longest bitfield an announce may carry: LIMITS.maxBlocksPerSize blocks (at 512-byte blocks, a 2 GiB file). */
const LONGEST = 'ff'.repeat(LIMITS.maxBlocksPerSize / 8);

function post(url: string, body: string, headers: Record<string, string> = KF): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    body,
    signal: AbortSignal.timeout(20_000),
  });
}
const form = (o: Record<string, string>): string => new URLSearchParams(o).toString();

describe('tracker: bitfield bounds (issue 10)', () => {
  it('lists a peer whose bitfield is longer than the swarm\'s at that block size, without its bitfield (never refused)', async () => {
    const t = scope.keep(await startTestTracker({ minIntervalMs: 0 }));
    const url = `${t.url}/peers/${H}.json`;
    expect((await post(url, form({ port: '7001', progress: '1', blocks: 'ffe0', blocksize: '4096' }))).status).toBe(200);
    const r = await post(url, form({ port: '7002', progress: '1', blocks: 'ff'.repeat(300 * 1024), blocksize: '4096' }));
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const o = await post(url, form({ port: '7003', progress: '0', blocks: 'ffffff', blocksize: '4096' }), {});
    expect(o.status).toBe(200);
    const peers = (await o.json()) as Array<{ port: number; blocks?: string }>;
    expect(peers.map((p) => [p.port, p.blocks]).sort()).toEqual([
      [7001, 'ffe0'],
      [7002, undefined],
    ]);
    // Only the bitfield that fits is kept: 4 hex characters.
    expect(await t.stats()).toMatchObject({ swarms: 1, peers: 3, bitfieldBytes: 4 });
  });

  it('120 announces of maximal bitfields from one address keep the bitfield account within the caps', async () => {
    const perSwarm = 8 * 1024 * 1024;
    const total = 12 * 1024 * 1024;
    const t = scope.keep(await startTestTracker({ minIntervalMs: 0, maxBitfieldBytesPerSwarm: perSwarm, maxBitfieldBytes: total }));
    for (let i = 0; i < 120; i++) {
      const swarm = i % 2 === 0 ? H : 'ef'.repeat(32);
      const r = await post(`${t.url}/peers/${swarm}.json`, form({ port: String(2000 + i), progress: '0.5', blocks: LONGEST, blocksize: '512' }));
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    const s = await t.stats();
    expect(s.peers).toBe(120);
    expect(s.bitfieldBytes).toBeLessThanOrEqual(total);
    // An honest newcomer is still heard and listed (its bitfield too, once the attacker's expire or stop).
    const r = await post(`${t.url}/peers/${H}.json`, form({ port: '9000', progress: '0', blocks: '00', blocksize: '4096' }));
    expect(r.status).toBe(200);
    expect(Buffer.byteLength(await r.text())).toBeLessThanOrEqual(LIMITS.trackerReplyBudgetBytes);
  });

  it('a 22-byte announce draws no reply over the budget, from a swarm of maximal bitfields', async () => {
    const t = scope.keep(await startTestTracker({ minIntervalMs: 0 }));
    const url = `${t.url}/peers/${H}.json`;
    for (let i = 0; i < 6; i++) {
      const r = await post(url, form({ port: String(3000 + i), progress: '0.5', blocks: LONGEST, blocksize: '512' }));
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    const small = 'port=0&progress=0&x=yy';
    expect(small).toHaveLength(22);
    for (const headers of [KF, {}]) {
      const r = await post(url, small, headers);
      expect(r.status).toBe(200);
      const text = await r.text();
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(LIMITS.trackerReplyBudgetBytes);
      expect((JSON.parse(text) as unknown[]).length).toBe(6); // every peer, fewer bitfields
    }
    // The refusal arrays original clients get are budgeted too (a repeat too soon).
    const t2 = scope.keep(await startTestTracker({ minIntervalMs: 60_000 }));
    const url2 = `${t2.url}/peers/${H}.json`;
    for (let i = 0; i < 3; i++) await (await post(url2, form({ port: String(3000 + i), progress: '0.5', blocks: LONGEST, blocksize: '512' }), {})).arrayBuffer();
    const again = await post(url2, form({ port: '3000', progress: '0.5', blocks: LONGEST, blocksize: '512' }), {});
    expect(again.headers.get('x-kascade-error')).toMatch(/too soon/);
    expect(Buffer.byteLength(await again.text())).toBeLessThanOrEqual(LIMITS.trackerReplyBudgetBytes);
  });
});
