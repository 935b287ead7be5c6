// Issue 12, adversarial: the box's control API attacked like a hostile local process, a malicious web page or a
// user racing buttons would, with raw sockets against a real box child: path tricks on /ui/ and /api/v1/ (the page
// serves its own files only), token and Host header variants (a 401 changes nothing), CORS off for other origins,
// bodies over their caps (declared and chunked), lying lengths, slow senders, JSON bombs and prototype keys,
// kascade names with path tricks, concurrent adds of one kascade, pause/resume/verify/remove racing on a download
// from a real seeder, remove with its data mid-download, the event stream opened and dropped in bulk, odd
// Last-Event-IDs, and SIGTERM with streams open and calls in flight.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { startAdversarialTracker } from '../helpers/adversarial-tracker.js';
import { BLOCK, boxPayload, boxWorld, startBox, type BoxWorld } from '../helpers/box-world.js';
import { RawConnection, rawRequest, requestBytes } from '../helpers/raw-http.js';
import { SseReader } from '../helpers/sse-reader.js';
import { testScope } from '../helpers/test-scope.js';
import { until, within } from '../helpers/wait.js';

const scope = testScope();
const UI_DIR = join(import.meta.dirname, '../../src/api/ui');

interface Api {
  port: number;
  token: string;
  call: (method: string, path: string, o?: { body?: string | Buffer; token?: string | null; headers?: Record<string, string> }) => Promise<{ status: number; json: any; headers: Headers }>;
}

function apiOf(w: BoxWorld, url: string): Api {
  const token = readFileSync(join(w.home, 'api-token'), 'utf8').trim();
  return {
    port: Number(new URL(url).port),
    token,
    call: async (method, path, o = {}) => {
      const auth: Record<string, string> = o.token === null ? {} : { Authorization: `Bearer ${o.token ?? token}` };
      const res = await fetch(`${url}/api/v1${path}`, { method, headers: { ...auth, ...o.headers }, ...(o.body === undefined ? {} : { body: o.body }) });
      const text = await res.text();
      return { status: res.status, json: text === '' ? undefined : JSON.parse(text), headers: res.headers };
    },
  };
}

/** One raw request on a fresh socket; the response, or the status 0 when the connection closed without one. */
async function raw(port: number, bytes: string | Buffer, timeoutMs = 5_000): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  try {
    return await rawRequest(port, bytes, { timeoutMs });
  } catch {
    return { status: 0, headers: {}, body: Buffer.alloc(0) };
  }
}

/** Wait while the socket's send buffer is full (until it drains, closes, or 2 s pass). */
async function flowing(c: RawConnection): Promise<void> {
  if (c.socket.writableLength < 4 * 1024 * 1024 || c.closed) return;
  await new Promise<void>((res) => {
    const done = (): void => {
      clearTimeout(t);
      c.socket.off('drain', done);
      c.socket.off('close', done);
      res();
    };
    const t = setTimeout(done, 2_000);
    c.socket.once('drain', done);
    c.socket.once('close', done);
  });
}

async function waitRecord(api: Api, id: string, pred: (r: any) => boolean, what: string, ms = 20_000): Promise<any> {
  let last: any;
  try {
    await until(async () => {
      const r = await api.call('GET', `/kascades/${id}`);
      last = r.json?.kascade ?? r.json;
      return r.status === 200 && pred(last);
    }, ms, what);
  } catch (err) {
    throw new Error(`${String(err)} (last: ${JSON.stringify(last)})`);
  }
  return last;
}

describe('issue 12, adversarial: the box control API', () => {
  it('path tricks on /ui/ and /api/v1/ never reach a file outside src/api/ui/ nor a route without its token', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const uiBodies = new Set(readdirSync(UI_DIR).map((n) => readFileSync(join(UI_DIR, n)).toString('base64')));
    const pkg = readFileSync(join(import.meta.dirname, '../../package.json'));
    const uiTricks = [
      '/ui/../package.json',
      '/ui/../../package.json',
      '/ui/%2e%2e/package.json',
      '/ui/%2e%2e%2fpackage.json',
      '/ui/..%2f..%2fpackage.json',
      '/ui/..%2F..%2Fpackage.json',
      '/ui/%252e%252e%252fpackage.json',
      '/ui/..\\..\\package.json',
      '/ui/%5c..%5c..%5cpackage.json',
      '/ui/index.html%00.js',
      '/ui/%00',
      '/ui/app.js%00',
      '/ui//etc/passwd',
      '/ui/%2fetc%2fpasswd',
      '/ui/.%2e/.%2e/package.json',
      '/ui/static-files.ts',
      '/ui/../api/static-files.ts',
      '/ui/..%2fstatic-files.ts',
      '/ui/%2e%2e%5cstatic-files.ts',
      '/ui/INDEX.HTML',
      '/ui/index.html/',
      '/ui/index.html/..%2f..%2f..%2fpackage.json',
      `/ui/${'a'.repeat(4000)}.js`,
      `/ui/${'../'.repeat(500)}etc/passwd`,
    ];
    for (const t of uiTricks) {
      const r = await raw(api.port, requestBytes('GET', t, {}, api.port));
      expect([200, 302, 400, 404, 414, 431], t).toContain(r.status);
      if (r.status === 200) expect(uiBodies.has(r.body.toString('base64')), `${t} served something not in src/api/ui/`).toBe(true);
      expect(r.body.includes(pkg.subarray(0, 40)), t).toBe(false);
      expect(r.body.toString('latin1'), t).not.toMatch(/root:|"devDependencies"|createStaticFiles/);
    }
    // An overlong target is refused by the HTTP parser (431), not served or crashed on.
    const long = await raw(api.port, requestBytes('GET', `/ui/${'x'.repeat(70_000)}`, {}, api.port));
    expect([0, 400, 414, 431]).toContain(long.status);

    // API paths that normalise elsewhere or smuggle separators: never a route's data without the token.
    const apiTricks = [
      '/api/v1/kascades/..%2f..%2fsettings',
      '/api/v1/kascades/%2e%2e/settings',
      '/api/v1/openapi.json/../settings',
      '/api/v1/openapi.json/%2e%2e/settings',
      '/api/v1/openapi.json%2f..%2fsettings',
      '/api/v1/%2e%2e/v1/settings',
      '/api/v1/settings%00',
      '/api/v1/settings%2f',
      '/api/v1//settings',
      '/api/v1/./settings',
      '/api/v1\\settings',
      '/api/v1/SETTINGS',
      '/ui/../api/v1/settings',
      '/ui/%2e%2e/api/v1/settings',
      '/x/../api/v1/settings',
      '//api/v1/settings',
      '/api/v1/kascades/%2e%2e',
      '/api/v1/kascades/0123456789abcdef%2fpause',
      'http://evil.example/api/v1/settings',
    ];
    for (const t of apiTricks) {
      const r = await raw(api.port, requestBytes('GET', t, {}, api.port));
      expect(r.status, t).not.toBe(200);
      expect(r.body.toString(), t).not.toMatch(/maxDownloads/);
    }
    // With the token, an encoded slash in an id is no id: 400, never another route.
    for (const t of ['/api/v1/kascades/..%2f..%2fsettings', '/api/v1/kascades/0123456789abcdef%2fpause', '/api/v1/kascades/%2e%2e%2fsettings']) {
      const r = await raw(api.port, requestBytes('POST', t, { Authorization: `Bearer ${api.token}`, 'Content-Length': '0' }, api.port));
      expect([400, 404, 405], t).toContain(r.status);
    }
    // The page is never framed by another site (clickjacking of its token prompt and buttons).
    const page = await raw(api.port, requestBytes('GET', '/ui/', {}, api.port));
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(page.headers['x-frame-options']).toBe('DENY');
    // The box still answers.
    expect((await api.call('GET', '/stats')).status).toBe(200);
  });

  it('the token: only an exact bearer token opens the API, and a refused call changes nothing', async () => {
    const w = boxWorld(scope);
    const good = boxPayload('t.bin', 't');
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const t = api.token;
    const settingsBefore = (await api.call('GET', '/settings')).json;
    const refused = [
      `Bearer ${t.toUpperCase() === t ? t.toLowerCase() : t.toUpperCase()}`,
      `Bearer ${t.slice(0, -1)}`,
      `Bearer ${t}=`,
      `Bearer ${t} x`,
      `Bearer\t${t}`,
      `Bearer${t}`,
      `Basic ${Buffer.from(`user:${t}`).toString('base64')}`,
      `Basic ${Buffer.from(t).toString('base64')}`,
      t,
      `Token ${t}`,
      `Bearer ${t},Bearer ${t}`,
      `Bearer ${Buffer.from(t).toString('base64')}`,
      `Bearer ${'A'.repeat(5000)}`,
      '',
    ];
    const mutations: [string, string, string][] = [
      ['PATCH', '/api/v1/settings', '{"maxDownloads":7,"maxPeers":3}'],
      ['POST', '/api/v1/kascades', JSON.stringify(good.k)],
    ];
    for (const auth of refused) {
      for (const [method, path, body] of mutations) {
        const r = await raw(api.port, `${requestBytes(method, path, { Authorization: auth, 'Content-Length': String(Buffer.byteLength(body)) }, api.port)}${body}`);
        expect([400, 401, 431], `${auth.slice(0, 30)} ${method}`).toContain(r.status);
        if (r.status === 401) expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      }
    }
    // Two Authorization headers, the wrong one first: refused (Node keeps the first; never "any of them").
    const two = `PATCH /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${'x'.repeat(43)}\r\nAuthorization: Bearer ${t}\r\nContent-Length: 18\r\n\r\n{"maxDownloads":7}`;
    expect([400, 401]).toContain((await raw(api.port, two)).status);
    expect(readdirSync(w.watch)).toEqual([]);
    expect((await api.call('GET', '/settings')).json).toEqual(settingsBefore);

    // Accepted spellings: the scheme in any case, extra spaces around the token (RFC 9110 tokens are case-insensitive).
    for (const auth of [`bearer ${t}`, `BEARER ${t}`, `Bearer  ${t}`, `Bearer ${t} `]) {
      const r = await raw(api.port, requestBytes('GET', '/api/v1/settings', { Authorization: auth }, api.port));
      expect(r.status, auth.slice(0, 10)).toBe(200);
    }
    // A 401 on a kascade route changes nothing either.
    const added = await api.call('POST', '/kascades?paused=true', { body: JSON.stringify(good.k) });
    expect(added.status).toBe(201);
    for (const [m, p] of [
      ['POST', 'resume'],
      ['POST', 'verify'],
      ['DELETE', ''],
    ] as const) {
      const r = await api.call(m, `/kascades/${added.json.id}${p === '' ? '?deleteData=true' : `/${p}`}`, { token: `${t.slice(0, -1)}A` === t ? `${t.slice(0, -1)}B` : `${t.slice(0, -1)}A` });
      expect(r.status).toBe(401);
    }
    expect(readdirSync(w.watch)).toEqual(['t.bin.kascade']);
    expect((await api.call('GET', `/kascades/${added.json.id}`)).json.kascade.state).toBe('paused');
  });

  it('Host header variants (DNS rebinding) and Origin from another site: no CORS headers unless --api-cors', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w, ['--api-cors', 'http://ok.example:8080']);
    const api = apiOf(w, box.url);
    const p = api.port;
    const get = (headers: Record<string, string>, method = 'GET', path = '/api/v1/settings') =>
      raw(p, requestBytes(method, path, { Authorization: `Bearer ${api.token}`, ...headers }));
    const hostCases: [string, number][] = [
      ['localhost', 200],
      ['LOCALHOST', 200],
      [`localhost.:${p}`, 200],
      [`LocalHost:${p}`, 200],
      [`127.0.0.1.:${p}`, 200],
      [`[::1]:${p}`, 200],
      ['[0:0:0:0:0:0:0:1]', 200],
      [`localhost.evil.com:${p}`, 403],
      ['localhost.evil.com', 403],
      [`evil.com:${p}`, 403],
      ['evil.com.', 403],
      [`127.0.0.1.evil.com:${p}`, 403],
      [`127.0.0.1@evil.com:${p}`, 403],
      [`[fe80::1%25lo]:${p}`, 403],
      ['[fe80::1%lo]', 403],
      [`127.1:${p}`, 403],
      [`0x7f.0.0.1:${p}`, 403],
      [`2130706433:${p}`, 403],
      [`localhost:${p}:${p}`, 403],
      ['localhost:abc', 403],
      [':80', 403],
      ['[::1', 403],
      [`${'a'.repeat(400)}.localhost`, 403],
    ];
    for (const [host, want] of hostCases) expect((await get({ Host: host })).status, host).toBe(want);
    // Empty Host: refused (HTTP/1.1 requires one; a browser always sends one).
    expect([400, 403]).toContain((await raw(p, `GET /api/v1/settings HTTP/1.1\r\nHost: \r\nAuthorization: Bearer ${api.token}\r\n\r\n`)).status);

    // Another site's Origin: answered (the token guards it) but without any Access-Control-* header, and no preflight.
    for (const origin of ['http://evil.example', 'null', 'http://ok.example', 'http://ok.example:8080.evil.com', 'HTTP://OK.EXAMPLE:8080']) {
      const r = await get({ Host: `127.0.0.1:${p}`, Origin: origin });
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-')), origin).toEqual([]);
      const pre = await raw(p, requestBytes('OPTIONS', '/api/v1/settings', { Host: `127.0.0.1:${p}`, Origin: origin, 'Access-Control-Request-Method': 'PATCH' }));
      expect(pre.status, origin).not.toBe(204);
      expect(Object.keys(pre.headers).filter((h) => h.startsWith('access-control-')), origin).toEqual([]);
    }
    // The named origin gets them.
    const ok = await get({ Host: `127.0.0.1:${p}`, Origin: 'http://ok.example:8080' });
    expect(ok.headers['access-control-allow-origin']).toBe('http://ok.example:8080');
  });

  it('bodies: caps hold whether the length is declared, chunked or a lie; JSON bombs and prototype keys are 400s', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const p = api.port;
    const auth = { Authorization: `Bearer ${api.token}` };
    const settingsBefore = (await api.call('GET', '/settings')).json;

    // Declared over the cap: 413 at once, before any body byte.
    const declared = await raw(p, requestBytes('PATCH', '/api/v1/settings', { ...auth, 'Content-Length': String(17 * 1024) }, p));
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body.toString()).error.code).toBe('KF_E_API_TOO_LARGE');
    const declaredKascade = await raw(p, requestBytes('POST', '/api/v1/kascades', { ...auth, 'Content-Length': String(65 * 1024 * 1024) }, p));
    expect(declaredKascade.status).toBe(413);

    // Chunked past the cap, no length: a 413 answer (not a reset), and the connection is not kept for the rest.
    {
      const conn = await RawConnection.open(p);
      try {
        conn.send(requestBytes('PATCH', '/api/v1/settings', { ...auth, 'Transfer-Encoding': 'chunked' }, p));
        const chunk = 'x'.repeat(4096);
        for (let i = 0; i < 6; i++) conn.send(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
        const r = await conn.readResponse({ timeoutMs: 5_000 });
        expect(r.status).toBe(413);
        expect(JSON.parse(r.body.toString()).error.code).toBe('KF_E_API_TOO_LARGE');
      } finally {
        conn.close();
      }
    }
    // Content-Length smaller than the bytes sent: the extra bytes are no second request that could act.
    {
      const body = '{"maxDownloads":9}';
      const smuggled = `PATCH /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 18\r\n\r\n{"maxDownloads":8}`;
      const bytes = `${requestBytes('PATCH', '/api/v1/settings', { ...auth, 'Content-Length': '2' }, p)}${body}${smuggled}`;
      const r = await raw(p, bytes);
      expect(r.status).toBe(400);
    }
    // Both Content-Length and Transfer-Encoding, or two lengths: refused by the parser.
    for (const extra of ['Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', 'Content-Length: 5\r\nContent-Length: 18\r\n']) {
      const r = await raw(p, `PATCH /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${api.token}\r\n${extra}\r\n0\r\n\r\n`);
      expect([0, 400]).toContain(r.status);
    }

    // JSON bombs and hostile keys: each a 400 naming what is wrong, never a 500.
    const bombs: [string, string | Buffer][] = [
      ['deep arrays', '['.repeat(16_000)],
      ['deep objects', '{"a":'.repeat(3_000)],
      ['deep closed', `${'['.repeat(5_000)}${']'.repeat(5_000)}`],
      ['__proto__', '{"__proto__":{"maxDownloads":7}}'],
      ['__proto__ number', '{"__proto__":5}'],
      ['constructor', '{"constructor":5}'],
      ['toString', '{"toString":5}'],
      ['hasOwnProperty', '{"hasOwnProperty":1}'],
      ['valueOf', '{"valueOf":1,"maxDownloads":3}'],
      ['invalid utf-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
      ['lone surrogate', '{"\\ud800":1}'],
      ['NaN', '{"maxDownloads":NaN}'],
      ['huge number', '{"maxDownloads":1e400}'],
      ['float', '{"maxDownloads":2.5}'],
      ['string', '{"maxDownloads":"4"}'],
      ['array', '[{"maxDownloads":4}]'],
      ['null', 'null'],
      ['empty', ''],
      ['bom', '\ufeff{"maxDownloads":4}'],
    ];
    for (const [what, body] of bombs) {
      const r = await api.call('PATCH', '/settings', { body });
      expect(r.status, what).toBe(400);
      expect(r.json.error.code, what).toBe('KF_E_API_REQUEST');
    }
    expect((await api.call('GET', '/settings')).json).toEqual(settingsBefore);

    // A kascade body that is a bomb: the parser's 400.
    for (const body of ['['.repeat(1_000_000), `{"filename":${'['.repeat(100_000)}`, Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0xff])]) {
      const r = await api.call('POST', '/kascades', { body });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toMatch(/^KF_E_(KASCADE_|API_REQUEST)/);
    }
    expect(readdirSync(w.watch)).toEqual([]);
    expect((await api.call('GET', '/stats')).status).toBe(200);
  });

  it('a slow sender holds no add slot: another add completes while its body trickles', async () => {
    const w = boxWorld(scope);
    const a = boxPayload('slow.bin', 'slow');
    const b = boxPayload('fast.bin', 'fast');
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const p = api.port;
    const body = JSON.stringify(a.k);
    // Declares the whole body, sends a tenth of it, then one byte every 200 ms.
    const conn = await RawConnection.open(p);
    let sent = Math.floor(body.length / 10);
    conn.send(`${requestBytes('POST', '/api/v1/kascades', { Authorization: `Bearer ${api.token}`, 'Content-Length': String(body.length) }, p)}${body.slice(0, sent)}`);
    const trickle = setInterval(() => {
      if (sent < body.length - 1) conn.send(body[sent++]!);
    }, 200);
    try {
      await new Promise((res) => setTimeout(res, 300));
      // Bounded generously: before the fix it waited for the trickle to end (30 s here, for ever on --api-port).
      const fast = await within(api.call('POST', '/kascades', { body: JSON.stringify(b.k) }), 10_000, 'an add while another body trickles');
      expect(fast.status).toBe(201);
      expect(readdirSync(w.watch)).toEqual(['fast.bin.kascade']);
    } finally {
      clearInterval(trickle);
      conn.close();
    }
  });

  it('big bodies: a chunked kascade past 64 MiB gets its 413; uploads at once hold at most the shared budget (503 past it)', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const p = api.port;
    const head = (extra: Record<string, string>) => requestBytes('POST', '/api/v1/kascades', { Authorization: `Bearer ${api.token}`, ...extra }, p);
    const mib = Buffer.alloc(1024 * 1024, 0x20);
    // Chunked, no length, past the cap: the answer is a 413, not a reset.
    {
      const conn = await RawConnection.open(p);
      try {
        conn.send(head({ 'Transfer-Encoding': 'chunked' }));
        for (let i = 0; i < 66 && !conn.closed; i++) {
          conn.send(`${mib.length.toString(16)}\r\n`);
          conn.send(mib);
          conn.send('\r\n');
          await flowing(conn);
        }
        const r = await conn.readResponse({ timeoutMs: 10_000 });
        expect(r.status).toBe(413);
      } finally {
        conn.close();
      }
    }
    // Uploads of 50 MiB each held open at once (lengths declared, last bytes never sent): whether each got an answer.
    const hold = async (n: number): Promise<{ conns: RawConnection[]; answered: boolean[] }> => {
      const conns = await Promise.all(Array.from({ length: n }, () => RawConnection.open(p)));
      const answered = conns.map(() => false);
      for (const [i, c] of conns.entries()) {
        c.socket.once('data', () => (answered[i] = true));
        c.send(head({ 'Content-Length': String(60 * mib.length) }));
        for (let j = 0; j < 50 && !c.closed && !answered[i]; j++) {
          c.send(mib);
          await flowing(c);
        }
        await until(async () => (await api.call('GET', '/stats')).status === 200, 5_000, 'box answers');
      }
      return { conns, answered };
    };
    const first = await hold(3);
    try {
      expect(first.answered).toEqual([false, false, true]);
      const third = await first.conns[2]!.readResponse({ timeoutMs: 10_000 });
      expect(third.status).toBe(503);
      expect(JSON.parse(third.body.toString()).error.code).toBe('KF_E_API_BUSY');
    } finally {
      for (const c of first.conns) c.close();
    }
    // Given back when their senders leave mid-body: two such uploads fit again, and a small add goes through.
    await new Promise((res) => setTimeout(res, 300));
    const again = await hold(2);
    try {
      expect(again.answered).toEqual([false, false]);
    } finally {
      for (const c of again.conns) c.close();
    }
    await until(async () => (await api.call('POST', '/kascades', { body: JSON.stringify(boxPayload('after.bin', 'after').k) })).status === 201, 10_000, 'an add after the big ones left');
  });

  it('kascade names with path tricks or 255+ bytes land in the watch folder under a safe name, or are refused', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const names = ['../../escape.bin', '..', '.', '/etc/passwd', 'a/b.bin', 'a\\b.bin', '.hidden.bin', 'nul\u0000.bin', `${'n'.repeat(250)}.bin`, `${'é'.repeat(127)}.bin`, 'con', ' '];
    const made: string[] = [];
    for (const [i, name] of names.entries()) {
      const k = boxPayload(`x${i}.bin`, `n${i}`).k;
      const r = await api.call('POST', '/kascades?paused=true', { body: JSON.stringify({ ...k, filename: name }) });
      expect([201, 400], name.slice(0, 20)).toContain(r.status);
      if (r.status === 201) {
        expect(r.json.file).not.toMatch(/[/\\\0]/);
        expect(Buffer.byteLength(r.json.file)).toBeLessThanOrEqual(255);
        expect(r.json.file.startsWith('.')).toBe(false);
        made.push(r.json.file);
      }
    }
    expect(readdirSync(w.watch).sort()).toEqual([...made].sort());
    expect(existsSync(join(w.dir, 'escape.bin.kascade'))).toBe(false);
    expect(existsSync(join(w.dir, 'escape.bin'))).toBe(false);
  });

  it('the same kascade POSTed 8 times at once: exactly one 201, the rest 409, one file in the watch folder', async () => {
    const w = boxWorld(scope);
    const k = boxPayload('same.bin', 'same');
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const body = JSON.stringify(k.k);
    const rs = await Promise.all(Array.from({ length: 8 }, () => api.call('POST', '/kascades?paused=true', { body })));
    expect(rs.filter((r) => r.status === 201)).toHaveLength(1);
    expect(rs.filter((r) => r.status === 409)).toHaveLength(7);
    const id = rs.find((r) => r.status === 201)!.json.id;
    for (const r of rs.filter((r) => r.status === 409)) expect(r.json.existing).toBe(id);
    expect(readdirSync(w.watch)).toEqual(['same.bin.kascade']);

    // DELETE racing a POST of the same kascade: whatever the order, the box ends consistent with the folder.
    for (let i = 0; i < 3; i++) {
      const [del, post] = await Promise.all([api.call('DELETE', `/kascades/${id}`), api.call('POST', '/kascades?paused=true', { body })]);
      expect([200, 404]).toContain(del.status);
      expect([201, 409]).toContain(post.status);
      const list = (await api.call('GET', '/kascades')).json;
      expect(list.total).toBe(readdirSync(w.watch).length);
      if (list.total === 0) expect((await api.call('POST', '/kascades?paused=true', { body })).status).toBe(201);
    }
    expect(readdirSync(w.watch)).toHaveLength(1);
  });

  it('pause/resume/verify/remove raced on one download from a real seeder: the last click wins, data right, box healthy', async () => {
    const w = boxWorld(scope);
    const size = 64 * BLOCK - 77;
    const good = boxPayload('race.bin', 'race', size);
    // Slow enough that the download is still running through the clicks below.
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true, delayMs: 250 }));
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const body = JSON.stringify({ ...good.k, peers: [peer.addr] });
    const added = await api.call('POST', '/kascades', { body });
    expect(added.status, JSON.stringify(added.json)).toBe(201);
    const id: string = added.json.id;
    await waitRecord(api, id, (k) => k.state === 'downloading', 'downloading');

    // Buttons hammered concurrently: every answer is a defined status (never 500), the box keeps answering.
    const ops = ['pause', 'resume', 'verify', 'reannounce', 'pause', 'resume', 'pause', 'verify', 'resume', 'resume', 'pause', 'pause'];
    const rs = await Promise.all(ops.map((op) => api.call('POST', `/kascades/${id}/${op}`)));
    for (const [i, r] of rs.entries()) expect([200, 202, 409], `${ops[i]} ${JSON.stringify(r.json)}`).toContain(r.status);

    // pause, resume, pause pipelined on one connection (so they arrive in that order, before any answer): the last
    // one is what holds, also while the resume still waits for the paused work to end.
    const click = (op: string): string => requestBytes('POST', `/api/v1/kascades/${id}/${op}`, { Authorization: `Bearer ${api.token}`, 'Content-Length': '0' }, api.port);
    for (let round = 0; round < 6; round++) {
      const conn = await RawConnection.open(api.port);
      try {
        conn.send(click('pause') + click('resume') + click('pause'));
        const answers = [await conn.readResponse({ timeoutMs: 20_000 }), await conn.readResponse({ timeoutMs: 20_000 }), await conn.readResponse({ timeoutMs: 20_000 })];
        expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      } finally {
        conn.close();
      }
      await new Promise((res) => setTimeout(res, 150));
      expect((await api.call('GET', `/kascades/${id}`)).json.kascade.state, `round ${round}`).toBe('paused');
      const r = await api.call('POST', `/kascades/${id}/resume`);
      expect(r.status).toBe(200);
      await new Promise((res) => setTimeout(res, 50));
    }
    // It finishes right and seeds.
    await api.call('POST', `/kascades/${id}/resume`);
    await waitRecord(api, id, (k) => k.state === 'seeding', 'seeding after the storm', 30_000);
    expect(createHash('sha256').update(readFileSync(join(w.data, 'race.bin'))).digest('hex')).toBe(good.filehash);
    expect(box.run.stdout() + box.run.stderr()).not.toMatch(/internal error|KF_E_INTERNAL|two sessions/);
  });

  it('verify clicked 40 times at once on a seeding kascade queues one re-hash, not 40 full reads', async () => {
    const w = boxWorld(scope);
    const size = 64 * BLOCK;
    const good = boxPayload('v.bin', 'v', size);
    writeFileSync(join(w.data, 'v.bin'), good.bytes);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const id: string = (await api.call('POST', '/kascades', { body: JSON.stringify(good.k) })).json.id;
    await waitRecord(api, id, (k) => k.state === 'seeding', 'seeding');
    const scrubs = async (): Promise<number> => Number(/^kfetch_scrubs_total (\d+)/m.exec(await (await fetch(`${box.url}/metrics`)).text())?.[1] ?? NaN);
    const before = await scrubs();
    // 40 clicks pipelined on one connection: the box parses them in one read, so they all land before a re-hash ends.
    const conn = await RawConnection.open(api.port);
    try {
      const one = requestBytes('POST', `/api/v1/kascades/${id}/verify`, { Authorization: `Bearer ${api.token}`, 'Content-Length': '0' }, api.port);
      conn.send(one.repeat(40));
      for (let i = 0; i < 40; i++) expect((await conn.readResponse({ timeoutMs: 10_000 })).status).toBe(202);
    } finally {
      conn.close();
    }
    await until(async () => (await scrubs()) > before, 10_000, 'a scrub ran');
    await new Promise((res) => setTimeout(res, 1_000));
    expect((await scrubs()) - before).toBeLessThanOrEqual(2); // 1, or 2 if the 40 arrive in two reads
    // Once it ran, a new click re-hashes again.
    const after = await scrubs();
    expect((await api.call('POST', `/kascades/${id}/verify`)).status).toBe(202);
    await until(async () => (await scrubs()) > after, 10_000, 'a later verify ran');
  });

  it('reannounce clicked 30 times in a row sends the tracker one announce, not 30', async () => {
    const w = boxWorld(scope);
    const tracker = scope.keep(await startAdversarialTracker({ kind: 'peers', count: 0, interval: 1800 }));
    const good = boxPayload('r.bin', 'r', 8 * BLOCK);
    writeFileSync(join(w.data, 'r.bin'), good.bytes);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const id: string = (await api.call('POST', '/kascades', { body: JSON.stringify({ ...good.k, tracker: tracker.url }) })).json.id;
    await waitRecord(api, id, (k) => k.state === 'seeding' && k.tracker.lastAnnounce !== null, 'seeding and announced');
    await new Promise((res) => setTimeout(res, 200));
    const before = tracker.requests.length;
    // Each click waits for the one before (and a moment for its announce to finish), as a user hammering the button.
    for (let i = 0; i < 30; i++) {
      expect((await api.call('POST', `/kascades/${id}/reannounce`)).status).toBe(202);
      await new Promise((res) => setTimeout(res, 20));
    }
    await new Promise((res) => setTimeout(res, 300));
    expect(tracker.requests.length - before).toBe(1);
  });

  it('remove with deleteData while downloading, and a resume racing a remove: no data file left, no crash, box answers', async () => {
    const w = boxWorld(scope);
    const size = 40 * BLOCK - 5;
    const good = boxPayload('gone.bin', 'gone', size);
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true, delayMs: 150 }));
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const body = JSON.stringify({ ...good.k, peers: [peer.addr] });
    for (let round = 0; round < 3; round++) {
      const add = await api.call('POST', '/kascades', { body });
      expect(add.status).toBe(201);
      const id: string = add.json.id;
      await waitRecord(api, id, (k) => k.state === 'downloading' && k.receivedBytes > 0, `downloading in round ${round}`);
      const calls =
        round === 0
          ? [api.call('DELETE', `/kascades/${id}?deleteData=true`), api.call('DELETE', `/kascades/${id}?deleteData=true`)]
          : [api.call('POST', `/kascades/${id}/pause`), api.call('POST', `/kascades/${id}/resume`), api.call('DELETE', `/kascades/${id}?deleteData=true`), api.call('POST', `/kascades/${id}/resume`)];
      const rs = await Promise.all(calls);
      const del = rs[round === 0 ? 0 : 2]!;
      expect(del.status).toBe(200);
      expect(del.json.deletedData).toBe(true);
      for (const r of rs) expect([200, 404, 409]).toContain(r.status);
      // Nothing left behind, now or a moment later (a late checkpoint must not recreate the file).
      await new Promise((res) => setTimeout(res, 400));
      expect(readdirSync(w.watch)).toEqual([]);
      expect(readdirSync(w.data).filter((n) => n.startsWith('gone.bin'))).toEqual([]);
      expect((await api.call('GET', `/kascades/${id}`)).status).toBe(404);
      expect((await api.call('GET', '/stats')).status).toBe(200);
    }
    expect(box.run.child.exitCode).toBeNull();
  });

  it('the event stream: 200 streams opened and dropped, the 64 cap, odd Last-Event-IDs, a stalled reader', async () => {
    const w = boxWorld(scope);
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const p = api.port;
    const auth = { Authorization: `Bearer ${api.token}` };
    // Opened and dropped at once, in waves, some before the answer arrives.
    for (let wave = 0; wave < 5; wave++) {
      const socks = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const c = await RawConnection.open(p);
          c.send(requestBytes('GET', '/api/v1/events', { ...auth, Accept: 'text/event-stream' }, p));
          if (i % 2 === 0) c.close();
          return c;
        }),
      );
      await new Promise((res) => setTimeout(res, 30));
      for (const c of socks) c.close();
    }
    await until(async () => (await api.call('GET', '/stats')).json.eventClients === 0, 10_000, 'no event clients left');

    // The cap: 64 open, the 65th gets 503 KF_E_API_BUSY; after closing one, a new one is let in.
    const open: SseReader[] = [];
    try {
      for (let i = 0; i < 64; i++) open.push(await SseReader.open(p, '/api/v1/events', auth));
      expect(open.every((r) => r.status === 200)).toBe(true);
      const over = await SseReader.open(p, '/api/v1/events', auth);
      expect(over.status).toBe(503);
      over.close();
      open.pop()!.close();
      await until(async () => {
        const again = await SseReader.open(p, '/api/v1/events', auth);
        again.close();
        return again.status === 200;
      }, 5_000, 'a stream let in after one closed');
    } finally {
      for (const r of open) r.close();
    }
    await until(async () => (await api.call('GET', '/stats')).json.eventClients === 0, 10_000, 'no event clients left');

    // Odd Last-Event-IDs: each a fresh snapshot, never an error or a crash.
    for (const id of ['99999999999999999999999999', '9007199254740993', '-1', '1e400', '0x10', ' 5 ', '5, 6', 'NaN', '', '1'.repeat(5000)]) {
      const r = await SseReader.open(p, '/api/v1/events', { ...auth, 'Last-Event-ID': id });
      try {
        expect([200, 431], id.slice(0, 20)).toContain(r.status);
        if (r.status === 200) await until(() => r.messages.length > 0, 5_000, `first message for Last-Event-ID ${id.slice(0, 20)}`);
        if (r.status === 200) expect(r.messages[0]!.event, id.slice(0, 20)).toBe('snapshot');
      } finally {
        r.close();
      }
    }

    // HEAD of the event stream holds no stream slot (nothing could ever be sent on it).
    const heads = await Promise.all(Array.from({ length: 70 }, () => rawRequest(p, requestBytes('HEAD', '/api/v1/events', { ...auth, Connection: 'close' }, p), { head: true, timeoutMs: 3_000 }).catch(() => ({ status: 0 }))));
    expect(heads.map((r) => r.status)).toEqual(heads.map(() => 200));
    await until(async () => (await api.call('GET', '/stats')).json.eventClients === 0, 5_000, 'no event clients left after HEADs');

    // A stalled reader (never reads its socket) does not stop the others nor the API.
    const stalled = await RawConnection.open(p);
    stalled.socket.pause();
    stalled.send(requestBytes('GET', '/api/v1/events', { ...auth, Accept: 'text/event-stream' }, p));
    const live = await SseReader.open(p, '/api/v1/events', auth);
    try {
      for (let i = 0; i < 5; i++) expect((await api.call('POST', '/kascades?paused=true', { body: JSON.stringify(boxPayload(`e${i}.bin`, `e${i}`).k) })).status).toBe(201);
      await until(() => live.of('kascade.added').length === 5, 5_000, 'the live reader saw the adds');
    } finally {
      live.close();
      stalled.close();
    }
  });

  it('SIGTERM with event streams open and calls in flight exits 0', async () => {
    const w = boxWorld(scope);
    const size = 30 * BLOCK;
    const good = boxPayload('term.bin', 'term', size);
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true, delayMs: 50 }));
    const box = await startBox(w);
    const api = apiOf(w, box.url);
    const p = api.port;
    const auth = { Authorization: `Bearer ${api.token}` };
    const id: string = (await api.call('POST', '/kascades', { body: JSON.stringify({ ...good.k, peers: [peer.addr] }) })).json.id;
    await waitRecord(api, id, (k) => k.state === 'downloading', 'downloading');
    const streams = await Promise.all(Array.from({ length: 8 }, () => SseReader.open(p, '/api/v1/events', auth)));
    // A slow POST in flight too (half a body).
    const slow = await RawConnection.open(p);
    slow.send(`${requestBytes('POST', '/api/v1/kascades', { ...auth, 'Content-Length': '1000' }, p)}{"filename":`);
    const inflight = [
      api.call('POST', `/kascades/${id}/pause`).catch(() => undefined),
      api.call('POST', `/kascades/${id}/resume`).catch(() => undefined),
      api.call('DELETE', `/kascades/${id}?deleteData=true`).catch(() => undefined),
      api.call('GET', '/kascades').catch(() => undefined),
    ];
    box.run.child.kill('SIGTERM');
    try {
      expect(await box.run.exited(15_000)).toBe(0);
    } finally {
      for (const s of streams) s.close();
      slow.close();
    }
    await Promise.all(inflight);
    for (const s of streams) expect(s.ended).toBe(true);
  });
});
