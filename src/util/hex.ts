// Hex string checks shared by the .kascade parser, the tracker and the block server.

const HEX = /^[0-9a-fA-F]*$/;

/** True if `s` is exactly `len` hex digits (either case). */
export function isHexOfLength(s: string, len: number): boolean {
  return s.length === len && HEX.test(s);
}

/** True if `s` is only hex digits (either case), possibly empty. */
export function isHex(s: string): boolean {
  return HEX.test(s);
}
