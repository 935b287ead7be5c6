// Turns the bytes of a .kascade into JSON text, refusing what JSON.parse would silently accept or mangle
// (invalid UTF-8 is replaced by U+FFFD; a BOM is a stray token). Used by parse.ts only.

import { isUtf8 } from 'node:buffer';

/** Why the bytes are not usable JSON text, with the byte offset of the trouble. */
export interface TextProblem {
  reason: string;
  offset: number;
}

/** Byte offset of the first invalid UTF-8 sequence in `b` (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // UTF-16 surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    if (i + need >= n) return i; // truncated sequence at the end
    const second = b[i + 1]!;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) {
      const x = b[i + k]!;
      if (x < 0x80 || x > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/**
 * Decode .kascade bytes (or check an already decoded string) to JSON text.
 * Refuses an empty (or blank) input, a UTF-8 byte order mark and invalid UTF-8.
 */
export function decodeKascadeText(input: Uint8Array | string): { text: string } | TextProblem {
  if (typeof input === 'string') {
    if (input.charCodeAt(0) === 0xfeff) return { reason: 'starts with a byte order mark (U+FEFF)', offset: 0 };
    if (input.trim() === '') return { reason: 'is empty', offset: 0 };
    return { text: input };
  }
  if (input.length >= 3 && input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) {
    return { reason: 'starts with a UTF-8 byte order mark (EF BB BF)', offset: 0 };
  }
  // isUtf8 is native and fast; the JS scan only runs to find the offset of a known problem.
  if (!isUtf8(input)) return { reason: 'is not valid UTF-8', offset: Math.max(0, firstInvalidUtf8(input)) };
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  if (text.trim() === '') return { reason: 'is empty', offset: 0 };
  return { text };
}
