// The page's Server-Sent Events parser (src/api/ui/sse-reader.js): the WHATWG event-stream rules, chunks split at
// every position (inside CRLF, inside a UTF-8 sequence), and the memory bound on a line.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSseReader, type SseEvent } from '../../src/api/ui/sse-reader.js';

const enc = new TextEncoder();

function all(chunks: (string | Uint8Array)[]): SseEvent[] {
  const r = createSseReader();
  return chunks.flatMap((c) => r.push(c));
}

const STREAM =
  '\uFEFF: hello\r\n' +
  'id: 1\r\nevent: snapshot\r\ndata: {"v":1,"name":"ünï ✓"}\r\n\r\n' +
  ': heartbeat\n\n' +
  'id: 2\nevent: kascade.changed\ndata: line one\ndata:line two\ndata\n\n' +
  'id: 3\revent: box.stats\rdata: x\r\r' +
  'data: no type\n\n' +
  'id: 4\nevent: dangling\ndata: never ends';

const EXPECTED: SseEvent[] = [
  { type: 'snapshot', data: '{"v":1,"name":"ünï ✓"}', id: '1' },
  { type: 'kascade.changed', data: 'line one\nline two\n', id: '2' },
  { type: 'box.stats', data: 'x', id: '3' },
  { type: 'message', data: 'no type', id: '3' },
];

describe('createSseReader', () => {
  it('parses a whole stream: comments, CRLF, CR, LF, multi-line data, a BOM, ids carried over', () => {
    expect(all([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same events for the stream split in two at every byte', () => {
    const bytes = enc.encode(STREAM);
    for (let i = 0; i <= bytes.length; i++) {
      expect(all([bytes.subarray(0, i), bytes.subarray(i)]), `split at ${i}`).toEqual(EXPECTED);
    }
  });

  it('gives the same events fed one byte, or one char, at a time', () => {
    expect(all([...enc.encode(STREAM)].map((b) => Uint8Array.of(b)))).toEqual(EXPECTED);
    expect(all([...STREAM])).toEqual(EXPECTED);
  });

  it('gives the same events for any split into chunks (property)', () => {
    const bytes = enc.encode(STREAM);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: bytes.length }), { maxLength: 12 }), (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const chunks = at.slice(1).map((end, i) => bytes.subarray(at[i]!, end));
        expect(all(chunks)).toEqual(EXPECTED);
      }),
      { numRuns: 300 },
    );
  });

  it('a CR at the end of a chunk and a LF opening the next are one line end, not two', () => {
    // Two line ends would dispatch `data: a` early and lose nothing here, so check with an event split between them.
    expect(all(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual([{ type: 'message', data: 'a\nb', id: '' }]);
  });

  it('follows the field rules: one leading space stripped, unknown fields and NUL ids ignored, retry digits only', () => {
    const r = createSseReader();
    const events = r.push('data:  two spaces\nfoo: bar\nid: a\u0000b\nretry: 12x\n\nretry: 2500\nid\ndata\n\n');
    expect(events).toEqual([
      { type: 'message', data: ' two spaces', id: '' },
      { type: 'message', data: '', id: '' },
    ]);
    expect(r.retry()).toBe(2500);
    expect(r.lastEventId()).toBe('');
  });

  it('remembers the last id even from an event without data (it is not dispatched)', () => {
    const r = createSseReader();
    expect(r.push('id: 41\n\nid: 42\nevent: x\n\n')).toEqual([]);
    expect(r.lastEventId()).toBe('42');
    expect(r.push('data: y\n\n')).toEqual([{ type: 'message', data: 'y', id: '42' }]);
  });

  it('bounds a line and an event: over maxChars throws instead of growing', () => {
    const r = createSseReader({ maxChars: 100 });
    r.push('data: ');
    expect(() => {
      for (let i = 0; i < 20; i++) r.push('0123456789');
    }).toThrow(/line is over 100/);
    const r2 = createSseReader({ maxChars: 100 });
    expect(() => r2.push(`${'data: 0123456789012345678901234567890123456789\n'.repeat(3)}\n`)).toThrow(/data is over 100/);
  });

  it('parses a 10,000-record snapshot arriving in 64 KiB chunks, linear in its size', () => {
    const rec = { id: 'x'.repeat(16), state: 'seeding', name: 'file.iso', size: 1, progress: 1 };
    const line = `id: 9\nevent: snapshot\ndata: ${JSON.stringify({ v: 1, kascades: Array.from({ length: 10_000 }, () => rec) })}\n\n`;
    const bytes = enc.encode(line);
    const r = createSseReader();
    const events: SseEvent[] = [];
    for (let i = 0; i < bytes.length; i += 65_536) events.push(...r.push(bytes.subarray(i, i + 65_536)));
    expect(events).toHaveLength(1);
    expect((JSON.parse(events[0]!.data) as { kascades: unknown[] }).kascades).toHaveLength(10_000);
  });
});
