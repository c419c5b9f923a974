// Register operands of the typed x86-64 assembler: general-purpose (8/16/32/64-bit), segment, control and debug
// registers. The encoder (encoder.ts) reads `num`, `size` and the REX flags; everything else is for messages.

/** Operand class tags; the encoder dispatches on them without instanceof chains. */
export const enum K {
  Gpr = 1,
  Mem = 2,
  Imm = 4,
  Sreg = 8,
  Creg = 16,
  Dreg = 32,
  Label = 64,
  SymRef = 128,
}

export type Width = 1 | 2 | 4 | 8;

/**
 * Operand class bits for the encoder's quick form filter (forms.ts `acc`): general registers by width (bits 0-3),
 * memory by width (bits 4-11: unsized, 1, 2, 4, 6, 8, 10, 16 bytes), immediates (12), segment (13), control (14),
 * debug (15) registers, symbol addresses (16), labels (17).
 */
export const C_GPR: Record<number, number> = { 1: 1, 2: 2, 4: 4, 8: 8 };
export const C_MEM: Record<number, number> = { 0: 1 << 4, 1: 1 << 5, 2: 1 << 6, 4: 1 << 7, 6: 1 << 8, 8: 1 << 9, 10: 1 << 10, 16: 1 << 11 };
export const C_MEM_ANY = 0xff0;
export const C_IMM = 1 << 12, C_SREG = 1 << 13, C_CREG = 1 << 14, C_DREG = 1 << 15, C_SYM = 1 << 16, C_LABEL = 1 << 17;

export class Gpr {
  readonly k = K.Gpr;
  readonly cls: number;
  constructor(
    readonly name: string,
    /** Width in bytes. */
    readonly size: Width,
    /** Register number 0..15 as encoded (ah..bh use 4..7 without REX). */
    readonly num: number,
    /** spl/bpl/sil/dil and r8..r15: the instruction needs a REX prefix. */
    readonly needsRex: boolean,
    /** ah/ch/dh/bh: the instruction must not have a REX prefix. */
    readonly noRex: boolean,
  ) {
    this.cls = C_GPR[size]!;
  }
  toString(): string {
    return this.name;
  }
}

export class SegReg {
  readonly k = K.Sreg;
  readonly cls = C_SREG;
  readonly size = 2;
  constructor(readonly name: string, readonly num: number) {}
  toString(): string {
    return this.name;
  }
}

export class CtrlReg {
  readonly k = K.Creg;
  readonly cls = C_CREG;
  readonly size = 8;
  constructor(readonly name: string, readonly num: number) {}
  toString(): string {
    return this.name;
  }
}

export class DbgReg {
  readonly k = K.Dreg;
  readonly cls = C_DREG;
  readonly size = 8;
  constructor(readonly name: string, readonly num: number) {}
  toString(): string {
    return this.name;
  }
}

const n64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"];
const n32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const n16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const n8 = ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"];

function gpr(size: Width, i: number): Gpr {
  if (i >= 8) {
    const suffix = size === 8 ? "" : size === 4 ? "d" : size === 2 ? "w" : "b";
    return new Gpr(`r${i}${suffix}`, size, i, true, false);
  }
  const names = size === 8 ? n64 : size === 4 ? n32 : size === 2 ? n16 : n8;
  return new Gpr(names[i]!, size, i, size === 1 && i >= 4, false);
}

const mk = (size: Width) => Array.from({ length: 16 }, (_, i) => gpr(size, i));
/** All general registers by width, indexed by number: GPR64[3] is rbx. */
export const GPR64 = mk(8);
export const GPR32 = mk(4);
export const GPR16 = mk(2);
export const GPR8 = mk(1);

export const [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15] = GPR64 as [
  Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr,
];
export const [eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d] = GPR32 as [
  Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr,
];
export const [ax, cx, dx, bx, sp, bp, si, di, r8w, r9w, r10w, r11w, r12w, r13w, r14w, r15w] = GPR16 as [
  Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr,
];
export const [al, cl, dl, bl, spl, bpl, sil, dil, r8b, r9b, r10b, r11b, r12b, r13b, r14b, r15b] = GPR8 as [
  Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr, Gpr,
];
export const ah = new Gpr("ah", 1, 4, false, true);
export const ch = new Gpr("ch", 1, 5, false, true);
export const dh = new Gpr("dh", 1, 6, false, true);
export const bh = new Gpr("bh", 1, 7, false, true);
export const HIGH8 = [ah, ch, dh, bh];

export const [es, cs, ss, ds, fs, gs] = ["es", "cs", "ss", "ds", "fs", "gs"].map((n, i) => new SegReg(n, i)) as [
  SegReg, SegReg, SegReg, SegReg, SegReg, SegReg,
];
export const SEGS = [es, cs, ss, ds, fs, gs];

/** cr0..cr15 as encodable (the CPU defines cr0, cr2, cr3, cr4 and cr8). */
export const CRS = Array.from({ length: 16 }, (_, i) => new CtrlReg(`cr${i}`, i));
export const [cr0, , cr2, cr3, cr4, , , , cr8] = CRS as CtrlReg[] as [CtrlReg, CtrlReg, CtrlReg, CtrlReg, CtrlReg, CtrlReg, CtrlReg, CtrlReg, CtrlReg];
export const DRS = Array.from({ length: 8 }, (_, i) => new DbgReg(`dr${i}`, i));
export const [dr0, dr1, dr2, dr3, dr4, dr5, dr6, dr7] = DRS as [
  DbgReg, DbgReg, DbgReg, DbgReg, DbgReg, DbgReg, DbgReg, DbgReg,
];

/** Every register by its lower-case name, for the text front end. */
export const REGISTERS: ReadonlyMap<string, Gpr | SegReg | CtrlReg | DbgReg> = new Map<string, Gpr | SegReg | CtrlReg | DbgReg>(
  [...GPR64, ...GPR32, ...GPR16, ...GPR8, ...HIGH8, ...SEGS, ...CRS, ...DRS].map((r) => [r.name, r]),
);
