// The control API's front door: `/api/v1/*` and the page's `/ui/*`, on the box's own port (block-server.ts hands
// these paths here before its block routes) or on `--api-port`. In order: the remote address (loopback or
// --api-allow), the Host header (DNS rebinding), then for the API the route, the bearer token, and the handler.
// Every mutating call is logged with its outcome. Used by box-run.ts.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { apiHostAllowed } from './api-access.js';
import { apiError, sendError, sendJson } from './api-reply.js';
import { matchRoute, type ApiContext } from './api-routes.js';
import { bearerMatches } from './api-token.js';

/** The page's static files (static-files.ts). */
export interface StaticFiles {
  /** Answer `path` (below /ui/; '' is the page); false when there is no such file. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean;
}

export interface ApiServerOptions {
  api: ApiContext;
  token: string;
  /** Whether a remote address may use the API and the page (loopback, plus --api-allow). */
  allowed: (remote: string) => boolean;
  /** Host names accepted besides IP literals and localhost (--api-host). */
  hostNames: ReadonlySet<string>;
  /** An origin allowed to call from a browser page elsewhere (--api-cors); none by default. */
  corsOrigin?: string | undefined;
  ui?: StaticFiles | undefined;
  log: Logger;
}

export const API_PREFIX = '/api/v1';

/** Whether a request target is the API's or the page's (block-server.ts routes it here). */
export function isApiTarget(target: string): boolean {
  return target.startsWith('/api/') || target === '/api' || target.startsWith('/ui/') || target === '/ui' || target.startsWith('/ui?');
}

export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createApiHandler(o: ApiServerOptions): ApiHandler {
  return (req, res) => {
    res.on('error', () => undefined);
    const target = req.url ?? '';
    const remote = req.socket.remoteAddress ?? '';
    try {
      if (!o.allowed(remote)) throw apiError('KF_E_API_FORBIDDEN', 'this address may not use the control API (see --api-allow)');
      if (!apiHostAllowed(req.headers.host, o.hostNames)) throw apiError('KF_E_API_FORBIDDEN', 'Host header refused: use an IP address, localhost, or a name given with --api-host');
    } catch (err) {
      return sendError(res, err);
    }
    let url: URL;
    try {
      url = new URL(target, 'http://box');
    } catch {
      return sendError(res, apiError('KF_E_API_REQUEST', 'malformed request target'));
    }
    const path = url.pathname;
    if (path === '/ui' || path === '/api' || path === '/api/' || path === API_PREFIX || path === `${API_PREFIX}/`) {
      res.writeHead(302, { Location: '/ui/', 'Content-Length': 0 });
      return res.end();
    }
    if (path.startsWith('/ui/')) {
      if (o.ui?.handle(req, res, path.slice(4)) === true) return;
      return sendError(res, apiError('KF_E_API_NOT_FOUND', 'no such file'));
    }
    if (!path.startsWith(`${API_PREFIX}/`)) return sendError(res, apiError('KF_E_API_NOT_FOUND', `no route ${path.slice(0, 100)}`));
    const cors = corsHeaders(o.corsOrigin, req.headers.origin);
    const method = req.method ?? '';
    if (method === 'OPTIONS' && cors !== undefined) {
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, POST, PATCH, DELETE', 'Access-Control-Allow-Headers': 'Authorization, Content-Type, Last-Event-ID', 'Access-Control-Max-Age': '600', 'Content-Length': 0 });
      return res.end();
    }
    const m = matchRoute(method, path.slice(API_PREFIX.length));
    if (m === undefined) return sendError(res, apiError('KF_E_API_NOT_FOUND', `no route ${path.slice(0, 100)}`), cors);
    if ('allow' in m) return sendError(res, apiError('KF_E_API_METHOD', `${method.slice(0, 16)} is not allowed here`), { ...cors, Allow: m.allow.join(', ') });
    if (m.route.open !== true && !bearerMatches(req.headers.authorization, o.token)) {
      if (method !== 'GET') o.log.warn({ api: `${method} ${path.slice(0, 200)}`, remote }, 'api: refused, no valid token');
      return sendError(res, apiError('KF_E_API_AUTH', 'a valid bearer token is needed (Authorization: Bearer <token in <home>/api-token>)'), cors);
    }
    if (cors !== undefined) for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    const mutating = method !== 'GET' && method !== 'HEAD';
    Promise.resolve()
      .then(() => m.route.handle({ req, res, params: m.params, query: url.searchParams, api: o.api }))
      .then(
        () => {
          if (mutating) o.log.info({ api: `${method} ${path.slice(0, 200)}`, remote, status: res.statusCode }, 'api: done');
        },
        (err: unknown) => {
          if (!(err instanceof KfetchError)) o.log.error({ err: String(err), api: `${method} ${path.slice(0, 200)}` }, 'api: internal error');
          if (mutating) o.log.warn({ api: `${method} ${path.slice(0, 200)}`, remote, code: err instanceof KfetchError ? err.code : 'KF_E_INTERNAL' }, 'api: refused');
          sendError(res, err);
        },
      );
  };
}

function corsHeaders(allowed: string | undefined, origin: string | string[] | undefined): Record<string, string> | undefined {
  if (allowed === undefined || typeof origin !== 'string' || origin !== allowed) return undefined;
  return { 'Access-Control-Allow-Origin': allowed, Vary: 'Origin' };
}

/** The API on a port of its own (`--api-port`): only the API's and the page's paths answer. */
export async function startApiServer(handler: ApiHandler, host: string, port: number): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  // As the block server: a request (its body included) must arrive within the request timeout, checked often, so a
  // slow sender cannot hold a connection and its buffered bytes for ever (an event stream's GET is complete at once).
  const server = createServer(
    {
      headersTimeout: LIMITS.serverHeadersTimeoutMs,
      requestTimeout: LIMITS.serverRequestTimeoutMs,
      connectionsCheckingInterval: 1_000,
      keepAliveTimeout: 5_000,
    },
    (req, res) => {
      if (isApiTarget(req.url ?? '')) return handler(req, res);
      sendJson(res, 404, { v: 1, error: { code: 'KF_E_API_NOT_FOUND', message: 'this port answers /api/v1/ and /ui/ only' } });
    },
  );
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new KfetchError('KF_E_LISTEN', `cannot listen on ${host}:${port} for the API: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    server,
    url: `http://${h}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
