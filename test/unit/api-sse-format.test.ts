// The event stream's pure parts (issue 12): the SSE message format, the Last-Event-ID reading, the resume ring's
// bounds and its `after` search.

import { describe, expect, it } from 'vitest';
import { EventRing } from '../../src/api/event-ring.js';
import { checkEventType, formatMessage, jsonLine, parseLastEventId } from '../../src/api/sse-format.js';

describe('sse-format', () => {
  it.each([
    ['1796621548125005', 1796621548125005],
    [' 42 ', 42],
    ['0', 0],
    ['', undefined],
    ['abc', undefined],
    ['12abc', undefined],
    ['-1', undefined],
    ['+1', undefined],
    ['1e6', undefined],
    ['1.5', undefined],
    ['0x10', undefined],
    ['1, 2', undefined],
    ['12345678901234567', undefined], // 17 digits
    ['99999999999999999999', undefined],
  ])('Last-Event-ID %j reads as %s', (header, want) => {
    expect(parseLastEventId(header)).toBe(want);
  });

  it('reads no id from an absent or repeated header', () => {
    expect(parseLastEventId(undefined)).toBeUndefined();
    expect(parseLastEventId(['1', '2'])).toBeUndefined();
  });

  it('formats id, event and one data line; a dropped-style message has no id', () => {
    expect(formatMessage(7, 'kascade.changed', { v: 1, s: 'a\nb\r\u2028' }).toString()).toBe(
      'id: 7\nevent: kascade.changed\ndata: {"v":1,"s":"a\\nb\\r\\u2028"}\n\n',
    );
    expect(formatMessage(undefined, 'dropped', { v: 1 }).toString()).toBe('event: dropped\ndata: {"v":1}\n\n');
    expect(jsonLine(undefined)).toBe('null');
  });

  it.each(['', 'Kascade.changed', 'a b', 'a\nid: 9', 'a:b', 'x'.repeat(65), '.a', 'a..b'])('refuses the event type %j', (t) => {
    expect(() => checkEventType(t)).toThrow(expect.objectContaining({ code: 'KF_E_INTERNAL' }));
  });

  it.each(['snapshot', 'kascade.changed', 'peer.banned', 'box.stats', 'dropped'])('takes the event type %j', (t) => {
    expect(() => checkEventType(t)).not.toThrow();
  });
});

describe('event-ring', () => {
  const msg = (n: number): Buffer => Buffer.alloc(n, 0x61);

  it('keeps the newest maxEvents, says which id went last, finds what follows an id', () => {
    const r = new EventRing(4, 1 << 20);
    for (let id = 10; id < 20; id += 2) r.push(id, msg(1)); // ids 10 12 14 16 18 (a snapshot took the odd ones)
    expect(r.size).toBe(4);
    expect(r.droppedUpTo).toBe(10);
    expect(r.after(10)).toHaveLength(4);
    expect(r.after(13)).toHaveLength(3);
    expect(r.after(14)).toHaveLength(2);
    expect(r.after(18)).toHaveLength(0);
    expect(r.after(0)).toHaveLength(4);
  });

  it('holds at most maxBytes, but always the newest message', () => {
    const r = new EventRing(100, 1000);
    for (let id = 1; id <= 50; id++) r.push(id, msg(100));
    expect(r.bytes).toBeLessThanOrEqual(1000);
    expect(r.size).toBe(10);
    expect(r.droppedUpTo).toBe(40);
    r.push(51, msg(5000));
    expect(r.size).toBe(1);
    expect(r.bytes).toBe(5000);
  });
});
