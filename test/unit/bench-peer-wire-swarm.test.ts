// The peer-wire-swarm bench (issue 14 point 4) counts a run only when its `done` event's `transport` shows the way
// it asked for carried the file: a wire run that fell back to HTTP, or an HTTP run that touched the wire, is an
// error, not a figure.

import { expect, it } from 'vitest';
import { doneOf, transportProblem, type DoneTransport } from '../../bench/scenarios/peer-wire-swarm.js';

const SIZE = 1_000_000;
const t = (o: Partial<DoneTransport>): DoneTransport => ({ wireBytes: 0, httpBytes: 0, wireRequests: 0, httpRequests: 0, wireFallbacks: 0, ...o });

it('doneOf reads the done event\'s seconds, transport and start-up CPU, and nothing else', () => {
  const transport = t({ wireBytes: SIZE, wireRequests: 10 });
  const line = (e: Record<string, unknown>): string => JSON.stringify({ v: 1, id: 1, ...e });
  expect(doneOf(line({ event: 'done', seconds: 2, transport, cpu: { startup: 0.4 } }))).toEqual({ seconds: 2, transport, startup: 0.4 });
  expect(doneOf(line({ event: 'done', seconds: 2 }))).toEqual({ seconds: 2 });
  expect(doneOf(line({ event: 'done', seconds: 2, transport: { ...transport, httpBytes: -1 } }))).toEqual({ seconds: 2 });
  expect(doneOf(line({ event: 'done', seconds: 2, transport: { ...transport, wireFallbacks: 'x' } }))).toEqual({ seconds: 2 });
  expect(doneOf(line({ event: 'progress', seconds: 2, transport, note: 'done' }))).toBeUndefined();
  expect(doneOf('{"event":"done" not json')).toBeUndefined();
});

it('a wire run must have taken the file over the wire, an HTTP run none of it', () => {
  expect(transportProblem(true, t({ wireBytes: SIZE, wireRequests: 4 }), SIZE)).toBeUndefined();
  // An endgame copy that fell back: under 1% over HTTP is still a wire run.
  expect(transportProblem(true, t({ wireBytes: SIZE, httpBytes: 4096, wireRequests: 4, httpRequests: 1, wireFallbacks: 1 }), SIZE)).toBeUndefined();
  expect(transportProblem(true, t({ wireBytes: SIZE - 4096, httpBytes: 4096, wireRequests: 4, httpRequests: 1, wireFallbacks: 1 }), SIZE)).toMatch(/over the wire/);
  expect(transportProblem(true, t({ httpBytes: SIZE, httpRequests: 4 }), SIZE)).toMatch(/only 0 of/);
  expect(transportProblem(true, t({ wireBytes: SIZE, httpBytes: SIZE / 10, wireRequests: 4, httpRequests: 1 }), SIZE)).toMatch(/over HTTP/);
  expect(transportProblem(true, undefined, SIZE)).toMatch(/no transport/);
  expect(transportProblem(false, t({ httpBytes: SIZE, httpRequests: 4 }), SIZE)).toBeUndefined();
  expect(transportProblem(false, t({ httpBytes: SIZE, wireBytes: 4096, httpRequests: 4, wireRequests: 1 }), SIZE)).toMatch(/--no-wire/);
  expect(transportProblem(false, t({ httpBytes: SIZE / 2, httpRequests: 4 }), SIZE)).toMatch(/received/);
});
