// The web page's static files (src/api/static-files.ts) through a real HTTP server on 127.0.0.1: every page file
// with its type and the security headers, HEAD, ETag and 304, 405 for other methods, and no way out of the
// whitelist — raw request bytes (fetch would normalise `..` away before sending), odd names in the folder.

import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createStaticFiles, uiFolder, type StaticFiles } from '../../src/api/static-files.js';
import { rawRequest, requestBytes } from '../helpers/raw-http.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const UI = resolve(import.meta.dirname, '../../src/api/ui');
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server answering `/ui/<path>` from `files` (the raw target after `/ui/`, as the API server will pass it), else 404. */
async function serve(files: StaticFiles): Promise<number> {
  const server = createServer((req, res) => {
    const target = req.url ?? '';
    if (target.startsWith('/ui/') && files.handle(req, res, target.slice(4))) return;
    res.writeHead(404).end('not found\n');
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const get = (port: number, target: string, headers: Record<string, string> = {}, method = 'GET') =>
  rawRequest(port, requestBytes(method, target, { Connection: 'close', ...headers }, port), { head: method === 'HEAD' });

describe('createStaticFiles', () => {
  it('finds the page folder from the source tree and from the build', async () => {
    expect(uiFolder()).toBe(UI);
    const built = (await import(pathToFileURL(resolve(import.meta.dirname, '../../dist/src/api/static-files.js')).href)) as { uiFolder(): string };
    expect(built.uiFolder()).toBe(UI);
  });

  it('serves every page file with its type, no-cache, the CSP and the other security headers', async () => {
    const files = createStaticFiles();
    const port = await serve(files);
    const expected = readdirSync(UI).filter((n) => /\.(html|js|css)$/.test(n)).sort();
    expect(files.names).toEqual(expected);
    for (const name of expected) {
      const res = await get(port, `/ui/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.body.equals(readFileSync(join(UI, name))), name).toBe(true);
      expect(res.headers['content-type']).toBe(
        { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' }[name.split('.').pop()!],
      );
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toBe("default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers.etag).toMatch(/^"[\w-]{22}"$/);
    }
    const index = await get(port, '/ui/');
    expect(index.body.toString()).toContain('<script type="module" src="app.js"></script>');
    expect((await get(port, '/ui/app.js?v=2')).status).toBe(200); // a query is ignored
  });

  it('HEAD answers the headers only; a matching If-None-Match (strong, weak, in a list, *) answers 304', async () => {
    const port = await serve(createStaticFiles());
    const full = await get(port, '/ui/style.css');
    const head = await get(port, '/ui/style.css', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(full.body.length));
    expect(head.body.length).toBe(0);
    const etag = full.headers.etag!;
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await get(port, '/ui/style.css', { 'If-None-Match': inm });
      expect(res.status, inm).toBe(304);
      expect(res.body.length).toBe(0);
      expect(res.headers.etag).toBe(etag);
    }
    expect((await get(port, '/ui/style.css', { 'If-None-Match': '"stale"' })).status).toBe(200);
  });

  it('other methods on a page file answer 405 with Allow; unknown names are left to the caller (404)', async () => {
    const port = await serve(createStaticFiles());
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await rawRequest(port, requestBytes(method, '/ui/app.js', { Connection: 'close', 'Content-Length': '0' }, port));
      expect(res.status, method).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
    }
    expect((await rawRequest(port, requestBytes('POST', '/ui/nope.js', { Connection: 'close', 'Content-Length': '0' }, port))).status).toBe(404);
  });

  it('no path trick reaches another file: traversal, encodings, case, suffixes, sub-paths (raw bytes)', async () => {
    const port = await serve(createStaticFiles());
    const tricks = [
      '/ui/../package.json', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui/..\\..\\package.json',
      '/ui/./app.js', '/ui//app.js', '/ui/APP.JS', '/ui/app.js/', '/ui/app.js%00', '/ui/app%2ejs', '/ui/sub/app.js',
      '/ui/index.html/../../../etc/passwd', '/ui/%252e%252e/package.json', '/ui/app.js.map', '/ui/.', '/ui/..',
    ];
    for (const t of tricks) expect((await get(port, t)).status, t).toBe(404);
  });

  it('serves only plain files of known types from its folder: no symlinks, sub-folders, dot files or other types', () => {
    const dir = scope.dir('kfetch-ui-');
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'a.js'), '1');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, 'a.js.map'), '{}');
    writeFileSync(join(dir, '.hidden.js'), '1');
    writeFileSync(join(dir, 'Upper.js'), '1');
    mkdirSync(join(dir, 'sub.js'));
    writeFileSync(join(dir, 'big.js'), Buffer.alloc(1024 * 1024 + 1));
    symlinkSync('/etc/hostname', join(dir, 'link.css'));
    expect(createStaticFiles(dir).names).toEqual(['a.js', 'index.html']);
  });

  it('refuses a folder without index.html', () => {
    const dir = scope.dir('kfetch-ui-');
    writeFileSync(join(dir, 'app.js'), '1');
    expect(() => createStaticFiles(dir)).toThrow(/no index.html/);
  });
});
