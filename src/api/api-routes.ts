// The control API's routes (docs/api.md): one table of method + path template + handler, matched by segments. The
// OpenAPI document (openapi.ts) describes exactly this table (a test checks both ways). Used by api-server.ts.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BoxEntry } from '../box/entry-registry.js';
import { ENTRY_STATES } from '../box/entry-state.js';
import type { SeedBox } from '../box/seed-box.js';
import type { Engine } from '../client/engine.js';
import { LIMITS } from '../limits.js';
import type { ClientUpload } from '../server/upload-tally.js';
import { canonicalIp } from '../util/address-policy.js';
import { parsePeerAddress } from '../util/peer-address.js';
import { apiError, BodyBudget, parseJsonObject, readBody, sendJson } from './api-reply.js';
import { kascadeRecord, pick, RECORD_KEYS, type RecordSources } from './kascade-record.js';
import { openApiDocument } from './openapi.js';
import { parseSettingsPatch, type BoxSettings, type SettingsControl } from './settings.js';

/** The event stream, as the routes and the publisher use it (event-hub.ts's EventHub). */
export interface EventStream {
  attach(req: IncomingMessage, res: ServerResponse): boolean;
  publish(type: string, data: unknown, key?: string): void;
  stats(): { clients: number };
}

/** What the handlers work with. */
export interface ApiContext extends RecordSources {
  box: SeedBox;
  engine: Engine;
  hub: EventStream;
  settings: SettingsControl;
  log: Logger;
  /** The `box.stats` record. */
  stats: () => unknown;
  /** Client addresses we served for a swarm lately (the block server's upload tally). */
  uploads: (swarmId: string) => ClientUpload[];
}

export interface RouteCall {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  api: ApiContext;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Under /api/v1, with `{name}` segments. */
  path: string;
  /** Needs no token (the OpenAPI document only). */
  open?: boolean;
  handle: (c: RouteCall) => Promise<void> | void;
}

/** A JSON body at most this large (settings); a kascade body may be as large as a kascade file. */
const JSON_BODY_MAX = 16 * 1024;
const LIST_LIMIT_DEFAULT = 100;
const LIST_LIMIT_MAX = 1000;
const ID_RE = /^[0-9a-f]{16}$/;

function entryOf(c: RouteCall): BoxEntry {
  const id = c.params.id!;
  if (!ID_RE.test(id)) throw apiError('KF_E_API_REQUEST', 'a kascade id is 16 lowercase hex digits', 'id');
  const e = c.api.box.entries.ofId(id);
  if (e === undefined) throw apiError('KF_E_API_NOT_FOUND', `no kascade ${id} in the box`, 'id');
  return e;
}

function boolParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1' || v === '') return true;
  throw apiError('KF_E_API_REQUEST', `${name} must be true or false`, name);
}

function record(c: RouteCall, e: BoxEntry): unknown {
  return { v: 1, kascade: kascadeRecord(e, c.api) };
}

function listKascades(c: RouteCall): void {
  const q = c.query;
  const states = q.get('state');
  let wanted: Set<string> | undefined;
  if (states !== null && states !== '') {
    wanted = new Set(states.split(','));
    for (const s of wanted) if (!(ENTRY_STATES as readonly string[]).includes(s)) throw apiError('KF_E_API_REQUEST', `unknown state ${JSON.stringify(s.slice(0, 40))}`, 'state');
  }
  const limitText = q.get('limit');
  const limit = limitText === null ? LIST_LIMIT_DEFAULT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) throw apiError('KF_E_API_REQUEST', `limit must be an integer from 1 to ${LIST_LIMIT_MAX}`, 'limit');
  const cursor = q.get('cursor');
  if (cursor !== null && !ID_RE.test(cursor)) throw apiError('KF_E_API_REQUEST', 'cursor must be a value of `next` from an earlier page', 'cursor');
  const fieldsText = q.get('fields');
  let fields: string[] | undefined;
  if (fieldsText !== null && fieldsText !== '') {
    fields = fieldsText.split(',');
    if (fields.length > RECORD_KEYS.length) throw apiError('KF_E_API_REQUEST', 'too many fields', 'fields');
    for (const f of fields) if (!RECORD_KEYS.includes(f)) throw apiError('KF_E_API_REQUEST', `unknown field ${JSON.stringify(f.slice(0, 40))}`, 'fields');
  }
  const entries = c.api.box.entries;
  let total = 0;
  if (wanted === undefined) total = entries.size;
  else for (const e of entries.values()) if (wanted.has(e.state)) total++;
  const page: BoxEntry[] = [];
  let more = false;
  for (const e of entries.inIdOrder(cursor ?? undefined)) {
    if (wanted !== undefined && !wanted.has(e.state)) continue;
    if (page.length === limit) {
      more = true;
      break;
    }
    page.push(e);
  }
  const next = more ? page[page.length - 1]!.id : null;
  sendJson(c.res, 200, { v: 1, items: page.map((e) => pick(kascadeRecord(e, c.api), fields)), next, total });
}

/**
 * Kascade bodies (each up to 64 MiB) held at once over all POSTs: memory stays bounded whatever the callers do, and
 * a slow sender holds only its own bytes, never a turn the other POSTs wait for (bodies are read concurrently).
 */
const kascadeBodies = new BodyBudget(2 * LIMITS.kascadeMaxBytes);
/** One add at a time once its body is in: the filehash check, the write and the take-in never interleave. */
let adding: Promise<unknown> = Promise.resolve();

async function addKascade(c: RouteCall): Promise<void> {
  const paused = boolParam(c.query, 'paused');
  const body = await readBody(c.req, LIMITS.kascadeMaxBytes, undefined, kascadeBodies);
  let entry: BoxEntry;
  try {
    if (body.length === 0) throw apiError('KF_E_API_REQUEST', 'the body must be a .kascade file', 'body');
    const turn = adding.then(() => c.api.box.addKascade(body, { paused }));
    adding = turn.catch(() => undefined);
    entry = await turn;
  } finally {
    kascadeBodies.give(body.length);
  }
  sendJson(c.res, 201, { v: 1, id: entry.id, file: entry.path.slice(entry.path.lastIndexOf('/') + 1), kascade: kascadeRecord(entry, c.api) }, {
    Location: `/api/v1/kascades/${entry.id}`,
  });
}

/**
 * The peers of a kascade: those its download fetches from (ip:port, while downloading) and the client addresses we
 * served it to lately (source `incoming`, address only: their ports are ephemeral). A client at the address of
 * exactly one download peer is shown on that peer's row.
 */
/** The canonical IP of a peer key (`ip:port`, `[v6]:port`); the text itself for a host name. */
function hostOf(addr: string): string {
  const p = parsePeerAddress(addr);
  return 'key' in p ? (canonicalIp(p.host) ?? p.host) : addr;
}

function peers(c: RouteCall): void {
  const e = entryOf(c);
  const session = e.state === 'downloading' && e.rowId !== undefined ? c.api.engine.session(e.rowId) : undefined;
  const down = session?.peerViews() ?? [];
  const up = e.kascade === undefined ? [] : c.api.uploads(e.kascade.swarmId);
  const byHost = new Map<string, number>();
  for (const p of down) {
    const h = hostOf(p.address);
    byHost.set(h, (byHost.get(h) ?? 0) + 1);
  }
  const upOf = new Map(up.map((u) => [canonicalIp(u.address) ?? u.address, u]));
  const list = down.map((p) => {
    const h = hostOf(p.address);
    const u = byHost.get(h) === 1 ? upOf.get(h) : undefined;
    if (u !== undefined) upOf.delete(h);
    return { ...p, upRate: u?.rate ?? 0, uploadedBytes: u?.bytes ?? 0 };
  });
  for (const u of upOf.values()) {
    list.push({ address: u.address, source: 'incoming', downRate: 0, downloadedBytes: 0, wireBytes: 0, share: null, inFlight: 0, latencyMs: null, badBlocks: 0, banned: null, upRate: u.rate, uploadedBytes: u.bytes });
  }
  sendJson(c.res, 200, { v: 1, peers: list });
}

function blocks(c: RouteCall): void {
  const e = entryOf(c);
  const format = c.query.get('format') ?? 'runs';
  if (format !== 'runs') throw apiError('KF_E_API_REQUEST', 'format must be runs', 'format');
  const k = e.kascade;
  const bs = e.blockSize;
  if (k === undefined || bs === undefined) return sendJson(c.res, 200, { v: 1, blocks: 0, runs: [] });
  const n = k.geometry(bs).count;
  const session = e.state === 'downloading' && e.rowId !== undefined ? c.api.engine.session(e.rowId) : undefined;
  let runs: [string, number][];
  if (session !== undefined) runs = session.blockRuns();
  else if (e.state === 'seeding') runs = n === 0 ? [] : [['h', n]];
  else runs = runsOfRow(c.api.engine, e, n);
  sendJson(c.res, 200, { v: 1, blocks: n, runs });
}

/** The durable blocks recorded in the state, as runs (an entry not downloading now). */
function runsOfRow(engine: Engine, e: BoxEntry, n: number): [string, number][] {
  const row = e.kascade === undefined ? undefined : engine.db.getBySwarmId(e.kascade.swarmId);
  const out: [string, number][] = [];
  for (let i = 0; i < n; i++) {
    const c = row !== undefined && row.blockCount === n && row.complete.has(i) ? 'h' : 'm';
    const last = out[out.length - 1];
    if (last !== undefined && last[0] === c) last[1]++;
    else out.push([c, 1]);
  }
  return out;
}

function audit(c: RouteCall, e: BoxEntry, what: string): void {
  c.api.log.info({ api: `${c.req.method} ${c.req.url?.slice(0, 200)}`, remote: c.req.socket.remoteAddress, file: e.path }, `api: ${what}`);
}

async function patchSettings(c: RouteCall): Promise<void> {
  const patch = parseSettingsPatch(parseJsonObject(await readBody(c.req, JSON_BODY_MAX)));
  const now: BoxSettings = c.api.settings.set(patch);
  c.api.log.info({ api: 'PATCH /api/v1/settings', remote: c.req.socket.remoteAddress, settings: now }, 'api: settings changed');
  sendJson(c.res, 200, { v: 1, ...now });
}

/** `POST /kascades/{id}/<name>`: audited, then `act`; answers the record as it is then. */
function action(name: string, status: 200 | 202, act: (box: SeedBox, e: BoxEntry) => void | Promise<void>): Route {
  return {
    method: 'POST',
    path: `/kascades/{id}/${name}`,
    handle: async (c) => {
      const e = entryOf(c);
      audit(c, e, name);
      await act(c.api.box, e);
      sendJson(c.res, status, record(c, e));
    },
  };
}

export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/kascades', handle: listKascades },
  { method: 'POST', path: '/kascades', handle: addKascade },
  { method: 'GET', path: '/kascades/{id}', handle: (c) => sendJson(c.res, 200, record(c, entryOf(c))) },
  {
    method: 'DELETE',
    path: '/kascades/{id}',
    handle: async (c) => {
      const e = entryOf(c);
      const deleteData = boolParam(c.query, 'deleteData');
      audit(c, e, deleteData ? 'remove with its data' : 'remove');
      const r = await c.api.box.remove(e, { deleteData });
      sendJson(c.res, 200, { v: 1, id: e.id, deletedData: r.deletedData });
    },
  },
  { method: 'GET', path: '/kascades/{id}/peers', handle: peers },
  { method: 'GET', path: '/kascades/{id}/blocks', handle: blocks },
  action('pause', 200, (box, e) => box.pause(e)),
  action('resume', 200, (box, e) => box.resume(e)),
  action('verify', 202, (box, e) => box.verifyNow(e)),
  action('reannounce', 202, (box, e) => box.reannounce(e)),
  { method: 'GET', path: '/settings', handle: (c) => sendJson(c.res, 200, { v: 1, ...c.api.settings.get() }) },
  { method: 'PATCH', path: '/settings', handle: patchSettings },
  { method: 'GET', path: '/stats', handle: (c) => sendJson(c.res, 200, c.api.stats()) },
  {
    method: 'GET',
    path: '/events',
    handle: (c) => {
      // HEAD gets the headers only: attached, it would hold a stream slot for ever with nothing ever sent.
      if (c.req.method === 'HEAD') return void c.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' }).end();
      c.api.hub.attach(c.req, c.res);
    },
  },
  { method: 'GET', path: '/openapi.json', open: true, handle: (c) => sendJson(c.res, 200, openApiDocument()) },
];

/** The route for `method` and `path` (below /api/v1), its parameters, or the methods the path takes (405). */
export function matchRoute(method: string, path: string): { route: Route; params: Record<string, string> } | { allow: string[] } | undefined {
  const segs = path.split('/');
  const allow: string[] = [];
  for (const r of ROUTES) {
    const t = r.path.split('/');
    if (t.length !== segs.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < t.length && ok; i++) {
      const ts = t[i]!;
      if (ts.startsWith('{')) {
        if (segs[i] === '') ok = false;
        else params[ts.slice(1, -1)] = segs[i]!;
      } else if (ts !== segs[i]) ok = false;
    }
    if (!ok) continue;
    if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, params };
    allow.push(r.method);
  }
  return allow.length > 0 ? { allow } : undefined;
}
