// The peer-response parser from tables: each way an answer to `Range: bytes=0-15` can be right or wrong, as raw
// bytes, with the verdict and error fields the range client turns into a KfetchError. Pure: no sockets (the same
// cases over real sockets are in test/integration/peer-range-client.test.ts).

import { describe, expect, it } from 'vitest';
import { ResponseParser, type Verdict } from '../../src/peer/response-parser.js';

const BODY = '0123456789abcdef';

function parse(reply: string, o: { eof?: boolean | Error; first?: number; last?: number; maxHead?: number } = {}): { v: Verdict; slot: Buffer; got: number } {
  const p = new ResponseParser(o.maxHead ?? 16 * 1024);
  const slot = Buffer.alloc(20, 0x2e);
  p.begin(o.first ?? 0, o.last ?? 15, slot);
  const b = Buffer.from(reply, 'latin1');
  let v = p.feed(b, 0, b.length);
  if (v.kind === 'more' && o.eof !== undefined && o.eof !== false) v = p.end(o.eof === true ? undefined : o.eof);
  return { v, slot, got: p.bodyBytes };
}

const h206 = (...headers: string[]): string => `HTTP/1.1 206 Partial Content\r\n${headers.map((x) => `${x}\r\n`).join('')}\r\n`;

describe('response parser: answers taken', () => {
  it.each([
    ['kfetch', h206('Content-Range: bytes 0-15/100', 'Content-Length: 16') + BODY, true],
    ['Connection: close', h206('Content-Length: 16', 'Connection: close') + BODY, false],
    ['Connection: CLOSE', h206('Content-Length: 16', 'Connection: CLOSE') + BODY, false],
    ['HTTP/1.0 keep-alive', `HTTP/1.0 206 OK\r\nContent-Length: 16\r\nConnection: Keep-Alive\r\n\r\n${BODY}`, true],
    ['HTTP/1.0', `HTTP/1.0 206 OK\r\nContent-Length: 16\r\n\r\n${BODY}`, false],
    ['identity encoding, padded header values', h206('Content-Encoding: Identity', 'content-length:   16  ') + BODY, true],
    ['the original peer', `HTTP/1.0 206 Partial Content\r\nRange: bytes=0-15/100\r\nContent-length: 16\r\n\r\n${BODY}`, false],
    ['a Range echo without unit or size', h206('Range: 0-15', 'Content-Length: 16') + BODY, true],
    ['a Range echo with a space and *', h206('Range: bytes 0-15/*', 'Content-Length: 16') + BODY, true],
    ['a space before a colon (read leniently)', h206('Content-Length : 16') + BODY, true],
  ])('%s', (_name, reply, reuse) => {
    const r = parse(reply);
    expect(r.v).toEqual({ kind: 'done', reuse });
    expect(r.slot.toString('latin1')).toBe(`${BODY}....`);
    expect(r.got).toBe(16);
  });

  it('a close-delimited body is done only at the close, with exactly the range', () => {
    const reply = `HTTP/1.0 206 Partial Content\r\nRange: bytes=0-15/100\r\n\r\n${BODY}`;
    expect(parse(reply).v).toEqual({ kind: 'more' });
    expect(parse(reply, { eof: true }).v).toEqual({ kind: 'done', reuse: false });
    expect(parse(`${reply}X`).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_LONG', message: 'peer sent more than the 16 bytes asked for' } });
    expect(parse(reply.slice(0, -1), { eof: true }).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_SHORT', message: 'peer closed after 15 of 16 bytes' } });
    const reset = new Error('ECONNRESET');
    expect(parse(reply, { eof: reset }).v).toEqual({ kind: 'fail', problem: { code: 'KF_E_PEER_CONNECT', message: 'peer connection failed: ECONNRESET', cause: reset } });
  });

  it('reads a body that comes in several reads, and a range not at 0', () => {
    const p = new ResponseParser(1024);
    const slot = Buffer.alloc(16);
    p.begin(4096, 4111, slot);
    const b = Buffer.from(h206('Content-Range: bytes 4096-4111/8192', 'Content-Length: 16') + BODY, 'latin1');
    expect(p.feed(b, 0, 10)).toEqual({ kind: 'more' });
    expect(p.feed(b, 10, 10)).toEqual({ kind: 'more' });
    expect(p.feed(b, 10, b.length - 6)).toEqual({ kind: 'more' });
    expect(p.bodyBytes).toBe(10);
    expect(p.feed(b, b.length - 6, b.length)).toEqual({ kind: 'done', reuse: true });
    expect(slot.toString('latin1')).toBe(BODY);
    // Nothing was asked for now.
    expect(p.feed(b, 0, 1)).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent bytes nobody asked for' } });
    expect(p.end()).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_CONNECT', message: 'no request in flight' } });
  });

  it('counts head bytes from `from`, not from the start of the buffer', () => {
    const reply = h206('Content-Length: 16');
    const headLength = reply.length - 4;
    const b = Buffer.from(`${'#'.repeat(500)}${reply}${BODY}`, 'latin1');
    const p = new ResponseParser(headLength);
    p.begin(0, 15, Buffer.alloc(16));
    expect(p.feed(b, 500, 500 + headLength + 2)).toEqual({ kind: 'more' });
    expect(p.feed(b, 500 + headLength + 2, b.length)).toEqual({ kind: 'done', reuse: true });
  });

  it('a second begin() starts afresh', () => {
    const p = new ResponseParser(1024);
    const slot = Buffer.alloc(16);
    p.begin(0, 15, slot);
    const close = Buffer.from(`HTTP/1.0 206 OK\r\n\r\n${BODY.slice(0, 4)}`, 'latin1');
    expect(p.feed(close, 0, close.length)).toEqual({ kind: 'more' });
    p.begin(0, 15, slot);
    expect(p.bodyBytes).toBe(0);
    const b = Buffer.from(h206('Content-Length: 16') + BODY, 'latin1');
    expect(p.feed(b, 0, b.length)).toEqual({ kind: 'done', reuse: true });
  });
});

describe('response parser: answers refused', () => {
  it.each([
    ['a 404', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', { code: 'KF_E_PEER_LIED', status: 404, message: 'peer answered 404 for bytes 0-15' }],
    ['a 400', 'HTTP/1.1 400 Bad\r\n\r\n', { code: 'KF_E_PEER_LIED', status: 400 }],
    ['a 416', 'HTTP/1.1 416 No\r\n\r\n', { code: 'KF_E_PEER_LIED', status: 416 }],
    ['a 500', 'HTTP/1.1 500 Oops\r\n\r\n', { code: 'KF_E_PEER_PROTOCOL', status: 500 }],
    ['a 200', `HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n${BODY}`, { code: 'KF_E_PEER_PROTOCOL', status: 200 }],
    ['junk before the status line', 'XHTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\n\r\n', { code: 'KF_E_PEER_PROTOCOL', message: 'not an HTTP/1.x response' }],
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', { code: 'KF_E_PEER_PROTOCOL', message: 'not an HTTP/1.x response' }],
    ['HTTP/2', 'HTTP/2 206\r\n\r\n', { code: 'KF_E_PEER_PROTOCOL', message: 'not an HTTP/1.x response' }],
    ['a header without a colon', h206('Content-Length 16'), { code: 'KF_E_PEER_PROTOCOL', message: 'malformed response header' }],
    ['a header with an empty name', h206(': 16'), { code: 'KF_E_PEER_PROTOCOL', message: 'malformed response header' }],
    ['gzip', h206('Content-Encoding: gzip', 'Content-Length: 16'), { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent an encoded body (gzip)' }],
    ['chunked', h206('Transfer-Encoding: chunked'), { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent a chunked body for a range' }],
    ['another Content-Range', h206('Content-Range: bytes 16-31/100', 'Content-Length: 16'), { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent Content-Range bytes 16-31/100, asked for 0-15' }],
    ['a longer Content-Range', h206('Content-Range: bytes 0-16/100', 'Content-Length: 17'), { code: 'KF_E_PEER_PROTOCOL' }],
    ['a Content-Range naming the range with a leading zero', h206('Content-Range: bytes 0-015/100', 'Content-Length: 16'), { code: 'KF_E_PEER_PROTOCOL' }],
    ['a Content-Range of nonsense', h206('Content-Range: bytes 0-x/100'), { code: 'KF_E_PEER_PROTOCOL' }],
    ['a Range echo of another range', h206('Range: bytes=1-15', 'Content-Length: 16'), { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent Range bytes=1-15, asked for 0-15' }],
    ['a Range echo ending elsewhere', h206('Range: bytes=0-14', 'Content-Length: 16'), { code: 'KF_E_PEER_PROTOCOL' }],
    ['a Range echo of nonsense', h206('Range: all', 'Content-Length: 16'), { code: 'KF_E_PEER_PROTOCOL' }],
    ['no Content-Length on keep-alive', h206() + BODY, { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent no Content-Length' }],
    ['a Content-Length of nonsense', h206('Content-Length: 1e1'), { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent no Content-Length' }],
    ['a negative Content-Length', h206('Content-Length: -16'), { code: 'KF_E_PEER_PROTOCOL' }],
    ['a longer Content-Length', h206('Content-Length: 17') + BODY, { code: 'KF_E_PEER_LONG', message: 'peer announced 17 bytes for a 16-byte range' }],
    ['a shorter Content-Length', h206('Content-Length: 8') + BODY, { code: 'KF_E_PEER_SHORT', status: 206, fewer: 8, message: 'peer announced 8 of 16 bytes' }],
  ])('%s', (_name, reply, problem) => {
    const r = parse(reply);
    expect(r.v).toMatchObject({ kind: 'fail', problem });
    expect(r.got).toBe(0);
    expect(r.slot.toString('latin1')).toBe('.'.repeat(20));
  });

  it('a prefix of the range is an answer about what the peer holds (fewer bytes), not a broken one', () => {
    expect(parse(h206('Content-Range: bytes 0-7/8', 'Content-Length: 8')).v).toEqual({
      kind: 'fail',
      problem: { code: 'KF_E_PEER_SHORT', message: 'peer has only bytes 0-7 of 0-15', status: 206, fewer: 8 },
    });
    expect(parse(h206('Content-Range: bytes 0-0/1')).v).toMatchObject({ kind: 'fail', problem: { fewer: 1 } });
    expect(parse(h206('Content-Range: bytes 100-107/108'), { first: 100, last: 115 }).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_SHORT', fewer: 8, message: 'peer has only bytes 100-107 of 100-115' } });
    expect(parse(h206('Content-Range: bytes 1-7/8')).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_PROTOCOL' } });
    expect(parse(h206('Content-Range: bytes 4-3/8'), { first: 4, last: 15 }).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_PROTOCOL' } });
  });

  it('refuses a head over the limit, before or after its blank line arrives', () => {
    const reply = h206('Content-Length: 16') + BODY;
    const headLength = reply.indexOf('\r\n\r\n');
    expect(parse(reply, { maxHead: headLength }).v).toEqual({ kind: 'done', reuse: true });
    expect(parse(reply, { maxHead: headLength - 1 }).v).toEqual({ kind: 'fail', problem: { code: 'KF_E_PEER_PROTOCOL', message: `response head larger than ${headLength - 1} bytes` } });
    // No blank line yet: refused once even the shortest head the bytes allow is over the limit.
    const open = `HTTP/1.1 206 OK\r\nX: ${'x'.repeat(100)}`;
    expect(parse(open, { maxHead: open.length - 3 }).v).toEqual({ kind: 'more' });
    expect(parse(open, { maxHead: open.length - 4 }).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_PROTOCOL' } });
  });

  it('a body that goes past the range in the same read as its end: taken, the rest never reaches the slot', () => {
    const r = parse(`${h206('Content-Length: 16')}${BODY}XYZW`);
    expect(r.v).toEqual({ kind: 'done', reuse: false });
    expect(r.slot.toString('latin1')).toBe(`${BODY}....`);
  });
});

describe('response parser: the connection ends first', () => {
  it.each([
    ['nothing at all', '', { code: 'KF_E_PEER_CONNECT', message: 'peer closed the connection' }],
    ['half a status line', 'HTTP/1.1 40', { code: 'KF_E_PEER_CONNECT' }],
    ["the original peer's endless 404", 'HTTP/1.0 404 Not Found\r\nContent-Type: text/html', { code: 'KF_E_PEER_LIED', status: 404, message: 'peer answered 404 for bytes 0-15 (its head cut off by the close)' }],
    ['a bare status line', 'HTTP/1.1 404', { code: 'KF_E_PEER_LIED', status: 404 }],
    ['a status line and CR', 'HTTP/1.1 416\r', { code: 'KF_E_PEER_LIED', status: 416 }],
    ['a cut-off 503', 'HTTP/1.1 503 Busy\r\n', { code: 'KF_E_PEER_PROTOCOL', status: 503 }],
    ['a cut-off 206', 'HTTP/1.1 206 Partial\r\nContent-Le', { code: 'KF_E_PEER_SHORT', status: 206, message: 'peer closed before the end of its 206 head for bytes 0-15' }],
    ['a status of four digits', 'HTTP/1.1 4040\r\n', { code: 'KF_E_PEER_CONNECT' }],
    ['a body cut short', `${h206('Content-Length: 16')}01234567`, { code: 'KF_E_PEER_SHORT', message: 'peer closed after 8 of 16 bytes' }],
  ])('%s', (_name, reply, problem) => {
    expect(parse(reply, { eof: true }).v).toMatchObject({ kind: 'fail', problem });
  });

  it('an error (a reset) names its cause', () => {
    const reset = new Error('ECONNRESET');
    expect(parse('', { eof: reset }).v).toEqual({ kind: 'fail', problem: { code: 'KF_E_PEER_CONNECT', message: 'peer connection failed: ECONNRESET', cause: reset } });
    expect(parse('HTTP/1.1 404 Not Found\r\n', { eof: reset }).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_LIED', status: 404, cause: reset } });
    expect(parse(`${h206('Content-Length: 16')}0123`, { eof: reset }).v).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_CONNECT', cause: reset } });
  });
});

describe('response parser: body read in place (issue 11)', () => {
  it('offers the rest of the slot once a Content-Length body starts, and takes bytes read there', () => {
    const p = new ResponseParser(1024);
    const slot = Buffer.alloc(20, 0x2e);
    p.begin(0, 15, slot);
    expect(p.inPlaceWindow()).toBeUndefined(); // the head goes to the shared buffer
    const head = Buffer.from(h206('Content-Length: 16') + BODY.slice(0, 4), 'latin1');
    expect(p.feed(head, 0, head.length)).toEqual({ kind: 'more' });
    const w = p.inPlaceWindow()!;
    // The window is the slot's own memory, the 12 bytes still wanted but the last: a read cannot land past the range.
    expect(w.buffer).toBe(slot.buffer);
    expect(w.byteOffset).toBe(slot.byteOffset + 4);
    expect(w.length).toBe(11);
    w.write(BODY.slice(4, 9), 'latin1');
    expect(p.receivedInPlace(5)).toEqual({ kind: 'more' });
    expect(p.inPlaceWindow()!.length).toBe(6);
    p.inPlaceWindow()!.write(BODY.slice(9, 15), 'latin1');
    expect(p.receivedInPlace(6)).toEqual({ kind: 'more' });
    // The last byte is fed from the shared buffer, with whatever came after it.
    expect(p.inPlaceWindow()).toBeUndefined();
    const last = Buffer.from(BODY.slice(15), 'latin1');
    expect(p.feed(last, 0, 1)).toEqual({ kind: 'done', reuse: true });
    expect(p.inPlaceWindow()).toBeUndefined();
    expect(slot.toString('latin1')).toBe(`${BODY}....`);
  });

  it('bytes past the body that arrive with its last byte end the exchange, the connection not reused', () => {
    const p = new ResponseParser(1024);
    const slot = Buffer.alloc(16);
    p.begin(0, 15, slot);
    const head = Buffer.from(h206('Content-Length: 16'), 'latin1');
    expect(p.feed(head, 0, head.length)).toEqual({ kind: 'more' });
    p.inPlaceWindow()!.write(BODY.slice(0, 15), 'latin1');
    expect(p.receivedInPlace(15)).toEqual({ kind: 'more' });
    const tail = Buffer.from(`${BODY.slice(15)}JUNK`, 'latin1');
    expect(p.feed(tail, 0, tail.length)).toEqual({ kind: 'done', reuse: false });
    expect(slot.toString('latin1')).toBe(BODY);
  });

  it('offers no window for a close-delimited body, and refuses more than the window', () => {
    const p = new ResponseParser(1024);
    p.begin(0, 15, Buffer.alloc(16));
    const head = Buffer.from('HTTP/1.0 206 Partial Content\r\nRange: bytes=0-15/100\r\n\r\n', 'latin1');
    expect(p.feed(head, 0, head.length)).toEqual({ kind: 'more' });
    expect(p.inPlaceWindow()).toBeUndefined(); // bytes past the range must be seen to be refused
    const q = new ResponseParser(1024);
    q.begin(0, 15, Buffer.alloc(16));
    const h = Buffer.from(h206('Content-Length: 16'), 'latin1');
    q.feed(h, 0, h.length);
    expect(q.receivedInPlace(17)).toMatchObject({ kind: 'fail', problem: { code: 'KF_E_PEER_PROTOCOL' } });
  });
});

describe('response parser: the peer wire advertisement (issue 14)', () => {
  it('surfaces X-Kascade-Wire raw from each head (any case), and forgets it on a head without one', () => {
    const p = new ResponseParser(16 * 1024);
    const slot = Buffer.alloc(16);
    const feed = (reply: string): Verdict => {
      p.begin(0, 15, slot);
      const b = Buffer.from(reply, 'latin1');
      return p.feed(b, 0, b.length);
    };
    expect(feed(h206('Content-Length: 16', 'x-kascade-WIRE:  7002 ') + BODY)).toEqual({ kind: 'done', reuse: true });
    expect(p.wireAdvert).toBe('7002');
    // Also on refusals: every reply of a wire-serving block server carries it.
    expect(feed('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Kascade-Wire: 7003\r\n\r\n').kind).toBe('fail');
    expect(p.wireAdvert).toBe('7003');
    feed(h206('Content-Length: 16') + BODY);
    expect(p.wireAdvert).toBeUndefined();
  });
});
