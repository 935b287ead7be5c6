// A real local swarm: the `kfetch tracker` we ship and N `kfetch seed` processes (children, on 127.0.0.1, port 0),
// serving one generated payload; returns the .kascade that points at them. Children die in killAllChildren().

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, type CliRun } from './cli.js';
import { kascadeJsonFor, makePayload, writeKascade } from './make-file.js';
import { trackerStoreArgs } from './tracker-store.js';

export interface Swarm {
  dir: string;
  kascadePath: string;
  filehash: string;
  payloadPath: string;
  tracker: CliRun;
  trackerUrl: string;
  seeders: { run: CliRun; addr: string }[];
}

export async function startSwarm(o: { size: number; blockSize: number; seeders: number; seed?: string; trackerArgs?: string[] }): Promise<Swarm> {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-swarm-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  const payload = makePayload(data, 'payload.bin', o.size, o.seed);
  const tracker = startCli(['tracker', '--port', '0', ...trackerStoreArgs(), ...(o.trackerArgs ?? [])]);
  const trackerUrl = (await tracker.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
  const k = kascadeJsonFor(payload.path, { filename: 'payload.bin', tracker: trackerUrl, blockSizes: [o.blockSize] });
  const filehash = k.filehash as string;
  k.tracker = `${trackerUrl}/peers/${filehash}.json`;
  const kascadePath = writeKascade(join(dir, 'payload.json'), k);
  const seeders = [];
  for (let i = 0; i < o.seeders; i++) {
    const run = startCli(['seed', kascadePath, '--data', data, '--port', '0', '--trust']);
    const url = (await run.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
    seeders.push({ run, addr: new URL(url).host });
  }
  return { dir, kascadePath, filehash, payloadPath: payload.path, tracker, trackerUrl, seeders };
}
