// A seeding-box test world: a watch folder, a data folder and a home in one temp dir, a box child started on
// port 0, and bounded polling of its /status. Used by the test/integration/box-*.test.ts files.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCli, tempHome, type CliRun } from './cli.js';
import { kascadeJsonFor, payloadBytes } from './make-file.js';
import type { TestScope } from './test-scope.js';

export const BLOCK = 65_536;

export interface BoxWorld {
  dir: string;
  watch: string;
  data: string;
  home: string;
}

export interface BoxStatusFile {
  path: string;
  state: string;
  name?: string;
  error?: string;
  nextTry?: string;
}

export interface BoxStatusReply {
  kascades: Record<string, number>;
  files: BoxStatusFile[];
}

export function boxWorld(scope: TestScope): BoxWorld {
  const dir = scope.dir('kfetch-box-');
  const w = { dir, watch: join(dir, 'watch'), data: join(dir, 'data'), home: tempHome() };
  mkdirSync(w.watch);
  mkdirSync(w.data);
  return w;
}

/** A payload of `size` bytes and its kascade object; the tracker defaults to a closed loopback port. */
export function boxPayload(name: string, seed: string, size = 5 * BLOCK - 1234, extra: Record<string, unknown> = {}) {
  const bytes = payloadBytes(0, size, seed);
  const k = kascadeJsonFor(bytes, { filename: name, tracker: 'http://127.0.0.1:9', blockSizes: [BLOCK], extra });
  return { bytes, k, filehash: k.filehash as string };
}

export async function startBox(w: BoxWorld, extra: string[] = []): Promise<{ run: CliRun; url: string }> {
  const run = startCli(['seed', '--watch', w.watch, '--data', w.data, '--port', '0', ...extra], { home: w.home });
  const m = await run.waitForLine(/^listening on (http:\/\/\S+)/);
  return { run, url: m[1]! };
}

export async function boxStatus(url: string): Promise<BoxStatusReply> {
  const res = await fetch(`${url}/status`);
  if (res.status !== 200) throw new Error(`/status answered ${res.status}`);
  return (await res.json()) as BoxStatusReply;
}

/** Poll /status every 50 ms until `pred` holds, for at most `timeoutMs`. */
export async function waitBoxStatus(url: string, pred: (s: BoxStatusReply) => boolean, what: string, timeoutMs = 20_000): Promise<BoxStatusReply> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const last = await boxStatus(url);
    if (pred(last)) return last;
    if (performance.now() > deadline) throw new Error(`box never reached: ${what}; last status ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const entryOf = (s: BoxStatusReply, file: string): BoxStatusFile | undefined => s.files.find((f) => f.path.endsWith(`/${file}`));
