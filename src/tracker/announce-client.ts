// One announce to a Kascade tracker (SPEC §2) over undici: urlencoded POST, no redirects, no compression,
// a capped reply, idle and total deadlines. Maps every failure to a KfetchError code. Used by announcer.ts.

import { request, type Dispatcher } from 'undici';
import { KfetchError, isKfetchError } from '../errors.js';
import { linkedDeadline } from '../util/linked-deadline.js';
import { LIMITS } from '../limits.js';
import { isLoopbackHost } from '../util/address-policy.js';
import { policedDispatcher } from '../peer/dial-guard.js';
import type { PeerInfo } from '../peer/peer-info.js';
import type { Bitfield } from '../util/bitfield.js';
import { VERSION } from '../version.js';
import { retryAfterMs } from './backoff.js';
import type { AnnounceEvent } from './parse-announce.js';
import { OverlongReplyReader, parseTrackerReply, type ParseReplyOptions } from './parse-reply.js';

/** Bounds of one announce; each defaults to the LIMITS constant of the same name. */
export interface AnnounceLimits {
  trackerReplyMaxBytes: number;
  trackerReplyReadMaxBytes: number;
  trackerIdleTimeoutMs: number;
  trackerTotalTimeoutMs: number;
  announceIntervalMinMs: number;
  announceIntervalMaxMs: number;
  announceIntervalDefaultMs: number;
  peersPerReply: number;
  trackerDefaultBackoffMs: number;
}

export interface AnnounceRequest {
  /** The tracker URL from the .kascade (`http://HOST:PORT/peers/<filehash>.json`). */
  url: string;
  /** The port our block server listens on. */
  port: number;
  /** Fraction held, 0..1. */
  progress: number;
  /** Address to be listed under, if not the one the tracker sees. */
  ip?: string;
  /** Extension: our bitfield at one block size. */
  blocks?: { blockSize: number; bitfield: Bitfield };
  event?: AnnounceEvent;
  /** 64 hex. */
  peerId?: string;
  /** Extension (issue 14): the port our binary peer wire listens on (sent as `wire`; HTTP only, see udp-announce-client.ts). */
  wirePort?: number;
  signal?: AbortSignal;
  /** Idle (no byte) and total deadlines; default LIMITS.trackerIdleTimeoutMs / trackerTotalTimeoutMs. */
  timeouts?: { idleMs?: number; totalMs?: number };
  limits?: Partial<AnnounceLimits>;
  /** undici dispatcher (default: the global one). */
  dispatcher?: Dispatcher;
}

export interface AnnounceResult {
  peers: PeerInfo[];
  /** When to announce next (the tracker's interval, clamped, or the default). */
  intervalMs: number;
  /** Reply entries refused by validation. */
  dropped: number;
  /** The tracker's `warning`, if it sent one. */
  warning?: string;
}

/** Bytes of a non-200 reply read to find its JSON error text. */
const ERROR_BODY_MAX = 16 * 1024;

/**
 * Announce once and return the validated peers.
 * @throws KfetchError KF_E_TRACKER_BACKOFF (403; detail.retryAfterMs), KF_E_TRACKER_REFUSED (other non-200,
 * redirects, `failure reason`), KF_E_TRACKER_UNREACHABLE (connection errors, timeouts), KF_E_TRACKER_RESPONSE
 * (encoded, not a peer list, or over the cap without one complete entry); the caller's abort reason if `signal` aborts.
 */
export async function announce(req: AnnounceRequest): Promise<AnnounceResult> {
  const limits: AnnounceLimits = { ...LIMITS, ...req.limits };
  const idleMs = req.timeouts?.idleMs ?? limits.trackerIdleTimeoutMs;
  const totalMs = req.timeouts?.totalMs ?? limits.trackerTotalTimeoutMs;
  let url: URL;
  try {
    url = new URL(req.url);
  } catch (err) {
    throw new KfetchError('KF_E_INPUT', `tracker URL is not a URL: ${req.url}`, { field: 'tracker', cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KfetchError('KF_E_INPUT', `tracker URL must be http(s): ${req.url}`, { field: 'tracker' });
  }
  const where = url.origin;

  // One signal per announce, linked by hand (util/linked-deadline.ts: AbortSignal.any leaks on Node 20).
  const link = linkedDeadline(req.signal, totalMs, () => new DOMException(`announce did not finish within ${totalMs} ms`, 'TimeoutError'));
  const signal = link.signal;
  try {
    const { statusCode, headers, body } = await request(url, {
      method: 'POST',
      body: formBody(req),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'user-agent': `kfetch/${VERSION}`,
      },
      signal,
      headersTimeout: idleMs,
      bodyTimeout: idleMs,
      dispatcher: req.dispatcher ?? policedDispatcher(),
    });
    // undici 7's request() follows no redirects (that needs the redirect interceptor); a 3xx is a failure below.
    if (statusCode !== 200) {
      const text = await readCapped(body, ERROR_BODY_MAX);
      const { reason, field } = errorText(text);
      if (statusCode === 403) {
        const retryAfter = retryAfterMs(header(headers['retry-after']), Date.now(), {
          defaultMs: limits.trackerDefaultBackoffMs,
          minMs: 1000,
          maxMs: limits.announceIntervalMaxMs,
        });
        throw new KfetchError('KF_E_TRACKER_BACKOFF', `tracker ${where} asks to wait ${Math.round(retryAfter / 1000)} s${reason}`, {
          detail: { status: 403, retryAfterMs: retryAfter },
        });
      }
      throw new KfetchError('KF_E_TRACKER_REFUSED', `tracker ${where} answered ${statusCode}${reason}`, {
        detail: { status: statusCode },
        ...(field === undefined ? {} : { field }),
      });
    }
    const encoding = header(headers['content-encoding']);
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      discard(body);
      throw new KfetchError('KF_E_TRACKER_RESPONSE', `tracker ${where} sent an encoded reply (${encoding})`);
    }
    const headerInterval = header(headers['x-kascade-interval']);
    const parseOpts: ParseReplyOptions = {
      allowLoopback: isLoopbackHost(url.hostname),
      peersPerReply: limits.peersPerReply,
      intervalMinMs: limits.announceIntervalMinMs,
      intervalMaxMs: limits.announceIntervalMaxMs,
      intervalDefaultMs: limits.announceIntervalDefaultMs,
      blocksBudget: limits.trackerReplyMaxBytes,
      ...(headerInterval === undefined ? {} : { headerInterval }),
    };
    return await readReply(body, parseOpts, limits);
  } catch (err) {
    if (req.signal?.aborted === true) throw req.signal.reason;
    if (isKfetchError(err)) throw err;
    if (link.timedOut()) {
      throw new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} did not finish within ${totalMs} ms`, { cause: err });
    }
    const code = (err as { code?: unknown } | undefined)?.code;
    const what = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
    throw new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} unreachable (${what})`, { cause: err });
  } finally {
    link.release();
  }
}

/** The urlencoded form SPEC §2 names, plus kfetch's extension fields. */
export function formBody(req: Pick<AnnounceRequest, 'port' | 'progress' | 'ip' | 'blocks' | 'event' | 'peerId' | 'wirePort'>): string {
  const form = new URLSearchParams();
  form.set('port', String(req.port));
  form.set('progress', progressText(req.progress));
  if (req.ip !== undefined) form.set('ip', req.ip);
  if (req.blocks !== undefined) {
    form.set('blocks', req.blocks.bitfield.toHex());
    form.set('blocksize', String(req.blocks.blockSize));
  }
  if (req.event !== undefined) form.set('event', req.event);
  if (req.peerId !== undefined) form.set('id', req.peerId);
  // Not with port 0 (nothing is listed) nor with stopped (the record goes): only where the tracker keeps it.
  if (req.wirePort !== undefined && req.port !== 0 && req.event !== 'stopped') form.set('wire', String(req.wirePort));
  return form.toString();
}

/** Canonical decimal 0..1 with at most 6 places (never exponent notation, which trackers may refuse). */
export function progressText(progress: number): string {
  const p = Number.isFinite(progress) ? Math.min(Math.max(progress, 0), 1) : 0;
  return p.toFixed(6).replace(/\.?0+$/, '') || '0';
}

/** Drop a body we will not read; undici's body emits an abort error on destroy, which nobody needs. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Read and parse a 200 reply. Up to trackerReplyMaxBytes it is buffered and parsed whole. A longer one (issue 10
 * point 11: a swarm poisoned with huge bitfields, on a tracker that does not budget its replies) is read on as a
 * stream of entries, up to trackerReplyReadMaxBytes, keeping the complete entries (OverlongReplyReader): an
 * oversized entry loses its own place, not the honest peers around it. Memory stays within the cap plus one entry.
 */
async function readReply(body: Dispatcher.ResponseData['body'], opts: ParseReplyOptions, limits: AnnounceLimits): Promise<AnnounceResult> {
  const cap = limits.trackerReplyMaxBytes;
  const chunks: Buffer[] = [];
  let total = 0;
  let reader: OverlongReplyReader | undefined;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (reader === undefined && total <= cap) {
      chunks.push(chunk);
      continue;
    }
    let enough = false;
    if (reader === undefined) {
      reader = new OverlongReplyReader(opts);
      for (const c of chunks.splice(0)) enough ||= reader.push(c);
    }
    const room = limits.trackerReplyReadMaxBytes - (total - chunk.length);
    if (!enough) enough = reader.push(room < chunk.length ? chunk.subarray(0, Math.max(0, room)) : chunk);
    if (enough || total >= limits.trackerReplyReadMaxBytes) {
      discard(body);
      break;
    }
  }
  if (reader !== undefined) return reader.finish(Math.min(total, limits.trackerReplyReadMaxBytes), cap);
  return parseTrackerReply(Buffer.concat(chunks, total), opts);
}

/** Read a body up to `max` bytes (an error reply's JSON reason); past it, destroy the stream and keep what fit. */
async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (total + chunk.length > max) {
      discard(body);
      chunks.push(chunk.subarray(0, max - total));
      total = max;
      break;
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(chunks, total);
}

/** `: <error text>` from a JSON `{"error": ..., "field"?: ...}` body (else ''), and the announce field it names. */
function errorText(body: Buffer): { reason: string; field?: string } {
  try {
    const o = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof o === 'object' && o !== null) {
      const r = o as Record<string, unknown>;
      const e = r.error ?? r['failure reason'];
      if (typeof e === 'string') {
        // Only the names of announce fields, so a tracker cannot put arbitrary text in `field`.
        const field = typeof r.field === 'string' && ANNOUNCE_FIELDS.has(r.field) ? r.field : undefined;
        return { reason: `: ${e.slice(0, 200)}`, ...(field === undefined ? {} : { field }) };
      }
    }
  } catch {
    // not JSON: no reason to quote
  }
  return { reason: '' };
}

const ANNOUNCE_FIELDS: ReadonlySet<string> = new Set(['port', 'progress', 'ip', 'blocks', 'blocksize', 'event', 'id', 'wire']);
