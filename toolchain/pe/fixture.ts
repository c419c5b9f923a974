// Hand-made ObjectFiles for the PE tests: sections in an unusual order, abs64 fields placed at page edges, bss.
// Test support only; the tests link them with x64/link.ts, the one place fixups are patched.
import type { ObjectFile } from "../x64/object.ts";

/** Deterministic filler so section contents are not all zero (objdump comparisons then mean something). */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** .text, .rdata, .data spanning three pages with abs64 fields, and .bss. */
export function sampleObject(): ObjectFile {
  return {
    sections: [
      { name: ".data", kind: "data", align: 16, bytes: pattern(0x2345, 3) },
      { name: ".text", kind: "text", align: 16, bytes: pattern(0x321, 1) },
      { name: ".bss", kind: "bss", align: 64, bytes: new Uint8Array(0x4800) },
      { name: ".rdata", kind: "rdata", align: 8, bytes: pattern(0x97, 2) },
    ],
    symbols: [
      { name: "efi_main", section: 1, offset: 0x10, global: true },
      { name: "message", section: 3, offset: 0x20, global: false },
      { name: "table", section: 0, offset: 0, global: false },
      { name: "scratch", section: 2, offset: 0x100, global: false },
    ],
    relocations: [
      // Two in one page, one straddling nothing, one at the last 8 bytes of a page, one across a page boundary,
      // one alone in the third page; and one in .text (a movabs immediate).
      { section: 0, offset: 0x0, kind: "abs64", target: "message", addend: 0 },
      { section: 0, offset: 0x18, kind: "abs64", target: "scratch", addend: 8 },
      { section: 0, offset: 0xff8, kind: "abs64", target: "efi_main", addend: 0 },
      { section: 0, offset: 0xffc + 0x1000, kind: "abs64", target: "table", addend: 0x30 },
      { section: 0, offset: 0x2300, kind: "abs64", target: "message", addend: -4 },
      { section: 1, offset: 0x12, kind: "abs64", target: "message", addend: 0 },
    ],
  };
}
