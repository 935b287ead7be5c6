// Runs one of the standalone protocol measures (bench/wire-vs-http.ts, bench/udp-tracker-quick.ts) as a child
// process for the `peer-wire` and `tracker-udp` scenarios, and returns the JSON object on its last stdout line.
// Bounded in time; killed with the bench (trackChild).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackChild } from '../measure.js';

/** Run `bench/<script>.js args` and parse the last stdout line that is a JSON object. */
export function runMeasure<T>(script: string, args: string[], timeoutMs: number): Promise<T> {
  const path = fileURLToPath(new URL(`../${script}.js`, import.meta.url));
  const proc = trackChild(spawn(process.execPath, [path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${script} exited ${code ?? signal}: ${err.trim().slice(-600)}`));
      // The whole output may be one pretty-printed object (udp-tracker-quick) or text then a JSON line (wire-vs-http).
      const start = out.trimStart().startsWith('{') ? out : out.slice(out.lastIndexOf('\n{') + 1);
      try {
        resolve(JSON.parse(start) as T);
      } catch {
        reject(new Error(`${script} printed no JSON result: ${out.slice(-300)}`));
      }
    });
  });
}
