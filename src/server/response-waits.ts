// Waiting on one block-server response: `goneSignal` aborts when the client is gone (response closed, or its
// connection closed under a pipelined response). Used by block-server.ts for its slot, queue, rate-limit and write
// waits.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Set once the client of one block request is gone; what was registered with on() runs then, once. An AbortSignal
 * did this before, but every request paid for an AbortController, EventTarget listeners (Listener objects, map
 * lookups) and an Event per abort: with abort(), a DOMException with a stack trace too (~20% of the per-request
 * JavaScript in --cpu-prof with small ranges). Callbacks must not throw.
 */
export class Gone {
  aborted = false;
  private fns: (() => void)[] = [];

  /** Run `f` when the client goes; nothing if it already went (check `aborted` first). */
  on(f: () => void): void {
    if (!this.aborted) this.fns.push(f);
  }

  off(f: () => void): void {
    const i = this.fns.indexOf(f);
    if (i >= 0) this.fns.splice(i, 1);
  }

  fire(): void {
    if (this.aborted) return;
    this.aborted = true;
    const fns = this.fns;
    this.fns = [];
    for (const f of fns) f();
  }
}

/** Per connection, what to run when it closes: one 'close' listener however many requests it pipelines. */
const onSocketClose = new WeakMap<Duplex, Set<() => void>>();

/**
 * Fired when the response closes (finished or cut) or when its connection closes: a pipelined response still
 * waiting behind another never gets a 'close' of its own, and must not keep a slot or a queue place.
 */
export function goneSignal(req: IncomingMessage, res: ServerResponse): Gone {
  const gone = new Gone();
  const socket = req.socket;
  if (socket.destroyed) {
    gone.fire();
    return gone;
  }
  let hooks = onSocketClose.get(socket);
  if (hooks === undefined) {
    const set = new Set<() => void>();
    hooks = set;
    onSocketClose.set(socket, set);
    socket.once('close', () => {
      for (const f of [...set]) f();
      set.clear();
    });
  }
  const done = (): void => {
    res.off('close', done);
    hooks.delete(done);
    gone.fire();
  };
  res.once('close', done);
  hooks.add(done);
  return gone;
}
