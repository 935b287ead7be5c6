// The rules every tracker peer store keeps (issue 13), through the PeerStore interface only, so one suite runs
// against each store: test/integration/tracker-store-conformance.test.ts calls describeStoreConformance once per
// store. The rules come from the registry's own tests (test/unit/tracker-swarm-registry.test.ts,
// tracker-bitfield-bounds.test.ts). Time is explicit: every call passes `now` (wall-clock scale, from T0), so no
// test sleeps.

import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_FEEDER_POLICY, makeFeederPolicy } from '../../src/tracker/feeder-policy.js';
import type { PeerInfo } from '../../src/peer/peer-info.js';
import type { PeerStore, PeerStoreLimits, PeerUpdate, RecordResult } from '../../src/tracker/peer-store.js';

export type MakeStore = (limits: PeerStoreLimits) => Promise<{ store: PeerStore; close(): Promise<void> }>;

const S = 'ab'.repeat(32);
const sw = (i: number): string => i.toString(16).padStart(64, '0');
const BIG = 1 << 30;
/** Small limits the tests then change one at a time (the registry tests' `opts`). */
const BASE: PeerStoreLimits = {
  maxSwarms: 3,
  maxPeersPerSwarm: 100,
  maxPeersPerAddress: 10_000,
  maxPeers: 1_000_000,
  expiryMs: 1000,
  completeExpiryMs: 1000,
  minIntervalMs: 100,
  maxBitfieldBytesPerSwarm: BIG,
  maxBitfieldBytes: BIG,
  feeders: DEFAULT_FEEDER_POLICY,
};
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function describeStoreConformance(name: string, make: MakeStore): void {
  describe(`peer store conformance: ${name}`, () => {
    const open: { close(): Promise<void> }[] = [];
    afterEach(async () => {
      for (const o of open.splice(0)) await o.close();
    });
    /** Near the real wall clock, so a store that also sets real key expiry (Redis) keeps every key for the test. */
    let T0 = 0;
    /** A fresh store with BASE limits changed by `over`, and short helpers over it that add T0 to each time. */
    async function fresh(over: Partial<PeerStoreLimits> = {}) {
      const made = await make({ ...BASE, ...over });
      open.push(made);
      const { store } = made;
      T0 = Math.floor(Date.now());
      return {
        store,
        rec: async (swarm: string, peer: PeerUpdate, t: number, sample = 0): Promise<RecordResult> =>
          (await store.announce(swarm, peer, { now: T0 + t, sample })).result,
        list: (swarm: string, t: number, n = 1000, excludeKey?: string): Promise<PeerInfo[]> =>
          store.list(swarm, n, { now: T0 + t, ...(excludeKey === undefined ? {} : { excludeKey }) }),
        ports: async (swarm: string, t: number): Promise<number[]> => (await store.list(swarm, 1000, { now: T0 + t })).map((p) => p.port).sort((a, b) => a - b),
        sweep: (t: number): Promise<void> => store.sweep(T0 + t),
      };
    }
    const p = (port: number, progress = 0, ip = '10.0.0.1'): PeerUpdate => ({ ip, port, progress });

    describe('listing', () => {
      it('announce and list never return the caller; a random subset of at most n', async () => {
        const { store, rec, list } = await fresh();
        for (let i = 0; i < 80; i++) expect(await rec(S, p(1000 + i), 0)).toEqual({ ok: true });
        const out = await store.announce(S, p(1000, 0.5), { now: T0 + 1, sample: 50 });
        expect(out.result).toEqual({ ok: true });
        expect(out.peers).toHaveLength(50);
        expect(out.peers.some((x) => x.port === 1000)).toBe(false);
        expect(new Set(out.peers.map((x) => x.port)).size).toBe(50);
        const a = await list(S, 1, 50, '10.0.0.1:1000');
        const b = await list(S, 1, 50, '10.0.0.1:1000');
        expect(a.some((x) => x.port === 1000)).toBe(false);
        expect(a).toHaveLength(50);
        expect(a.map((x) => x.port)).not.toEqual(b.map((x) => x.port));
        expect(await list(S, 1, 1000)).toHaveLength(80);
        expect(await list(sw(9), 1)).toEqual([]);
        expect(await list(S, 1, 0)).toEqual([]);
      });

      it('samples each of 50 peers with about equal chance (2,000 samples of 10)', async () => {
        const { rec, list } = await fresh();
        for (let i = 0; i < 50; i++) await rec(S, p(1000 + i), 0);
        const hits = new Map<number, number>();
        for (let k = 0; k < 2000; k++) for (const x of await list(S, 1, 10)) hits.set(x.port, (hits.get(x.port) ?? 0) + 1);
        expect(hits.size).toBe(50);
        // 400 expected each (sd ≈ 18): ±40% is about nine sd, so only an unfair sampler fails.
        for (const n of hits.values()) expect(Math.abs(n - 400)).toBeLessThan(160);
      });

      it('a peer is listed with its fields: progress, updated (ISO), feeder, blocks and blocksize', async () => {
        const { rec, list } = await fresh();
        await rec(S, { ip: '::1', port: 9, progress: 1, blocks: { hex: 'ff80', blockSize: 4096 } }, 0);
        await rec(S, { ip: '10.0.0.2', port: 8, progress: 0.25 }, 0);
        const got = new Map((await list(S, 1)).map((x) => [x.port, x]));
        expect(got.get(9)).toMatchObject({ ip: '::1', port: 9, progress: 1, feeder: true, blocks: 'ff80', blocksize: 4096 });
        expect(got.get(9)!.updated).toMatch(ISO_RE);
        expect(got.get(8)).toMatchObject({ ip: '10.0.0.2', port: 8, progress: 0.25, feeder: false });
        expect(got.get(8)!.blocks).toBeUndefined();
        expect(got.get(8)!.blocksize).toBeUndefined();
      });

      it('remove forgets a peer once, and an empty swarm goes', async () => {
        const { store, rec, list } = await fresh();
        await rec(S, p(1), 0);
        await rec(S, p(2), 0);
        expect(await store.remove(S, '10.0.0.1', 1)).toBe(true);
        expect(await store.remove(S, '10.0.0.1', 1)).toBe(false);
        expect(await store.remove(sw(7), '10.0.0.1', 1)).toBe(false);
        expect((await list(S, 1)).map((x) => x.port)).toEqual([2]);
        expect(await store.stats()).toEqual({ swarms: 1, peers: 1, bitfieldBytes: 0 });
        expect(await store.remove(S, '10.0.0.1', 2)).toBe(true);
        expect(await store.stats()).toEqual({ swarms: 0, peers: 0, bitfieldBytes: 0 });
      });
    });

    describe('minimum gap', () => {
      it('refuses a repeat of the same state sooner than minIntervalMs, saying how long to wait; still samples', async () => {
        const { store, rec } = await fresh();
        expect(await rec(S, p(1), 0)).toEqual({ ok: true });
        await rec(S, p(3), 0);
        const refused = await store.announce(S, p(1), { now: T0 + 40, sample: 10 });
        expect(refused.result).toEqual({ ok: false, reason: 'too-soon', retryAfterMs: 60 });
        // An original client gets the swarm's peers anyway, never itself.
        expect(refused.peers.map((x) => x.port)).toEqual([3]);
        expect(await rec(S, p(1), 100)).toEqual({ ok: true });
        // Another port or swarm is another key.
        expect((await rec(S, p(2), 101)).ok).toBe(true);
        expect((await rec(sw(5), p(1), 101)).ok).toBe(true);
      });

      it('hears a change of progress, event or bitfield at once', async () => {
        const { rec, list } = await fresh();
        const q = p(1);
        expect((await rec(S, q, 0)).ok).toBe(true);
        expect(await rec(S, q, 1)).toMatchObject({ ok: false, reason: 'too-soon' });
        expect((await rec(S, { ...q, progress: 1 }, 2)).ok).toBe(true);
        expect(await rec(S, { ...q, progress: 1 }, 3)).toEqual({ ok: false, reason: 'too-soon', retryAfterMs: 99 });
        expect((await rec(S, { ...q, progress: 1, event: 'completed' }, 4)).ok).toBe(true);
        expect((await rec(S, { ...q, progress: 1, event: 'completed' }, 5)).ok).toBe(false);
        expect((await rec(S, { ...q, progress: 1, event: 'completed', blocks: { hex: 'ff', blockSize: 4096 } }, 6)).ok).toBe(true);
        expect((await rec(S, { ...q, progress: 1, event: 'completed', blocks: { hex: 'ff', blockSize: 1024 } }, 7)).ok).toBe(true);
        expect((await rec(S, { ...q, progress: 1, event: 'completed', blocks: { hex: 'ff', blockSize: 1024 } }, 8)).ok).toBe(false);
        expect(await list(S, 9)).toMatchObject([{ progress: 1, blocks: 'ff', blocksize: 1024 }]);
      });

      it('a peer flipping its state on every announce stays one record and cannot pass the peer cap', async () => {
        const { store, rec } = await fresh({ maxPeersPerSwarm: 3 });
        for (let port = 1; port <= 3; port++) await rec(S, p(port), 0);
        for (let i = 1; i <= 200; i++) expect((await rec(S, p(1, i % 2), i / 2)).ok).toBe(true);
        expect(await store.stats()).toEqual({ swarms: 1, peers: 3, bitfieldBytes: 0 });
        expect(await rec(S, p(4, 1), 150)).toEqual({ ok: false, reason: 'full', what: 'peers' });
      });

      it('a complete peer past expiryMs is still live for the minimum gap (minIntervalMs > expiryMs)', async () => {
        const { rec } = await fresh({ minIntervalMs: 2000, completeExpiryMs: 10_000 });
        await rec(S, p(1, 1), 0);
        await rec(S, p(2, 0), 0);
        expect(await rec(S, p(1, 1), 1500)).toMatchObject({ ok: false, reason: 'too-soon' });
        expect((await rec(S, p(2, 0), 1500)).ok).toBe(true);
      });

      it('a peer whose bitfield was not kept still gets the minimum gap for a repeat', async () => {
        const { rec } = await fresh({ maxBitfieldBytes: 2 });
        const q = { ...p(1, 0.5), blocks: { hex: 'ffff', blockSize: 4096 } };
        expect(await rec(S, q, 0)).toEqual({ ok: true, blocksDropped: 'total' });
        expect(await rec(S, q, 10)).toMatchObject({ ok: false, reason: 'too-soon' });
      });
    });

    describe('expiry', () => {
      it('drops a downloading peer after expiryMs, and an empty swarm with it', async () => {
        const { store, rec, list, sweep } = await fresh();
        await rec(S, p(1), 0);
        await rec(S, p(2), 500);
        expect(await list(S, 999)).toHaveLength(2);
        expect((await list(S, 1000)).map((x) => x.port)).toEqual([2]);
        await sweep(1200);
        expect(await store.stats()).toEqual({ swarms: 1, peers: 1, bitfieldBytes: 0 });
        await sweep(1500);
        expect(await store.stats()).toEqual({ swarms: 0, peers: 0, bitfieldBytes: 0 });
      });

      it('keeps a complete peer for completeExpiryMs, a downloading one for expiryMs', async () => {
        const { store, rec, list, ports, sweep } = await fresh({ completeExpiryMs: 10_000 });
        await rec(S, p(1, 1), 0);
        await rec(S, p(2, 0.5), 0);
        expect(await ports(S, 5000)).toEqual([1]);
        await sweep(5000);
        expect((await store.stats()).peers).toBe(1);
        expect(await list(S, 9999)).toHaveLength(1);
        expect(await list(S, 10_000)).toHaveLength(0);
        await sweep(10_000);
        expect(await store.stats()).toEqual({ swarms: 0, peers: 0, bitfieldBytes: 0 });
      });

      it('sweeps an expired downloading peer heard after a live complete one', async () => {
        const { store, rec, sweep } = await fresh({ completeExpiryMs: 10_000 });
        await rec(S, p(1, 1), 0);
        await rec(S, p(2, 0), 1);
        await rec(S, p(3, 1), 2);
        await sweep(2000);
        expect((await store.stats()).peers).toBe(2);
      });

      it('a complete peer that reports less again goes back to the short expiry', async () => {
        const { store, rec, sweep } = await fresh({ completeExpiryMs: 10_000 });
        await rec(S, p(1, 1), 0);
        await rec(S, p(1, 0.9), 500);
        expect((await store.stats()).peers).toBe(1);
        await sweep(1500);
        expect((await store.stats()).peers).toBe(0);
      });
    });

    describe('caps', () => {
      it('bounds peers per swarm and swarms (full), refreshes still allowed, room again after expiry', async () => {
        const { rec } = await fresh({ maxPeersPerSwarm: 2 });
        await rec(S, p(1), 0);
        await rec(S, p(2), 0);
        expect(await rec(S, p(3), 0)).toEqual({ ok: false, reason: 'full', what: 'peers' });
        expect((await rec(S, p(1), 200)).ok).toBe(true);
        await rec(sw(1), p(1), 0);
        await rec(sw(2), p(1), 0);
        expect(await rec(sw(3), p(1), 0)).toEqual({ ok: false, reason: 'full', what: 'swarms' });
        expect((await rec(sw(3), p(1), 5000)).ok).toBe(true);
      });

      it('a full swarm makes room by dropping its stalest complete peer past expiryMs, never a fresh one', async () => {
        const { rec, ports } = await fresh({ maxPeersPerSwarm: 2, completeExpiryMs: 10_000 });
        await rec(S, p(1, 1), 0);
        await rec(S, p(2, 1), 900);
        expect(await rec(S, p(3, 0), 950)).toEqual({ ok: false, reason: 'full', what: 'peers' });
        expect((await rec(S, p(3, 0), 1000)).ok).toBe(true);
        expect(await ports(S, 1000)).toEqual([2, 3]);
        expect(await rec(S, p(4, 0), 1001)).toEqual({ ok: false, reason: 'full', what: 'peers' });
      });

      it('one address cannot fill a swarm: beyond maxPeersPerAddress its own stalest peer goes, nobody else\'s', async () => {
        const { store, rec, list } = await fresh({ maxPeersPerAddress: 4, completeExpiryMs: 100_000 });
        expect((await rec(S, p(7001, 1, '10.0.0.9'), 0)).ok).toBe(true);
        for (let i = 0; i < 200; i++) expect((await rec(S, p(2000 + i, 1), 1 + i)).ok).toBe(true);
        const keys = (await list(S, 500)).map((x) => `${x.ip}:${x.port}`).sort();
        expect(keys).toEqual(['10.0.0.1:2196', '10.0.0.1:2197', '10.0.0.1:2198', '10.0.0.1:2199', '10.0.0.9:7001']);
        expect(await store.stats()).toEqual({ swarms: 1, peers: 5, bitfieldBytes: 0 });
        // A refresh moves a peer to the end of its address's order: it is not the next evicted.
        await rec(S, p(2196, 0.5), 501);
        await rec(S, p(5000, 0), 502);
        const after = (await list(S, 503)).map((x) => x.port).sort((a, b) => a - b);
        expect(after).toEqual([2196, 2198, 2199, 5000, 7001]);
      });

      it('bounds peers over all swarms (maxPeers), counting removals and expiry back', async () => {
        const { store, rec, sweep } = await fresh({ maxSwarms: 100, maxPeers: 10 });
        for (let i = 0; i < 10; i++) expect((await rec(sw(100 + i), p(1, 0, `10.0.0.${i + 1}`), 0)).ok).toBe(true);
        expect(await rec(sw(200), p(1, 0, '10.0.1.1'), 1)).toEqual({ ok: false, reason: 'full', what: 'peers' });
        expect((await rec(sw(100), p(1, 0.5, '10.0.0.1'), 2)).ok).toBe(true);
        expect(await store.remove(sw(101), '10.0.0.2', 1)).toBe(true);
        expect((await store.stats()).peers).toBe(9);
        expect((await rec(sw(200), p(1, 0, '10.0.1.1'), 3)).ok).toBe(true);
        await sweep(1001);
        expect((await store.stats()).peers).toBe(2);
      });
    });

    describe('bitfields', () => {
      it('keeps a bitfield longer than the swarm geometry allows only as a listed peer without it', async () => {
        const { store, rec, list } = await fresh({ minIntervalMs: 0, maxSwarms: 10 });
        const geometry = { ok: true, blocksDropped: 'geometry' };
        const b = (ip: string, hex: string, blockSize: number, progress = 0): PeerUpdate => ({ ip, port: 1, progress, blocks: { hex, blockSize } });
        expect(await rec(S, b('10.0.0.1', 'e040', 4096, 0.5), 0)).toEqual({ ok: true });
        expect(await rec(S, b('10.0.0.2', 'e04000', 4096, 0.5), 0)).toEqual(geometry);
        expect(await rec(S, b('10.0.0.3', 'e0', 4096), 0)).toEqual({ ok: true });
        expect(await rec(S, b('10.0.0.4', 'ffffffff', 2048), 0)).toEqual({ ok: true });
        expect(await rec(S, b('10.0.0.5', 'ffffffff00', 2048), 0)).toEqual(geometry);
        expect(await rec(S, b('10.0.0.6', 'f000', 65536), 0)).toEqual(geometry);
        expect((await store.stats()).peers).toBe(6);
        const byIp = new Map((await list(S, 1)).map((x) => [x.ip, x.blocks]));
        expect(byIp.size).toBe(6);
        expect(byIp.get('10.0.0.2')).toBeUndefined();
        expect(byIp.get('10.0.0.1')).toBe('e040');
      });

      it('the geometry goes with the record that set it, and with the swarm', async () => {
        const { store, rec, sweep } = await fresh({ minIntervalMs: 0 });
        expect(await rec(S, { ip: '10.6.6.6', port: 1, progress: 0, blocks: { hex: '00', blockSize: 4096 } }, 0)).toEqual({ ok: true });
        const honest = { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ffff', blockSize: 4096 } };
        expect(await rec(S, honest, 0)).toEqual({ ok: true, blocksDropped: 'geometry' });
        await store.remove(S, '10.6.6.6', 1);
        expect(await rec(S, { ...honest, progress: 0.6 }, 1)).toEqual({ ok: true });
        expect(await rec(S, { ip: '10.6.6.6', port: 2, progress: 0, blocks: { hex: 'ffffff', blockSize: 4096 } }, 1)).toEqual({ ok: true, blocksDropped: 'geometry' });
        await sweep(5000);
        expect((await store.stats()).swarms).toBe(0);
        expect(await rec(S, { ...honest, blocks: { hex: 'ffffffff', blockSize: 4096 } }, 5000)).toEqual({ ok: true });
      });

      it('bounds the bitfield bytes kept per swarm and in all; over a cap a peer is listed without its bitfield', async () => {
        const { store, rec, list } = await fresh({ minIntervalMs: 0, maxSwarms: 100, maxBitfieldBytesPerSwarm: 16, maxBitfieldBytes: 24 });
        const r: RecordResult[] = [];
        for (let i = 0; i < 6; i++) r.push(await rec(S, { ip: '10.0.0.1', port: 1 + i, progress: 0.5, blocks: { hex: 'ffff', blockSize: 4096 } }, 0));
        expect(r.slice(0, 4)).toEqual(Array(4).fill({ ok: true }));
        expect(r.slice(4)).toEqual([{ ok: true, blocksDropped: 'swarm' }, { ok: true, blocksDropped: 'swarm' }]);
        const listed = await list(S, 1);
        expect(listed).toHaveLength(6);
        expect(listed.filter((x) => x.blocks !== undefined)).toHaveLength(4);
        expect((await store.stats()).bitfieldBytes).toBe(16);
        expect(await rec(sw(1), { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ffffffff', blockSize: 4096 } }, 0)).toEqual({ ok: true });
        expect(await rec(sw(2), { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ff', blockSize: 4096 } }, 0)).toEqual({ ok: true, blocksDropped: 'total' });
        expect(await store.stats()).toEqual({ swarms: 3, peers: 8, bitfieldBytes: 24 });
      });

      it('gives the bytes back when a peer is refreshed, stopped, evicted or expired', async () => {
        const { store, rec, sweep } = await fresh({ minIntervalMs: 0, maxPeersPerAddress: 2, maxBitfieldBytes: 10 });
        const bytes = async (): Promise<number> => (await store.stats()).bitfieldBytes;
        await rec(S, { ip: '10.0.0.1', port: 1, progress: 0, blocks: { hex: '0000', blockSize: 4096 } }, 0);
        await rec(S, { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ff00', blockSize: 4096 } }, 0);
        expect(await bytes()).toBe(4);
        await rec(S, { ip: '10.0.0.1', port: 2, progress: 0, blocks: { hex: '00', blockSize: 4096 } }, 0);
        expect(await bytes()).toBe(6);
        await rec(S, { ip: '10.0.0.1', port: 3, progress: 0, blocks: { hex: '0f00', blockSize: 4096 } }, 0);
        expect(await bytes()).toBe(6);
        await store.remove(S, '10.0.0.1', 2);
        expect(await bytes()).toBe(4);
        await sweep(2000);
        expect(await bytes()).toBe(0);
      });
    });

    describe('wire port (issue 14: the tracker-reply `wire` key)', () => {
      it('keeps each peer\'s wire port and lists it; a peer announced without one is listed without one', async () => {
        const { store, rec, list } = await fresh();
        expect(await rec(S, { ...p(1, 1), wire: 7001 }, 0)).toEqual({ ok: true });
        expect(await rec(S, p(2, 0.5), 0)).toEqual({ ok: true });
        expect(await rec(S, { ...p(3, 0.25, '::1'), wire: 65535 }, 0)).toEqual({ ok: true });
        const byPort = new Map((await list(S, 1)).map((x) => [x.port, x]));
        expect(byPort.get(1)?.wire).toBe(7001);
        expect(byPort.get(2)).toBeDefined();
        expect(byPort.get(2)!.wire).toBeUndefined();
        expect('wire' in byPort.get(2)!).toBe(false);
        expect(byPort.get(3)?.wire).toBe(65535);
        // The same through announce's sample (what the tracker replies with).
        const out = await store.announce(S, p(9), { now: T0 + 1, sample: 10 });
        expect(out.peers.find((x) => x.port === 1)?.wire).toBe(7001);
      });

      it('the latest announce decides: a new port replaces it, none removes it; a change of wire is a change (no minimum gap)', async () => {
        const { rec, list } = await fresh({ minIntervalMs: 1000, expiryMs: 10_000, completeExpiryMs: 10_000 });
        const wireOf = async (t: number): Promise<number | undefined> => (await list(S, t)).find((x) => x.port === 1)?.wire;
        expect(await rec(S, { ...p(1, 1), wire: 7001 }, 0)).toEqual({ ok: true });
        // The same state again within the gap: refused as a repeat.
        expect((await rec(S, { ...p(1, 1), wire: 7001 }, 10)).ok).toBe(false);
        expect(await rec(S, { ...p(1, 1), wire: 7002 }, 20)).toEqual({ ok: true });
        expect(await wireOf(21)).toBe(7002);
        expect(await rec(S, p(1, 1), 30)).toEqual({ ok: true });
        expect(await wireOf(31)).toBeUndefined();
        expect(await rec(S, { ...p(1, 1), wire: 7003 }, 40)).toEqual({ ok: true });
        expect(await wireOf(41)).toBe(7003);
      });

      it('forgets the wire with its peer (stopped, expiry)', async () => {
        const { store, rec, list, sweep } = await fresh();
        await rec(S, { ...p(1, 0.5), wire: 7001 }, 0);
        expect(await store.remove(S, '10.0.0.1', 1)).toBe(true);
        await rec(S, p(1, 0.5), 1);
        expect((await list(S, 2))[0]?.wire).toBeUndefined();
        await rec(S, { ...p(2, 0.5), wire: 7002 }, 3);
        await sweep(5000);
        expect(await list(S, 5000)).toEqual([]);
      });
    });

    describe('feeder policy', () => {
      it.each([
        ['complete', [], [1]],
        ['complete', ['10.0.0.1:2'], [1, 2]],
        ['listed', ['10.0.0.1:2'], [2]],
        ['none', [], []],
      ] as const)('mode %s with %j lists feeders %j', async (mode, listed, want) => {
        const { rec, list } = await fresh({ feeders: makeFeederPolicy(mode, listed) });
        await rec(S, p(1, 1), 0);
        await rec(S, p(2, 0.5), 0);
        const feeders = (await list(S, 1)).filter((x) => x.feeder).map((x) => x.port).sort();
        expect(feeders).toEqual(want);
      });
    });
  });
}
