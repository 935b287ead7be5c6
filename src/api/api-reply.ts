// The control API's replies and request bodies: JSON out (`{ v: 1, … }`), errors as `{ v: 1, error: { code,
// message } }` with the HTTP status of their catalogue code, bodies read within a cap. Used by api-server.ts and
// api-routes.ts.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { KfetchError, isKfetchError, type ErrorCode } from '../errors.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  KF_E_API_REQUEST: 400,
  KF_E_API_AUTH: 401,
  KF_E_API_FORBIDDEN: 403,
  KF_E_API_NOT_FOUND: 404,
  KF_E_API_METHOD: 405,
  KF_E_API_CONFLICT: 409,
  KF_E_API_TOO_LARGE: 413,
  KF_E_API_BUSY: 503,
};

/** The HTTP status for an error: its code's (a `.kascade` the parser refused is a 400), else 500. */
export function statusOf(err: unknown): number {
  if (!isKfetchError(err)) return 500;
  return STATUS[err.code] ?? (err.code.startsWith('KF_E_KASCADE_') || err.code === 'KF_E_INPUT' ? 400 : 500);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** Send `err` as the API's error shape (a bug's message is not shown: 500 says only that). */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = statusOf(err);
  const e = isKfetchError(err) && status !== 500 ? err : new KfetchError('KF_E_INTERNAL', 'internal error');
  const extra = e.field === undefined ? {} : { field: e.field };
  sendJson(res, status, { v: 1, error: { code: e.code, message: e.message, ...extra }, ...(e.detail ?? {}) }, {
    ...(status === 401 ? { 'WWW-Authenticate': 'Bearer realm="kfetch"' } : {}),
    ...headers,
  });
}

export function apiError(code: ErrorCode, message: string, field?: string): KfetchError {
  return new KfetchError(code, message, field === undefined ? {} : { field });
}

/**
 * Bytes of request bodies held at once over all requests that share it: a body takes its bytes as they arrive and
 * gives them back when done, so memory stays bounded however many callers send at once, and a slow sender holds
 * only the bytes it sent (never a turn the others wait for).
 */
export class BodyBudget {
  private held = 0;
  constructor(readonly maxBytes: number) {}
  take(n: number): boolean {
    if (this.held + n > this.maxBytes) return false;
    this.held += n;
    return true;
  }
  give(n: number): void {
    this.held = Math.max(0, this.held - n);
  }
}

/**
 * The request body, at most `maxBytes` (413 past it, counted as it arrives: never buffered whole first). With a
 * `budget`, its bytes are taken from it as they arrive (503 when it has none left); the caller gives back the
 * body's length when done with it (on an error they are given back here).
 */
export async function readBody(req: IncomingMessage, maxBytes: number, signal?: AbortSignal, budget?: BodyBudget): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > maxBytes) throw apiError('KF_E_API_TOO_LARGE', `body of ${declared} bytes; at most ${maxBytes}`);
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw apiError('KF_E_API_REQUEST', 'request aborted');
      if (n + chunk.length > maxBytes) {
        req.resume(); // drain the rest without keeping it
        throw apiError('KF_E_API_TOO_LARGE', `body over ${maxBytes} bytes`);
      }
      if (budget !== undefined && !budget.take(chunk.length)) {
        req.resume();
        throw apiError('KF_E_API_BUSY', 'other uploads hold the memory for request bodies now; try again in a moment');
      }
      n += chunk.length;
      parts.push(chunk);
    }
  } catch (err) {
    budget?.give(n);
    throw err;
  }
  return Buffer.concat(parts, n);
}

/** A JSON object body (400 naming what is wrong otherwise). */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw apiError('KF_E_API_REQUEST', 'body is not valid JSON', 'body');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw apiError('KF_E_API_REQUEST', 'body must be a JSON object', 'body');
  return v as Record<string, unknown>;
}
