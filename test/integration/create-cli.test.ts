// `kfetch create` through the real built CLI: the written .kascade, stdout, exit codes, and that a failure writes
// nothing.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadKascade } from '../../src/kascade/load.js';
import { killAllChildren, runCli } from '../helpers/cli.js';

const TRACKER = 'http://127.0.0.1:7000';
let dir: string;
let data: Buffer;
let input: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-create-cli-'));
  data = randomBytes(700_000 + 13);
  input = join(dir, 'payload.bin');
  writeFileSync(input, data);
});
afterEach(() => killAllChildren());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function md5s(size: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < data.length; at += size) out.push(createHash('md5').update(data.subarray(at, at + size)).digest('hex'));
  return out;
}

const sha = (): string => createHash('sha256').update(data).digest('hex');

/** A fresh empty directory for one test's outputs. */
function outDir(): string {
  return mkdtempSync(join(dir, 'out-'));
}

describe('kfetch create', () => {
  it('writes a valid .kascade and prints its path and filehash', async () => {
    const out = join(outDir(), 'payload.json');
    const r = await runCli(['create', input, '--tracker', TRACKER, '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(out);
    expect(r.stdout).toContain(sha());
    const k = await loadKascade(out);
    expect(k.filename).toBe('payload.bin');
    expect(k.filesize).toBe(data.length);
    expect(k.filehash).toBe(sha());
    expect(k.tracker).toBe(`${TRACKER}/peers/${sha()}.json`);
    expect(k.blockSizes).toEqual([262144]);
    expect(k.blockhashes.get(262144)).toEqual(md5s(262144));
    expect(k.extra['created by']).toMatch(/^kfetch\/\d+\.\d+\.\d+/);
  });

  it('offers several block sizes, peers, and prints one JSON result with --json', async () => {
    const out = join(outDir(), 'multi.json');
    const r = await runCli([
      'create', input, '--tracker', `${TRACKER}/announce`, '--block-size', '1000', '--block-size', '4096',
      '--peer', '127.0.0.1:8001', '--peer', 'seed.example:80', '-o', out, '--json', '--threads', '1',
    ]);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const result = events.at(-1)!;
    expect(result).toMatchObject({ v: 1, event: 'created', output: out, filehash: sha(), filesize: data.length, blockSizes: [1000, 4096] });
    expect(events.slice(0, -1).every((e) => e.event === 'progress' && e.phase === 'hashing')).toBe(true);
    const k = await loadKascade(out);
    expect(k.tracker).toBe(`${TRACKER}/announce`);
    expect(k.peers).toEqual(['127.0.0.1:8001', 'seed.example:80']);
    expect(k.blockhashes.get(1000)).toEqual(md5s(1000));
    expect(k.blockhashes.get(4096)).toEqual(md5s(4096));
  });

  it('writes ./<name>.json in the current directory by default', async () => {
    const cwd = outDir();
    const r = await runCli(['create', input, '--tracker', TRACKER], { cwd });
    expect(r.code).toBe(0);
    expect(readdirSync(cwd)).toEqual(['payload.bin.json']);
    expect((await loadKascade(join(cwd, 'payload.bin.json'))).filehash).toBe(sha());
  });

  it('refuses to overwrite an existing output unless --force', async () => {
    const d = outDir();
    const out = join(d, 'exists.json');
    writeFileSync(out, 'keep me');
    const r = await runCli(['create', input, '--tracker', TRACKER, '-o', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('KF_E_OUTPUT_EXISTS');
    expect(r.stderr).toContain(out);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const forced = await runCli(['create', input, '--tracker', TRACKER, '-o', out, '--force']);
    expect(forced.code).toBe(0);
    expect((await loadKascade(out)).filehash).toBe(sha());
    expect(readdirSync(d)).toEqual(['exists.json']);
  });

  it('handles an empty input file', async () => {
    const empty = join(outDir(), 'empty.dat');
    writeFileSync(empty, '');
    const out = `${empty}.json`;
    const r = await runCli(['create', empty, '--tracker', TRACKER, '-o', out]);
    expect(r.code).toBe(0);
    const k = await loadKascade(out);
    expect(k.filesize).toBe(0);
    expect(k.blockhashes.get(262144)).toEqual([]);
  });

  it.each([
    ['a missing file', ['create', 'MISSING', '--tracker', TRACKER], 3, /KF_E_INPUT/, /missing\.bin/],
    ['a bad tracker scheme', ['create', 'INPUT', '--tracker', 'ftp://127.0.0.1/'], 3, /KF_E_KASCADE_TRACKER/, /--tracker/],
    ['a relative tracker', ['create', 'INPUT', '--tracker', 'tracker.example'], 3, /KF_E_KASCADE_TRACKER/, /--tracker/],
    ['a block size with a unit', ['create', 'INPUT', '--tracker', TRACKER, '--block-size', '4k'], 3, /KF_E_INPUT/, /--block-size/],
    ['a block size with a leading zero', ['create', 'INPUT', '--tracker', TRACKER, '--block-size', '04096'], 3, /KF_E_INPUT/, /--block-size/],
    ['a block size too small', ['create', 'INPUT', '--tracker', TRACKER, '--block-size', '100'], 3, /KF_E_INPUT/, /--block-size/],
    ['a block size too large', ['create', 'INPUT', '--tracker', TRACKER, '--block-size', '134217728'], 3, /KF_E_INPUT/, /--block-size/],
    ['a bad peer', ['create', 'INPUT', '--tracker', TRACKER, '--peer', 'nohost'], 3, /KF_E_KASCADE_SCHEMA/, /--peer/],
    ['a bad thread count', ['create', 'INPUT', '--tracker', TRACKER, '--threads', '0'], 3, /KF_E_INPUT/, /--threads/],
    ['no --tracker', ['create', 'INPUT'], 2, /tracker/, /.*/],
  ])('refuses %s and writes nothing', async (_name, args, code, what, names) => {
    const d = outDir();
    const out = join(d, 'x.json');
    const argv = args.map((a) => (a === 'INPUT' ? input : a === 'MISSING' ? join(dir, 'missing.bin') : a));
    const r = await runCli([...argv, '-o', out]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(what);
    expect(r.stderr).toMatch(names);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(d)).toEqual([]);
  });

  it('explains every flag in --help', async () => {
    const r = await runCli(['create', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--tracker', '--block-size', '--output', '--peer', '--json', '--threads', '--force', '--compat-2015']) expect(r.stdout).toContain(flag);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(/--compat-2015 +also offer the block sizes the original 2015 Kascade peers hard-code \(1024 and 4096 bytes\)/);
  });
});

describe('kfetch create --compat-2015 (issue 9, point 8)', () => {
  /** The raw `blockhashes` object as written: what an original peer reads. */
  const rawBlockhashes = (path: string): Record<string, string[]> =>
    (JSON.parse(readFileSync(path, 'utf8')) as { blockhashes: Record<string, string[]> }).blockhashes;

  it('offers 1024 and 4096 besides the default size, each with its MD5s', async () => {
    const out = join(outDir(), 'compat.json');
    const r = await runCli(['create', input, '--tracker', TRACKER, '--compat-2015', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'created', blockSizes: [1024, 4096, 262144] });
    const bh = rawBlockhashes(out);
    expect(Object.keys(bh).sort()).toEqual(['1024', '262144', '4096']);
    expect(bh['1024']).toEqual(md5s(1024));
    expect(bh['4096']).toEqual(md5s(4096));
    expect(bh['262144']).toEqual(md5s(262144));
    const k = await loadKascade(out);
    expect(k.filehash).toBe(sha());
  });

  it.each([
    [['--block-size', '65536'], ['1024', '4096', '65536']],
    [['--block-size', '4096'], ['1024', '4096']],
    [['--block-size', '1000', '--block-size', '1048576'], ['1000', '1024', '1048576', '4096']],
  ])('adds them to the --block-size sizes %j', async (sizes, keys) => {
    const out = join(outDir(), 'compat-sizes.json');
    const r = await runCli(['create', input, '--tracker', TRACKER, ...sizes, '--compat-2015', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const bh = rawBlockhashes(out);
    expect(Object.keys(bh).sort()).toEqual(keys);
    for (const key of keys) expect(bh[key]).toEqual(md5s(Number(key)));
  });

  it('refuses a file too large for 1024-byte blocks, naming --compat-2015 (checked before any hashing)', async () => {
    const d = outDir();
    const big = join(d, 'big.bin');
    writeFileSync(big, '');
    truncateSync(big, 4 * 1024 ** 3 + 1); // sparse: 4 GiB + 1 byte is 4 Mi + 1 blocks of 1024, over the 4 Mi limit
    const out = join(d, 'big.json');
    const r = await runCli(['create', big, '--tracker', TRACKER, '--compat-2015', '-o', out], { timeoutMs: 20_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/KF_E_INPUT/);
    expect(r.stderr).toMatch(/--compat-2015/);
    expect(existsSync(out)).toBe(false);
  });
  it('refuses, before hashing, a file whose 1024-byte hashes would pass the size peers load (1.3 GiB: ~67 MiB of hashes)', async () => {
    const dir = outDir();
    const big = join(dir, 'big.bin');
    writeFileSync(big, '');
    truncateSync(big, 1_395_864_371); // 1.3 GiB, sparse: nothing is hashed if the check comes first
    const out = join(dir, 'big.json');
    const r = await runCli(['create', big, '--tracker', TRACKER, '--compat-2015', '-o', out], { timeoutMs: 20_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/the kascade would be about \d+ MiB of block hashes, over the 64 MiB peers load/);
    expect(r.stderr).toMatch(/--compat-2015/);
    expect(r.stderr).toMatch(/KF_E_INPUT/);
    expect(existsSync(out)).toBe(false);
  });
});
