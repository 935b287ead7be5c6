// `kfetch create <file>`: hash a file in the worker pool and write its .kascade (2015 dialect) atomically.

import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { KfetchError, fromFsError } from '../../errors.js';
import { createKascade } from '../../hashing/create-kascade.js';
import { createHashPool } from '../../hashing/pool.js';
import { serializeKascade } from '../../kascade/serialize.js';
import { LIMITS } from '../../limits.js';
import type { CommandContext } from '../context.js';
import { createProgress, type Progress } from '../progress.js';

interface CreateOptions {
  /** In order: the first is `tracker`, the rest go to the `trackers` extension (failover, docs/spec-trackers.md). */
  tracker: string[];
  blockSize?: string[];
  output?: string;
  peer?: string[];
  json?: boolean;
  threads?: string;
  force?: boolean;
  compat2015?: boolean;
}

/**
 * The block sizes the original 2015 peers hard-code (SPEC §6): the Python peer 1024 (one version) or 4096, the
 * JavaScript peer 4096. A file must offer them for those peers to use it.
 */
export const ORIGINAL_BLOCK_SIZES: readonly number[] = [1024, 4096];

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];
const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;

export function registerCreate(program: Command, ctx: CommandContext): void {
  program
    .command('create')
    .description('hash <file> and write a .kascade describing it (SHA-256 of the file, MD5 of every block)')
    .argument('<file>', 'the data file to describe; its base name becomes the kascade `filename`')
    .addOption(
      new Option(
        '--tracker <url>',
        'tracker URL: http(s)://host:port becomes http(s)://host:port/peers/<filehash>.json; a URL with a path is kept as is. ' +
          `Repeat to name failover trackers (at most ${LIMITS.kascadeTrackersMax} in all): the first is the kascade's \`tracker\` (the one original 2015 peers use), the others go to \`trackers\`, tried in order when one fails`,
      )
        .argParser(collect)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--block-size <bytes>',
        `block size in bytes, a plain decimal number between ${LIMITS.minBlockSize} and ${LIMITS.maxBlockSize}; repeat to offer several sizes (default ${LIMITS.defaultBlockSize})`,
      ).argParser(collect),
    )
    .option('-o, --output <path>', 'where to write the kascade (default: ./<file name>.json in the current directory)')
    .addOption(new Option('--peer <host:port>', 'add a known peer or plain HTTP server to the kascade `peers`; repeatable').argParser(collect))
    .option(
      '--compat-2015',
      `also offer the block sizes the original 2015 Kascade peers hard-code (${ORIGINAL_BLOCK_SIZES.join(' and ')} bytes), besides the default or --block-size sizes, so those peers can use the file`,
    )
    .option('--json', 'print progress events and the result as JSON lines on stdout')
    .option('--threads <n>', 'hashing worker threads (default: the number of cores)')
    .option('--force', 'overwrite the output file if it exists')
    .action(async (file: string, opts: CreateOptions) => {
      await runCreate(file, opts, ctx);
    });
}

async function runCreate(file: string, opts: CreateOptions, ctx: CommandContext): Promise<void> {
  const chosen = (opts.blockSize ?? [String(LIMITS.defaultBlockSize)]).map(parseBlockSize);
  const compat = opts.compat2015 === true;
  // Duplicates are dropped (and sizes sorted) by createKascade; all sizes are hashed in one read when their LCM allows.
  const blockSizes = compat ? [...chosen, ...ORIGINAL_BLOCK_SIZES] : chosen;
  const json = opts.json === true;
  const force = opts.force === true;
  const threads = opts.threads === undefined ? undefined : parseThreads(opts.threads);
  const output = resolve(opts.output ?? join('.', `${basename(file)}.json`));
  if (!force && existsSync(output)) {
    throw new KfetchError('KF_E_OUTPUT_EXISTS', 'the output file exists; use --force to overwrite it', { file: output });
  }

  checkKascadeSize(file, blockSizes, chosen, compat);

  const pool = createHashPool(threads === undefined ? {} : { threads });
  let progress: Progress | undefined;
  try {
    const kascade = await createKascade({
      path: file,
      tracker: opts.tracker[0]!,
      trackers: opts.tracker.slice(1),
      blockSizes,
      peers: opts.peer ?? [],
      pool,
      signal: ctx.shutdown,
      onProgress: (done, total) => {
        progress ??= createProgress({ label: 'hashing', total, unit: 'bytes', json });
        progress.update(done);
      },
    }).catch((err: unknown) => {
      throw compat ? blameCompat(err, chosen) : err;
    });
    progress?.stop();
    await writeAtomically(output, serializeKascade(kascade), force, ctx.shutdown);
    if (json) {
      ctx.out.write(
        `${JSON.stringify({
          v: 1,
          event: 'created',
          output,
          filehash: kascade.filehash,
          filename: kascade.filename,
          filesize: kascade.filesize,
          blockSizes: kascade.blockSizes,
          tracker: kascade.tracker,
          trackers: kascade.trackers,
        })}\n`,
      );
    } else {
      ctx.out.write(`${output}\nfilehash ${kascade.filehash}\n`);
    }
  } finally {
    progress?.stop();
    await pool.destroy();
  }
}

function parseBlockSize(text: string): number {
  if (!CANONICAL_DECIMAL.test(text)) {
    throw new KfetchError('KF_E_INPUT', `"${text}" is not a plain decimal number of bytes`, { field: '--block-size' });
  }
  // Range and block-count checks happen in createKascade (they need the file size).
  return Number(text);
}

/**
 * A block-size problem with a size that only --compat-2015 added (too many blocks of 1024 bytes for a file over
 * 4 GiB): name that flag, not --block-size, and say what still works.
 */
function blameCompat(err: unknown, chosen: readonly number[]): unknown {
  if (!(err instanceof KfetchError) || err.field !== '--block-size') return err;
  const size = err.detail?.blockSize;
  if (typeof size !== 'number' || chosen.includes(size) || !ORIGINAL_BLOCK_SIZES.includes(size)) return err;
  return new KfetchError(
    'KF_E_INPUT',
    `${err.message.replace(/; use a larger block size$/, '')}, so this file cannot offer the original peers' ${size}-byte blocks (leave out --compat-2015; --block-size 4096 still serves the peers that use 4096)`,
    { field: '--compat-2015', cause: err, ...(err.detail === undefined ? {} : { detail: err.detail }) },
  );
}

/** Bytes serializeKascade writes per block hash (6 spaces of indentation, 32 hex in quotes, a comma, a newline). */
const BYTES_PER_HASH_LINE = 42;

/**
 * Refuse, before hashing, a kascade that would be larger than the size peers load (LIMITS.kascadeMaxBytes; kfetch
 * refuses bigger ones as KF_E_KASCADE_TOO_LARGE): small blocks of a big file — 1024-byte blocks add 42 bytes per KiB,
 * so --compat-2015 reaches the limit near 1.2 GiB. Names the flag that added the size, and says what still fits.
 */
function checkKascadeSize(file: string, blockSizes: readonly number[], chosen: readonly number[], compat: boolean): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return; // createKascade reports a missing or unreadable file with its own error
  }
  const lines = (b: number): number => Math.ceil(size / b) * BYTES_PER_HASH_LINE;
  const sizes = [...new Set(blockSizes)];
  const estimate = sizes.reduce((n, b) => n + lines(b), 4096);
  if (estimate <= LIMITS.kascadeMaxBytes) return;
  const mib = (n: number): string => (n / (1024 * 1024)).toFixed(0);
  const byCompat = compat && ORIGINAL_BLOCK_SIZES.some((b) => !chosen.includes(b));
  const withoutSmallest = estimate - lines(Math.min(...sizes));
  throw new KfetchError(
    'KF_E_INPUT',
    `the kascade would be about ${mib(estimate)} MiB of block hashes, over the ${mib(LIMITS.kascadeMaxBytes)} MiB peers load; ` +
      (byCompat
        ? `the 1024-byte blocks --compat-2015 adds are too many for this file (leave out --compat-2015; to keep 4096-byte blocks give --block-size 4096 --block-size ${Math.max(...chosen)}: about ${mib(withoutSmallest)} MiB)`
        : 'offer larger block sizes'),
    { field: byCompat ? '--compat-2015' : '--block-size', file },
  );
}

function parseThreads(text: string): number {
  const n = Number(text);
  if (!CANONICAL_DECIMAL.test(text) || n < 1 || n > 1024) {
    throw new KfetchError('KF_E_INPUT', `"${text}" is not a thread count between 1 and 1024`, { field: '--threads' });
  }
  return n;
}

/**
 * Write `text` to a temp file next to `output`, fsync it, then move it into place: with `force` by rename (replaces
 * atomically); otherwise by link, which fails if `output` appeared meanwhile. A reader never sees half a file.
 */
async function writeAtomically(output: string, text: string, force: boolean, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const temp = join(dirname(output), `.${basename(output)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(temp, 'wx', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (force) await rename(temp, output);
    else await linkOrRename(temp, output);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new KfetchError('KF_E_OUTPUT_EXISTS', 'the output file exists; use --force to overwrite it', { file: output, cause: err });
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new KfetchError('KF_E_IO', 'cannot write the output: its directory does not exist', { file: output, cause: err });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') throw fromFsError(err, output, 'cannot write the output');
    throw new KfetchError('KF_E_IO', `cannot write the output: ${(err as Error).message}`, { file: output, cause: err });
  } finally {
    // After a link the temp name is a second name of the output; after a rename or a failure it is gone or junk.
    await unlink(temp).catch(() => undefined);
  }
}

/** Move `temp` to `output` without replacing an existing file: link() where the file system has hard links. */
async function linkOrRename(temp: string, output: string): Promise<void> {
  try {
    await link(temp, output);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
    // No hard links here (FAT, some network file systems): check, then rename; a small race, but no torn file.
    if (existsSync(output)) throw Object.assign(new Error('output exists'), { code: 'EEXIST' });
    await rename(temp, output);
  }
}
