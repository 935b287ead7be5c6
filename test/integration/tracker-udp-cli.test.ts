// The UDP tracker through the product's doors (issue 14 point 2): `kfetch tracker --udp-port` answers UDP on the
// HTTP tracker's store, `kfetch create` writes a udp:// failover tracker, and an Announcer whose first tracker is
// dead fails over to a udp:// one and gets its peers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryPeerStore } from '../../src/tracker/memory-peer-store.js';
import { announce } from '../../src/tracker/announce-client.js';
import { Announcer } from '../../src/tracker/announcer.js';
import type { AnnounceResult } from '../../src/tracker/announce-client.js';
import { storeLimits, trackerLimits } from '../../src/tracker/tracker-server.js';
import { announceUdp, closeUdpAnnounceSockets } from '../../src/tracker/udp-announce-client.js';
import { startUdpTracker } from '../../src/tracker/udp-tracker.js';
import { killAllChildren, runCli, startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/system.js';
import { trackerStoreArgs } from '../helpers/tracker-store.js';
import { makePayload } from '../helpers/make-file.js';
import { until, within } from '../helpers/wait.js';
import { createHash } from 'node:crypto';

const SWARM = 'ef'.repeat(32);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  killAllChildren();
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(closeUdpAnnounceSockets);

describe('kfetch tracker --udp-port', () => {
  it('prints the udp URL on the second line; HTTP and UDP announces see each other; exits 0 on SIGTERM', async () => {
    const run = startCli(['tracker', '--port', '0', '--udp-port', '0', ...trackerStoreArgs()]);
    const http = (await run.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
    const udp = (await run.waitForLine(/^listening on (udp:\/\/\S+)$/))[1]!;
    await announceUdp({ url: `${udp}/peers/${SWARM}.json`, port: 7301, progress: 1 });
    const viaHttp = await announce({ url: `${http}/peers/${SWARM}.json`, port: 7302, progress: 0 });
    expect(viaHttp.peers.map((p) => [p.port, p.feeder])).toEqual([[7301, true]]);
    const viaUdp = await announceUdp({ url: `${udp}/peers/${SWARM}.json`, port: 0, progress: 0 });
    expect(viaUdp.peers.map((p) => p.port).sort()).toEqual([7301, 7302]);
    run.child.kill('SIGTERM');
    expect(await run.exited()).toBe(0);
  });

  it('is off by default (one listening line); with --workers it follows their store rule (test/integration/tracker-udp-workers.test.ts)', async () => {
    const run = startCli(['tracker', '--port', '0', ...trackerStoreArgs()]);
    await run.waitForLine(/^listening on http:/);
    run.child.kill('SIGTERM');
    expect(await run.exited()).toBe(0);
    expect(run.stdout()).not.toMatch(/udp:/);
    // No longer refused for being UDP: a Redis that does not answer is the reason now, as without --udp-port.
    const r = await runCli(['tracker', '--port', '0', '--udp-port', '0', '--workers', '2', '--store', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/KF_E_STORE_UNAVAILABLE/);
  });
});

describe('kfetch create with a udp:// failover tracker', () => {
  it('writes it in trackers with the conventional path; tracker stays http', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-udp-create-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'f.bin'), Buffer.alloc(5000, 7));
    const r = await runCli(['create', join(dir, 'f.bin'), '--tracker', 'http://127.0.0.1:7000', '--tracker', 'udp://127.0.0.1:6969', '--output', join(dir, 'f.kascade')]);
    expect(r.code, r.stderr).toBe(0);
    const k = JSON.parse(readFileSync(join(dir, 'f.kascade'), 'utf8')) as { tracker: string; trackers: string[]; filehash: string };
    expect(k.tracker).toBe(`http://127.0.0.1:7000/peers/${k.filehash}.json`);
    expect(k.trackers).toEqual([`udp://127.0.0.1:6969/peers/${k.filehash}.json`]);
    const bad = await runCli(['create', join(dir, 'f.bin'), '--tracker', 'udp://127.0.0.1:6969', '--output', join(dir, 'g.kascade')]);
    expect(bad.code).toBe(3);
  });
});

describe('Announcer with a udp:// tracker', () => {
  it('fails over from a dead http tracker to a udp:// one and gets its peers; stop() sends stopped over UDP', async () => {
    const store = new MemoryPeerStore(storeLimits(trackerLimits({ minIntervalMs: 0 })));
    cleanups.push(() => store.close());
    const udp = await startUdpTracker({ store });
    cleanups.push(() => udp.close());
    await announceUdp({ url: `${udp.url}/peers/${SWARM}.json`, port: 7401, progress: 1 });
    const dead = `http://127.0.0.1:${await freePort()}/peers/${SWARM}.json`;
    let got: AnnounceResult | undefined;
    const a = new Announcer({
      url: dead,
      trackers: [dead, `${udp.url}/peers/${SWARM}.json`],
      state: () => ({ port: 7402, progress: 0.5 }),
      onPeers: (r) => (got = r),
      limits: { announceFastRetrySchedule: [0.05], announceRetryJitter: 0 },
    });
    cleanups.push(() => a.stop());
    a.start();
    await within(
      (async () => {
        while (got === undefined) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'peers from the udp tracker',
    );
    expect(got!.peers.map((p) => p.port)).toEqual([7401]);
    expect(a.url).toBe(`${udp.url}/peers/${SWARM}.json`);
    await a.stop();
    expect(udp.stats().answers.stopped).toBe(1);
    expect((await store.stats()).peers).toBe(1);
  });
});

describe('kfetch seed and kfetch get through a udp:// tracker only', () => {
  it('the `tracker` is dead; both fail over to the udp:// one, find each other there, and the file arrives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-udp-get-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { path } = makePayload(dir, 'payload.bin', 300 * 1024 + 5, 'udp-get');
    const t = startCli(['tracker', '--port', '0', '--udp-port', '0']);
    const http = (await t.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
    const udp = (await t.waitForLine(/^listening on (udp:\/\/\S+)$/))[1]!;
    const dead = `http://127.0.0.1:${await freePort()}`;
    const out = join(dir, 'payload.json');
    const made = await runCli(['create', path, '--tracker', dead, '--tracker', udp, '--block-size', '65536', '-o', out]);
    expect(made.code, made.stderr).toBe(0);
    const k = JSON.parse(readFileSync(out, 'utf8')) as { filehash: string; trackers: string[] };
    expect(k.trackers[0]).toMatch(/^udp:/);

    const seed = startCli(['--log-json', '--verbose', 'seed', out, '--data', dir, '--port', '0']);
    await seed.waitForLine(/^listening on /, 30_000);
    await until(
      () => seed.stderr().split('\n').some((l) => l.includes('"announce: ok"') && l.includes(JSON.stringify(k.trackers[0]))),
      30_000,
      'the seeder announced to the udp tracker',
    );
    const r = await runCli(['get', out, '--out', join(dir, 'got'), '--json', '--timeout', '40'], { timeoutMs: 45_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(createHash('sha256').update(readFileSync(join(dir, 'got', 'payload.bin'))).digest('hex')).toBe(k.filehash);
    const status = (await (await fetch(`${http}/status`)).json()) as { udp: { answers: { announced: number }; malformed: number } };
    expect(status.udp.answers.announced).toBeGreaterThanOrEqual(2);
    expect(status.udp.malformed).toBe(0);
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(Number(/^kfetch_tracker_udp_answers_total\{outcome="announced"\} (\d+)$/m.exec(metrics)?.[1])).toBe(status.udp.answers.announced);
    expect(metrics).toMatch(/^kfetch_tracker_udp_datagrams_total\{kind="malformed"\} 0$/m);
  }, 90_000);
});
