// Test clients that behave like the original 2015 Kascade peers on the wire (SPEC §6, issue 9), built from raw
// node:net requests so no HTTP library adds a header they do not send (no User-Agent at all):
// - announces: Python (`POST` urlencoded `progress=0.0&port=N`), first JavaScript (`GET` with a multipart body),
//   later JavaScript (`POST` multipart, progress as a bare number);
// - reply handling like the originals: every reply body is parsed as a JSON array and iterated; anything else
//   "crashes" (throws OriginalClientCrash), whatever the status;
// - the Python peer's life (0.0, then 1.0 about a second later, never again) and a restart loop (one version
//   re-announces 110–170 times in 1.5 s after a crash);
// - the Python downloader: only `feeder: true` peers, one block per request on a fresh connection with exactly
//   `Range: bytes=a-b`, `Content-Length: 0`, `Connection: close`; MD5 per block, SHA-256 of the file.
// Only loopback addresses are ever dialled.

import { createHash } from 'node:crypto';
import { connect } from 'node:net';

/** What the original peer does with a reply it cannot iterate: it dies. Tests assert this is never thrown. */
export class OriginalClientCrash extends Error {
  override name = 'OriginalClientCrash';
}

export interface RawReply {
  status: number;
  /** Header names lowercased. */
  headers: Record<string, string>;
  body: Buffer;
}

/** A peer entry as the originals read it. */
export interface OriginalPeer {
  ip: string;
  port: number;
  progress: number;
  feeder: boolean;
}

export type AnnounceStyle = 'python' | 'js-get-multipart' | 'js-post-multipart';

const LOOPBACK = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\])$/;

function assertLoopback(host: string): void {
  if (!LOOPBACK.test(host)) throw new Error(`original-client: refusing to dial ${host} (loopback only)`);
}

/**
 * Send `bytes` on a fresh connection and read the reply until the server closes (the request says
 * `Connection: close`) or `timeoutMs` passes. A reply cut after its head still resolves with what came.
 */
export function exchange(host: string, port: number, bytes: string | Buffer, timeoutMs = 5_000): Promise<RawReply> {
  assertLoopback(host);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host.replace(/^\[|\]$/g, ''), port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`original-client: no complete reply from ${host}:${port} in ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => chunks.push(d));
    const done = (): void => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`original-client: reply without a complete head: ${all.toString('latin1').slice(0, 200)}`));
      const [statusLine = '', ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (m === null) return reject(new Error(`original-client: bad status line ${JSON.stringify(statusLine)}`));
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = all.subarray(end + 4);
      const cl = headers['content-length'];
      if (cl !== undefined) body = body.subarray(0, Number(cl));
      resolve({ status: Number(m[1]), headers, body: Buffer.from(body) });
    };
    socket.on('close', done);
    // A reset after the reply (the server cutting an unread body) still leaves what we received.
    socket.on('error', () => undefined);
  });
}

/** Parse a reply the way the originals do: a JSON array of peer objects, or a crash. */
export function readLikeOriginal(reply: RawReply): OriginalPeer[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body.toString('utf8'));
  } catch {
    throw new OriginalClientCrash(`reply ${reply.status} is not JSON: ${reply.body.toString('utf8').slice(0, 100)}`);
  }
  if (!Array.isArray(parsed)) throw new OriginalClientCrash(`reply ${reply.status} is not an array: ${JSON.stringify(parsed).slice(0, 100)}`);
  return parsed.map((e: unknown) => {
    // The Python peer reads p['ip'], p['port'], p['feeder']: a missing key is a KeyError.
    if (typeof e !== 'object' || e === null) throw new OriginalClientCrash('reply entry is not an object');
    const o = e as Record<string, unknown>;
    if (typeof o.ip !== 'string' || typeof o.port !== 'number' || typeof o.feeder !== 'boolean') {
      throw new OriginalClientCrash(`reply entry lacks ip/port/feeder: ${JSON.stringify(o).slice(0, 100)}`);
    }
    return { ip: o.ip, port: o.port, progress: Number(o.progress), feeder: o.feeder };
  });
}

function multipart(fields: Array<[string, string]>, boundary: string): string {
  return (
    fields.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') + `--${boundary}--\r\n`
  );
}

/** The exact request bytes of one original announce (no User-Agent). */
export function announceBytes(trackerUrl: string, style: AnnounceStyle, port: string, progress: string): string {
  const u = new URL(trackerUrl);
  const target = `${u.pathname}${u.search}`;
  const head = (method: string, type: string, body: string): string =>
    `${method} ${target} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`;
  const boundary = '----kascade2015boundary';
  switch (style) {
    case 'python':
      return head('POST', 'application/x-www-form-urlencoded', `progress=${progress}&port=${port}`);
    case 'js-get-multipart':
      return head('GET', `multipart/form-data; boundary=${boundary}`, multipart([['port', port], ['progress', progress]], boundary));
    case 'js-post-multipart':
      return head('POST', `multipart/form-data; boundary=${boundary}`, multipart([['progress', progress], ['port', port]], boundary));
  }
}

/** Send raw request bytes to the tracker named by `trackerUrl`. */
export function sendToTracker(trackerUrl: string, bytes: string | Buffer, timeoutMs?: number): Promise<RawReply> {
  const u = new URL(trackerUrl);
  return exchange(u.hostname, Number(u.port), bytes, timeoutMs);
}

/** One original announce; returns the raw reply and the peers as the original reads them (or throws a crash). */
export async function originalAnnounce(
  trackerUrl: string,
  o: { style?: AnnounceStyle; port: number | string; progress: string },
): Promise<{ reply: RawReply; peers: OriginalPeer[] }> {
  const reply = await sendToTracker(trackerUrl, announceBytes(trackerUrl, o.style ?? 'python', String(o.port), o.progress));
  return { reply, peers: readLikeOriginal(reply) };
}

/** The Python peer's whole tracker life: `0.0` at start, `1.0` about `gapMs` later, never again. */
export async function pythonLife(trackerUrl: string, port: number, gapMs = 1_000): Promise<Array<{ reply: RawReply; peers: OriginalPeer[] }>> {
  const first = await originalAnnounce(trackerUrl, { port, progress: '0.0' });
  await new Promise((r) => setTimeout(r, gapMs));
  const second = await originalAnnounce(trackerUrl, { port, progress: '1.0' });
  return [first, second];
}

/**
 * The crash-restart loop: `count` announces of the same state spread over about `withinMs` (one after another),
 * failing if they take longer than `deadlineMs`. Throws OriginalClientCrash on the first reply it cannot iterate.
 */
export async function restartLoop(
  trackerUrl: string,
  o: { port: number; progress?: string; count?: number; withinMs?: number; deadlineMs?: number },
): Promise<Array<{ reply: RawReply; peers: OriginalPeer[] }>> {
  const count = o.count ?? 150;
  const spacing = (o.withinMs ?? 1_500) / count;
  const end = performance.now() + (o.deadlineMs ?? 20_000);
  const out = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (performance.now() > end) throw new Error(`restart loop: only ${i} of ${count} announces before the deadline`);
    const wait = start + i * spacing - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    out.push(await originalAnnounce(trackerUrl, { port: o.port, progress: o.progress ?? '0.0' }));
  }
  return out;
}

/** The exact block request of the Python downloader. */
export function pythonBlockRequest(host: string, port: number, filehash: string, first: number, last: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `GET /${filehash} HTTP/1.1\r\nHost: ${h}:${port}\r\nRange: bytes=${first}-${last}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}

export interface KascadeLike {
  filehash: string;
  filesize: number;
  blockhashes: Record<string, string[]>;
}

export interface PythonDownload {
  /** The feeders the downloader chose from (ip:port). */
  feeders: string[];
  /** SHA-256 of the assembled file (hex). */
  sha256: string;
  /** Blocks fetched per feeder. */
  servedBy: Record<string, number>;
}

/**
 * Download like the Python peer: announce `0.0` (python style) until a `feeder: true` peer is listed or
 * `waitForFeederMs` passes (then throw "no feeder"), fetch every block of `blockSize` from the feeders in turn
 * (one block per fresh connection), check each block's MD5 and the file's SHA-256, then announce `1.0`.
 */
export async function pythonDownload(
  trackerUrl: string,
  kascade: KascadeLike,
  o: { port: number; blockSize: number; waitForFeederMs?: number },
): Promise<PythonDownload> {
  const hashes = kascade.blockhashes[String(o.blockSize)];
  if (hashes === undefined) throw new Error(`kascade has no block size ${o.blockSize}`);
  const end = performance.now() + (o.waitForFeederMs ?? 10_000);
  let feeders: OriginalPeer[] = [];
  for (;;) {
    const { peers } = await originalAnnounce(trackerUrl, { port: o.port, progress: '0.0' });
    feeders = peers.filter((p) => p.feeder);
    if (feeders.length > 0) break;
    if (performance.now() > end) throw new Error(`no feeder listed (peers: ${JSON.stringify(peers)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const file = Buffer.alloc(kascade.filesize);
  const servedBy: Record<string, number> = {};
  for (let i = 0; i < hashes.length; i++) {
    const first = i * o.blockSize;
    const last = Math.min(first + o.blockSize, kascade.filesize) - 1;
    let got = false;
    for (let k = 0; k < feeders.length && !got; k++) {
      const f = feeders[(i + k) % feeders.length]!;
      const reply = await exchange(f.ip, f.port, pythonBlockRequest(f.ip, f.port, kascade.filehash, first, last));
      if (reply.status !== 206 || reply.body.length !== last - first + 1) continue;
      if (createHash('md5').update(reply.body).digest('hex') !== hashes[i]) continue;
      reply.body.copy(file, first);
      const key = `${f.ip}:${f.port}`;
      servedBy[key] = (servedBy[key] ?? 0) + 1;
      got = true;
    }
    if (!got) throw new Error(`block ${i}: no feeder served it with the right MD5`);
  }
  const sha256 = createHash('sha256').update(file).digest('hex');
  await originalAnnounce(trackerUrl, { port: o.port, progress: '1.0' });
  return { feeders: feeders.map((f) => `${f.ip}:${f.port}`), sha256, servedBy };
}
