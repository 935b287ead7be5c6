// Two or more kascades read in one scan name the same data file (issue 10 point 8): which one gets it. The one the
// state already knows with that file wins; else the one with the most blocks matching the file on disk (hashed in
// the workers); else none does, until all but one are removed. Never the first alphabetically: a bogus kascade
// dropped in the folder must not displace the one that owns the file. Used by seed-box.ts.

import { closeSync, lstatSync } from 'node:fs';
import { basename } from 'node:path';
import { recheck } from '../client/recheck.js';
import type { HashPool } from '../hashing/pool.js';
import { openToVerify } from '../store/data-file.js';
import type { Kascade } from '../kascade/kascade.js';
import type { StateDb } from '../store/state-db.js';

export interface Claimant {
  path: string;
  kascade: Kascade;
  /** The state has a download of this swarm into the data file. */
  known: boolean;
}

export interface ClaimVerdict {
  winner: Claimant | undefined;
  /** Why each other claimant does not get the file, by kascade path. */
  reasons: Map<string, string>;
}

/** A kascade file read in a scan, and the data file it would use. */
export interface ReadKascade {
  entry: { path: string };
  k: Kascade;
  dataPath: string;
}

/** Why a kascade of the scan does not get its data file, and the kascade file it gave way to. */
export interface Loser {
  reason: string;
  winner: string;
}

/**
 * The kascades of one scan that lose a data file to another of a different swarm, by kascade path. The same
 * swarm twice is the same content: those are left to the usual duplicate rule, but lose along with their swarm.
 */
export async function settleClaims(read: readonly ReadKascade[], o: { db: StateDb; pool: HashPool; signal: AbortSignal }): Promise<Map<string, Loser>> {
  const byData = new Map<string, ReadKascade[]>();
  for (const r of read) byData.set(r.dataPath, [...(byData.get(r.dataPath) ?? []), r]);
  const out = new Map<string, Loser>();
  for (const [dataPath, group] of byData) {
    const distinct = [...new Map(group.map((g) => [g.k.swarmId, g])).values()];
    if (distinct.length < 2) continue;
    const claimants = distinct.map((g) => ({ path: g.entry.path, kascade: g.k, known: o.db.getBySwarmId(g.k.swarmId)?.dataPath === dataPath }));
    const verdict = await decideClaim(dataPath, claimants, o);
    for (const g of group) {
      if (g.k.swarmId === verdict.winner?.kascade.swarmId) continue;
      const rep = claimants.find((c) => c.kascade.swarmId === g.k.swarmId)!;
      const winner = verdict.winner?.path ?? claimants.find((c) => c !== rep)!.path;
      out.set(g.entry.path, { reason: verdict.reasons.get(rep.path)!, winner });
    }
  }
  return out;
}

/** Decide who of `claimants` (two or more, distinct swarms) uses `dataPath`. */
export async function decideClaim(dataPath: string, claimants: readonly Claimant[], o: { pool: HashPool; signal: AbortSignal }): Promise<ClaimVerdict> {
  const names = (except: Claimant): string => claimants.filter((c) => c !== except).map((c) => c.path).join(', ');
  const both = (c: Claimant): string => `${c.path} and ${names(c)} name the same data file ${dataPath}`;
  const known = claimants.filter((c) => c.known);
  if (known.length === 1) {
    const winner = known[0]!;
    return { winner, reasons: losers(claimants, winner, (c) => `${both(c)}; ${basename(winner.path)} is used (the state already knows it); ignored`) };
  }
  // Scored by bytes that match, not blocks: a copy of the kascade at a smaller block size must not win by count.
  const matched = new Map<Claimant, { blocks: number; bytes: number }>();
  for (const c of claimants) matched.set(c, await matching(dataPath, c.kascade, o));
  const best = Math.max(...[...matched.values()].map((m) => m.bytes));
  let top = claimants.filter((c) => matched.get(c)!.bytes === best);
  // Several match every byte block by block (one file, kascades at other block sizes): the whole-file SHA-256,
  // taken once, says which of them name this file at all.
  if (top.length > 1 && best === top[0]!.kascade.filesize) {
    const hex = await fileSha256(dataPath, best, o);
    if (hex !== undefined) top = top.filter((c) => c.kascade.filehash === hex);
  }
  if (best > 0 && top.length === 1) {
    const winner = top[0]!;
    const of = (c: Claimant): string => `${matched.get(c)!.blocks} of ${c.kascade.geometry(c.kascade.preferredBlockSize).count}`;
    return {
      winner,
      reasons: losers(claimants, winner, (c) => `${both(c)}; ${basename(winner.path)} is used (its blocks match the file: ${of(winner)}; this one's: ${of(c)}); ignored`),
    };
  }
  return {
    winner: undefined,
    reasons: losers(claimants, undefined, (c) => `${both(c)}; none is known to the state or matches the file better, so none is used until the others are removed`),
  };
}

function losers(all: readonly Claimant[], winner: Claimant | undefined, why: (c: Claimant) => string): Map<string, string> {
  return new Map(all.filter((c) => c !== winner).map((c) => [c.path, why(c)]));
}

/** Blocks (and their bytes) of the file at `dataPath` that match `k` (none when it is missing, not a regular file or of another size). */
async function matching(dataPath: string, k: Kascade, o: { pool: HashPool; signal: AbortSignal }): Promise<{ blocks: number; bytes: number }> {
  const none = { blocks: 0, bytes: 0 };
  try {
    // A file of another size is not this kascade's: say so without hashing it.
    if (lstatSync(dataPath).size !== k.filesize) return none;
    const bs = k.preferredBlockSize;
    const r = await recheck({ path: dataPath, kascade: k, blockSize: bs, pool: o.pool, trust: { kind: 'nothing' }, signal: o.signal });
    if (r.size !== k.filesize) return none;
    const last = r.durable.length - 1;
    const short = last >= 0 && r.durable.has(last) ? r.durable.length * bs - k.filesize : 0;
    return { blocks: r.durable.count, bytes: r.durable.count * bs - short };
  } catch (err) {
    if (o.signal.aborted) throw err;
    return none; // missing, not a regular file, unreadable: it verifies for nobody
  }
}

/** The SHA-256 of the first `size` bytes of the file at `dataPath`, or undefined when it cannot be read. */
async function fileSha256(dataPath: string, size: number, o: { pool: HashPool; signal: AbortSignal }): Promise<string | undefined> {
  let fd: number;
  try {
    fd = openToVerify(dataPath);
  } catch {
    return undefined;
  }
  try {
    const r = await o.pool.sha256File({ kind: 'sha256-file', fd, size }, o.signal);
    return r.read === size ? r.hex : undefined;
  } catch (err) {
    if (o.signal.aborted) throw err;
    return undefined;
  } finally {
    closeSync(fd);
  }
}
