// Issue 13: the Redis peer store against a real redis-server — every rule of the in-memory registry through the
// PeerStore interface, one round trip per announce, a killed Redis giving StoreUnavailableError quickly and a
// restarted one being used again by itself, two stores ("two tracker processes") sharing peers, and one hash slot
// per swarm. Times passed in are wall-clock ms chosen by the test, so expiry is tested without waiting.
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_FEEDER_POLICY, makeFeederPolicy } from '../../src/tracker/feeder-policy.js';
import { StoreUnavailableError, type PeerStore } from '../../src/tracker/peer-store.js';
import { openRedisPeerStore, type RedisPeerStoreOptions } from '../../src/tracker/redis-peer-store.js';
import { redisSkipReason, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { until, within } from '../helpers/wait.js';
import { PEER_STORE_LUA } from '../../src/tracker/redis-peer-script.js';

const skip = redisSkipReason();
if (skip !== undefined) console.warn(skip);

const S = 'ab'.repeat(20);
const S2 = 'cd'.repeat(20);
const T0 = 1_800_000_000_000;
const BASE: RedisPeerStoreOptions = {
  maxSwarms: 100,
  maxPeersPerSwarm: 100,
  maxPeersPerAddress: 100,
  maxPeers: 1_000,
  expiryMs: 10_000,
  completeExpiryMs: 60_000,
  minIntervalMs: 1_000,
  maxBitfieldBytesPerSwarm: 1 << 30,
  maxBitfieldBytes: 1 << 30,
  feeders: DEFAULT_FEEDER_POLICY,
};

describe.skipIf(skip !== undefined)('tracker: Redis peer store (issue 13)', () => {
  let server: RedisServer;
  let raw: Redis;
  const stores: PeerStore[] = [];
  const open = async (o: Partial<RedisPeerStoreOptions> = {}, log?: pino.Logger): Promise<PeerStore> => {
    const s = await openRedisPeerStore(server.url, { ...BASE, ...o }, log);
    stores.push(s);
    return s;
  };
  const peer = (i: number, progress = 0.5, ip = `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`) => ({ ip, port: 7000 + i, progress });
  const ports = (peers: { port: number }[]): number[] => peers.map((p) => p.port).sort((a, b) => a - b);

  beforeEach(async () => {
    server = await startRedisServer();
    raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await raw.connect();
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    raw.disconnect();
    await server.close();
  });

  it('records peers, lists the others (never the caller) and counts swarms, peers and bitfield bytes', async () => {
    const s = await open();
    for (let i = 0; i < 5; i++) {
      const o = await s.announce(S, { ...peer(i), blocks: { hex: 'f0', blockSize: 1024 } }, { now: T0, sample: 50 });
      expect(o.result).toEqual({ ok: true });
      expect(ports(o.peers)).toEqual([...Array(i).keys()].map((j) => 7000 + j));
    }
    const listed = await s.list(S, 50, { now: T0, excludeKey: '10.0.0.1:7000' });
    expect(ports(listed)).toEqual([7001, 7002, 7003, 7004]);
    expect(listed[0]).toMatchObject({ progress: 0.5, feeder: false, blocks: 'f0', blocksize: 1024, updated: new Date(T0).toISOString() });
    expect(await s.stats()).toEqual({ swarms: 1, peers: 5, bitfieldBytes: 10 });
    expect(await s.remove(S, '10.0.0.1', 7000)).toBe(true);
    expect(await s.remove(S, '10.0.0.1', 7000)).toBe(false);
    expect(await s.stats()).toEqual({ swarms: 1, peers: 4, bitfieldBytes: 8 });
  });

  it('refuses only a repeat of the same state within the minimum gap; a change is always heard', async () => {
    const s = await open();
    expect((await s.announce(S, peer(1), { now: T0, sample: 5 })).result).toEqual({ ok: true });
    const again = await s.announce(S, peer(1), { now: T0 + 400, sample: 5 });
    expect(again.result).toEqual({ ok: false, reason: 'too-soon', retryAfterMs: 600 });
    expect((await s.announce(S, peer(1, 0.75), { now: T0 + 500, sample: 5 })).result).toEqual({ ok: true });
    expect((await s.announce(S, { ...peer(1, 0.75), event: 'completed' }, { now: T0 + 600, sample: 5 })).result).toEqual({ ok: true });
    expect((await s.announce(S, { ...peer(1, 0.75), event: 'completed' }, { now: T0 + 1_600, sample: 5 })).result).toEqual({ ok: true });
    expect(await s.stats()).toMatchObject({ peers: 1 });
  });

  it('caps peers per swarm, per address (evicting that address\'s stalest), swarms and peers overall', async () => {
    const s = await open({ maxPeersPerSwarm: 5, maxPeersPerAddress: 2, maxSwarms: 2, maxPeers: 9 });
    for (let i = 0; i < 5; i++) expect((await s.announce(S, peer(i), { now: T0 + i, sample: 0 })).result.ok).toBe(true);
    expect((await s.announce(S, peer(9), { now: T0 + 10, sample: 0 })).result).toEqual({ ok: false, reason: 'full', what: 'peers' });
    // One address: its third peer evicts its own stalest, nobody else's.
    await s.announce(S2, peer(20, 0.5, '10.9.9.9'), { now: T0 + 20, sample: 0 });
    await s.announce(S2, peer(21, 0.5, '10.9.9.9'), { now: T0 + 21, sample: 0 });
    await s.announce(S2, peer(22, 0.5, '10.8.8.8'), { now: T0 + 22, sample: 0 });
    expect((await s.announce(S2, peer(23, 0.5, '10.9.9.9'), { now: T0 + 23, sample: 0 })).result).toEqual({ ok: true });
    expect(ports(await s.list(S2, 10, { now: T0 + 24 }))).toEqual([7021, 7022, 7023]);
    expect((await s.announce('ef'.repeat(20), peer(30), { now: T0 + 30, sample: 0 })).result).toEqual({ ok: false, reason: 'full', what: 'swarms' });
    expect(await s.stats()).toEqual({ swarms: 2, peers: 8, bitfieldBytes: 0 });
    expect((await s.announce(S2, peer(24), { now: T0 + 31, sample: 0 })).result).toEqual({ ok: true });
    // Nine peers in all: a tenth is refused though its swarm has room; an existing one still refreshes.
    expect((await s.announce(S2, peer(25), { now: T0 + 32, sample: 0 })).result).toEqual({ ok: false, reason: 'full', what: 'peers' });
    expect((await s.announce(S2, peer(22, 0.6, '10.8.8.8'), { now: T0 + 33, sample: 0 })).result).toEqual({ ok: true });
    expect(await s.stats()).toEqual({ swarms: 2, peers: 9, bitfieldBytes: 0 });
  });

  it('expires downloading peers after expiryMs and complete ones after completeExpiryMs, and forgets the swarm', async () => {
    const s = await open();
    await s.announce(S, peer(1, 0.5), { now: T0, sample: 0 });
    await s.announce(S, peer(2, 1), { now: T0, sample: 0 });
    expect(ports(await s.list(S, 10, { now: T0 + 9_999 }))).toEqual([7001, 7002]);
    expect(ports(await s.list(S, 10, { now: T0 + 10_000 }))).toEqual([7002]);
    expect(await s.stats()).toMatchObject({ swarms: 1, peers: 1 });
    await s.sweep(T0 + 59_999);
    expect(await s.stats()).toMatchObject({ swarms: 1, peers: 1 });
    await s.sweep(T0 + 60_000);
    expect(await s.stats()).toEqual({ swarms: 0, peers: 0, bitfieldBytes: 0 });
    expect(await raw.keys(`kf:{${S}}*`)).toEqual([]);
  });

  it('a full swarm makes room by evicting a complete peer past the ordinary expiry', async () => {
    const s = await open({ maxPeersPerSwarm: 2 });
    await s.announce(S, peer(1, 1), { now: T0, sample: 0 });
    await s.announce(S, peer(2, 0.5), { now: T0 + 9_000, sample: 0 });
    expect((await s.announce(S, peer(3), { now: T0 + 9_500, sample: 0 })).result.ok).toBe(false);
    expect((await s.announce(S, peer(3), { now: T0 + 10_000, sample: 0 })).result).toEqual({ ok: true });
    expect(ports(await s.list(S, 10, { now: T0 + 10_001 }))).toEqual([7002, 7003]);
  });

  it('keeps bitfields within the swarm geometry and the byte caps, listing the peer without it', async () => {
    const s = await open({ maxBitfieldBytesPerSwarm: 12, maxBitfieldBytes: 20 });
    const bf = (hex: string, blockSize = 4096) => ({ hex, blockSize });
    expect((await s.announce(S, { ...peer(1), blocks: bf('ffe0') }, { now: T0, sample: 0 })).result).toEqual({ ok: true });
    // 'ffe0' at 4096 bounds the file to 16 blocks of 4096: 4 hex digits at 4096, 8 at 2048; 6 at 4096 is past it.
    expect((await s.announce(S, { ...peer(2), blocks: bf('ffffff') }, { now: T0, sample: 0 })).result).toEqual({ ok: true, blocksDropped: 'geometry' });
    expect((await s.announce(S, { ...peer(3), blocks: bf('ffffff00', 2048) }, { now: T0, sample: 0 })).result).toEqual({ ok: true });
    expect((await s.announce(S, { ...peer(4), blocks: bf('ff00') }, { now: T0, sample: 0 })).result).toEqual({ ok: true, blocksDropped: 'swarm' });
    expect((await s.announce(S2, { ...peer(5), blocks: bf('ff00ff') }, { now: T0, sample: 0 })).result).toEqual({ ok: true });
    expect((await s.announce(S2, { ...peer(6), blocks: bf('ffff') }, { now: T0, sample: 0 })).result).toEqual({ ok: true, blocksDropped: 'total' });
    expect(await s.stats()).toEqual({ swarms: 2, peers: 6, bitfieldBytes: 18 });
    const listed = await s.list(S, 10, { now: T0 });
    expect(listed.map((p) => [p.port, p.blocks]).sort()).toEqual([
      [7001, 'ffe0'],
      [7002, undefined],
      [7003, 'ffffff00'],
      [7004, undefined],
    ]);
    // A dropped bitfield's repeat is still a repeat; the bound goes with the record that set it.
    expect((await s.announce(S, { ...peer(2), blocks: bf('ffffff') }, { now: T0 + 10, sample: 0 })).result.ok).toBe(false);
    await s.remove(S, '10.0.0.2', 7001);
    expect(await raw.hget(`kf:{${S}}:m`, 'bound')).toBeNull();
  });

  it('applies the feeder policy of the process that lists', async () => {
    const s = await open({ feeders: makeFeederPolicy('listed', ['10.0.0.3:7002']) });
    await s.announce(S, peer(1, 1), { now: T0, sample: 0 });
    await s.announce(S, peer(2, 0.5), { now: T0, sample: 0 });
    const listed = await s.list(S, 10, { now: T0 });
    expect(listed.map((p) => [p.port, p.feeder]).sort()).toEqual([
      [7001, false],
      [7002, true],
    ]);
    const dflt = await open();
    expect((await dflt.list(S, 10, { now: T0 })).map((p) => [p.port, p.feeder]).sort()).toEqual([
      [7001, true],
      [7002, false],
    ]);
  });

  it('samples fairly over downloading and complete peers, and never the caller', async () => {
    const s = await open();
    for (let i = 0; i < 20; i++) await s.announce(S, peer(i, i < 5 ? 1 : 0.5), { now: T0, sample: 0 });
    const hits = new Map<number, number>();
    const rounds = 600;
    for (let r = 0; r < rounds; r++) {
      const got = await s.list(S, 5, { now: T0, excludeKey: '10.0.0.1:7000' });
      expect(got).toHaveLength(5);
      expect(new Set(got.map((p) => p.port)).size).toBe(5);
      for (const p of got) hits.set(p.port, (hits.get(p.port) ?? 0) + 1);
    }
    expect(hits.has(7000)).toBe(false);
    // Each of the 19 others is expected rounds × 5/19 ≈ 158 times; a biased pick (e.g. complete peers first) is far off.
    for (let i = 1; i < 20; i++) expect(hits.get(7000 + i) ?? 0, `peer ${i}`).toBeGreaterThan(105);
    for (let i = 1; i < 20; i++) expect(hits.get(7000 + i) ?? 0, `peer ${i}`).toBeLessThan(215);
  });

  it('one announce is one command on the server, even into a 10,000-peer swarm', async () => {
    const s = await open({ maxPeersPerSwarm: 20_000, maxPeersPerAddress: 20_000, maxPeers: 20_000 });
    // Fill a big swarm straight through the store, 16 in flight.
    let next = 0;
    await Promise.all(
      [...Array(16).keys()].map(async () => {
        while (next < 10_000) await s.announce(S, peer(next++), { now: T0, sample: 0 });
      }),
    );
    // Redis counts the script's own calls in commandstats too: count the script runs, and every other command the
    // script never calls (any of those sent by the store would be a second round trip).
    const inScript = new Set([...PEER_STORE_LUA.matchAll(/redis\.call\('(\w+)'/g)].map((m) => m[1]!.toLowerCase()));
    const commands = async (): Promise<{ scripts: number; others: number }> => {
      const info = await raw.info('commandstats');
      const n = { scripts: 0, others: 0 };
      for (const m of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) {
        if (m[1] === 'evalsha' || m[1] === 'eval') n.scripts += Number(m[2]);
        else if (m[1] !== 'info' && !inScript.has(m[1]!)) n.others += Number(m[2]);
      }
      return n;
    };
    const before = await commands();
    const o = await s.announce(S, peer(10_000), { now: T0 + 1, sample: 50 });
    expect(await commands()).toEqual({ scripts: before.scripts + 1, others: before.others });
    expect(o.peers).toHaveLength(50);
    expect(await s.stats()).toMatchObject({ peers: 10_001 });
    // The whole swarm but the caller in one call (at most 10,000: the store's bound on one reply).
    const all = await s.list(S, 20_000, { now: T0 + 1, excludeKey: '10.0.0.1:7000' });
    expect(all).toHaveLength(10_000);
    expect(new Set(all.map((p) => p.port)).size).toBe(10_000);
    expect(all.some((p) => p.port === 7000)).toBe(false);
  });

  it('keeps every key of one swarm on one hash slot, with a TTL', async () => {
    const s = await open({ maxPeersPerAddress: 1 });
    await s.announce(S, { ...peer(1, 1), blocks: { hex: 'ff', blockSize: 1024 } }, { now: Date.now(), sample: 0 });
    await s.announce(S, peer(2), { now: Date.now(), sample: 0 });
    const keys = await raw.keys(`kf:{${S}}*`);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    // CLUSTER KEYSLOT needs cluster mode: compute the slot as Redis Cluster does (CRC16 of the hash tag, mod 16384).
    const slots = new Set(keys.map(keySlot));
    expect(slots).toEqual(new Set([keySlot(`{${S}}`)]));
    expect(keySlot('123456789')).toBe(12739); // the CRC16 check value the Cluster spec gives
    for (const k of keys) expect(await raw.pttl(k), k).toBeGreaterThan(60_000);
  });

  it('corrects the totals when a swarm\'s keys vanished by TTL', async () => {
    const s = await open();
    await s.announce(S, { ...peer(1), blocks: { hex: 'ff', blockSize: 1024 } }, { now: T0, sample: 0 });
    await s.announce(S2, peer(2, 1), { now: T0, sample: 0 });
    expect(await s.stats()).toEqual({ swarms: 2, peers: 2, bitfieldBytes: 2 });
    await raw.del(...(await raw.keys(`kf:{${S}}*`)));
    await s.sweep(T0 + 10_000);
    expect(await s.stats()).toEqual({ swarms: 1, peers: 1, bitfieldBytes: 0 });
  });

  it('issue 14: keeps the wire port as a 9th record field; a record written before it (8 fields) reads as no wire', async () => {
    const s = await open();
    await s.announce(S, { ...peer(1, 1), wire: 7777 }, { now: T0, sample: 0 });
    await s.announce(S, peer(2), { now: T0, sample: 0 });
    const recs = await raw.hgetall(`kf:{${S}}:r`);
    expect(recs['10.0.0.2:7001']!.split('|')).toHaveLength(9);
    expect(recs['10.0.0.2:7001']!.split('|')[8]).toBe('7777');
    expect(recs['10.0.0.3:7002']!.split('|')[8]).toBe('');
    // A tracker of before issue 14 wrote 8 fields: still listed, without a wire; its repeat is still a repeat.
    await raw.hset(`kf:{${S}}:r`, '10.0.0.3:7002', recs['10.0.0.3:7002']!.split('|').slice(0, 8).join('|'));
    const listed = await s.list(S, 10, { now: T0 + 1 });
    expect(listed.map((p) => [p.port, p.wire])).toEqual(expect.arrayContaining([[7001, 7777], [7002, undefined]]));
    expect((await s.announce(S, peer(2), { now: T0 + 2, sample: 0 })).result).toMatchObject({ ok: false, reason: 'too-soon' });
    // Never a value the record cannot hold.
    for (const wire of [0, 65536, 1.5, NaN]) {
      await expect(s.announce(S, { ...peer(3), wire }, { now: T0, sample: 0 })).rejects.toThrow(/wire/);
    }
  });

  it('two stores on one Redis (two tracker processes) see each other\'s peers', async () => {
    const a = await open();
    const b = await open();
    await a.announce(S, peer(1), { now: T0, sample: 0 });
    const o = await b.announce(S, peer(2), { now: T0, sample: 10 });
    expect(ports(o.peers)).toEqual([7001]);
    expect((await a.announce(S, peer(2), { now: T0 + 1, sample: 10 })).result.ok).toBe(false);
    expect(await a.stats()).toEqual(await b.stats());
  });

  it('Redis killed → StoreUnavailableError within about a second; Redis back → the store works again by itself', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(c.toString()), cb()) }));
    const s = await open({}, log);
    await s.announce(S, peer(1), { now: Date.now(), sample: 0 });
    await server.kill();
    const t = performance.now();
    const err = await within(s.announce(S, peer(2), { now: Date.now(), sample: 0 }).catch((e: unknown) => e), 5_000, 'announce on a dead Redis');
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).retryAfterSeconds).toBe(5);
    expect(performance.now() - t).toBeLessThan(2_000);
    await expect(s.stats()).rejects.toBeInstanceOf(StoreUnavailableError);
    await server.restart();
    await until(
      async () => (await s.announce(S, peer(3), { now: Date.now(), sample: 0 }).then(() => true, () => false)),
      10_000,
      'store usable again after Redis restarted',
    );
    expect(await s.stats()).toMatchObject({ peers: 1 });
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs.filter((m) => m === 'tracker: redis store down')).toHaveLength(1);
    expect(msgs.filter((m) => m === 'tracker: redis store up')).toHaveLength(2);
  });

  it('Redis frozen → StoreUnavailableError after the 1 s command timeout, logged once; thawed → used again', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(c.toString()), cb()) }));
    const s = await open({}, log);
    await s.announce(S, peer(1), { now: Date.now(), sample: 0 });
    server.freeze();
    const t = performance.now();
    const errs = await within(
      Promise.all([2, 3, 4].map((i) => s.announce(S, peer(i), { now: Date.now(), sample: 0 }).catch((e: unknown) => e))),
      5_000,
      'announces on a frozen Redis',
    );
    for (const e of errs) expect(e).toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - t).toBeLessThan(2_500);
    // Known down: the next calls fail at once instead of each waiting out the timeout.
    const quick = performance.now();
    for (let i = 0; i < 20; i++) {
      await expect(s.announce(S, peer(6), { now: Date.now(), sample: 0 })).rejects.toBeInstanceOf(StoreUnavailableError);
    }
    expect(performance.now() - quick).toBeLessThan(500);
    server.thaw();
    await until(async () => s.announce(S, peer(5), { now: Date.now(), sample: 0 }).then(() => true, () => false), 10_000, 'store usable after thaw');
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toEqual(['tracker: redis store up', 'tracker: redis store down', 'tracker: redis store up']);
  });

  it('refuses to open when Redis does not answer', async () => {
    await server.stop();
    await expect(openRedisPeerStore(server.url, BASE)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

/** The Redis Cluster slot of `key`: CRC16-XMODEM of its hash tag (the first non-empty `{...}`) or of all of it. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const tagged = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tagged)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
