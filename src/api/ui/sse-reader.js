// @ts-check
// Incremental Server-Sent Events parser (the WHATWG "event stream interpretation"), used by the page to read
// /api/v1/events through fetch() (EventSource cannot send a bearer header). Pure: bytes or text in, events out.
// Handles chunks split anywhere (inside a UTF-8 sequence, between CR and LF), CRLF/CR/LF line ends, comments,
// multi-line data, a leading BOM, and bounds the memory a line or an event may hold.

/**
 * @typedef {object} SseEvent
 * @property {string} type  the `event:` field, 'message' when absent
 * @property {string} data  the `data:` lines joined with '\n'
 * @property {string} id    the last event id in effect when the event was dispatched ('' if none yet)
 */

/**
 * @typedef {object} SseReader
 * @property {(chunk: string | Uint8Array) => SseEvent[]} push  feed the next chunk; answers the events it completed
 * @property {() => string} lastEventId  the id to send as Last-Event-ID on reconnect ('' if none)
 * @property {() => number | null} retry  the last valid `retry:` value in ms, null if none
 */

/** Default cap on one line and on one event's data (chars): a snapshot of 10,000 kascades is ~8 MB. */
export const DEFAULT_MAX_CHARS = 64 * 1024 * 1024;

/**
 * @param {{ maxChars?: number }} [options]
 * @returns {SseReader}
 */
export function createSseReader(options = {}) {
  const maxChars = options.maxChars ?? DEFAULT_MAX_CHARS;
  const decoder = new TextDecoder('utf-8');
  /** @type {string[]} parts of the line not yet ended */
  let parts = [];
  let partsLen = 0;
  let atStart = true;
  /** the previous chunk ended in CR: a LF opening the next one belongs to that line end */
  let skipLf = false;
  /** @type {string[]} */
  let data = [];
  let dataLen = 0;
  let type = '';
  let lastId = '';
  /** @type {number | null} */
  let retry = null;

  /** @param {string} line @param {SseEvent[]} out */
  function handleLine(line, out) {
    if (line === '') {
      if (data.length > 0) out.push({ type: type || 'message', data: data.join('\n'), id: lastId });
      data = [];
      dataLen = 0;
      type = '';
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return; // a comment (the box's heartbeat)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32 /* ' ' */) value = value.slice(1);
    switch (field) {
      case 'data':
        dataLen += value.length + 1;
        if (dataLen > maxChars) throw new Error(`event stream: an event's data is over ${maxChars} chars`);
        data.push(value);
        break;
      case 'event':
        type = value;
        break;
      case 'id':
        if (!value.includes('\0')) lastId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) retry = Number(value);
        break;
      default: // unknown fields are ignored
    }
  }

  return {
    push(chunk) {
      let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
      /** @type {SseEvent[]} */
      const out = [];
      if (text.length === 0) return out;
      if (atStart) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        atStart = false;
        if (text.length === 0) return out;
      }
      let start = 0;
      if (skipLf) {
        skipLf = false;
        if (text.charCodeAt(0) === 10) start = 1;
      }
      for (let i = start; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        const tail = text.slice(start, i);
        const line = parts.length > 0 ? parts.join('') + tail : tail;
        parts = [];
        partsLen = 0;
        handleLine(line, out);
        if (c === 13) {
          if (i + 1 < text.length) {
            if (text.charCodeAt(i + 1) === 10) i++;
          } else {
            skipLf = true;
          }
        }
        start = i + 1;
      }
      if (start < text.length) {
        partsLen += text.length - start;
        if (partsLen > maxChars) throw new Error(`event stream: a line is over ${maxChars} chars`);
        parts.push(text.slice(start));
      }
      return out;
    },
    lastEventId: () => lastId,
    retry: () => retry,
  };
}
