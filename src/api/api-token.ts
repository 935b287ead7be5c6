// The control API's bearer token: made at the box's first start in <home>/api-token (mode 0600, 32 random bytes as
// base64url), read by `kfetch box` and the page's URL; compared in constant time. Used by api-server.ts and the CLI.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, openSync, readFileSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { KfetchError, fromFsError } from '../errors.js';

export const API_TOKEN_FILE = 'api-token';
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** The token in `home`, made (exclusively, mode 0600) when there is none. A token file others can read is made private. */
export function ensureApiToken(home: string): string {
  const path = join(home, API_TOKEN_FILE);
  try {
    const fd = openSync(path, 'wx', 0o600);
    const token = randomBytes(32).toString('base64url');
    try {
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(err, path, 'cannot create the API token');
  }
  const token = readApiToken(home);
  const fd = openSync(path, 'r');
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } finally {
    closeSync(fd);
  }
  return token;
}

/** The token kept in `home` (for `kfetch box`); a clear error when there is none or it is malformed. */
export function readApiToken(home: string): string {
  const path = join(home, API_TOKEN_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fromFsError(err, path, 'cannot read the API token (a box makes it at its first start)');
  }
  const token = text.trim();
  if (!TOKEN_RE.test(token)) throw new KfetchError('KF_E_API_AUTH', 'the API token file is malformed; delete it and restart the box to make a new one', { file: path });
  return token;
}

/** Whether an Authorization header carries `token` as a bearer token (constant time in the token's length). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || header.length > 200) return false;
  const m = /^Bearer +([A-Za-z0-9_-]+) *$/i.exec(header);
  if (m === null) return false;
  const given = Buffer.from(m[1]!);
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}
