// The block server's serving rules without sockets: which ranges of which files may be served (SPEC §3 and the
// held-data extension), lookups by swarm id and filehash, derived bitfields across block sizes, the host
// policy (admission has its own test, server-admission.test.ts).

import { describe, expect, it } from 'vitest';
import { Kascade } from '../../src/kascade/kascade.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { isLoopbackHost as isLoopbackAddress } from '../../src/util/address-policy.js';
import { isLoopbackHost } from '../../src/server/host-policy.js';
import { Library, VerifiedServedFile, decideRange, isComplete } from '../../src/server/library.js';
import { DataChangedError } from '../../src/store/data-file.js';

function kascade(filesize: number, sizes: number[], swarmId = 'ab'.repeat(32), filehash = swarmId): Kascade {
  const blockhashes = new Map<number, string[]>();
  for (const s of sizes) blockhashes.set(s, Array.from({ length: Math.ceil(filesize / s) }, () => '0'.repeat(32)));
  return new Kascade({
    filename: 'f.bin',
    filesize,
    filehash,
    tracker: 'http://127.0.0.1:1/peers/x.json',
    blockhashes,
    swarmId,
    peers: [],
    dialect: 2015,
    extra: Object.create(null) as Record<string, unknown>,
  });
}

/** A byte source these tests never read from. */
const NO_BYTES = { read: (): Promise<number> => Promise.reject(new Error('not read in these tests')) };

/** 10 000 bytes at 4096 (3 blocks: 0-4095, 4096-8191, 8192-9999) and 8192 (2 blocks). */
const K = kascade(10_000, [4096, 8192]);

function served(held4096: number[]): VerifiedServedFile {
  const bf = new Bitfield(3);
  for (const i of held4096) bf.set(i);
  return new VerifiedServedFile(K, NO_BYTES, bf, 4096);
}

describe('decideRange', () => {
  const full = served([0, 1, 2]);
  const partial = served([0, 2]);
  const MAX = 64 * 1024 * 1024;
  const rows: Array<[string, VerifiedServedFile, number, number | undefined, number | 'ok']> = [
    ['one aligned block', full, 0, 4095, 'ok'],
    ['the short last block', full, 8192, 9999, 'ok'],
    ['one aligned 8192 block', full, 0, 8191, 'ok'],
    ['an unaligned sub-range', full, 5, 9, 'ok'],
    ['the whole file', full, 0, 9999, 'ok'],
    ['open-ended to the end', full, 100, undefined, 'ok'],
    ['past the end', full, 0, 10_000, 416],
    ['starting past the end', full, 10_000, 10_001, 416],
    ['open-ended past the end', full, 10_000, undefined, 416],
    ['a held block of a partial file', partial, 0, 4095, 'ok'],
    ['a sub-range of a held block', partial, 8200, 9000, 'ok'],
    ['a block not held', partial, 4096, 8191, 400],
    ['one byte of a block not held', partial, 4096, 4096, 400],
    ['a range touching a block not held', partial, 4000, 4100, 400],
    ['an 8192 block half held', partial, 0, 8191, 400],
    ['open-ended over a missing block', partial, 0, undefined, 400],
  ];
  it.each(rows)('%s', (_name, file, first, last, want) => {
    const d = decideRange(file, first, last, MAX);
    if (want === 'ok') expect(d).toEqual({ ok: true, first, last: last ?? 9999 });
    else expect(d).toMatchObject({ ok: false, status: want });
  });

  it('caps explicit ranges at maxRangeBytes, except exactly one aligned block', () => {
    expect(decideRange(full, 0, 4095, 100)).toMatchObject({ ok: true });
    expect(decideRange(full, 0, 8191, 100)).toMatchObject({ ok: true });
    expect(decideRange(full, 0, 4096, 100)).toMatchObject({ ok: false, status: 416 });
    expect(decideRange(full, 1, 200, 100)).toMatchObject({ ok: false, status: 416 });
    expect(decideRange(full, 0, undefined, 100)).toMatchObject({ ok: true, last: 9999 });
  });
});

describe('VerifiedServedFile', () => {
  it('derives the bitfield at other sizes from the verified one', () => {
    expect(served([0, 1, 2]).held(8192).toHex()).toBe('c0');
    expect(served([0, 2]).held(8192).toHex()).toBe('40');
    expect(served([0, 1]).held(8192).toHex()).toBe('80');
    const f = served([]);
    expect(f.held(8192).count).toBe(0);
    f.markHeld(0);
    f.markHeld(1);
    expect(f.held(8192).toHex()).toBe('80');
    expect(f.progress).toBeCloseTo(2 / 3);
    expect(isComplete(f)).toBe(false);
    f.markHeld(2);
    expect(isComplete(f)).toBe(true);
  });

  it('refuses a block size that is not offered or a bitfield of the wrong length', () => {
    expect(() => new VerifiedServedFile(K, NO_BYTES, new Bitfield(3), 1024)).toThrow(RangeError);
    expect(() => new VerifiedServedFile(K, NO_BYTES, new Bitfield(2), 4096)).toThrow(RangeError);
  });

  it('once a read finds the data file changed: that read and every later one reject, nothing is held, progress 0, onChanged once (issue 10 point 1)', async () => {
    const changes: DataChangedError[] = [];
    let reads = 0;
    const source = {
      read: (): Promise<number> => (++reads === 1 ? Promise.resolve(4) : Promise.reject(new DataChangedError('/x', 'modified (rewritten in place)'))),
    };
    const verified = Bitfield.full(3);
    const f = new VerifiedServedFile(K, source, verified, 4096, (e) => changes.push(e));
    expect(await f.read(Buffer.alloc(4), 4, 0)).toBe(4);
    expect(f.held(8192).count).toBe(2);
    await expect(f.read(Buffer.alloc(4), 4, 0)).rejects.toBeInstanceOf(DataChangedError);
    await expect(f.read(Buffer.alloc(4), 4, 0)).rejects.toBeInstanceOf(DataChangedError);
    expect(changes.map((e) => e.reason)).toEqual(['modified (rewritten in place)']);
    expect([f.held(4096).count, f.held(8192).count, f.progress, isComplete(f)]).toEqual([0, 0, 0, false]);
    expect(decideRange(f, 0, 4095, 1 << 20)).toMatchObject({ ok: false, status: 400 });
    expect(verified.count).toBe(3); // the owner's bitfield (a session's checkpoint state) is left alone
  });

  it('an empty file is complete', () => {
    const k = kascade(0, [4096]);
    expect(isComplete(new VerifiedServedFile(k, NO_BYTES, new Bitfield(0), 4096))).toBe(true);
  });
});

describe('Library', () => {
  it('finds a file by swarm id and by filehash, in either case, and forgets both on remove', () => {
    const k = kascade(10, [4096], 'cd'.repeat(20), 'ef'.repeat(32));
    const f = new VerifiedServedFile(k, NO_BYTES, Bitfield.full(1), 4096);
    const lib = new Library();
    lib.add(f);
    expect(lib.get('cd'.repeat(20))).toBe(f);
    expect(lib.get('EF'.repeat(32))).toBe(f);
    expect(lib.get('00'.repeat(32))).toBeUndefined();
    expect(lib.size).toBe(1);
    expect(lib.remove('ef'.repeat(32))).toBe(f);
    expect(lib.get('cd'.repeat(20))).toBeUndefined();
    expect(lib.size).toBe(0);
  });
});

describe('host policy', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.0.0.1:7001', true],
    ['127.1.2.3:80', true],
    ['localhost', true],
    ['LOCALHOST:7001', true],
    ['foo.localhost:7001', true],
    ['[::1]', true],
    ['[::1]:7001', true],
    ['[::ffff:127.0.0.1]:7001', true],
    ['evil.example', false],
    ['evil.example:7001', false],
    ['127.0.0.1.evil.example', false],
    ['localhost.evil.example', false],
    ['10.0.0.1:7001', false],
    ['0x7f.1', false],
    ['2130706433', false],
    ['[::2]:7001', false],
    ['::1', false],
    ['127.0.0.1:abc', false],
    ['', false],
    [undefined, false],
  ] as Array<[string | undefined, boolean]>)('Host %j -> %s', (host, want) => {
    expect(isLoopbackHost(host)).toBe(want);
  });

  it('recognises loopback bind addresses', () => {
    expect(isLoopbackAddress('127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('::1')).toBe(true);
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('0.0.0.0')).toBe(false);
    expect(isLoopbackAddress('::')).toBe(false);
    expect(isLoopbackAddress('192.168.1.1')).toBe(false);
  });
});
