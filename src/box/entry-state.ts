// The life of one kascade file in the seeding box, written down as a table: state × event → next state. The box
// (seed-box.ts) moves an entry only through `nextState`; a move the table does not list is a bug and throws.
// Pure: no I/O, unit-tested in test/unit/box-entry-state.test.ts.

import { KfetchError } from '../errors.js';

export const ENTRY_STATES = ['loading', 'rejected', 'verifying', 'queued', 'downloading', 'stalled', 'seeding', 'failed', 'paused', 'removed'] as const;

/**
 * - loading: the kascade file is being read, or the state and data file looked at to decide what it needs
 * - rejected: unreadable, invalid, or a duplicate / losing claimant of another kascade's swarm or data file
 * - verifying: its data file is being hashed in the workers (or waits for its turn to be)
 * - queued: waits for a --max-downloads slot
 * - downloading: holds a slot; the engine fetches what is missing
 * - stalled: gave its slot up after no verified block for --stall-timeout; back in the queue at its next try
 * - seeding: complete, served and announced
 * - failed: an error; tried again after a back-off
 * - paused: stopped by the user (API or `kfetch box pause`): neither fetched, served nor announced; kept across restarts
 * - removed: its file left the watch folder (or changed and was re-added as a new entry); nothing more happens
 */
export type EntryState = (typeof ENTRY_STATES)[number];

export type EntryEvent = 'reject' | 'verify' | 'queue' | 'start' | 'stall' | 'seed' | 'fail' | 'retry' | 'recheck' | 'pause' | 'resume' | 'remove';

const TABLE: Readonly<Record<EntryState, Readonly<Partial<Record<EntryEvent, EntryState>>>>> = {
  // pause from loading: the box found the kascade's filehash paused when it took the file in.
  loading: { reject: 'rejected', verify: 'verifying', queue: 'queued', seed: 'seeding', fail: 'failed', pause: 'paused', remove: 'removed' },
  rejected: { remove: 'removed' },
  verifying: { seed: 'seeding', queue: 'queued', fail: 'failed', pause: 'paused', remove: 'removed' },
  queued: { start: 'downloading', fail: 'failed', pause: 'paused', remove: 'removed' },
  downloading: { seed: 'seeding', stall: 'stalled', fail: 'failed', pause: 'paused', remove: 'removed' },
  stalled: { retry: 'queued', pause: 'paused', remove: 'removed' },
  // recheck: the data file changed or a scrub found bad blocks; the kascade is read again and the file re-checked.
  seeding: { recheck: 'loading', fail: 'failed', pause: 'paused', remove: 'removed' },
  failed: { retry: 'loading', pause: 'paused', remove: 'removed' },
  // resume: read the kascade again and decide afresh (seed, verify or fetch).
  paused: { resume: 'loading', remove: 'removed' },
  removed: {},
};

/** The state after `event` in `state`; throws KF_E_INTERNAL for a move the table does not allow. */
export function nextState(state: EntryState, event: EntryEvent): EntryState {
  const next = TABLE[state][event];
  if (next === undefined) throw new KfetchError('KF_E_INTERNAL', `box entry: illegal transition ${state} --${event}-->`);
  return next;
}
