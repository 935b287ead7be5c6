// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudo-random function with a 128-bit key and a 64-bit
// output, designed for short inputs. The UDP tracker's connection ids use it (tracker/udp-tracker.ts): the same job
// as Linux's SYN cookies, which use SipHash for the same reason (a MAC of the source address per packet, with no
// state per client, cheap enough to run on every datagram). Node's crypto has no SipHash, and its HMAC costs ~5 µs
// a call (an OpenSSL object per call); this pure-JS version costs well under one (64-bit words as two 32-bit halves).
// Checked against the reference implementation's 64 test vectors (test/unit/siphash.test.ts).

/** A key, read once: k0 and k1 as little-endian 64-bit words, each as [high, low] 32-bit halves. */
export interface SipKey {
  readonly k0h: number;
  readonly k0l: number;
  readonly k1h: number;
  readonly k1l: number;
}

const le32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** @throws RangeError unless `key` is 16 bytes. */
export function sipKey(key: Uint8Array): SipKey {
  if (key.length !== 16) throw new RangeError(`a SipHash key is 16 bytes, not ${key.length}`);
  return { k0l: le32(key, 0), k0h: le32(key, 4), k1l: le32(key, 8), k1h: le32(key, 12) };
}

/**
 * SipHash-2-4 of `m[0, len)` under `key`, written as 8 little-endian bytes (the reference's byte order) into `out`
 * at `at`. No allocation. @throws RangeError if `len` is past the end of `m` or `out` has no room.
 */
export function siphash24(key: SipKey, m: Uint8Array, len: number, out: Uint8Array, at = 0): void {
  if (!(Number.isInteger(len) && len >= 0 && len <= m.length) || !(Number.isInteger(at) && at >= 0 && at + 8 <= out.length)) throw new RangeError('siphash24: length or offset out of range');
  // The state: v0..v3, each a 64-bit word as high and low unsigned 32-bit halves. One function with one copy of the
  // round, all in locals (a round as a closure or over module variables measured 1.3-1.7 µs a hash; this 0.1).
  let v0h = (key.k0h ^ 0x736f6d65) >>> 0;
  let v0l = (key.k0l ^ 0x70736575) >>> 0;
  let v1h = (key.k1h ^ 0x646f7261) >>> 0;
  let v1l = (key.k1l ^ 0x6e646f6d) >>> 0;
  let v2h = (key.k0h ^ 0x6c796765) >>> 0;
  let v2l = (key.k0l ^ 0x6e657261) >>> 0;
  let v3h = (key.k1h ^ 0x74656462) >>> 0;
  let v3l = (key.k1l ^ 0x79746573) >>> 0;
  let t = 0;
  // Words: the whole 8-byte ones, then the last (the remaining bytes, the length's low byte in its top byte); each
  // is v3 ^= m, two rounds, v0 ^= m. Then the finalisation: v2 ^= 0xff, four rounds.
  const whole = len - (len % 8);
  const words = whole / 8 + 1;
  for (let w = 0; w <= words; w++) {
    let ml = 0;
    let mh = 0;
    let rounds = 2;
    if (w < words - 1) {
      ml = le32(m, w * 8);
      mh = le32(m, w * 8 + 4);
    } else if (w === words - 1) {
      mh = (len & 0xff) << 24;
      for (let i = 0; i < len - whole; i++) {
        const byte = m[whole + i]!;
        if (i < 4) ml |= byte << (8 * i);
        else mh |= byte << (8 * (i - 4));
      }
      ml >>>= 0;
      mh >>>= 0;
    } else {
      v2l = (v2l ^ 0xff) >>> 0;
      rounds = 4;
    }
    v3l = (v3l ^ ml) >>> 0;
    v3h = (v3h ^ mh) >>> 0;
    for (let r = 0; r < rounds; r++) {
      // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
      t = (v0l + v1l) >>> 0;
      v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      t = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
      v1h = t;
      v1h = (v1h ^ v0h) >>> 0;
      v1l = (v1l ^ v0l) >>> 0;
      t = v0h;
      v0h = v0l;
      v0l = t;
      // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
      t = (v2l + v3l) >>> 0;
      v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      t = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
      v3h = t;
      v3h = (v3h ^ v2h) >>> 0;
      v3l = (v3l ^ v2l) >>> 0;
      // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
      t = (v0l + v3l) >>> 0;
      v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      t = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
      v3h = t;
      v3h = (v3h ^ v0h) >>> 0;
      v3l = (v3l ^ v0l) >>> 0;
      // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
      t = (v2l + v1l) >>> 0;
      v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      t = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
      v1h = t;
      v1h = (v1h ^ v2h) >>> 0;
      v1l = (v1l ^ v2l) >>> 0;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    v0l = (v0l ^ ml) >>> 0;
    v0h = (v0h ^ mh) >>> 0;
  }
  const rl = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  const rh = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  out[at] = rl & 0xff;
  out[at + 1] = (rl >>> 8) & 0xff;
  out[at + 2] = (rl >>> 16) & 0xff;
  out[at + 3] = rl >>> 24;
  out[at + 4] = rh & 0xff;
  out[at + 5] = (rh >>> 8) & 0xff;
  out[at + 6] = (rh >>> 16) & 0xff;
  out[at + 7] = rh >>> 24;
}
