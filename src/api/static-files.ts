// The box's web page files under `/ui/`: exactly the files of src/api/ui/ (index.html, app.js, style.css and the
// page's modules), read once at start into a fixed table, served by name lookup — a request path is never joined
// to a file-system path, so no `..`, encoding or symlink trick reaches another file. Used by the API server.

import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Served file types by extension; files of other types in the folder are not served. */
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
};
/** A served file's name: lower-case word characters and dashes, one extension. */
const NAME = /^[a-z0-9][a-z0-9-]*\.([a-z]+)$/;
/** The page folder is small; a larger one means the wrong folder was found. */
const MAX_FILES = 64;
const MAX_FILE_BYTES = 1024 * 1024;

/** Headers every page file carries: the page runs no inline script or style and talks to its own origin only. */
export const UI_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-cache',
  // Never framed: another site could overlay the page (the token prompt, the buttons) in a frame of its own.
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

interface UiFile {
  body: Buffer;
  type: string;
  etag: string;
}

export interface StaticFiles {
  /**
   * Answers `req` for `path` (the part after `/ui/`, a query ignored; '' is index.html) and returns true, or returns false without
   * touching `res` when no such file is served (the caller answers 404).
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean;
  /** The served names, sorted (for tests and the OpenAPI document). */
  readonly names: readonly string[];
}

/**
 * The page folder: src/api/ui under the package root, found by walking up from this module, so it works from the
 * source tree (src/api/) and from the build (dist/src/api/). `package.json` `files` lists src/api/ui for npm.
 */
export function uiFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'src', 'api', 'ui');
    if (existsSync(join(candidate, 'index.html')) && existsSync(join(dir, 'package.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('the web page folder src/api/ui was not found above the running module');
}

export function createStaticFiles(folder: string = uiFolder()): StaticFiles {
  const files = new Map<string, UiFile>();
  for (const name of readdirSync(folder).sort()) {
    const m = NAME.exec(name);
    const type = m ? TYPES[m[1]!] : undefined;
    if (type === undefined) continue;
    const path = join(folder, name);
    const st = lstatSync(path); // a symlink is not followed: the page is the folder's own files
    if (!st.isFile() || st.size > MAX_FILE_BYTES) continue;
    if (files.size >= MAX_FILES) throw new Error(`the web page folder ${folder} holds over ${MAX_FILES} files`);
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(name, { body, type, etag });
  }
  if (!files.has('index.html')) throw new Error(`the web page folder ${folder} has no index.html`);

  return {
    names: [...files.keys()],
    handle(req, res, path) {
      const q = path.indexOf('?');
      const name = q < 0 ? path : path.slice(0, q);
      const file = files.get(name === '' ? 'index.html' : name);
      if (file === undefined) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8', ...UI_HEADERS });
        res.end('method not allowed\n');
        return true;
      }
      const headers = { ...UI_HEADERS, ETag: file.etag };
      if (etagMatches(req.headers['if-none-match'], file.etag)) {
        res.writeHead(304, headers);
        res.end();
        return true;
      }
      res.writeHead(200, { ...headers, 'Content-Type': file.type, 'Content-Length': String(file.body.length) });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return true;
    },
  };
}

/** RFC 9110 If-None-Match: `*` or a comma list of (weak or strong) tags, compared weakly. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
