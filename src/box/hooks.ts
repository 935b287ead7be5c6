// The box's hooks (`kfetch seed --watch --on-done <cmd> --on-error <cmd>`): a command run per kascade event with the
// facts in its environment. The command line is the owner's, split into words once at start (string-argv: quotes
// group, nothing is expanded) and its program resolved then, so a typo fails at start; facts come from kascades
// (anyone's names and paths) and go only into environment values, never into a command line or a shell. At most
// `maxConcurrent` run at once, the rest wait in a bounded FIFO (the oldest dropped with a warning); each is killed
// with its process group after `timeoutMs`; the first `outputBytes` of its output and its exit are logged.
// Used by box-run.ts.

import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import parseArgsStringToArgv from 'string-argv';
import { KfetchError } from '../errors.js';

export type HookEvent = 'done' | 'error';

/** What a hook is told about a kascade (environment KFETCH_*). */
export interface HookFacts {
  /** The API id (entry-id.ts). */
  id: string;
  /** The kascade file's path. */
  file: string;
  name?: string | undefined;
  filehash?: string | undefined;
  size?: number | undefined;
  /** The data file's path. */
  data?: string | undefined;
  state: string;
  error?: string | undefined;
}

export interface HookRunnerOptions {
  onDone?: string | undefined;
  onError?: string | undefined;
  log: Logger;
  /** Hooks running at once (default 4). */
  maxConcurrent?: number;
  /** A hook running longer is killed (SIGKILL, with its process group); default 60 s. */
  timeoutMs?: number;
  /** Output (stdout and stderr together) logged per run, bytes; default 4 KiB. */
  outputBytes?: number;
  /** Runs waiting for a slot; beyond it the oldest is dropped with a warning. Default 1,000. */
  maxWaiting?: number;
}

/** Longest command line accepted for a hook flag. */
const MAX_COMMAND_CHARS = 8192;
/** Longest value put in one environment variable (Linux refuses one string over 128 KiB). */
const MAX_ENV_VALUE_CHARS = 16 * 1024;
/** After a hook exits, how long its output pipes may stay open (a background child holding them) before we stop reading. */
const PIPE_GRACE_MS = 1_000;

/**
 * Split and check a hook command at start: the words as run, with the program resolved to an absolute path (given
 * absolute, or found on PATH, an executable regular file). KF_E_USAGE naming `flag` for anything else.
 */
export function checkHookCommand(flag: string, cmd: string): string[] {
  // The CLI prints the field before the message (`kfetch: --on-done: … [KF_E_USAGE]`).
  const bad = (why: string): KfetchError => new KfetchError('KF_E_USAGE', why, { field: flag });
  if (cmd.length > MAX_COMMAND_CHARS) throw bad(`the command is longer than ${MAX_COMMAND_CHARS} characters`);
  if (cmd.includes('\0')) throw bad('the command contains a NUL character');
  if (!quotesBalanced(cmd)) throw bad('the command has an unclosed quote');
  const argv = parseArgsStringToArgv(cmd);
  const program = argv[0];
  if (program === undefined || program === '') throw bad('the command is empty');
  let resolved: string | undefined;
  if (isAbsolute(program)) {
    if (!isExecutableFile(program)) throw bad(`${JSON.stringify(program)} is not an executable file`);
    resolved = program;
  } else if (program.includes('/')) {
    throw bad(`${JSON.stringify(program)} is a relative path; give an absolute path or a program name found on PATH`);
  } else {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!isAbsolute(dir)) continue; // an empty or relative PATH entry would mean the box's working directory
      const candidate = join(dir, program);
      if (isExecutableFile(candidate)) {
        resolved = candidate;
        break;
      }
    }
    if (resolved === undefined) throw bad(`${JSON.stringify(program)} was not found on PATH (or is not executable)`);
  }
  return [resolved, ...argv.slice(1)];
}

/** Whether every quote string-argv opens is closed (it would silently take an unclosed one to the end). */
function quotesBalanced(cmd: string): boolean {
  let open: string | undefined;
  for (const c of cmd) {
    if (open === undefined) {
      if (c === '"' || c === "'") open = c;
    } else if (c === open) {
      open = undefined;
    }
  }
  return open === undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The hook's environment: ours without any inherited KFETCH_*, plus the facts (NUL removed, length capped). */
export function hookEnv(event: HookEvent, facts: HookFacts, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith('KFETCH_')) env[k] = v;
  const set = (key: string, value: string | number | undefined): void => {
    if (value === undefined) return;
    env[key] = String(value).replaceAll('\0', '').slice(0, MAX_ENV_VALUE_CHARS);
  };
  set('KFETCH_EVENT', event);
  set('KFETCH_ID', facts.id);
  set('KFETCH_FILE', facts.file);
  set('KFETCH_NAME', facts.name);
  set('KFETCH_FILEHASH', facts.filehash);
  set('KFETCH_SIZE', facts.size);
  set('KFETCH_DATA', facts.data);
  set('KFETCH_STATE', facts.state);
  if (event === 'error') set('KFETCH_ERROR', facts.error);
  return env;
}

interface Pending {
  event: HookEvent;
  facts: HookFacts;
}

interface Running {
  pid: number | undefined;
  done: Promise<void>;
}

export class HookRunner {
  private readonly commands: Partial<Record<HookEvent, string[]>> = {};
  private readonly log: Logger;
  private readonly maxConcurrent: number;
  private readonly timeoutMs: number;
  private readonly outputBytes: number;
  private readonly maxWaiting: number;
  private readonly waiting: Pending[] = [];
  private readonly running = new Set<Running>();
  private closed = false;
  /** Runs dropped because the waiting list was full (since start). */
  dropped = 0;

  /** Checks both commands now (KF_E_USAGE naming the flag). */
  constructor(o: HookRunnerOptions) {
    if (o.onDone !== undefined) this.commands.done = checkHookCommand('--on-done', o.onDone);
    if (o.onError !== undefined) this.commands.error = checkHookCommand('--on-error', o.onError);
    this.log = o.log;
    this.maxConcurrent = positive('maxConcurrent', o.maxConcurrent ?? 4);
    this.timeoutMs = positive('timeoutMs', o.timeoutMs ?? 60_000);
    this.outputBytes = Math.max(0, Math.floor(o.outputBytes ?? 4096));
    this.maxWaiting = positive('maxWaiting', o.maxWaiting ?? 1_000);
  }

  /** Whether a command is set for `event`. */
  has(event: HookEvent): boolean {
    return this.commands[event] !== undefined;
  }

  /** Hooks running now, and waiting for a slot. */
  get active(): number {
    return this.running.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Run the hook for `event` with these facts (now, or once a slot frees). Never throws; no-op without a command. */
  run(event: HookEvent, facts: HookFacts): void {
    if (this.commands[event] === undefined || this.closed) return;
    if (this.running.size < this.maxConcurrent) return this.start({ event, facts });
    this.waiting.push({ event, facts });
    if (this.waiting.length > this.maxWaiting) {
      const old = this.waiting.shift()!;
      this.dropped++;
      this.log.warn({ hook: old.event, id: old.facts.id, file: old.facts.file, waiting: this.maxWaiting }, 'hook: too many waiting; the oldest is dropped');
    }
  }

  /** No more runs; waiting ones are dropped; running ones get until `deadlineMs`, then are killed. */
  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    if (this.waiting.length > 0) this.log.warn({ dropped: this.waiting.length }, 'hook: box stopping; waiting hooks not run');
    this.waiting.length = 0;
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all([...this.running].map((r) => r.done));
    const late = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadlineMs)))]);
    clearTimeout(timer);
    if (!late) return;
    this.log.warn({ hooks: this.running.size, deadlineMs }, 'hook: still running at stop; killed');
    for (const r of this.running) killGroup(r.pid);
    // Killed: each settles once its pipes close (or PIPE_GRACE_MS after its exit).
    await all;
  }

  private start(p: Pending): void {
    const argv = this.commands[p.event]!;
    const started = performance.now();
    const ctx = { hook: p.event, id: p.facts.id, file: p.facts.file, command: argv[0] };
    let settle!: () => void;
    const r: Running = { pid: undefined, done: new Promise<void>((res) => (settle = res)) };
    this.running.add(r);
    let finished = false;
    const finish = (fields: Record<string, unknown>, level: 'info' | 'warn', msg: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(killer);
      clearTimeout(grace);
      this.running.delete(r);
      const output = Buffer.concat(chunks).toString('utf8');
      this.log[level]({ ...ctx, ...fields, ms: Math.round(performance.now() - started), ...(output === '' ? {} : { output }) }, msg);
      settle();
      this.next();
    };
    const chunks: Buffer[] = [];
    let kept = 0;
    const keep = (d: Buffer): void => {
      if (kept >= this.outputBytes) return;
      const part = d.subarray(0, this.outputBytes - kept);
      chunks.push(Buffer.from(part));
      kept += part.length;
    };
    let killer: NodeJS.Timeout | undefined;
    let grace: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      // Its own process group (detached), so a timeout kills what it started too; no shell: argv as checked at start.
      const child = spawn(argv[0]!, argv.slice(1), {
        shell: false,
        detached: true,
        env: hookEnv(p.event, p.facts),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      r.pid = child.pid;
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      killer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
      }, this.timeoutMs);
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const report = (): void => {
        const { code, signal } = exit!;
        if (timedOut) return finish({ signal, timeoutMs: this.timeoutMs }, 'warn', 'hook: killed after its time limit');
        if (code === 0) return finish({ exitCode: 0 }, 'info', 'hook ran');
        finish({ exitCode: code, signal }, 'warn', code === null ? `hook: ended by ${signal}` : `hook: exited with code ${code}`);
      };
      child.on('error', (err) => finish({ err: err.message }, 'warn', 'hook: could not be started'));
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        // A background process it left may hold the pipes: do not wait for it to report.
        grace = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          report();
        }, PIPE_GRACE_MS);
        grace.unref();
      });
      child.on('close', () => {
        if (exit !== undefined) report();
      });
    } catch (err) {
      finish({ err: err instanceof Error ? err.message : String(err) }, 'warn', 'hook: could not be started');
    }
  }

  private next(): void {
    while (!this.closed && this.running.size < this.maxConcurrent) {
      const p = this.waiting.shift();
      if (p === undefined) return;
      this.start(p);
    }
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

function positive(field: string, n: number): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${field} must be positive, got ${n}`);
  return n;
}
