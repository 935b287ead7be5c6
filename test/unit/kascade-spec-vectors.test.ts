// SPEC §1 (.kascade test vector and block geometry) and SPEC §4 (bitfield vectors), computed here from scratch.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseKascade } from '../../src/kascade/parse.js';
import { Bitfield } from '../../src/util/bitfield.js';

/** The first `n` bytes of SHA-256(be32(0)) ‖ SHA-256(be32(1)) ‖ … */
function specContent(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < n; i++) {
    const be32 = Buffer.alloc(4);
    be32.writeUInt32BE(i);
    parts.push(createHash('sha256').update(be32).digest());
  }
  return Buffer.concat(parts).subarray(0, n);
}

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

function blockHashes(data: Buffer, size: number): string[] {
  const out: string[] = [];
  for (let off = 0; off < data.length; off += size) out.push(md5(data.subarray(off, off + size)));
  return out;
}

describe('SPEC §1 test vector', () => {
  const data = specContent(10_000);
  const filehash = createHash('sha256').update(data).digest('hex');
  const h4096 = blockHashes(data, 4096);
  const h8192 = blockHashes(data, 8192);

  it('computes the SPEC filehash and block MD5s', () => {
    expect(data.length).toBe(10_000);
    expect(filehash).toBe('01b944a73e124115caaed0787c66b896ed7662d3116ced9cb08ef7aafc109f16');
    expect(h4096).toEqual(['2ed6072327c1976b99a1de3f3ce5e951', '551101ea87c48eb536b1107d9d665cd7', '817848599fd0e3b2bd1bda52c6a03845']);
    expect(h8192).toEqual(['eb8eeefb7e6013e1df12a220e91ec742', '817848599fd0e3b2bd1bda52c6a03845']);
  });

  it('parses the vector .kascade and gives the SPEC geometry for 4096 and 8192', () => {
    const text = JSON.stringify({
      filename: 'vector.bin',
      filesize: 10_000,
      filehash,
      tracker: `http://127.0.0.1:8000/peers/${filehash}.json`,
      blockhashes: { '4096': h4096, '8192': h8192 },
    });
    const k = parseKascade(new TextEncoder().encode(text), 'vector.json');
    expect(k.dialect).toBe(2015);
    expect(k.swarmId).toBe(filehash);
    expect(k.blockSizes).toEqual([4096, 8192]);
    expect(k.preferredBlockSize).toBe(8192);

    const g4 = k.geometry(4096);
    expect(g4.count).toBe(3);
    expect(g4.range(0)).toEqual({ first: 0, last: 4095 });
    expect(g4.range(1)).toEqual({ first: 4096, last: 8191 });
    expect(g4.range(2)).toEqual({ first: 8192, last: 9999 });
    expect(g4.lastSize).toBe(1808);

    const g8 = k.geometry(8192);
    expect(g8.count).toBe(2);
    expect(g8.range(0)).toEqual({ first: 0, last: 8191 });
    expect(g8.range(1)).toEqual({ first: 8192, last: 9999 });
    expect(g8.lastSize).toBe(1808);

    // Each block's bytes hash to the parsed hash (the geometry and the hash list agree).
    for (const size of [4096, 8192]) {
      const g = k.geometry(size);
      for (let i = 0; i < g.count; i++) {
        const { first, last } = g.range(i);
        expect(md5(data.subarray(first, last + 1))).toBe(k.blockHash(size, i));
      }
    }
  });
});

describe('SPEC §4 bitfield vectors', () => {
  const encode = (n: number, held: number[]): string => {
    const bf = new Bitfield(n);
    for (const i of held) bf.set(i);
    return bf.toHex();
  };
  const heldOf = (bf: Bitfield): number[] => Array.from({ length: bf.length }, (_, i) => i).filter((i) => bf.has(i));

  it('encodes the three SPEC vectors', () => {
    expect(encode(7, [2, 4, 6])).toBe('2a');
    expect(encode(11, [0, 1, 2, 9])).toBe('e040');
    expect(encode(9, [0, 1, 2, 3, 4, 5, 6, 7, 8])).toBe('ff80');
    expect(Bitfield.full(9).toHex()).toBe('ff80');
  });

  it('decodes the SPEC vectors, in either case', () => {
    expect(heldOf(Bitfield.fromHex('2a', 7)!)).toEqual([2, 4, 6]);
    expect(heldOf(Bitfield.fromHex('e040', 11)!)).toEqual([0, 1, 2, 9]);
    expect(heldOf(Bitfield.fromHex('E040', 11)!)).toEqual([0, 1, 2, 9]);
    const all = Bitfield.fromHex('ff80', 9)!;
    expect(all.complete).toBe(true);
    expect(all.count).toBe(9);
  });

  it('treats missing trailing bytes as zeros', () => {
    const bf = Bitfield.fromHex('e0', 11)!;
    expect(heldOf(bf)).toEqual([0, 1, 2]);
    expect(bf.count).toBe(3);
    expect(bf.toHex()).toBe('e000');
    expect(Bitfield.fromHex('', 9)!.count).toBe(0);
  });

  it('ignores extra bits and extra bytes', () => {
    const bf = Bitfield.fromHex('ffff', 9)!;
    expect(bf.count).toBe(9);
    expect(bf.toHex()).toBe('ff80');
    const longer = Bitfield.fromHex('2bff00', 7)!;
    expect(heldOf(longer)).toEqual([2, 4, 6]);
    expect(longer.toHex()).toBe('2a');
  });

  it('exact mode refuses a byte count other than ceil(n/8)', () => {
    expect(Bitfield.fromHex('e040', 11, true)?.toHex()).toBe('e040');
    expect(Bitfield.fromHex('e0', 11, true)).toBeUndefined();
    expect(Bitfield.fromHex('e04000', 11, true)).toBeUndefined();
  });

  it('refuses odd-length and non-hex input', () => {
    expect(Bitfield.fromHex('e04', 11)).toBeUndefined();
    expect(Bitfield.fromHex('zz', 7)).toBeUndefined();
    expect(Bitfield.fromHex('0x2a', 7)).toBeUndefined();
  });
});
