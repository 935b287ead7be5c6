// Issue 9, kfetch as the downloader in a swarm with original 2015 peers behind `kfetch tracker`:
// - an original peer listed at progress 0 (it announced at start, has nothing yet, and serves only a complete file)
//   and without /blocks is not asked for blocks — before, it was assumed to hold everything and got a request per
//   block, each answered with a headerless 404;
// - an original that announced complete is fetched from through the tracker alone;
// - `get --block-size` picks one of the sizes a --compat-2015 file offers, for originals that serve only those.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli, startCli, tempHome } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { originalAnnounce } from '../helpers/original-client.js';
import { startOriginalServer } from '../helpers/original-server.js';
import { testScope } from '../helpers/test-scope.js';

const BLOCK = 4096;
const scope = testScope();
const tempDir = (): string => scope.dir('kfetch-orig-tracker-');

async function trackerUrl(): Promise<string> {
  const t = startCli(['tracker', '--port', '0']);
  return (await t.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

it('issue 9: an original peer listed at progress 0 gets no block requests; the file comes from the kfetch seeder', async () => {
  const dir = tempDir();
  const bytes = payloadBytes(0, 64 * BLOCK - 10, 'orig-progress-0');
  const base = await trackerUrl();
  const k = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: base, blockSizes: [BLOCK] });
  k.tracker = `${base}/peers/${k.filehash as string}.json`;
  const kascadePath = writeKascade(join(dir, 'payload.json'), k);
  // The original holds the bytes but has announced only its start (progress 0.0), as the Python peer does.
  const original = scope.keep(await startOriginalServer({ bytes, id: k.filehash as string, blockSize: BLOCK }));
  await originalAnnounce(k.tracker as string, { port: original.port, progress: '0.0' });
  // A kfetch seeder of the same file, announcing progress 1.
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, 'payload.bin'), bytes);
  const seed = startCli(['seed', kascadePath, '--data', dataDir, '--port', '0', '--trust']);
  await seed.waitForLine(/^listening on /);

  const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '30'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha256(join(dir, 'out', 'payload.bin'))).toBe(k.filehash);
  // kfetch learned of the original (its peer event), asked at most its /blocks, and no block.
  expect(r.stdout).toContain(`"peer":"${original.addr}"`);
  const blockRequests = original.log.filter((q) => q.range !== undefined);
  expect(blockRequests).toEqual([]);
}, 90_000);

it('issue 9: an original that announced complete serves the whole file through the tracker alone', async () => {
  const dir = tempDir();
  const bytes = payloadBytes(0, 40 * BLOCK - 7, 'orig-complete');
  const base = await trackerUrl();
  const k = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: base, blockSizes: [BLOCK] });
  k.tracker = `${base}/peers/${k.filehash as string}.json`;
  const kascadePath = writeKascade(join(dir, 'payload.json'), k);
  const original = scope.keep(await startOriginalServer({ bytes, id: k.filehash as string, blockSize: BLOCK, latencyMs: 5 }));
  await originalAnnounce(k.tracker as string, { port: original.port, progress: '0.0' });
  await originalAnnounce(k.tracker as string, { port: original.port, progress: '1.0' }); // the completion announce, no gap
  const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '30'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha256(join(dir, 'out', 'payload.bin'))).toBe(k.filehash);
  expect(original.log.filter((q) => q.status === 206).length).toBeGreaterThanOrEqual(40);
}, 90_000);

it('issue 9: get --block-size fetches a multi-size (--compat-2015) file at a size the originals serve; an unoffered size is a usage error', async () => {
  const dir = tempDir();
  const bytes = payloadBytes(0, 300 * 1024 + 5, 'orig-compat');
  const k = kascadeJsonFor(bytes, { filename: 'compat.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [1024, 4096, 262144] });
  const kascadePath = writeKascade(join(dir, 'compat.json'), k);
  const original = scope.keep(await startOriginalServer({ bytes, id: k.filehash as string, blockSize: 4096 }));
  const bad = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--block-size', '2048', '--peer', original.addr]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('compat.json');
  expect(bad.stderr).toContain('--block-size');
  expect(bad.stderr).toContain('1024, 4096, 262144');
  const home = tempHome();
  const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '30', '--block-size', '4096', '--peer', original.addr], {
    timeoutMs: 60_000,
    home,
  });
  expect(r.code, r.stderr).toBe(0);
  expect(sha256(join(dir, 'out', 'compat.bin'))).toBe(k.filehash);
  expect(r.stdout).toContain('"blockSize":4096');
  // The same download again at another size: refused, naming the download, not silently kept at 4096.
  const again = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--block-size', '1024', '--peer', original.addr], { home });
  expect(again.code).toBe(2);
  expect(again.stderr).toContain('fetches 4096-byte blocks, not --block-size 1024');
}, 90_000);
