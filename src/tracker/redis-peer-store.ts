// The Redis peer store (issue 13): a placeholder until the Redis store lands (branch `tracker-redis` replaces this
// body). open-peer-store.ts imports it only for `--store redis://…`.
//
// Contract for the real one: `url` is `redis://[:PASSWORD@]HOST:PORT/DB` (the password percent-encoded, from
// KFETCH_REDIS_PASSWORD; never log `url`), `limits` the rules to enforce (peer-store.ts PeerStoreLimits), `log`
// the tracker's logger (absent in tests). Throw StoreUnavailableError from a call while Redis is down.

import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import type { PeerStore, PeerStoreLimits } from './peer-store.js';

/** Not built yet: always KF_E_USAGE. */
export function openRedisPeerStore(url: string, limits: PeerStoreLimits, log: Logger | undefined): Promise<PeerStore> {
  void url;
  void limits;
  void log;
  return Promise.reject(new KfetchError('KF_E_USAGE', 'the Redis store is not built into this kfetch yet', { field: '--store' }));
}
