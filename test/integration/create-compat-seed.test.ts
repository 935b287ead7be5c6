// Issue 9, point 8, end to end: a file made with `kfetch create --compat-2015` and served by `kfetch seed` can be
// fetched block by block exactly as the original 2015 Python downloader does it (one `Range: bytes=a-b` per fresh
// connection, `Connection: close`), at both block sizes the originals hard-code, each block checked against the
// MD5 list of its size in the written .kascade.

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllChildren, runCli, startCli } from '../helpers/cli.js';
import { makePayload } from '../helpers/make-file.js';
import { exchange, pythonBlockRequest } from '../helpers/original-client.js';

const dirs: string[] = [];
afterEach(() => {
  killAllChildren();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('kfetch create --compat-2015 + kfetch seed, fetched like the original Python peer', () => {
  it('serves every 1024- and 4096-byte block with the MD5 the .kascade lists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-compat-seed-'));
    dirs.push(dir);
    const size = 300 * 1024 + 123; // a short last block at both sizes
    const { path, bytes } = makePayload(dir, 'payload.bin', size, 'compat-seed');
    const kascadePath = join(dir, 'payload.json');
    const made = await runCli(['create', path, '--tracker', 'http://127.0.0.1:1', '--compat-2015', '-o', kascadePath]);
    expect(made.code, made.stderr).toBe(0);
    const k = JSON.parse(readFileSync(kascadePath, 'utf8')) as { filehash: string; filesize: number; blockhashes: Record<string, string[]> };
    expect(Object.keys(k.blockhashes).sort()).toEqual(['1024', '262144', '4096']);

    const seed = startCli(['seed', kascadePath, '--data', dir, '--port', '0']);
    const port = Number(new URL((await seed.waitForLine(/^listening on (http:\/\/\S+)$/, 30_000))[1]!).port);
    for (const blockSize of [1024, 4096]) {
      const hashes = k.blockhashes[String(blockSize)]!;
      expect(hashes).toHaveLength(Math.ceil(size / blockSize));
      const file = Buffer.alloc(k.filesize);
      for (let i = 0; i < hashes.length; i++) {
        const first = i * blockSize;
        const last = Math.min(first + blockSize, size) - 1;
        const reply = await exchange('127.0.0.1', port, pythonBlockRequest('127.0.0.1', port, k.filehash, first, last));
        expect(reply.status, `block ${i} of ${blockSize}`).toBe(206);
        expect(createHash('md5').update(reply.body).digest('hex'), `block ${i} of ${blockSize}`).toBe(hashes[i]);
        reply.body.copy(file, first);
      }
      expect(createHash('sha256').update(file).digest('hex')).toBe(k.filehash);
      expect(file.equals(bytes!)).toBe(true);
    }
  }, 60_000);
});
