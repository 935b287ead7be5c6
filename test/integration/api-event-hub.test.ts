// The control API's event stream hub (issue 12, docs/api.md "Event stream") against a real node:http server on
// 127.0.0.1 and real sockets: snapshot first, ordered ids, coalescing, Last-Event-ID resume and its refusals,
// maxClients, heartbeat, close(), the slow-consumer bound (a raw socket that never reads) and no leaks.

import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EventHub, type EventHubOptions } from '../../src/api/event-hub.js';
import { SseReader } from '../helpers/sse-reader.js';
import { until } from '../helpers/wait.js';

interface World {
  hub: EventHub;
  port: number;
  server: Server;
  /** Every response handed to the hub, with its 'close' listener count before attach. */
  attached: { res: ServerResponse; closeListeners: number; ok: boolean }[];
  /** The state the snapshot shows: a counter the tests bump before publishing. */
  state: { n: number };
}

const worlds: World[] = [];
const sockets: Socket[] = [];
const readers: SseReader[] = [];

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const w of worlds.splice(0)) {
    w.hub.close();
    w.server.closeAllConnections();
    await new Promise<void>((resolve) => w.server.close(() => resolve()));
  }
});

async function world(o: Partial<EventHubOptions> = {}): Promise<World> {
  const state = { n: 0 };
  const hub = new EventHub({ snapshot: () => ({ v: 1, n: state.n }), startId: 1_000_000, ...o });
  const attached: World['attached'] = [];
  const server = createServer((req, res) => {
    const closeListeners = res.listenerCount('close');
    const ok = hub.attach(req, res);
    attached.push({ res, closeListeners, ok });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const w = { hub, port: (server.address() as AddressInfo).port, server, attached, state };
  worlds.push(w);
  return w;
}

async function reader(port: number, headers: Record<string, string> = {}, keep = true): Promise<SseReader> {
  const r = await SseReader.open(port, '/events', headers, keep);
  readers.push(r);
  return r;
}

const data = (m: { data: string } | undefined): unknown => JSON.parse(m?.data ?? 'null');
const ids = (r: SseReader): number[] => r.messages.map((m) => Number(m.id));

describe('event hub: the stream', () => {
  it('sends the headers, a snapshot first, then live events in order with strictly increasing ids, one data line each', async () => {
    const w = await world();
    w.state.n = 7;
    const r = await reader(w.port);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['x-accel-buffering']).toBe('no');
    expect(r.headers['content-encoding']).toBeUndefined();
    await until(() => r.messages.length === 1, 5_000, 'snapshot');
    expect(r.messages[0]?.event).toBe('snapshot');
    expect(data(r.messages[0])).toEqual({ v: 1, n: 7 });

    const tricky = 'line one\nline two\r\nthree\u2028four\u2029';
    for (let i = 0; i < 50; i++) w.hub.publish('box.stats', { v: 1, i, tricky });
    await until(() => r.messages.length === 51, 5_000, '50 live events');
    const got = ids(r);
    for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1] ?? Infinity);
    expect(r.messages.slice(1).map((m) => (data(m) as { i: number }).i)).toEqual([...Array(50).keys()]);
    for (const m of r.messages) expect(m.data).not.toMatch(/[\n\r\u2028\u2029]/); // one line on the wire
    expect((data(r.messages[1]) as { tricky: string }).tricky).toBe(tricky);
    expect(w.hub.stats().nextId).toBe((got[got.length - 1] ?? 0) + 1);
  });

  it('snapshot and live events never disagree: attaches amid a stream of publishes see every later change, no gap', async () => {
    const w = await world({ coalesceMs: 0 });
    const bump = (): void => {
      w.state.n++;
      w.hub.publish('counter', { v: 1, n: w.state.n });
    };
    const timer = setInterval(() => {
      for (let i = 0; i < 20; i++) bump();
    }, 1);
    try {
      const rs: SseReader[] = [];
      for (let i = 0; i < 8; i++) {
        rs.push(await reader(w.port));
        await new Promise((r) => setTimeout(r, 5));
      }
      const target = w.state.n + 200;
      await until(() => w.state.n >= target, 5_000, 'more publishes');
      clearInterval(timer);
      const last = w.state.n;
      for (const r of rs) {
        await until(() => (data(r.last) as { n?: number } | null)?.n === last, 5_000, 'the last change');
        const ns = r.messages.map((m) => (data(m) as { n: number }).n);
        expect(r.messages[0]?.event).toBe('snapshot');
        // After the snapshot's n, every change n+1, n+2, … exactly once, in order.
        expect(ns).toEqual(Array.from({ length: ns.length }, (_, k) => (ns[0] ?? 0) + k));
      }
    } finally {
      clearInterval(timer);
    }
  });

  it('coalesces per key: a burst of one key sends its first value at once and its last at the window end; keys are independent', async () => {
    const w = await world({ coalesceMs: 200 });
    const r = await reader(w.port);
    await until(() => r.messages.length === 1, 5_000, 'snapshot');
    for (let i = 0; i < 1000; i++) {
      w.hub.publish('kascade.changed', { v: 1, key: 'a', i }, 'kascade.changed:a');
      w.hub.publish('kascade.changed', { v: 1, key: 'b', i }, 'kascade.changed:b');
    }
    w.hub.publish('box.stats', { v: 1, unkeyed: true }); // no key: goes out at once, not held behind the windows
    const values = (k: string): number[] =>
      r.of('kascade.changed').map((m) => data(m) as { key: string; i: number }).filter((d) => d.key === k).map((d) => d.i);
    // The first of each quiet key and the unkeyed event are out before any window could end.
    await until(() => r.messages.length >= 4, 5_000, 'leading edges');
    expect(values('a')).toEqual([0]);
    expect(values('b')).toEqual([0]);
    expect(r.of('box.stats')).toHaveLength(1);
    await until(() => values('a').includes(999) && values('b').includes(999), 5_000, 'trailing values');
    expect(values('a')).toEqual([0, 999]);
    expect(values('b')).toEqual([0, 999]);
    await until(() => w.hub.stats().pendingKeys === 0, 5_000, 'quiet keys forgotten');
    // A quiet key's next event goes out at once again.
    w.hub.publish('kascade.changed', { v: 1, key: 'a', i: 1000 }, 'kascade.changed:a');
    await until(() => values('a').length === 3, 5_000, 'next leading edge');
    expect(values('a')).toEqual([0, 999, 1000]);
  });

  it('keeps order within a key: a removed published under the key replaces a held changed and ends the key', async () => {
    const w = await world({ coalesceMs: 100 });
    const r = await reader(w.port);
    await until(() => r.messages.length === 1, 5_000, 'snapshot');
    w.hub.publish('kascade.changed', { v: 1, n: 1 }, 'kascade:x'); // out at once
    w.hub.publish('kascade.changed', { v: 1, n: 2 }, 'kascade:x'); // held
    w.hub.publish('kascade.removed', { v: 1, id: 'x' }, 'kascade:x'); // replaces the held one
    await until(() => r.of('kascade.removed').length === 1, 5_000, 'removed');
    await until(() => w.hub.stats().pendingKeys === 0, 5_000, 'the window closed');
    expect(r.messages.slice(1).map((m) => m.event)).toEqual(['kascade.changed', 'kascade.removed']);
  });

  it('coalescing bounds the rate of a key that changes all the time: at most one message per window', async () => {
    const coalesceMs = 50;
    const w = await world({ coalesceMs });
    const r = await reader(w.port);
    await until(() => r.messages.length === 1, 5_000, 'snapshot');
    const t0 = performance.now();
    let i = 0;
    const timer = setInterval(() => {
      for (let k = 0; k < 10; k++) w.hub.publish('kascade.changed', { v: 1, i: i++ }, 'k');
    }, 2);
    await new Promise((resolve) => setTimeout(resolve, 600));
    clearInterval(timer);
    const last = i - 1;
    await until(() => (data(r.last) as { i?: number }).i === last, 5_000, 'the last value');
    const elapsed = performance.now() - t0;
    const sent = r.of('kascade.changed').length;
    expect(i).toBeGreaterThan(100);
    expect(sent).toBeLessThanOrEqual(Math.ceil(elapsed / coalesceMs) + 1);
    expect(sent).toBeGreaterThanOrEqual(2);
  });

  it('shares one snapshot among streams attaching together, and builds a new one once anything was published', async () => {
    let built = 0;
    const state = { n: 0 };
    const w = await world({
      snapshot: () => {
        built++;
        return { v: 1, n: state.n };
      },
    });
    const storm = await Promise.all(Array.from({ length: 6 }, () => reader(w.port)));
    await until(() => storm.every((r) => r.messages.length === 1), 5_000, 'snapshots');
    expect(built).toBe(1);
    expect(new Set(storm.map((r) => r.messages[0]?.id)).size).toBe(1);
    expect(w.hub.stats().snapshots).toBe(1);

    state.n = 1;
    w.hub.publish('box.stats', { v: 1, n: 1 }, 'stats'); // even a held (keyed) publish means the state moved
    const after = await reader(w.port);
    await until(() => after.messages.length >= 1, 5_000, 'snapshot');
    expect(built).toBe(2);
    expect(data(after.messages[0])).toEqual({ v: 1, n: 1 });
    expect(Number(after.messages[0]?.id)).toBeGreaterThan(Number(storm[0]?.messages[0]?.id));
    for (const r of storm) await until(() => r.messages.length === 2, 5_000, 'the event after the shared snapshot');
  });

  it('sends a heartbeat comment every heartbeatMs', async () => {
    const w = await world({ heartbeatMs: 40 });
    const r = await reader(w.port);
    await until(() => r.comments.filter((c) => c === ': heartbeat').length >= 2, 5_000, 'two heartbeats');
    expect(r.messages.map((m) => m.event)).toEqual(['snapshot']);
  });
});

describe('event hub: Last-Event-ID', () => {
  it('a reconnect with the last id gets exactly the missed events, then live ones', async () => {
    const w = await world();
    const a = await reader(w.port);
    for (let i = 0; i < 5; i++) w.hub.publish('box.stats', { v: 1, i });
    await until(() => a.messages.length === 6, 5_000, 'first five');
    a.close();
    await until(() => w.hub.stats().clients === 0, 5_000, 'stream gone');
    for (let i = 5; i < 12; i++) w.hub.publish('box.stats', { v: 1, i });
    const b = await reader(w.port, { 'Last-Event-ID': a.last?.id ?? '' });
    w.hub.publish('box.stats', { v: 1, i: 12 });
    await until(() => b.messages.length === 8, 5_000, 'missed + live');
    expect(b.messages.map((m) => m.event)).not.toContain('snapshot');
    expect(b.messages.map((m) => (data(m) as { i: number }).i)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(ids(b)[0]).toBe(Number(a.last?.id) + 1);
    // Up to date already: nothing but live events.
    const c = await reader(w.port, { 'Last-Event-ID': b.last?.id ?? '' });
    w.hub.publish('box.stats', { v: 1, i: 13 });
    await until(() => c.messages.length === 1, 5_000, 'live');
    expect(data(c.messages[0])).toEqual({ v: 1, i: 13 });
  });

  it('resumes from the oldest id still complete, and sends a snapshot for one older than the buffer', async () => {
    const w = await world({ bufferEvents: 8 });
    const a = await reader(w.port);
    for (let i = 0; i < 20; i++) w.hub.publish('box.stats', { v: 1, i });
    await until(() => a.messages.length === 21, 5_000, 'twenty');
    expect(w.hub.stats().buffered).toBe(8);
    const idOf = (i: number): string => a.messages[1 + i]?.id ?? '';
    // Events 12..19 are buffered: a reader who saw 11 lost nothing.
    const edge = await reader(w.port, { 'Last-Event-ID': idOf(11) });
    await until(() => edge.messages.length === 8, 5_000, 'the buffer');
    expect(edge.messages.map((m) => (data(m) as { i: number }).i)).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    // One who saw 10 lost 11: snapshot.
    const old = await reader(w.port, { 'Last-Event-ID': idOf(10) });
    await until(() => old.messages.length === 1, 5_000, 'snapshot');
    expect(old.messages[0]?.event).toBe('snapshot');
    expect(Number(old.messages[0]?.id)).toBeGreaterThan(Number(idOf(19)));
  });

  it.each([
    ['garbage', 'abc'],
    ['digits then garbage', '12abc'],
    ['negative', '-1'],
    ['exponent', '1e6'],
    ['empty', ''],
    ['too many digits', '99999999999999999999'],
    ['before this hub started (a previous run)', '999999'],
    ['in the future', 'FUTURE'],
  ])('a Last-Event-ID that is %s gets a fresh snapshot with a new id', async (_what, value) => {
    const w = await world();
    for (let i = 0; i < 3; i++) w.hub.publish('box.stats', { v: 1, i });
    const next = w.hub.stats().nextId;
    const header = value === 'FUTURE' ? String(next + 5) : value;
    const r = await reader(w.port, { 'Last-Event-ID': header });
    await until(() => r.messages.length === 1, 5_000, 'snapshot');
    expect(r.messages[0]?.event).toBe('snapshot');
    expect(Number(r.messages[0]?.id)).toBe(next);
    w.hub.publish('box.stats', { v: 1, i: 3 });
    await until(() => r.messages.length === 2, 5_000, 'live');
    expect(Number(r.messages[1]?.id)).toBe(next + 1);
  });

  it('bounds the resume buffer in bytes as well as in count', async () => {
    const w = await world({ bufferBytes: 64 * 1024 });
    const pad = 'x'.repeat(1000);
    for (let i = 0; i < 500; i++) w.hub.publish('box.stats', { v: 1, i, pad });
    const s = w.hub.stats();
    expect(s.bufferedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(s.buffered).toBeGreaterThan(50);
    expect(s.buffered).toBeLessThan(70);
  });
});

describe('event hub: limits and lifecycle', () => {
  it('answers 503 KF_E_API_BUSY past maxClients, and takes a stream again once one left', async () => {
    const w = await world({ maxClients: 2 });
    const a = await reader(w.port);
    await reader(w.port);
    const c = await reader(w.port);
    expect(c.status).toBe(503);
    await until(() => c.ended, 5_000, 'the 503 body');
    expect(JSON.parse(c.errorBody)).toMatchObject({ v: 1, error: { code: 'KF_E_API_BUSY' } });
    expect(c.headers['content-type']).toMatch(/^application\/json/);
    expect(w.hub.stats().clients).toBe(2);
    a.close();
    await until(() => w.hub.stats().clients === 1, 5_000, 'one left');
    const d = await reader(w.port);
    expect(d.status).toBe(200);
  });

  it('close() ends every stream with `dropped` {reason: box stopping}, stops, and refuses new streams', async () => {
    const w = await world();
    const rs = [await reader(w.port), await reader(w.port)];
    await until(() => rs.every((r) => r.messages.length === 1), 5_000, 'snapshots');
    w.hub.close();
    for (const r of rs) {
      await until(() => r.ended, 5_000, 'stream ended');
      expect(r.last?.event).toBe('dropped');
      expect(r.last?.id).toBeUndefined(); // the resume point stays the last real event
      expect(data(r.last)).toEqual({ v: 1, reason: 'box stopping' });
    }
    expect(w.hub.stats().clients).toBe(0);
    w.hub.publish('box.stats', { v: 1 });
    expect(w.hub.stats().buffered).toBe(0);
    const late = await reader(w.port);
    expect(late.status).toBe(503);
  });

  it('drops a stalled reader at clientMaxBytes (+ one message) while a live reader gets everything', async () => {
    const clientMaxBytes = 1024 * 1024;
    const logged: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) });
    const w = await world({ clientMaxBytes, log });
    const live = await reader(w.port, {}, false);
    // A raw socket that sends its request and never reads a byte.
    const stalled = connect({ host: '127.0.0.1', port: w.port });
    sockets.push(stalled);
    stalled.pause();
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    stalled.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    await until(() => w.hub.stats().clients === 2, 5_000, 'both attached');
    const stalledRes = w.attached[1]?.res;
    if (stalledRes === undefined) throw new Error('no stalled response');

    const pad = 'y'.repeat(16 * 1024);
    const msgBytes = Buffer.byteLength(`id: 1000000000000000\nevent: box.stats\ndata: ${JSON.stringify({ v: 1, i: 100000, pad })}\n\n`);
    let published = 0;
    let peak = 0; // our own probe: the response's unsent bytes right after each publish (writes are synchronous)
    let i = 0;
    // Bounded: at most 50 MiB published, 256 KiB a batch, each batch waiting for the live reader.
    while (published < 50 * 1024 * 1024) {
      for (let k = 0; k < 16; k++, i++) {
        w.hub.publish('box.stats', { v: 1, i, pad });
        published += msgBytes;
        if (!stalledRes.destroyed) peak = Math.max(peak, stalledRes.writableLength);
      }
      const want = i - 1;
      await until(() => (data(live.last) as { i?: number } | null)?.i === want || live.ended, 10_000, 'the live reader to catch up');
      expect(live.ended, `the live reader was dropped: ${JSON.stringify(w.hub.stats())}`).toBe(false);
    }
    const s = w.hub.stats();
    expect(s.droppedSlow).toBe(1);
    expect(stalledRes.destroyed).toBe(true);
    const drops = logged.map((l) => JSON.parse(l) as { reason?: string; unsentBytes?: number }).filter((l) => l.reason === 'slow consumer');
    expect(drops).toHaveLength(1);
    expect(drops[0]?.unsentBytes).toBeGreaterThan(clientMaxBytes);
    expect(peak).toBeGreaterThan(clientMaxBytes / 2); // the probe saw it fill…
    expect(peak).toBeLessThanOrEqual(clientMaxBytes + msgBytes + 64); // …and never past the bound + one message
    expect(s.peakUnsentBytes).toBeLessThanOrEqual(clientMaxBytes + msgBytes + 64);
    expect(s.clients).toBe(1);
    expect(live.count).toBe(1 + i); // snapshot + every event, none dropped
    expect(live.ended).toBe(false);
  });

  it('lets a snapshot larger than clientMaxBytes through to a reader, but not sit forever with a stalled one', async () => {
    const clientMaxBytes = 64 * 1024;
    const big = 'z'.repeat(16 * 1024 * 1024); // 16 MiB: more than the loopback socket buffers absorb
    // A reader takes it whole though heartbeats are written behind it all along (default burstDrainMs: 30 s).
    const easy = await world({ clientMaxBytes, heartbeatMs: 20, snapshot: () => ({ v: 1, big }) });
    const r = await reader(easy.port);
    await until(() => r.messages.length === 1, 20_000, 'the big snapshot');
    expect((data(r.messages[0]) as { big: string }).big.length).toBe(big.length);
    expect(easy.hub.stats().droppedSlow).toBe(0);
    expect(easy.hub.stats().clients).toBe(1);

    // A stalled reader gets burstDrainMs to take it, then goes at the next write.
    const w = await world({ clientMaxBytes, burstDrainMs: 300, heartbeatMs: 50, snapshot: () => ({ v: 1, big }) });

    const stalled = connect({ host: '127.0.0.1', port: w.port });
    sockets.push(stalled);
    stalled.pause();
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    stalled.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await until(() => w.attached.length === 1, 5_000, 'stalled attached');
    // Past burstDrainMs the next write (a heartbeat) finds it still holding the snapshot: dropped.
    await until(() => w.hub.stats().droppedSlow === 1, 5_000, 'the stalled stream dropped');
    expect(w.attached[0]?.res.destroyed).toBe(true);
    expect(w.hub.stats().clients).toBe(0);
    expect(r.ended).toBe(false);
  });

  it('leaves nothing behind after 1,000 attach/close cycles: no streams, no listeners, no timers', async () => {
    const w = await world({ maxClients: 64 });
    const timers = (): number => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
    const before = timers();
    for (let round = 0; round < 50; round++) {
      const rs = await Promise.all(Array.from({ length: 20 }, () => reader(w.port)));
      w.hub.publish('box.stats', { v: 1, round });
      await until(() => rs.every((r) => r.messages.length === 2), 5_000, 'snapshot + event');
      for (const r of rs) r.close();
      readers.length = 0;
    }
    await until(() => w.hub.stats().clients === 0, 5_000, 'every stream gone');
    expect(w.attached).toHaveLength(1000);
    expect(w.attached.every((a) => a.ok)).toBe(true);
    await until(() => w.attached.every((a) => a.res.listenerCount('close') <= a.closeListeners), 5_000, 'listeners removed');
    await until(() => new Promise<boolean>((resolve) => w.server.getConnections((_e, n) => resolve(n === 0))), 5_000, 'connections closed');
    expect(timers()).toBeLessThanOrEqual(before);
    expect(w.hub.stats().pendingKeys).toBe(0);
  });
});
