// The address policy at the socket: every dial (range client, /blocks client, announce client) asserts the floor of
// util/address-policy.ts once more, whatever the address's source, and a host name is judged by the addresses it
// resolves to (a .kascade or user may name hosts; a tracker never can). Entry points already judged the address
// with its source's loopback rule; this catches what slipped past (peers remembered by an older version, DNS).

import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { KfetchError } from '../errors.js';
import { judgeAddress, verdictReason } from '../util/address-policy.js';

/**
 * The floor every dial asserts, whatever the source (loopback is the entry points' call): the reason an IP-literal
 * `host` (brackets allowed) may not be dialled, or undefined. A host name passes here and is judged by
 * `policedLookup` once resolved.
 */
export function dialProblem(host: string): string | undefined {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(h) === 0) return undefined;
  const verdict = judgeAddress(h, { allowLoopback: true });
  return verdict === 'ok' ? undefined : `${h} is ${verdictReason(verdict)}; the address policy refuses to dial it`;
}

/** `dialProblem` as a KfetchError (KF_E_PEER_CONNECT, the per-peer "unreachable" code: the session goes on). */
export function assertDialable(host: string, peer: string): void {
  const why = dialProblem(host);
  if (why !== undefined) throw new KfetchError('KF_E_PEER_CONNECT', why, { peer, detail: { addressPolicy: true } });
}

/**
 * A dial the policy refused, as a socket-level error (no errno `code`, so callers that show the code show this
 * message): the range and /blocks clients map it to KF_E_PEER_CONNECT, the announce client to
 * KF_E_TRACKER_UNREACHABLE, like any other unreachable address.
 */
export class AddressPolicyError extends Error {
  override readonly name = 'AddressPolicyError';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `net.connect` (and undici's connector): resolves like dns.lookup, keeps only addresses that pass
 * the floor, and fails when none does — so a name (given by a user or a .kascade) that resolves to, say,
 * 169.254.169.254 is never dialled. Node skips `lookup` for IP literals; `dialProblem` covers those.
 */
export function policedLookup(hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err !== null) return callback(err, []);
    const ok = addresses.filter((a) => judgeAddress(a.address, { allowLoopback: true }) === 'ok');
    if (ok.length === 0) {
      const shown = addresses.map((a) => a.address).join(', ');
      return callback(new AddressPolicyError(`${hostname} resolves only to addresses the address policy refuses (${shown})`), []);
    }
    if (options.all === true) return callback(null, ok);
    callback(null, ok[0]!.address, ok[0]!.family);
  });
}

/**
 * An undici `connect` option that asserts the floor before each connection (IP literals) and resolves names
 * through `policedLookup`: for the /blocks client and the announce client.
 */
export function policedConnector(opts: { timeout?: number } = {}): buildConnector.connector {
  const base = buildConnector({ ...opts, lookup: policedLookup });
  return (options, callback) => {
    const why = dialProblem(options.hostname);
    if (why !== undefined) return callback(new AddressPolicyError(why), null);
    base(options, callback);
  };
}

let shared: Agent | undefined;

/** One process-wide undici Agent whose connections pass the guard (the announce client's default dispatcher). */
export function policedDispatcher(): Agent {
  shared ??= new Agent({ connect: policedConnector() });
  return shared;
}
