// Spawns the built kfetch bin as a real child process with its own temporary --home, collects its output,
// waits for lines with a time limit, and kills every child it started (call killAllChildren in afterEach).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

const children = new Set<ChildProcess>();
const homes: string[] = [];

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first stdout line matching `re`, rejects after `timeoutMs` or when the child exits first. */
  waitForLine: (re: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or 128+signal) within `timeoutMs`. */
  exited: (timeoutMs?: number) => Promise<number>;
}

/** A fresh temporary --home, removed by killAllChildren(). */
export function tempHome(): string {
  const h = mkdtempSync(join(tmpdir(), 'kfetch-home-'));
  homes.push(h);
  return h;
}

/** Start `kfetch <args>`; `home` defaults to a fresh temp dir. */
export function startCli(
  args: string[],
  opts: { home?: string; env?: NodeJS.ProcessEnv; cwd?: string; ulimitF?: number; nodeFlags?: string[] } = {},
): CliRun {
  const home = opts.home ?? tempHome();
  const env = { ...process.env, KFETCH_HOME: home, ...opts.env };
  const child =
    opts.nodeFlags !== undefined
      ? // Node flags of the test's own instead of the bin's shebang ones (which the command line would override).
        spawn(process.execPath, [...opts.nodeFlags, BIN, ...args], { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
      : opts.ulimitF === undefined
      ? spawn(BIN, args, { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `ulimit -f ${opts.ulimitF} && exec "$0" "$@"`, BIN, ...args], {
          env,
          cwd: opts.cwd,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exitPromise = new Promise<number>((res) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      res(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 0));
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine(re, timeoutMs = 15_000) {
      return new Promise((res, rej) => {
        const started = Date.now();
        const tick = (): void => {
          for (const line of out.split('\n')) {
            const m = line.match(re);
            if (m) return res(m);
          }
          if (child.exitCode !== null || child.signalCode !== null)
            return rej(new Error(`child exited before ${re}: stdout=${out} stderr=${err}`));
          if (Date.now() - started > timeoutMs) return rej(new Error(`timeout waiting for ${re}: stdout=${out} stderr=${err}`));
          setTimeout(tick, 20);
        };
        tick();
      });
    },
    exited(timeoutMs = 30_000) {
      return Promise.race([
        exitPromise,
        new Promise<number>((_, rej) => setTimeout(() => rej(new Error(`child did not exit in ${timeoutMs} ms: ${err}`)), timeoutMs).unref()),
      ]);
    },
  };
}

/** Run `kfetch <args>` to completion. */
export async function runCli(args: string[], opts: Parameters<typeof startCli>[1] & { timeoutMs?: number } = {}) {
  const run = startCli(args, opts);
  const code = await run.exited(opts.timeoutMs ?? 60_000);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Kill every child still running and remove the temporary homes (call in afterEach). */
export function killAllChildren(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
}
