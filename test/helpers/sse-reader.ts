// A Server-Sent Events reader for tests: a real HTTP GET over a fresh socket (node:http, no agent), the body parsed
// into messages as it arrives (id, event, data as text, comments kept apart). Bounded: it keeps at most `maxBytes`
// of parsed body before failing loudly. Used by the event-hub tests and the SSE bench.

import { request, type IncomingMessage, type ClientRequest } from 'node:http';

export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

export class SseReader {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  /** Raw body bytes received. */
  bytes = 0;
  ended = false;
  /** Messages parsed (also those no longer kept). */
  count = 0;
  /** The body of a non-200 answer. */
  errorBody = '';
  private rest = '';
  private req: ClientRequest | undefined;

  private constructor(private readonly keep: boolean) {}

  /**
   * GET `path` on 127.0.0.1:`port` with optional extra headers; resolves once the status line arrived. `keep`
   * false counts bytes and messages but keeps only the last message (for long runs).
   */
  static open(port: number, path = '/events', headers: Record<string, string> = {}, keep = true): Promise<SseReader> {
    const r = new SseReader(keep);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { Accept: 'text/event-stream', ...headers } });
      r.req = req;
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error('SseReader: no answer in 10 s'));
      }, 10_000);
      req.once('response', (res) => {
        clearTimeout(timer);
        r.status = res.statusCode ?? 0;
        r.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => r.feed(chunk));
        res.on('end', () => (r.ended = true));
        res.on('close', () => (r.ended = true));
        res.on('error', () => (r.ended = true));
        resolve(r);
      });
      req.once('error', (err) => {
        clearTimeout(timer);
        r.ended = true;
        reject(err);
      });
      req.end();
    });
  }

  /** Messages of one event type. */
  of(event: string): SseMessage[] {
    return this.messages.filter((m) => m.event === event);
  }

  get last(): SseMessage | undefined {
    return this.messages[this.messages.length - 1];
  }

  close(): void {
    this.req?.destroy();
  }

  private feed(chunk: string): void {
    this.bytes += Buffer.byteLength(chunk);
    if (this.status !== 200) {
      this.errorBody += chunk;
      return;
    }
    // Search only the new text (and the byte before it) for message ends: a big message stays linear.
    const from = Math.max(0, this.rest.length - 1);
    this.rest += chunk;
    if (this.rest.length > 64 * 1024 * 1024) throw new Error('SseReader: an unterminated message over 64 MiB');
    let end = this.rest.indexOf('\n\n', from);
    let start = 0;
    // Bounded: each turn moves past one message end.
    while (end >= 0) {
      this.parse(this.rest.slice(start, end));
      start = end + 2;
      end = this.rest.indexOf('\n\n', start);
    }
    if (start > 0) this.rest = this.rest.slice(start);
  }

  private parse(block: string): void {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line);
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0 && id === undefined) return; // a comment-only block
    const m = { id, event, data: data.join('\n') };
    this.count++;
    if (!this.keep) this.messages.length = 0;
    this.messages.push(m);
  }
}
