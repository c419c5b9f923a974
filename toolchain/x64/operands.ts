// Memory, label, immediate and symbol-address operands of the typed x86-64 assembler, and their constructors
// (qword(rax, 8), dword({ base: rbx, index: rcx, scale: 4 }), qword(label) for RIP-relative). Consumed by encoder.ts.
import { C_LABEL, C_MEM as C_MEM_IMPORT, C_SYM, type Gpr, K, type SegReg } from "./registers.ts";

// Per-object constants read at construction: module-local so creating a Mem costs no cross-module lookups.
const C_MEM = C_MEM_IMPORT;
const KMEM = K.Mem as const;

/** Memory operand widths in bytes: 6 is m16:32 (fword, far pointers), 10 is m16:64 or m80 (tbyte). 0: unsized. */
export type MemSize = 0 | 1 | 2 | 4 | 6 | 8 | 10 | 16;

/** A place in the output: a jump target, a RIP-relative data address, a symbol. Create with Assembler.label(). */
export class Label {
  readonly k = K.Label;
  readonly cls = C_LABEL;
  /** Section index once bound, -1 while unbound. */
  section = -1;
  /** Offset in the section's raw (pre-relaxation) buffer. */
  pos = 0;
  /** How many relaxable items of the section precede the label. */
  item = 0;
  global = false;
  constructor(
    /** Symbol name, or null for an anonymous label (not exported unless referenced from another section). */
    public name: string | null,
    readonly id: number,
  ) {}
  get bound(): boolean {
    return this.section >= 0;
  }
  toString(): string {
    // "#" cannot occur in a source label (it starts a comment), so generated names never collide with written ones.
    return this.name ?? `.L#${this.id}`;
  }
}

/** An immediate: a number (exact integer) or, for 64-bit values beyond 2^53, a bigint. */
export type Imm = number | bigint;

/** The absolute address of a label plus an addend, as an immediate (mov r64, imm64 / dq / dd): becomes a relocation. */
export class SymRef {
  readonly k = K.SymRef;
  readonly cls = C_SYM;
  constructor(readonly label: Label, readonly addend: number) {}
  toString(): string {
    return this.addend ? `${this.label}${this.addend > 0 ? "+" : ""}${this.addend}` : String(this.label);
  }
}

/** `addr(label, 8)`: the absolute address label+8 as an immediate. */
export function addr(label: Label, addend = 0): SymRef {
  return new SymRef(label, addend);
}

/** A pseudo-register for `[rip + disp]` addressing without a label. */
export const rip = { name: "rip" } as const;

export interface Address {
  base?: Gpr | typeof rip | null;
  index?: Gpr | null;
  scale?: 1 | 2 | 4 | 8;
  disp?: number;
  /** RIP-relative to this label (plus disp). */
  label?: Label | null;
  /** Segment override prefix. */
  seg?: SegReg | null;
}

export class Mem {
  readonly k = KMEM;
  readonly cls: number;
  constructor(
    readonly size: MemSize,
    readonly base: Gpr | null,
    readonly index: Gpr | null,
    readonly scale: 1 | 2 | 4 | 8,
    readonly disp: number,
    /** RIP-relative target (null: not RIP-relative unless `rip` is set). */
    readonly label: Label | null,
    readonly rip: boolean,
    readonly seg: SegReg | null,
  ) {
    this.cls = C_MEM[size] ?? 0;
    // What encoder.ts checkMem verifies, decided once here: the encoder checks a memory operand per use, and the AOT
    // compiler reuses the same operands (frame slots, VM-context fields) thousands of times.
    this.valid = (!base || base.size === 8) && (!index || (index.size === 8 && index.num !== 4)) &&
      (scale === 1 || scale === 2 || scale === 4 || scale === 8) && Number.isInteger(disp) && disp >= -2147483648 && disp <= 2147483647;
  }
  /** Encodable in every form (64-bit base and index, index not rsp, scale 1/2/4/8, disp32); else checkMem explains. */
  readonly valid: boolean;
  toString(): string {
    const parts: string[] = [];
    if (this.rip || this.label) parts.push("rip");
    if (this.label) parts.push(String(this.label));
    if (this.base) parts.push(this.base.name);
    if (this.index) parts.push(this.scale === 1 && this.base ? this.index.name : `${this.index.name}*${this.scale}`);
    let s = parts.join("+");
    if (this.disp || parts.length === 0) {
      const h = `0x${Math.abs(this.disp).toString(16)}`;
      s += parts.length === 0 ? (this.disp < 0 ? `-${h}` : h) : this.disp < 0 ? `-${h}` : `+${h}`;
    }
    const w = SIZE_NAMES[this.size];
    return `${w ? `${w} ptr ` : ""}${this.seg ? `${this.seg.name}:` : ""}[${s}]`;
  }
}

export const SIZE_NAMES: Record<number, string> = { 1: "byte", 2: "word", 4: "dword", 6: "fword", 8: "qword", 10: "tbyte", 16: "xmmword" };

/** Builds a memory operand. `where` is a base register, a label (RIP-relative) or a full Address. */
export function mem(size: MemSize, where: Gpr | Label | Address, disp = 0): Mem {
  if (where instanceof Label) return new Mem(size, null, null, 1, disp, where, true, null);
  if ((where as Gpr).k === K.Gpr) return new Mem(size, where as Gpr, null, 1, disp, null, false, null);
  const a = where as Address;
  const isRip = a.base === rip || !!a.label;
  if (isRip && a.index) throw new Error(`RIP-relative operand cannot have an index register (${a.index.name})`);
  const base = a.base === rip ? null : ((a.base as Gpr | null | undefined) ?? null);
  if (base && base.k !== K.Gpr) throw new Error("memory base must be a general register or rip");
  return new Mem(size, base, a.index ?? null, a.scale ?? 1, (a.disp ?? 0) + disp, a.label ?? null, isRip, a.seg ?? null);
}

export const byte = (where: Gpr | Label | Address, disp = 0): Mem => mem(1, where, disp);
export const word = (where: Gpr | Label | Address, disp = 0): Mem => mem(2, where, disp);
export const dword = (where: Gpr | Label | Address, disp = 0): Mem => mem(4, where, disp);
export const fword = (where: Gpr | Label | Address, disp = 0): Mem => mem(6, where, disp);
export const qword = (where: Gpr | Label | Address, disp = 0): Mem => mem(8, where, disp);
export const tbyte = (where: Gpr | Label | Address, disp = 0): Mem => mem(10, where, disp);
/** An operand whose size the instruction implies (lea, lgdt, invlpg, fxsave64 ...). */
export const ptr = (where: Gpr | Label | Address, disp = 0): Mem => mem(0, where, disp);
/** Absolute address `[disp32]` (SIB form, no base): sign-extended to 64 bits by the CPU. */
export const absolute = (size: MemSize, address: number): Mem => new Mem(size, null, null, 1, address, null, false, null);
