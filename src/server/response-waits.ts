// Waiting on one block-server response: `goneSignal` aborts when the client is gone (response closed, or its
// connection closed under a pipelined response); `admitSlot` waits for an admission slot and `pacedBytes` for
// upload-rate tokens, both given up when the client goes. Used by block-server.ts (HTTP) and wire-server.ts (the
// binary peer wire), so both protocols wait in the same queue and the same bucket.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Admission, BusyReason, Release } from './admission.js';
import type { UploadRate } from './upload-rate.js';

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

/**
 * Wait for a slot: a Release, a BusyReason (answer busy), or 'gone' when the client left while queued. A queued
 * request leaves the queue after `queueTimeoutMs` or when `gone` fires, so it never gets a slot it cannot use.
 */
export function admitSlot(admission: Admission, client: string, gone: Gone, queueTimeoutMs: number): Promise<Release | BusyReason | 'gone'> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let onGone: (() => void) | undefined;
    const settle = (v: Release | BusyReason | 'gone'): void => {
      clearTimeout(timer);
      if (onGone !== undefined) gone.off(onGone);
      resolve(v);
    };
    const entry = admission.enter(client, settle);
    if (entry.kind === 'granted') return resolve(entry.release);
    if (entry.kind === 'refused') return resolve(entry.reason);
    timer = setTimeout(() => {
      entry.leave();
      settle('queueTimeout');
    }, queueTimeoutMs);
    timer.unref();
    onGone = () => {
      entry.leave();
      settle('gone');
    };
    gone.on(onGone);
  });
}

/**
 * Wait for upload tokens for up to `bytes`: the bytes granted (at once without a limit or with tokens to spare;
 * fewer than asked if the rate was lowered meanwhile), or 0 if the client left meanwhile. A plain number when
 * granted at once: a microtask per chunk is measurable on the hot path.
 */
export function pacedBytes(rate: UploadRate, client: string, bytes: number, gone: Gone): number | Promise<number> {
  let settle: ((granted: number) => void) | undefined;
  const withdraw = rate.take(client, bytes, (granted) => settle?.(granted));
  if (withdraw === undefined) return bytes;
  if (gone.aborted) {
    withdraw();
    return Promise.resolve(0);
  }
  return new Promise<number>((resolve) => {
    const onGone = (): void => {
      withdraw();
      settle?.(0);
    };
    settle = (granted) => {
      gone.off(onGone);
      resolve(granted);
    };
    gone.on(onGone);
  });
}
