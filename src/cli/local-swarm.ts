// Starts kfetch child processes (the tracker, seeders) on 127.0.0.1 for `kfetch demo` and the benchmarks, waits
// for each one's `listening on` line, and stops them all. Every wait is bounded.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KfetchError } from '../errors.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface Child {
  proc: ChildProcess;
  url: string;
}

/** Spawn `kfetch <args>` and resolve with its URL once it prints `listening on http://...` (within `timeoutMs`). */
export function startKfetchChild(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Child> {
  // The bin itself, not `node main.js`: its shebang carries kfetch's V8 flags.
  return spawnListening(MAIN, args, env, timeoutMs);
}

/**
 * Spawn any program that prints `listening on http://HOST:PORT` on stdout and resolve once it does (at most
 * `timeoutMs`; the child is killed on timeout). `onSpawn` sees the child at once, e.g. to register it for cleanup.
 */
export function spawnListening(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
  onSpawn?: (proc: ChildProcess) => void,
): Promise<Child> {
  const proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn?.(proc);
  const name = `${command === MAIN ? 'kfetch' : command} ${args[0] ?? ''}`.trim();
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new KfetchError('KF_E_INTERNAL', `${name} did not start within ${timeoutMs} ms: ${err.trim()}`));
    }, timeoutMs);
    timer.unref();
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^listening on (http:\/\/\S+)$/m.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        proc.stdout!.removeAllListeners('data');
        proc.stdout!.resume();
        resolve({ proc, url: m[1]! });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new KfetchError('KF_E_INTERNAL', `${name} exited (${code}) before listening: ${err.trim()}`));
    });
  });
}

/** SIGTERM each child, then SIGKILL whatever is still running after `graceMs`. */
export async function stopChildren(children: Child[], graceMs = 3_000): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
          const t = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
          c.proc.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          c.proc.kill('SIGTERM');
        }),
    ),
  );
}
