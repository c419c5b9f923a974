// Public entry of the typed x86-64 assembler (toolchain/x64): registers, operand constructors, the Assembler, the
// object-file contract and the linker step. Other layers (aot, monitor-gen, image) import from here only.
export * from "./registers.ts";
export { Label, SymRef, Mem, addr, mem, byte, word, dword, fword, qword, tbyte, ptr, absolute, rip } from "./operands.ts";
export type { Address, Imm, MemSize } from "./operands.ts";
export { Assembler } from "./assembler.ts";
export type { Instructions, Mark, RM, Src } from "./assembler.ts";
export { EncodeError } from "./encoder.ts";
export type { Operand } from "./encoder.ts";
export type { Condition } from "./forms.ts";
export { CONDITIONS } from "./forms.ts";
export type { ObjectFile, Relocation, Section, SectionKind, SymbolDef } from "./object.ts";
export { link, LinkError } from "./link.ts";
export type { Linked, LinkedSite } from "./link.ts";
export { parseAsm, AsmSyntaxError } from "./parse.ts";
export type { LineSpan, ParseResult } from "./parse.ts";
export { flatten } from "./flat.ts";
export type { FlatImage } from "./flat.ts";
export { listing } from "./listing.ts";
// native.ts (koffi) is imported directly by the code that runs generated code on the host: it loads a native addon.
