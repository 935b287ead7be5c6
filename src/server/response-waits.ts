// Waiting on one block-server response: `goneSignal` aborts when the client is gone (response closed, or its
// connection closed under a pipelined response). Used by block-server.ts for its slot, queue, rate-limit and write
// waits.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The reason of every gone signal: one object, because abort() without a reason builds a DOMException (with a stack
 * trace) for every response that closes — ~4% of a seeder's main thread. Nothing reads the reason.
 */
const GONE = Object.freeze(new Error('the client is gone'));

/** Per connection, what to run when it closes: one 'close' listener however many requests it pipelines. */
const onSocketClose = new WeakMap<Duplex, Set<() => void>>();

/**
 * Aborted when the response closes (finished or cut) or when its connection closes: a pipelined response still
 * waiting behind another never gets a 'close' of its own, and must not keep a slot or a queue place.
 */
export function goneSignal(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  const socket = req.socket;
  if (socket.destroyed) {
    ac.abort(GONE);
    return ac.signal;
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
    ac.abort(GONE);
  };
  res.once('close', done);
  hooks.add(done);
  return ac.signal;
}
