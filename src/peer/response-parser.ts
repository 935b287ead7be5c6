// The peer's answer to one Range GET, read as a pure state machine: bytes in (as the socket delivers them, split
// anywhere), a verdict out — read more, done, or a per-peer problem. `range-client.ts` feeds it from the socket;
// tests and fuzzers feed it bytes directly. Only what a block fetch needs: a 206 with Content-Length (or, on a
// connection the peer closes, a body delimited by the close), the body copied straight into the caller's slot.
//
// The original 2015 Python peer (SPEC §6) is read as well: its 206 is HTTP/1.0 with `Range: bytes=a-b/size` in
// place of Content-Range and then a close, and its 404 has a head that never ends (no blank line) before the
// close; a head cut off by the close is read as the status its status line names (see `cutOff`).
//
// The verdict never depends on where the bytes were split: bytes after a complete Content-Length body end the
// exchange the same way whether they came in the same read or a later one (done, the connection not reused).
// The body phase allocates nothing: verdicts for "more" and "done" are shared constants.

import type { ErrorCode } from '../errors.js';

/** `fewer`: the peer's own head says it sends fewer bytes than asked (it has only part of the range). */
export interface Problem {
  code: ErrorCode;
  message: string;
  status?: number;
  fewer?: number;
  cause?: unknown;
}

export type Verdict =
  | { readonly kind: 'more' }
  /** The body is complete; `reuse`: the connection may carry the next request (keep-alive, nothing unasked-for). */
  | { readonly kind: 'done'; readonly reuse: boolean }
  | { readonly kind: 'fail'; readonly problem: Problem };

const MORE: Verdict = Object.freeze({ kind: 'more' });
const DONE_REUSE: Verdict = Object.freeze({ kind: 'done', reuse: true });
const DONE_CLOSE: Verdict = Object.freeze({ kind: 'done', reuse: false });

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** The status line at the start of a head, when at least that much arrived (it may lack its CRLF at EOF). */
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?:[ \r]|$)/;
/** A `Content-Range: bytes a-b/size` value. */
const CONTENT_RANGE = /^bytes (\d{1,16})-(\d{1,16})\/(?:\d{1,16}|\*)$/;
/** The original peer's `Range: bytes=a-b/size` response header (unit and size optional). */
const RANGE_ECHO = /^(?:bytes[= ])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/;

type Phase = 'idle' | 'head' | 'body' | 'over';

/** Reads one response at a time; `begin` starts the next. */
export class ResponseParser {
  private readonly maxHead: number;
  private phase: Phase = 'idle';
  private first = 0;
  private last = 0;
  private want = 0;
  private into: Buffer = Buffer.alloc(0);
  private head: Buffer[] = [];
  private headBytes = 0;
  private got = 0;
  /** Set by each head (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`). */
  private keepAlive = true;
  /** The 206 has no Content-Length and the peer closes after it: the body ends at EOF and must be exactly `want`. */
  private closeDelimited = false;
  /**
   * The last head's `X-Kascade-Wire` value (a kfetch seeder's peer wire port, docs/spec-peer-wire.md), raw and
   * unchecked (wirePeerFrom validates it); undefined when that head had none. Read from the header map the head
   * parse builds anyway: nothing on the body path.
   */
  wireAdvert: string | undefined;

  /** `maxHeadBytes`: a response head (status line + headers) longer than this is refused. */
  constructor(maxHeadBytes: number) {
    this.maxHead = maxHeadBytes;
  }

  /** Expect the answer to `Range: bytes=first-last`; its body goes to `into[0, last-first+1)`. */
  begin(first: number, last: number, into: Buffer): void {
    this.phase = 'head';
    this.first = first;
    this.last = last;
    this.want = last - first + 1;
    this.into = into;
    this.head = [];
    this.headBytes = 0;
    this.got = 0;
    this.closeDelimited = false;
  }

  /** Body bytes copied into the slot so far. */
  get bodyBytes(): number {
    return this.got;
  }

  /**
   * Where the next socket read may land in place: the rest of the slot but its last byte while a Content-Length
   * body is being read (the read then fills at most the bytes still wanted, so nothing past the range can land
   * there), else undefined (head, close-delimited body, the last byte, done: read into the shared buffer and
   * `feed` it). The range client hands this to the socket so body bytes are never copied (issue 11: the copy from
   * the read buffer into a SharedArrayBuffer slot cost about 1 CPU-s per GiB). The last byte is always fed, so bytes
   * past the body that arrive with it are seen as before (done, not reused) and never left on a connection handed
   * to the next request.
   */
  inPlaceWindow(): Buffer | undefined {
    if (this.phase !== 'body' || this.closeDelimited || this.want - this.got <= 1) return undefined;
    return this.into.subarray(this.got, this.want - 1);
  }

  /**
   * `n` body bytes were read straight into the window `inPlaceWindow` gave (`n` ≤ its length): the same verdict
   * as feeding those bytes.
   */
  receivedInPlace(n: number): Verdict {
    const room = this.want - this.got;
    if (this.phase !== 'body' || this.closeDelimited || !Number.isSafeInteger(n) || n < 0 || n > room) {
      return this.fail({ code: 'KF_E_PEER_PROTOCOL', message: `${n} bytes read in place with ${room} wanted` });
    }
    this.got += n;
    if (this.got < this.want) return MORE;
    this.phase = 'over';
    return this.keepAlive ? DONE_REUSE : DONE_CLOSE;
  }

  /**
   * Bytes `src[from, to)` arrived. The head is copied (the caller may reuse `src` at once); body bytes go straight
   * into the slot. After a verdict other than `more`, feed nothing more until the next `begin`.
   */
  feed(src: Buffer, from: number, to: number): Verdict {
    if (this.phase === 'body') return this.body(src, from, to); // the hot path: no allocation
    if (this.phase !== 'head') return this.fail({ code: 'KF_E_PEER_PROTOCOL', message: 'peer sent bytes nobody asked for' });
    this.head.push(Buffer.from(src.subarray(from, to))); // copied: the read buffer is reused by the next read
    this.headBytes += to - from;
    const all = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    this.head = [all];
    const end = all.indexOf(CRLFCRLF);
    // Not found yet: the blank line may still start in the last 3 bytes, so the head is at least headBytes - 3 long.
    if (end === -1 ? this.headBytes - 3 > this.maxHead : end > this.maxHead) {
      return this.fail({ code: 'KF_E_PEER_PROTOCOL', message: `response head larger than ${this.maxHead} bytes` });
    }
    if (end === -1) return MORE;
    const problem = this.parseHead(all.subarray(0, end).toString('latin1'));
    if (problem !== undefined) return this.fail(problem);
    this.phase = 'body';
    this.head = [];
    return this.body(all, end + 4, all.length);
  }

  /**
   * The connection ended: a close (no `reset`) or an error. A close-delimited body of exactly the range is done;
   * any other end before the body is complete is a problem (a head cut off by a close: see `cutOff`).
   */
  end(reset?: Error): Verdict {
    if (this.phase === 'body') {
      if (reset === undefined && this.closeDelimited && this.got === this.want) {
        this.phase = 'over';
        return DONE_CLOSE;
      }
      if (reset === undefined) return this.fail({ code: 'KF_E_PEER_SHORT', message: `peer closed after ${this.got} of ${this.want} bytes` });
      return this.fail({ code: 'KF_E_PEER_CONNECT', message: `peer connection failed: ${reset.message}`, cause: reset });
    }
    if (this.phase !== 'head') return this.fail({ code: 'KF_E_PEER_CONNECT', message: 'no request in flight' });
    const p = this.cutOff();
    if (p !== undefined) return this.fail({ ...p, cause: reset });
    if (reset !== undefined) return this.fail({ code: 'KF_E_PEER_CONNECT', message: `peer connection failed: ${reset.message}`, cause: reset });
    return this.fail({ code: 'KF_E_PEER_CONNECT', message: 'peer closed the connection' });
  }

  /** Body bytes `src[from, to)`: into the slot, never past the range. */
  private body(src: Buffer, from: number, to: number): Verdict {
    const room = this.want - this.got;
    const len = to - from;
    if (len > room && this.closeDelimited) return this.fail({ code: 'KF_E_PEER_LONG', message: `peer sent more than the ${this.want} bytes asked for` });
    const take = len > room ? room : len;
    src.copy(this.into, this.got, from, from + take);
    this.got += take;
    if (this.got < this.want || this.closeDelimited) return MORE;
    this.phase = 'over';
    // Bytes past a Content-Length body belong to no request: the answer stands, the connection is not reused.
    return this.keepAlive && take === len ? DONE_REUSE : DONE_CLOSE;
  }

  private fail(problem: Problem): Verdict {
    this.phase = 'over';
    this.head = [];
    return { kind: 'fail', problem };
  }

  /**
   * The connection ended before the blank line that ends the head. If the status line arrived, the answer is that
   * status — the original peer's 404 never ends its head — and a 400/404/416 is the same "not here, try
   * elsewhere" as a complete one; a 206 is a success cut short. Undefined when no status line arrived.
   */
  private cutOff(): Problem | undefined {
    if (this.head.length === 0) return undefined;
    const m = STATUS_LINE.exec(this.head[0]!.toString('latin1'));
    if (m === null) return undefined;
    const status = Number(m[1]);
    if (status === 206) {
      return { code: 'KF_E_PEER_SHORT', message: `peer closed before the end of its 206 head for bytes ${this.first}-${this.last}`, status };
    }
    const p = statusProblem(status, this.first, this.last);
    return { ...p, message: `${p.message} (its head cut off by the close)` };
  }

  /** Check the status line and headers; undefined when the body may be read into the slot. */
  private parseHead(text: string): Problem | undefined {
    const { first, last, want } = this;
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
    if (m === null) return { code: 'KF_E_PEER_PROTOCOL', message: 'not an HTTP/1.x response' };
    const status = Number(m[2]);
    const h = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) return { code: 'KF_E_PEER_PROTOCOL', message: 'malformed response header' };
      h.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.wireAdvert = h.get('x-kascade-wire');
    const connection = h.get('connection')?.toLowerCase();
    this.keepAlive = m[1] === '1' ? connection !== 'close' : connection === 'keep-alive';
    if (status !== 206) return statusProblem(status, first, last);
    const enc = h.get('content-encoding');
    if (enc !== undefined && enc.toLowerCase() !== 'identity') return { code: 'KF_E_PEER_PROTOCOL', message: `peer sent an encoded body (${enc})` };
    if (h.has('transfer-encoding')) return { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent a chunked body for a range' };
    const cr = h.get('content-range');
    if (cr !== undefined && !cr.startsWith(`bytes ${first}-${last}/`)) {
      // A prefix of the range (a server whose file ends sooner clamps it): an answer about what it holds.
      const c = CONTENT_RANGE.exec(cr);
      const end = c === null ? NaN : Number(c[2]);
      if (c !== null && Number(c[1]) === first && end >= first && end < last) {
        return { code: 'KF_E_PEER_SHORT', message: `peer has only bytes ${first}-${end} of ${first}-${last}`, status: 206, fewer: end - first + 1 };
      }
      return { code: 'KF_E_PEER_PROTOCOL', message: `peer sent Content-Range ${cr}, asked for ${first}-${last}` };
    }
    // The original 2015 peer names the range it sends `Range: bytes=a-b/size`; held to the same match.
    const echo = h.get('range');
    if (echo !== undefined) {
      const r = RANGE_ECHO.exec(echo);
      if (r === null || Number(r[1]) !== first || Number(r[2]) !== last) {
        return { code: 'KF_E_PEER_PROTOCOL', message: `peer sent Range ${echo}, asked for ${first}-${last}` };
      }
    }
    const cl = h.get('content-length');
    if (cl === undefined && !this.keepAlive) {
      // HTTP/1.0 (or Connection: close) without a length: the body ends at the close, and must be exactly the range.
      this.closeDelimited = true;
      return undefined;
    }
    if (cl === undefined || !/^\d+$/.test(cl)) return { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent no Content-Length' };
    if (Number(cl) > want) return { code: 'KF_E_PEER_LONG', message: `peer announced ${cl} bytes for a ${want}-byte range` };
    if (Number(cl) < want) return { code: 'KF_E_PEER_SHORT', message: `peer announced ${cl} of ${want} bytes`, status: 206, fewer: Number(cl) };
    return undefined;
  }
}

/** A complete non-206 answer: 400/404/416 say the peer does not have it (SPEC §3: try elsewhere); anything else is outside the protocol. */
function statusProblem(status: number, first: number, last: number): Problem {
  const lied = status === 400 || status === 404 || status === 416;
  return { code: lied ? 'KF_E_PEER_LIED' : 'KF_E_PEER_PROTOCOL', message: `peer answered ${status} for bytes ${first}-${last}`, status };
}
