// The assembler's output: sections of bytes, symbols and relocations. Produced by toolchain/x64, laid out and patched by
// toolchain/x64/link.ts, turned into a PE32+ file by toolchain/pe. This file is the contract between those stages.

export type SectionKind = "text" | "data" | "rdata" | "bss";

export interface Section {
  /** ".text", ".data", ".rdata", ".bss" or any name of at most 8 bytes (a PE limit). */
  name: string;
  kind: SectionKind;
  /** Required alignment of the section start, a power of two. */
  align: number;
  /** Contents; for bss, a zero-filled array whose length is the size. */
  bytes: Uint8Array;
}

export interface SymbolDef {
  name: string;
  /** Index into ObjectFile.sections. */
  section: number;
  offset: number;
  global: boolean;
}

/**
 * A reference the assembler could not finish because it depends on where sections are placed.
 *  - abs64 / abs32: the absolute address of target + addend (abs64 becomes a PE DIR64 base relocation).
 *  - rel32: target + addend − (address of the fixup + 4 + tail), for RIP-relative operands and calls/jumps into
 *    other sections; `tail` counts the instruction bytes after the 4-byte field (an immediate after a RIP-relative
 *    displacement).
 */
export interface Relocation {
  section: number;
  offset: number;
  kind: "abs64" | "abs32" | "rel32";
  target: string;
  addend: number;
  tail?: number;
}

export interface ObjectFile {
  sections: Section[];
  symbols: SymbolDef[];
  relocations: Relocation[];
}
