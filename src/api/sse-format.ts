// The Server-Sent Events wire format of the control API's event stream (docs/api.md "Event stream"), pure: one
// message as bytes, the heartbeat comment, and the Last-Event-ID header's reading. Used by event-hub.ts.

import { KfetchError } from '../errors.js';

/** An event type: dotted lower-case words (`kascade.changed`, `box.stats`); nothing that could end a field line. */
const EVENT_TYPE = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
const EVENT_TYPE_MAX = 64;

/** A Last-Event-ID is a decimal integer of at most 16 digits (ids are ms × 1000 + n: about 1.8e15 today). */
const LAST_ID = /^[0-9]{1,16}$/;

/** The comment line written every heartbeat interval (a reader ignores it; proxies see traffic). */
export const HEARTBEAT = Buffer.from(': heartbeat\n\n');

/** Throws KF_E_INTERNAL unless `type` is a valid event type (a bug in the caller, never client input). */
export function checkEventType(type: string): void {
  if (type.length > EVENT_TYPE_MAX || !EVENT_TYPE.test(type)) {
    throw new KfetchError('KF_E_INTERNAL', `event type ${JSON.stringify(type.slice(0, EVENT_TYPE_MAX))} is not a dotted lower-case name`, {
      field: 'type',
    });
  }
}

/**
 * `data` as one JSON line: JSON.stringify escapes CR and LF inside strings and adds no layout, so the text has no
 * raw line break; U+2028/U+2029 are escaped too (not SSE line ends, but some line splitters treat them as such).
 * `undefined` becomes `null`. Throws what JSON.stringify throws (a cycle, a BigInt).
 */
export function jsonLine(data: unknown): string {
  const text = JSON.stringify(data) as string | undefined;
  if (text === undefined) return 'null';
  return text.replace(/[\u2028\u2029]/g, (c) => (c === '\u2028' ? '\\u2028' : '\\u2029'));
}

/** One message: `id:` (omitted when `id` is undefined), `event:`, `data:` and the blank line that ends it. */
export function formatMessage(id: number | undefined, type: string, data: unknown): Buffer {
  checkEventType(type);
  const idLine = id === undefined ? '' : `id: ${id}\n`;
  return Buffer.from(`${idLine}event: ${type}\ndata: ${jsonLine(data)}\n\n`);
}

/**
 * The id a `Last-Event-ID` header names, or undefined when it names none usable: absent, empty, repeated (Node
 * joins repeats with ', '), not plain decimal digits, or over 16 digits. Whether the id is still in the buffer is
 * the hub's question.
 */
export function parseLastEventId(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string') return undefined;
  const t = header.trim();
  if (!LAST_ID.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}
