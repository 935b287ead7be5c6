// An announcer passes one AbortSignal to every announce for its whole life (months in a seeding box): announces
// must leave nothing behind on it — no 'abort' listener, and no AbortSignal.any dependant entry, which Node 20
// never prunes (found by the box soak's heap snapshots: one WeakRef per announce).
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { announce } from '../../src/tracker/announce-client.js';
import { startAdversarialTracker, type AdversarialTracker } from '../helpers/adversarial-tracker.js';

let adv: AdversarialTracker | undefined;
afterEach(async () => {
  await adv?.close();
  adv = undefined;
});

/** Entries in the signal's internal set of AbortSignal.any dependants (0 when it has none). */
function dependants(signal: AbortSignal): number {
  const sym = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set = sym === undefined ? undefined : (signal as unknown as Record<symbol, Set<unknown> | undefined>)[sym];
  return set?.size ?? 0;
}

describe('announce: a long-lived caller signal', () => {
  it('keeps no listener and no dependant entry after announces that succeed or fail', async () => {
    const ac = new AbortController();
    adv = await startAdversarialTracker({ kind: 'body', body: '[]' });
    for (let i = 0; i < 20; i++) await announce({ url: adv.url, port: 7001, progress: 1, signal: ac.signal });
    await adv.close();
    adv = await startAdversarialTracker({ kind: 'status', status: 503 });
    for (let i = 0; i < 5; i++) await announce({ url: adv.url, port: 7001, progress: 1, signal: ac.signal }).catch(() => undefined);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    expect(dependants(ac.signal)).toBe(0);
  });
});
