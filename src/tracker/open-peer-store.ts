// Which peer store `kfetch tracker --store` names, and opening it (issue 13). Used by the tracker command and by
// the tests' tracker helper (test/helpers/tracker-store.ts), so both read `--store` values the same way.
//
// `memory` (the default) or `redis://HOST[:PORT][/DB]`: HOST a name, an IPv4 address or [IPv6] (the operator's own
// store: any host, not only loopback), PORT 1..65535 (default 6379), DB 0..15 (default 0). Credentials in the URL
// are refused: a command line shows in `ps` and shell history. The password comes from the environment,
// KFETCH_REDIS_PASSWORD, and is handed to the Redis store inside the URL it opens (`redis://:PASSWORD@…`,
// percent-encoded), which no one logs: logs use describeStore(). No TLS (`rediss://`) yet.
// The Redis store (redis-peer-store.ts) is imported only when asked for, so a memory tracker never loads ioredis.

import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { MemoryPeerStore } from './memory-peer-store.js';
import type { PeerStore, PeerStoreLimits } from './peer-store.js';

export type StoreSpec = { kind: 'memory' } | { kind: 'redis'; host: string; port: number; db: number };

/** The environment variable the Redis password is read from. */
export const REDIS_PASSWORD_ENV = 'KFETCH_REDIS_PASSWORD';
/** Longest `--store` value and password read (far above any real one; bounds what is parsed). */
const MAX_SPEC = 300;
const MAX_PASSWORD = 512;

const REDIS_RE = /^redis:\/\/(\[[0-9a-fA-F:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(?::([0-9]{1,5}))?(?:\/([0-9]{1,2})?)?$/;
const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Parse a `--store` value. @throws KfetchError KF_E_USAGE naming `--store` and what is wrong. */
export function parseStoreSpec(text: string): StoreSpec {
  const shown = JSON.stringify(text.slice(0, 80));
  // The message names the value, not the flag: the CLI prints the field (`--store`) before it.
  const bad = (why: string): KfetchError => new KfetchError('KF_E_USAGE', `${shown}: ${why}`, { field: '--store' });
  if (text === 'memory') return { kind: 'memory' };
  // First, so no other message echoes a password: anything before an `@` in the authority is a credential.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*@/.test(text)) {
    throw new KfetchError('KF_E_USAGE', `credentials in the URL are refused (they show in ps and shell history); set ${REDIS_PASSWORD_ENV} instead`, { field: '--store' });
  }
  if (text.length > MAX_SPEC) throw bad(`longer than ${MAX_SPEC} characters`);
  if (/^rediss:\/\//i.test(text)) throw bad('TLS (rediss://) is not supported; use redis:// on a trusted network or a tunnel');
  if (!text.startsWith('redis://')) throw bad('must be memory or redis://HOST[:PORT][/DB]');
  const m = REDIS_RE.exec(text);
  if (m === null) throw bad('must be redis://HOST[:PORT][/DB] (no path, query or fragment; IPv6 as [addr])');
  const host = m[1]!;
  if (host.startsWith('[')) {
    if (!host.slice(1, -1).includes(':')) throw bad('brackets are for IPv6 addresses only');
  } else if (!host.split('.').every((l) => LABEL_RE.test(l))) throw bad('not a valid host name or address');
  const portText = m[2];
  const port = portText === undefined ? 6379 : Number(portText);
  if (portText !== undefined && (!/^[1-9][0-9]*$/.test(portText) || port > 65535)) throw bad('port must be 1..65535');
  const dbText = m[3];
  const db = dbText === undefined ? 0 : Number(dbText);
  if (dbText !== undefined && (!/^(0|[1-9][0-9]?)$/.test(dbText) || db > 15)) throw bad('database must be 0..15');
  return { kind: 'redis', host, port, db };
}

/** The store as logs and messages show it: never the password. */
export function describeStore(spec: StoreSpec): string {
  return spec.kind === 'memory' ? 'memory' : `redis://${spec.host}:${spec.port}/${spec.db}`;
}

/**
 * Open the store `spec` names with `limits`. `env` gives KFETCH_REDIS_PASSWORD (default process.env).
 * @throws KfetchError KF_E_USAGE when the Redis store is not built in, or a bad password variable; the Redis
 * store's own errors (unreachable…) as it throws them.
 */
export async function openPeerStore(
  spec: StoreSpec,
  limits: PeerStoreLimits,
  o: { log?: Logger; random?: () => number; env?: NodeJS.ProcessEnv } = {},
): Promise<PeerStore> {
  if (spec.kind === 'memory') return new MemoryPeerStore(limits, o.random === undefined ? {} : { random: o.random });
  const password = (o.env ?? process.env)[REDIS_PASSWORD_ENV];
  if (password !== undefined && password.length > MAX_PASSWORD) {
    throw new KfetchError('KF_E_USAGE', `${REDIS_PASSWORD_ENV} is longer than ${MAX_PASSWORD} characters`, { field: REDIS_PASSWORD_ENV });
  }
  const auth = password === undefined || password === '' ? '' : `:${encodeURIComponent(password)}@`;
  const url = `redis://${auth}${spec.host}:${spec.port}/${spec.db}`;
  let mod: { openRedisPeerStore?: unknown };
  try {
    mod = (await import('./redis-peer-store.js')) as { openRedisPeerStore?: unknown };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new KfetchError('KF_E_USAGE', `${describeStore(spec)}: the Redis store is not built into this kfetch`, { field: '--store', cause: err });
  }
  if (typeof mod.openRedisPeerStore !== 'function') {
    throw new KfetchError('KF_E_USAGE', `${describeStore(spec)}: the Redis store is not built into this kfetch`, { field: '--store' });
  }
  const open = mod.openRedisPeerStore as (url: string, limits: PeerStoreLimits, log: Logger | undefined) => Promise<PeerStore>;
  return open(url, limits, o.log);
}
