// Issue 14: the engine on the binary peer wire, with real processes on 127.0.0.1. `kfetch get` from a `kfetch seed
// --wire-port 0` takes its blocks over the wire (the seeder's own counts say so); a peer whose advertised wire is
// closed or misbehaves is still served over HTTP; a block that fails its MD5 over the wire bans the seeder and is
// fetched elsewhere, exactly as over HTTP.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { badWirePorts, closeRawTcp } from '../helpers/raw-tcp.js';
import { killAllChildren, runCli, startCli, tempHome, type CliRun } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';

const BLOCK = 64 * 1024;
const SIZE = 6 * 1024 * 1024 + 777; // 97 blocks, the last one short
const BLOCKS = Math.ceil(SIZE / BLOCK);

const dirs: string[] = [];
const peers: AdversarialPeer[] = [];

afterEach(async () => {
  killAllChildren();
  for (const p of peers.splice(0)) await p.close();
  await closeRawTcp();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function setup(seed: string): { dir: string; bytes: Buffer; kascadePath: string; id: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-wire-'));
  dirs.push(dir);
  const bytes = payloadBytes(0, SIZE, seed);
  const k = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK] });
  const kascadePath = writeKascade(join(dir, 'payload.json'), k);
  return { dir, bytes, kascadePath, id: k.filehash as string };
}

/** A real `kfetch seed --wire-port 0` of `data` (a directory holding payload.bin); its HTTP and wire addresses. */
async function seeder(kascadePath: string, data: string, extra: string[] = []): Promise<{ run: CliRun; addr: string; wirePort: number }> {
  const run = startCli(['--log-json', 'seed', kascadePath, '--data', data, '--port', '0', '--wire-port', '0', ...extra]);
  const [, addr] = await run.waitForLine(/^listening on http:\/\/(\S+)$/);
  const [, wirePort] = await run.waitForLine(/^wire on 127\.0\.0\.1:(\d+)$/);
  return { run, addr: addr!, wirePort: Number(wirePort) };
}

interface Served {
  bytesSent: number;
  statuses: Record<string, number>;
  wire?: { requests: number; bytesSent: number; replies: Record<string, number> };
}

/** Stop a seeder (SIGTERM) and read what it says it served (its `seed: served` log line). */
async function stopAndRead(s: { run: CliRun }): Promise<Served> {
  s.run.child.kill('SIGTERM');
  expect(await s.run.exited(15_000)).toBe(0);
  const line = s.run
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'seed: served');
  expect(line, s.run.stderr()).toBeDefined();
  return line as unknown as Served;
}

function events(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface Transport {
  wireBytes: number;
  httpBytes: number;
  wireRequests: number;
  httpRequests: number;
  wireFallbacks: number;
}

/** A peer of the box's peers API, the fields this file reads. */
interface PeerRow {
  address: string;
  downloadedBytes: number;
  wireBytes: number;
}

/** The `transport` of the one `done` event in `--json` output. */
function transportOf(stdout: string): Transport {
  const done = events(stdout).filter((e) => e.event === 'done');
  expect(done).toHaveLength(1);
  return done[0]!.transport as Transport;
}

describe('kfetch get over the binary peer wire (issue 14)', () => {
  it('takes every block from a `kfetch seed --wire-port 0` over the wire, and only HTTP with --no-wire', async () => {
    const { dir, bytes, kascadePath } = setup('wire-get');
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'payload.bin'), bytes);
    const s = await seeder(kascadePath, data);

    const r = await runCli(['--log-json', 'get', kascadePath, '--out', join(dir, 'out'), '--peer', s.addr, '--no-serve', '--json', '--timeout', '30'], {
      home: tempHome(),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
    // The client's own account: every byte came over the wire.
    const got = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'bytes received over the peer wire');
    expect(got?.overWire).toBe(SIZE);
    // …and the done event's transport (the --json schema v1's additive field): every byte and request on the wire.
    const t = transportOf(r.stdout);
    expect(t).toMatchObject({ wireBytes: SIZE, httpBytes: 0, httpRequests: 0, wireFallbacks: 0 });
    expect(t.wireRequests).toBeGreaterThan(0);

    // The same download with --no-wire: plain HTTP ranges, the wire untouched.
    const r2 = await runCli(['get', kascadePath, '--out', join(dir, 'out2'), '--peer', s.addr, '--no-serve', '--json', '--no-wire', '--timeout', '30'], {
      home: tempHome(),
    });
    expect(r2.code, r2.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out2', 'payload.bin')))).toBe(sha256(bytes));
    const t2 = transportOf(r2.stdout);
    expect(t2).toMatchObject({ wireBytes: 0, httpBytes: SIZE, wireRequests: 0, wireFallbacks: 0 });
    expect(t2.httpRequests).toBeGreaterThan(0);

    const served = await stopAndRead(s);
    // The seeder's account: the first download's bytes over the wire, the second's as 206s.
    expect(served.wire?.bytesSent).toBe(SIZE);
    expect(served.wire?.replies.ok).toBe(served.wire?.requests);
    expect(served.bytesSent).toBe(2 * SIZE);
    expect(served.statuses['206']).toBeGreaterThan(0);
  }, 60_000);

  it('falls back to HTTP for a peer whose advertised wire port is closed, or answers garbage, or lies in a reply', async () => {
    const { dir, bytes, kascadePath, id } = setup('wire-fallback');
    const { closed, garbage, liar } = await badWirePorts();
    const advertise = async (port: number): Promise<AdversarialPeer> => {
      const p = await startAdversarialPeer({ bytes, id, blockSize: BLOCK, bitfield: true, headers: { 'X-Kascade-Wire': String(port) } });
      peers.push(p);
      return p;
    };
    for (const [what, port, tried] of [
      ['closed port', closed, undefined],
      ['garbage instead of a hello', garbage.port, garbage.connections],
      ['a lying reply', liar.port, liar.connections],
    ] as const) {
      const p = await advertise(port);
      const out = join(dir, `out-${port}`);
      const r = await runCli(['get', kascadePath, '--out', out, '--peer', p.addr, '--no-serve', '--json', '--timeout', '30'], { home: tempHome() });
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(sha256(readFileSync(join(out, 'payload.bin'))), what).toBe(sha256(bytes));
      // Every block came over HTTP from the peer, and the wire was really tried.
      expect(new Set(p.requests).size, what).toBe(BLOCKS);
      if (tried !== undefined) expect(tried(), what).toBeGreaterThan(0);
      // Nobody is banned or dropped for a wire that does not work: HTTP is authoritative.
      expect(events(r.stdout).filter((e) => e.event === 'peer' && e.action !== 'added'), what).toEqual([]);
      // The done event says so: every byte over HTTP, and the runs that tried the wire first counted as fallbacks.
      const t = transportOf(r.stdout);
      expect(t, what).toMatchObject({ wireBytes: 0, httpBytes: SIZE, wireRequests: 0 });
      expect(t.wireFallbacks, what).toBeGreaterThan(0);
      expect(t.wireFallbacks, what).toBeLessThanOrEqual(t.httpRequests);
    }
  }, 90_000);

  it('bans a seeder whose wire serves a block that fails its MD5, and fetches the block elsewhere', async () => {
    const { dir, bytes, kascadePath } = setup('wire-corrupt');
    const good = join(dir, 'good');
    const bad = join(dir, 'bad');
    mkdirSync(good);
    mkdirSync(bad);
    writeFileSync(join(good, 'payload.bin'), bytes);
    // Every block of the bad seeder's copy is wrong: whatever it serves first fails its MD5 (--trust serves it).
    const corrupt = Buffer.from(bytes);
    for (let i = 0; i < corrupt.length; i += 4096) corrupt[i] = corrupt[i]! ^ 0xff;
    writeFileSync(join(bad, 'payload.bin'), corrupt);
    // The good seeder is rate-limited so the bad one is surely asked before the download is over.
    const honest = await seeder(kascadePath, good, ['--max-upload', '4M']);
    const liar = await seeder(kascadePath, bad, ['--trust']);

    const r = await runCli(
      ['get', kascadePath, '--out', join(dir, 'out'), '--peer', honest.addr, '--peer', liar.addr, '--no-serve', '--json', '--timeout', '30'],
      { home: tempHome() },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out', 'payload.bin')))).toBe(sha256(bytes));
    const bans = events(r.stdout).filter((e) => e.event === 'peer' && e.action === 'banned');
    expect(bans.map((b) => b.peer)).toEqual([liar.addr]);
    expect(bans[0]!.code).toBe('KF_E_PEER_HASH_MISMATCH');

    const liarServed = await stopAndRead(liar);
    const honestServed = await stopAndRead(honest);
    // The bad bytes went over the wire, never as HTTP ranges; the good seeder's over the wire too.
    expect(liarServed.wire!.bytesSent).toBeGreaterThan(0);
    expect(liarServed.statuses['206'] ?? 0).toBe(0);
    expect(honestServed.wire!.bytesSent).toBeGreaterThan(0);
  }, 60_000);

  it('`get --seed --wire-port 0` and the box (`seed --watch --wire-port 0`) serve the wire too: a chain of three over it', async () => {
    const { dir, bytes, kascadePath } = setup('wire-chain');
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'payload.bin'), bytes);
    const a = await seeder(kascadePath, data);
    const logLine = (run: CliRun, msg: string): Record<string, unknown> | undefined =>
      run
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === msg);
    const wait = async (what: string, cond: () => boolean): Promise<void> => {
      for (const t0 = Date.now(); !cond(); ) {
        if (Date.now() - t0 > 20_000) throw new Error(`never: ${what}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    };

    // B: downloads from A over the wire, then keeps seeding with a wire of its own.
    const b = startCli(['--log-json', 'get', kascadePath, '--out', join(dir, 'b'), '--peer', a.addr, '--json', '--seed', '--port', '0', '--wire-port', '0', '--timeout', '30']);
    const [, bUrl] = await b.waitForLine(/"event":"serving","url":"http:\/\/([^"]+)"/);
    await b.waitForLine(/"event":"done"/, 30_000);
    await wait('B logs its wire bytes', () => logLine(b, 'bytes received over the peer wire') !== undefined);
    expect(logLine(b, 'bytes received over the peer wire')!.overWire).toBe(SIZE);
    expect(logLine(b, 'serving the peer wire')?.wirePort).toEqual(expect.any(Number));

    // C: a box whose kascade names only B; it fetches everything from B's wire.
    const watch = join(dir, 'watch');
    mkdirSync(watch);
    writeKascade(join(watch, 'payload.json'), kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK], extra: { peers: [bUrl] } }));
    const c = startCli(['--log-json', 'seed', '--watch', watch, '--data', join(dir, 'c'), '--port', '0', '--wire-port', '0']);
    const [, cUrl] = await c.waitForLine(/^listening on (http:\/\/\S+)$/);
    await c.waitForLine(/^wire on 127\.0\.0\.1:\d+$/);
    await wait('C logs its wire bytes', () => logLine(c, 'bytes received over the peer wire') !== undefined);
    expect(logLine(c, 'bytes received over the peer wire')!.overWire).toBe(SIZE);
    expect(sha256(readFileSync(join(dir, 'c', 'payload.bin')))).toBe(sha256(bytes));
    const st = (await (await fetch(`${cUrl}/status`)).json()) as { server: { wire?: { requests: number } } };
    expect(st.server.wire).toBeDefined();
    // The box's /metrics count what it fetched by transport: all of it over B's wire.
    const metrics = await (await fetch(`${cUrl}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^kfetch_peer_fetched_bytes_total\\{transport="wire"\\} ${SIZE}$`, 'm'));
    expect(metrics).toMatch(/^kfetch_peer_fetched_bytes_total\{transport="http"\} 0$/m);
    expect(metrics).toMatch(/^kfetch_peer_fetch_requests_total\{transport="wire"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^kfetch_peer_wire_fallbacks_total 0$/m);
    expect(metrics).toMatch(/^kfetch_peer_wire_served_bytes_total 0$/m);
  }, 60_000);

  it("the box's peers API counts each peer's bytes over the wire (wireBytes of downloadedBytes)", async () => {
    const { dir, bytes, kascadePath } = setup('wire-peers-api');
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'payload.bin'), bytes);
    // Rate-limited, so the download is still running (its session holds the peers) while the test asks.
    const a = await seeder(kascadePath, data, ['--max-upload', '2M']);
    const watch = join(dir, 'watch');
    mkdirSync(watch);
    writeKascade(join(watch, 'payload.json'), kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK], extra: { peers: [a.addr] } }));
    const home = tempHome();
    const box = startCli(['seed', '--watch', watch, '--data', join(dir, 'box'), '--port', '0'], { home });
    const [, url] = await box.waitForLine(/^listening on (http:\/\/\S+)$/);
    const token = readFileSync(join(home, 'api-token'), 'utf8').trim();
    const get = async (path: string): Promise<any> => (await fetch(`${url}/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } })).json();
    let seen: PeerRow | undefined;
    for (const t0 = Date.now(); seen === undefined; ) {
      if (Date.now() - t0 > 20_000) throw new Error('never saw the seeder in the peers API with wire bytes');
      const items = (await get('/kascades')).items as { id: string }[];
      if (items.length === 1) {
        const peers = (await get(`/kascades/${items[0]!.id}/peers`)).peers as PeerRow[];
        seen = peers.find((p) => p.address === a.addr && p.wireBytes > 0);
      }
      if (seen === undefined) await new Promise((res) => setTimeout(res, 100));
    }
    // Every byte from a seeder that serves the wire came over it.
    expect(seen.wireBytes).toBe(seen.downloadedBytes);
  }, 60_000);

  it('documents the flags in --help', async () => {
    const seed = await runCli(['seed', '--help']);
    expect(seed.stdout).toMatch(/--wire-port <n>/);
    const get = await runCli(['get', '--help']);
    expect(get.stdout).toMatch(/--wire-port <n>/);
    expect(get.stdout).toMatch(/--no-wire/);
    // Never silently ignored: there is nothing to serve the wire beside.
    const { kascadePath } = setup('wire-help');
    const r = await runCli(['get', kascadePath, '--no-serve', '--wire-port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--wire-port/);
  });
});
