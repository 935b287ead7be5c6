// `kfetch box …`'s client of a running box's control API: finds the box from <home>/box.json, reads the token
// from <home>/api-token, and calls /api/v1 (errors come back as the API's catalogue codes). Used by commands/box.ts.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readApiToken } from '../api/api-token.js';
import { BOX_INFO_FILE, type BoxInfo } from '../box/box-info.js';
import { ERROR_CATALOGUE, KfetchError, type ErrorCode } from '../errors.js';

const TIMEOUT_MS = 30_000;
/** Replies larger than this are refused (a page of 1,000 records is well under it). */
const REPLY_MAX_BYTES = 32 * 1024 * 1024;

export class BoxClient {
  private constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  /** The box running on `home`; KF_E_BOX_UNREACHABLE when there is none. */
  static open(home: string): BoxClient {
    const infoPath = join(home, BOX_INFO_FILE);
    let info: BoxInfo;
    try {
      info = JSON.parse(readFileSync(infoPath, 'utf8')) as BoxInfo;
    } catch {
      throw new KfetchError('KF_E_BOX_UNREACHABLE', `no seeding box runs on this home (no readable ${infoPath})`, { file: infoPath });
    }
    try {
      process.kill(info.pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw new KfetchError('KF_E_BOX_UNREACHABLE', `the box (pid ${info.pid}) is not running; ${infoPath} is stale`, { file: infoPath });
    }
    return new BoxClient(dialable(info.api ?? info.url), readApiToken(home));
  }

  /** The page's address with the token in its fragment (never sent to the server). */
  uiUrl(): string {
    return `${this.base}/ui/#token=${this.token}`;
  }

  async call<T>(method: string, path: string, body?: { bytes: Uint8Array; type: string }): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'Content-Type': body.type }) },
        ...(body === undefined ? {} : { body: body.bytes }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (err) {
      throw new KfetchError('KF_E_BOX_UNREACHABLE', `cannot reach the box at ${this.base}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const len = Number(res.headers.get('content-length') ?? '0');
    if (len > REPLY_MAX_BYTES) throw new KfetchError('KF_E_BOX_UNREACHABLE', `the box's reply is ${len} bytes, over ${REPLY_MAX_BYTES}`);
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new KfetchError('KF_E_BOX_UNREACHABLE', `the box answered ${res.status} with something that is not JSON`);
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; field?: string } }).error;
      const code = e?.code !== undefined && e.code in ERROR_CATALOGUE ? (e.code as ErrorCode) : 'KF_E_INTERNAL';
      const existing = (json as { existing?: unknown }).existing;
      throw new KfetchError(code, `${e?.message ?? `HTTP ${res.status}`}${typeof existing === 'string' ? ` (existing id ${existing})` : ''}`, e?.field === undefined ? {} : { field: e.field });
    }
    return json as T;
  }
}

/** A URL the box listens on, as one to dial: a wildcard address becomes loopback. */
function dialable(url: string): string {
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}
