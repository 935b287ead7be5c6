// Spawn any program that prints `listening on http://HOST:PORT` on stdout (kfetch, bench/static-server.js) and
// resolve once it does; bounded, and the child is registered for the final kill.

import { spawn, type ChildProcess } from 'node:child_process';
import { trackChild } from '../measure.js';

/** Start `cmd args` and wait (at most `timeoutMs`) for its `listening on` line. */
export function spawnListening(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<{ proc: ChildProcess; url: string }> {
  const proc = trackChild(spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} did not listen within ${timeoutMs} ms: ${err.trim()}`));
    }, timeoutMs);
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
      reject(new Error(`${cmd} exited (${code}) before listening: ${err.trim()}`));
    });
  });
}
