// The one error type of kfetch: a stable `code` that callers, `--json` and the exit status branch on,
// plus the facts (file, field, peer, block) that make the message useful. Used everywhere.

/** Every error code kfetch raises, with its exit status class and a line of advice (documented in docs/errors.md). */
export const ERROR_CATALOGUE = {
  KF_E_USAGE: { exit: 2, advice: 'Check the command line against `kfetch <command> --help`.' },
  KF_E_KASCADE_JSON: { exit: 3, advice: 'The .kascade file is not valid JSON; re-download or re-create it.' },
  KF_E_KASCADE_TOO_LARGE: { exit: 3, advice: 'The .kascade file is larger than the limit; it is not a real kascade.' },
  KF_E_KASCADE_SCHEMA: { exit: 3, advice: 'A field of the .kascade file is missing or has the wrong type.' },
  KF_E_KASCADE_SIZE: { exit: 3, advice: 'filesize must be a safe integer >= 0.' },
  KF_E_KASCADE_BLOCKS: { exit: 3, advice: 'A block size or the number of block hashes is wrong for the file size.' },
  KF_E_KASCADE_HASH: { exit: 3, advice: 'A hash has the wrong length or is not hex.' },
  KF_E_KASCADE_NAME: { exit: 3, advice: 'filename must be a bare file name; use --output to choose another name.' },
  KF_E_KASCADE_TRACKER: { exit: 3, advice: 'tracker must be an absolute http(s) URL without credentials.' },
  KF_E_KASCADE_PEER: { exit: 3, advice: 'A peers entry names an address kfetch never dials (link-local, unspecified, multicast…); remove it.' },
  KF_E_OUTPUT_EXISTS: { exit: 3, advice: 'Remove the existing file, choose another output path, or `get --adopt` to keep its good blocks.' },
  KF_E_INPUT: { exit: 3, advice: 'An input file or option value is not usable; the message names it.' },
  KF_E_TRACKER_UNREACHABLE: { exit: 4, advice: 'Check the tracker URL and that the tracker is running.' },
  KF_E_TRACKER_RESPONSE: { exit: 4, advice: 'The tracker answered with something that is not a valid peer list.' },
  KF_E_TRACKER_REFUSED: { exit: 4, advice: 'The tracker refused the announce; the message gives its reason.' },
  KF_E_TRACKER_BACKOFF: { exit: 4, advice: 'The tracker asked us to wait (403 + Retry-After); kfetch waits and retries.' },
  KF_E_NO_PEERS: { exit: 4, advice: 'No peer could be reached before the timeout.' },
  KF_E_STORE_UNAVAILABLE: { exit: 4, advice: 'The tracker\'s --store (Redis) did not answer; check that it runs, its address and KFETCH_REDIS_PASSWORD, then start again.' },
  KF_E_LISTEN: { exit: 4, advice: 'The address or port is in use or not available; pick another with --port/--host.' },
  KF_E_PEER_HASH_MISMATCH: { exit: 4, advice: 'A peer sent a block whose MD5 did not match; it is banned for the session.' },
  KF_E_PEER_SHORT: { exit: 4, advice: 'A peer sent fewer bytes than the block; the block is fetched elsewhere.' },
  KF_E_PEER_LONG: { exit: 4, advice: 'A peer sent more bytes than the block; the block is fetched elsewhere.' },
  KF_E_PEER_TIMEOUT: { exit: 4, advice: 'A peer did not answer in time; it gets fewer requests.' },
  KF_E_PEER_LIED: { exit: 4, advice: 'A peer said it had a block and then did not serve it.' },
  KF_E_PEER_CONNECT: { exit: 4, advice: 'A peer could not be reached or dropped the connection; it is retried later.' },
  KF_E_PEER_PROTOCOL: { exit: 4, advice: 'A peer answered outside the protocol (status, headers or encoding).' },
  KF_E_DISK_FULL: { exit: 5, advice: 'Free disk space (the message says how much is needed; EFBIG: raise `ulimit -f` or use a file system that holds files this large) and run `kfetch resume`.' },
  KF_E_DATA_MISSING: { exit: 5, advice: 'The data file is missing or is not a regular file; restore it or start over.' },
  KF_E_STATE_CORRUPT: { exit: 5, advice: 'The state database was damaged and moved aside; `kfetch get --adopt` each .kascade to recover (good blocks kept).' },
  KF_E_STATE_READONLY: { exit: 5, advice: 'The state database (or its folder) cannot be written: fix its permissions or the file system, then run again. Nothing was changed.' },
  KF_E_HOME_LOCKED: { exit: 5, advice: 'Another kfetch process uses this --home; stop it or use another home.' },
  KF_E_IO: { exit: 5, advice: 'A file could not be read or written; the message names it and the system error.' },
  KF_E_WORKER: { exit: 5, advice: 'A hashing/writing worker failed repeatedly; see the cause.' },
  KF_E_FILE_HASH_MISMATCH: { exit: 6, advice: 'The data does not match the .kascade filehash; the file or the .kascade is wrong.' },
  KF_E_INTERRUPTED: { exit: 130, advice: 'Stopped by SIGINT (130) or SIGTERM (143) after a clean checkpoint; `kfetch resume` continues.' },
  KF_E_API_REQUEST: { exit: 3, advice: 'A control API request had a bad query, path or body; the message names the field (docs/api.md).' },
  KF_E_API_AUTH: { exit: 2, advice: 'Send `Authorization: Bearer <token>` with the token in <home>/api-token (kfetch box reads it itself).' },
  KF_E_API_FORBIDDEN: { exit: 2, advice: 'The box refused this address or Host header; see --api-allow and --api-host.' },
  KF_E_API_NOT_FOUND: { exit: 3, advice: 'No such API route or kascade id; list them with `kfetch box ls`.' },
  KF_E_API_METHOD: { exit: 3, advice: 'The route does not take this method; the Allow header lists those it does.' },
  KF_E_API_CONFLICT: { exit: 3, advice: 'The kascade is already in the box, or its state does not allow this action now.' },
  KF_E_API_TOO_LARGE: { exit: 3, advice: 'The request body is larger than the API accepts.' },
  KF_E_API_BUSY: { exit: 4, advice: 'Too many event streams are open; close some, or retry later.' },
  KF_E_BOX_UNREACHABLE: { exit: 4, advice: 'No seeding box answers for this --home; start one with `kfetch seed --watch <dir> --data <dir>`.' },
  KF_E_INTERNAL: { exit: 1, advice: 'A bug in kfetch; please report it with the message.' },
} as const satisfies Record<string, { exit: number; advice: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface KfetchErrorFacts {
  /** The file the error is about (a .kascade, a data file, the state database). */
  file?: string;
  /** The field path inside that file or request (`filesize`, `blockhashes.262144[17]`, `port`). */
  field?: string;
  /** The peer as `host:port`. */
  peer?: string;
  /** The block index. */
  block?: number;
  /** Extra structured detail for --json output. */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class KfetchError extends Error {
  readonly code: ErrorCode;
  readonly file: string | undefined;
  readonly field: string | undefined;
  readonly peer: string | undefined;
  readonly block: number | undefined;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, facts: KfetchErrorFacts = {}) {
    super(message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.name = 'KfetchError';
    this.code = code;
    this.file = facts.file;
    this.field = facts.field;
    this.peer = facts.peer;
    this.block = facts.block;
    this.detail = facts.detail;
  }

  /** The process exit status for this error's class (see ERROR_CATALOGUE). */
  get exitCode(): number {
    return ERROR_CATALOGUE[this.code].exit;
  }

  /** One line for stderr: `kfetch: <file>: <field>: <message> [CODE]`. */
  toLine(): string {
    const where = [this.file, this.field].filter((x): x is string => x !== undefined && x !== '').join(': ');
    return `${where === '' ? '' : `${where}: `}${this.message} [${this.code}]`;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.file !== undefined) out.file = this.file;
    if (this.field !== undefined) out.field = this.field;
    if (this.peer !== undefined) out.peer = this.peer;
    if (this.block !== undefined) out.block = this.block;
    if (this.detail !== undefined) out.detail = this.detail;
    return out;
  }
}

export function isKfetchError(e: unknown): e is KfetchError {
  return e instanceof KfetchError;
}

/**
 * Map a Node.js system error from a file operation to a KfetchError naming the file.
 * ENOSPC/EDQUOT (no space) and EFBIG (file too large) become KF_E_DISK_FULL, ENOENT KF_E_DATA_MISSING, the rest KF_E_IO.
 */
export function fromFsError(err: unknown, file: string, what: string): KfetchError {
  if (err instanceof KfetchError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const sys = err instanceof Error ? err.message : String(err);
  // EFBIG keeps KF_E_DISK_FULL (the download stops resumable, as for ENOSPC) with its own words: freeing space
  // would not help, raising the limit or moving the file would.
  if (code === 'EFBIG') {
    return new KfetchError('KF_E_DISK_FULL', `${what}: file too large for this file system or the process's file-size limit (EFBIG)`, { file, cause: err });
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new KfetchError('KF_E_DISK_FULL', `${what}: no space left (${code})`, { file, cause: err });
  }
  if (code === 'ENOENT') return new KfetchError('KF_E_DATA_MISSING', `${what}: no such file`, { file, cause: err });
  return new KfetchError('KF_E_IO', `${what}: ${sys}`, { file, cause: err });
}
