// Issue 12: the box's control API against a real box child process on loopback: the token (mode 0600, 401 without
// it, nothing changed), the Host and address checks, adding a kascade (written into the watch folder, idempotent by
// filehash), the paged list, one record, its peers and block map while it downloads from a real (slow) seeder,
// pause (kept across a restart) and resume, verify, reannounce, settings applied at once, removal with and without
// its data, and `kfetch box` driving the same box.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { BLOCK, boxPayload, boxWorld, startBox, type BoxWorld } from '../helpers/box-world.js';
import { runCli } from '../helpers/cli.js';
import { writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';
import { until } from '../helpers/wait.js';
import { SseReader } from '../helpers/sse-reader.js';

const scope = testScope();

interface Api {
  base: string;
  token: string;
  call: (method: string, path: string, o?: { body?: string | Buffer; token?: string | null; headers?: Record<string, string> }) => Promise<{ status: number; json: any; headers: Headers }>;
}

function apiOf(w: BoxWorld, url: string): Api {
  const token = readFileSync(join(w.home, 'api-token'), 'utf8').trim();
  const base = `${url}/api/v1`;
  return {
    base,
    token,
    call: async (method, path, o = {}) => {
      const auth: Record<string, string> = o.token === null ? {} : { Authorization: `Bearer ${o.token ?? token}` };
      const res = await fetch(`${base}${path}`, { method, headers: { ...auth, ...o.headers }, ...(o.body === undefined ? {} : { body: o.body }) });
      const text = await res.text();
      return { status: res.status, json: text === '' ? undefined : JSON.parse(text), headers: res.headers };
    },
  };
}

async function waitRecord(api: Api, id: string, pred: (r: any) => boolean, what: string, ms = 20_000): Promise<any> {
  let last: any;
  let reply: any;
  try {
    await until(async () => {
      reply = await api.call('GET', `/kascades/${id}`);
      last = reply.json?.kascade;
      return last !== undefined && pred(last);
    }, ms, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last reply ${reply?.status} ${JSON.stringify(reply?.json)}`);
  }
  return last;
}

describe('issue 12: the box control API', () => {
  it('needs its token: 401 without or with a wrong one, and nothing changes; the token file is 0600', async () => {
    const w = boxWorld(scope);
    const good = boxPayload('a.bin', 'a');
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    expect(statSync(join(w.home, 'api-token')).mode & 0o777).toBe(0o600);
    expect(api.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const token of [null, 'x'.repeat(43), `${api.token}x`]) {
      const r = await api.call('POST', '/kascades', { body: JSON.stringify(good.k), token });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('KF_E_API_AUTH');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await api.call('PATCH', '/settings', { body: '{"maxDownloads":7}', token })).status).toBe(401);
    }
    expect(readdirSync(w.watch)).toEqual([]);
    expect((await api.call('GET', '/settings')).json.maxDownloads).not.toBe(7);
    // The OpenAPI document is the one route without a token.
    expect((await api.call('GET', '/openapi.json', { token: null })).status).toBe(200);
    // The same token after a restart.
    box.run.child.kill('SIGTERM');
    await box.run.exited();
    const again = await startBox(w);
    expect(apiOf(w, again.url).token).toBe(api.token);
  });

  it('refuses the API flags without --watch (they would be ignored)', async () => {
    const w = boxWorld(scope);
    const k = writeKascade(join(w.dir, 'x.kascade'), boxPayload('x.bin', 'x').k);
    for (const flag of [['--api-port', '0'], ['--api-allow', '10.0.0.0/8'], ['--api-host', 'box.example.org'], ['--api-cors', 'https://dash.example']]) {
      const r = await runCli(['seed', k, '--data', w.data, ...flag], { home: w.home });
      expect(r.code, flag[0]).toBe(2);
      expect(r.stderr).toContain(`${flag[0]}: the control API needs box mode (--watch <dir>) [KF_E_USAGE]`);
    }
  });

  it('refuses a foreign Host header (DNS rebinding) and answers IP literals and localhost', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const port = new URL(box.url).port;
    // fetch() cannot set Host: a raw request does.
    const { request } = await import('node:http');
    const status = (host: string): Promise<number> =>
      new Promise((res, rej) => {
        const req = request({ host: '127.0.0.1', port, path: '/api/v1/settings', headers: { Host: host, Authorization: `Bearer ${api.token}` } }, (r) => {
          r.resume();
          res(r.statusCode ?? 0);
        });
        req.on('error', rej);
        req.end();
      });
    expect(await status('evil.example')).toBe(403);
    expect(await status(`evil.example:${port}`)).toBe(403);
    expect(await status(`2130706433:${port}`)).toBe(403);
    expect(await status(`127.0.0.1:${port}`)).toBe(200);
    expect(await status(`localhost:${port}`)).toBe(200);
    expect(await status(`[::1]:${port}`)).toBe(200);
  });

  it('adds, lists, pauses, resumes and removes a kascade while it downloads from a real seeder', async () => {
    const w = boxWorld(scope);
    const size = 40 * BLOCK - 999;
    const good = boxPayload('big.bin', 'big', size);
    // A slow honest seeder, so the download is still running while the test pauses it.
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true, delayMs: 250 }));
    const body = JSON.stringify({ ...good.k, peers: [peer.addr] });
    const box = await startBox(w);
    const api = apiOf(w, box.url);

    const added = await api.call('POST', '/kascades', { body });
    expect(added.status).toBe(201);
    const id: string = added.json.id;
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(added.headers.get('location')).toBe(`/api/v1/kascades/${id}`);
    // Written into the watch folder, whole.
    expect(readdirSync(w.watch)).toEqual(['big.bin.kascade']);
    expect(JSON.parse(readFileSync(join(w.watch, 'big.bin.kascade'), 'utf8')).filehash).toBe(good.filehash);
    // Idempotent by filehash: 409 with the existing id, nothing written.
    const again = await api.call('POST', '/kascades', { body });
    expect(again.status).toBe(409);
    expect(again.json.existing).toBe(id);
    expect(readdirSync(w.watch)).toHaveLength(1);
    // A body that is not a kascade: 400 naming the parser's code.
    const bad = await api.call('POST', '/kascades', { body: '{"filename":"x"}' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toMatch(/^KF_E_KASCADE_/);

    // Received bytes move first; verified ones follow each progress tick, which may come only at the end of so small
    // a download (seen under load: verified 0 until the last poll before seeding).
    const r = await waitRecord(api, id, (k) => k.state === 'downloading' && k.receivedBytes > 0, 'downloading with progress');
    expect(r).toMatchObject({ id, file: 'big.bin.kascade', name: 'big.bin', filehash: good.filehash, size, blockSize: BLOCK, blocks: 40 });
    const peers = await api.call('GET', `/kascades/${id}/peers`);
    expect(peers.json.peers.map((p: any) => p.address)).toContain(peer.addr);
    const mine = peers.json.peers.find((p: any) => p.address === peer.addr);
    expect(mine).toMatchObject({ source: 'kascade', banned: null, badBlocks: 0 });
    // A received block is held only once its batch was verified and written: under load the first poll can still see
    // every block in flight or missing, so wait (bounded) for the first held one.
    let blocks: any;
    await until(async () => {
      blocks = await api.call('GET', `/kascades/${id}/blocks?format=runs`);
      return blocks.json.runs.some(([s]: [string, number]) => s === 'h');
    }, 20_000, 'a held block in the runs');
    expect(blocks.json.blocks).toBe(40);
    expect(blocks.json.runs.reduce((n: number, [, c]: [string, number]) => n + c, 0)).toBe(40);
    expect(blocks.json.runs.map(([s]: [string, number]) => s)).toContain('h');

    // Pause: no more requests reach the seeder.
    const paused = await api.call('POST', `/kascades/${id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.json.kascade.state).toBe('paused');
    await new Promise((res) => setTimeout(res, 400)); // requests already out finish
    const asked = peer.requests.length;
    await new Promise((res) => setTimeout(res, 800));
    expect(peer.requests.length).toBe(asked);
    expect((await api.call('GET', '/kascades?state=paused')).json.items.map((k: any) => k.id)).toEqual([id]);

    // Paused survives a restart.
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited()).toBe(0);
    const box2 = await startBox(w);
    const api2 = apiOf(w, box2.url);
    await waitRecord(api2, id, (k) => k.state === 'paused', 'still paused after a restart');
    await new Promise((res) => setTimeout(res, 500));
    expect(peer.requests.length).toBe(asked);

    // Resume: it completes, the data is right, and it seeds.
    expect((await api2.call('POST', `/kascades/${id}/resume`)).status).toBe(200);
    const done = await waitRecord(api2, id, (k) => k.state === 'seeding', 'seeding after resume', 30_000);
    expect(done.progress).toBe(1);
    expect(createHash('sha256').update(readFileSync(join(w.data, 'big.bin'))).digest('hex')).toBe(good.filehash);
    // Someone downloads it from the box: it shows in the peers as an incoming address with what we sent.
    const k2 = writeKascade(join(w.dir, 'again.kascade'), good.k);
    const out = scope.dir('kfetch-get-');
    const got = await runCli(['get', k2, '--peer', new URL(box2.url).host, '--out', out, '--no-serve'], { timeoutMs: 30_000 });
    expect(got.code, got.stderr).toBe(0);
    const inc = (await api2.call('GET', `/kascades/${id}/peers`)).json.peers.filter((p: any) => p.source === 'incoming');
    expect(inc).toHaveLength(1);
    expect(inc[0]).toMatchObject({ address: '127.0.0.1', uploadedBytes: size, downloadedBytes: 0 });
    expect(inc[0].upRate).toBeGreaterThan(0);
    expect((await api2.call('POST', `/kascades/${id}/verify`)).status).toBe(202);
    expect((await api2.call('POST', `/kascades/${id}/reannounce`)).status).toBe(202);

    // Remove, keeping the data; then again, deleting it.
    const rm = await api2.call('DELETE', `/kascades/${id}`);
    expect(rm.json).toEqual({ v: 1, id, deletedData: false });
    expect(readdirSync(w.watch)).toEqual([]);
    expect(existsSync(join(w.data, 'big.bin'))).toBe(true);
    expect((await api2.call('GET', `/kascades/${id}`)).status).toBe(404);
    const back = await api2.call('POST', '/kascades', { body });
    await waitRecord(api2, back.json.id, (k) => k.state === 'seeding', 'seeding at once when added back');
    const rm2 = await api2.call('DELETE', `/kascades/${back.json.id}?deleteData=true`);
    expect(rm2.json.deletedData).toBe(true);
    expect(existsSync(join(w.data, 'big.bin'))).toBe(false);
  });

  it('lists 60 kascades in pages by cursor, filtered and with fields', async () => {
    const w = boxWorld(scope);
    for (let i = 0; i < 60; i++) writeKascade(join(w.watch, `k${i}.kascade`), boxPayload(`f${i}.bin`, `s${i}`, 1000).k);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    await until(async () => (await api.call('GET', '/kascades?limit=1')).json.total === 60, 20_000, '60 kascades listed');
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: any = (await api.call('GET', `/kascades?limit=7&fields=state,name${cursor === null ? '' : `&cursor=${cursor}`}`)).json;
      expect(page.total).toBe(60);
      for (const k of page.items) expect(Object.keys(k).sort()).toEqual(['id', 'name', 'state'].filter((f) => f in k).sort());
      seen.push(...page.items.map((k: any) => k.id));
      cursor = page.next;
      if (cursor === null) break;
    }
    expect(seen).toHaveLength(60);
    expect([...seen].sort()).toEqual(seen);
    expect(new Set(seen).size).toBe(60);
    for (const [q, field] of <[string, string][]>[
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['state=bogus', 'state'],
      ['fields=secret', 'fields'],
      ['cursor=zz', 'cursor'],
    ]) {
      const r = await api.call('GET', `/kascades?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.field, q).toBe(field);
    }
    expect((await api.call('GET', '/kascades/0123456789abcdef')).status).toBe(404);
    expect((await api.call('GET', '/kascades/..%2Fsettings')).status).toBe(400);
    const m = await api.call('PUT', '/settings');
    expect(m.status).toBe(405);
    expect(m.headers.get('allow')).toBe('GET, PATCH');
  });

  it('applies settings at once and refuses bad ones naming the field', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w, ['--max-upload', '0', '--max-downloads', '2']);
    const api = apiOf(w, box.url);
    expect((await api.call('GET', '/settings')).json).toMatchObject({ v: 1, maxUpload: 0, maxDownloads: 2 });
    const p = await api.call('PATCH', '/settings', { body: JSON.stringify({ maxUpload: 1048576, maxDownloads: 5, maxPeers: 9 }) });
    expect(p.json).toEqual({ v: 1, maxUpload: 1048576, maxDownloads: 5, maxPeers: 9 });
    expect((await api.call('GET', '/settings')).json).toEqual(p.json);
    for (const [body, field] of <[string, string][]>[
      ['{"maxDownloads":0}', 'maxDownloads'],
      ['{"maxUpload":-1}', 'maxUpload'],
      ['{"maxPeers":1.5}', 'maxPeers'],
      ['{"other":1}', 'other'],
      ['[1]', 'body'],
      ['{}', 'body'],
      ['not json', 'body'],
    ]) {
      const r = await api.call('PATCH', '/settings', { body });
      expect(r.status, body).toBe(400);
      expect(r.json.error.field, body).toBe(field);
    }
    const big = await api.call('PATCH', '/settings', { body: `{"maxPeers":${' '.repeat(20_000)}1}` });
    expect(big.status).toBe(413);
    expect((await api.call('GET', '/settings')).json).toEqual(p.json);
  });

  it('kfetch box add, ls, pause, resume, rm drive the running box', async () => {
    const w = boxWorld(scope);
    const good = boxPayload('c.bin', 'c');
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true }));
    const file = writeKascade(join(w.dir, 'c.kascade'), { ...good.k, peers: [peer.addr] });
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const add = await runCli(['box', 'add', file, '--paused'], { home: w.home });
    expect(add.code, add.stderr).toBe(0);
    const id = /added ([0-9a-f]{16})/.exec(add.stdout)![1]!;
    await waitRecord(api, id, (k) => k.state === 'paused', 'paused as added');
    const ls = await runCli(['box', 'ls', '--json'], { home: w.home });
    expect(ls.stdout.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual([id]);
    expect((await runCli(['box', 'resume', good.filehash.slice(0, 10)], { home: w.home })).code).toBe(0);
    await waitRecord(api, id, (k) => k.state === 'seeding', 'seeding after kfetch box resume');
    expect((await runCli(['box', 'pause', 'c.bin'], { home: w.home })).code).toBe(0);
    expect((await api.call('GET', `/kascades/${id}`)).json.kascade.state).toBe('paused');
    const none = await runCli(['box', 'pause', 'nothing-like-it'], { home: w.home });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no kascade in the box matches "nothing-like-it"/);
    const rm = await runCli(['box', 'rm', id, '--delete-data'], { home: w.home });
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync(join(w.data, 'c.bin'))).toBe(false);
    const ui = await runCli(['box', 'ui'], { home: w.home });
    expect(ui.stdout.trim()).toBe(`${box.url}/ui/#token=${api.token}`);
    box.run.child.kill('SIGTERM');
    await box.run.exited();
    const gone = await runCli(['box', 'ls'], { home: w.home });
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/KF_E_BOX_UNREACHABLE/);
  });

  it('streams a snapshot, then added / changed / removed; Last-Event-ID resumes, a too-old id gets a fresh snapshot', async () => {
    const w = boxWorld(scope);
    const good = boxPayload('e.bin', 'e');
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true }));
    const box = await startBox(w, ['--api-port', '0']);
    const info = JSON.parse(readFileSync(join(w.home, 'box.json'), 'utf8'));
    expect(info.api).not.toBe(box.url); // its own port
    const api = apiOf(w, info.api);
    const port = Number(new URL(info.api).port);
    const auth = { Authorization: `Bearer ${api.token}` };
    expect((await SseReader.open(port, '/api/v1/events')).status).toBe(401);
    const s = await SseReader.open(port, '/api/v1/events', auth);
    try {
      expect(s.status).toBe(200);
      expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
      await until(() => s.messages.length > 0, 5_000, 'the snapshot');
      expect(s.messages[0]!.event).toBe('snapshot');
      expect(JSON.parse(s.messages[0]!.data)).toMatchObject({ v: 1, kascades: [] });
      const id = (await api.call('POST', '/kascades', { body: JSON.stringify({ ...good.k, peers: [peer.addr] }) })).json.id;
      await until(() => s.of('kascade.changed').some((m) => JSON.parse(m.data).kascade.state === 'seeding'), 20_000, 'a changed event saying seeding');
      const added = s.of('kascade.added');
      expect(added.map((m) => JSON.parse(m.data).kascade.id)).toEqual([id]);
      await until(() => s.of('box.stats').length > 0, 5_000, 'box.stats');
      const ids = s.messages.map((m) => Number(m.id));
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
      // Per kascade, at most 4 changes a second (plus one at the edge of the window).
      const changed = s.of('kascade.changed').length;
      expect(changed).toBeGreaterThan(0);

      // Resume: a second stream from the first message's id gets exactly what followed it, no snapshot.
      const from = s.messages[0]!.id!;
      const r = await SseReader.open(port, '/api/v1/events', { ...auth, 'Last-Event-ID': from });
      try {
        const want = s.messages.slice(1).filter((m) => m.event !== 'box.stats').map((m) => m.id);
        await until(() => want.every((x) => r.messages.some((m) => m.id === x)), 5_000, 'the missed events replayed');
        expect(r.of('snapshot')).toHaveLength(0);
        expect(r.messages[0]!.id).toBe(s.messages[1]!.id);
      } finally {
        r.close();
      }
      // An id older than anything kept (or garbage): a fresh snapshot that already shows the kascade.
      for (const old of ['1', 'nonsense']) {
        const o = await SseReader.open(port, '/api/v1/events', { ...auth, 'Last-Event-ID': old });
        try {
          await until(() => o.messages.length > 0, 5_000, 'a snapshot');
          expect(o.messages[0]!.event).toBe('snapshot');
          expect(JSON.parse(o.messages[0]!.data).kascades.map((k: any) => k.id)).toEqual([id]);
        } finally {
          o.close();
        }
      }
      await api.call('DELETE', `/kascades/${id}`);
      await until(() => s.of('kascade.removed').some((m) => JSON.parse(m.data).id === id), 5_000, 'kascade.removed');
      // The box's own port does not answer the API when --api-port is given.
      expect((await fetch(`${box.url}/api/v1/settings`, { headers: auth })).status).toBe(404);
    } finally {
      s.close();
    }
  });
});
