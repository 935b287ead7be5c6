// Types for `siphash24` (mafintosh; SipHash-2-4 in WebAssembly with a pure-JS fallback), which ships none.
declare module 'siphash24' {
  /** SipHash-2-4 of `data` under a 16-byte `key`, written into `out` (8 bytes; a new array if omitted), little-endian. */
  function siphash24(data: Uint8Array, key: Uint8Array, out?: Uint8Array, noAssert?: boolean): Uint8Array;
  namespace siphash24 {
    const BYTES: 8;
    const KEYBYTES: 16;
    const WASM_SUPPORTED: boolean;
    const WASM_LOADED: boolean;
  }
  export default siphash24;
}
