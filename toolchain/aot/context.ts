// The code-generation context of one function: the compile-time model of the wasm value stack (each entry a
// constant, a register or its spill slot), a small register allocator over the registers left after the pinned and
// scratch ones, and the frame layout. The visitor (visitor.ts) pushes and pops through it; it emits only moves,
// through the macro-assembler (masm.ts).
//
// Frame (rbp-based, grows down):
//   [rbp + 16 + 8*(nparams-1-i)]  parameter i (pushed by the caller, first parameter highest)
//   [rbp + 8] return address, [rbp] saved rbp
//   [rbp - 8*(j+1)]               declared local j (zeroed by the prologue)
//   [rbp - 8*(nlocals+1+k)]       home slot of value-stack entry k
// Every stack entry has a fixed home slot, so spilling never reorders anything and control-flow merges need only
// "everything is in its home slot" as the agreed state.
import { type Mem } from "../x64/index.ts";
import { type MacroAssembler, type Opnd, type Size, reg as reg_ } from "./masm.ts";

// Hot imports aliased to module-local constants: when tsx loads this file as CommonJS (required from a script outside
// this ESM package), every use of an imported binding is an export-getter call (~15% of compile time by --cpu-prof);
// loaded as ESM (npm run bench, uvt) the alias costs nothing either way.
const reg = reg_;

/** One register operand per register number, shared: pop() runs for most instructions and operands are immutable. */
const REG_OPND: Opnd[] = Array.from({ length: 16 }, (_, r) => Object.freeze({ k: "reg" as const, r }));

/** Registers handed out to values: everything except rsp, rbp, r14 (vmctx), r15 (memory) and the scratch set. */
export const ALLOCATABLE = [3, 6, 7, 8, 9, 10, 12, 13];

const enum Where {
  Const,
  Reg,
  Slot,
  /** A read of a pinned local, not yet copied: the value is in the local's register until the local is written. */
  Local,
}

export class Context {
  /** Stack height: entries 0..h-1 of the parallel arrays below are live. */
  private h = 0;
  private where: Where[] = [];
  private regOf: number[] = [];
  private constOf: bigint[] = [];
  /** Value size per entry: 4 for i32, 8 for i64. */
  private sizeOf: Size[] = [];
  /** For Local entries: the local index. */
  private localOf: number[] = [];
  private free: number[];
  /** Bit r set: register r is in the pool / is in `free`. */
  private poolMask = 0;
  private freeMask = 0;
  private readonly pool: number[];

  constructor(
    readonly masm: MacroAssembler,
    readonly numParams: number,
    readonly numLocals: number,
    /** Value type size of each local (params first). */
    readonly localSizes: Size[],
    /** Register pinned to each local, or −1 (the local then lives only in its frame slot). */
    readonly pinned: number[] = [],
  ) {
    this.pool = ALLOCATABLE.filter((r) => !pinned.includes(r));
    for (let i = 0; i < pinned.length; i++) if (pinned[i]! >= 0) this.pinnedLocals.push(i);
    this.free = [...this.pool].reverse();
    for (const r of this.pool) this.poolMask |= 1 << r;
    this.freeMask = this.poolMask;
  }

  get height(): number {
    return this.h;
  }

  /** The home slot of stack entry k (operands are shared through masm.frame's cache). */
  home(k: number, size: Size = 8): Mem {
    return this.masm.frame(-8 * (this.numLocals + 1 + k), size);
  }
  /** Slot operands of pop() (shared, never modified). */
  private homeOpnd(k: number, size: Size): Opnd {
    return this.masm.frameOpnd(-8 * (this.numLocals + 1 + k), size);
  }
  /** Indices of the locals that have a pinned register, ascending. */
  readonly pinnedLocals: number[] = [];
  /** The frame slot of local i. */
  local(i: number): Mem {
    const size = this.localSizes[i]!;
    const disp = i < this.numParams ? 16 + 8 * (this.numParams - 1 - i) : -8 * (i - this.numParams + 1);
    return this.masm.frame(disp, size);
  }
  /** Bytes below rbp this function needs for locals and its deepest value stack. */
  frameBytes(maxStack: number): number {
    return 8 * (this.numLocals + maxStack);
  }

  sizeAt(k: number): Size {
    return this.sizeOf[k]!;
  }

  /** Pushes a pinned local by reference (see Where.Local). */
  pushLocal(size: Size, local: number): void {
    this.put(Where.Local, this.pinned[local]!, 0n, size, local);
  }

  /** Before pinned local `local` is written: entries still referring to its register get their own copy. */
  materializeLocal(local: number): void {
    for (let k = 0; k < this.h; k++) {
      if (this.where[k] !== Where.Local || this.localOf[k] !== local) continue;
      const r = this.alloc();
      this.masm.a.mov(reg(r, 8), reg(this.regOf[k]!, 8));
      this.where[k] = Where.Reg;
      this.regOf[k] = r;
    }
  }

  /** Entry k's register if it is a pinned-local reference, else −1. */
  pinnedAt(k: number): number {
    return this.where[k] === Where.Local ? this.regOf[k]! : -1;
  }

  /** The top entry's register if it is a pinned-local reference (usable read-only), else −1. */
  topPinned(): number {
    const k = this.h - 1;
    return this.where[k] === Where.Local ? this.regOf[k]! : -1;
  }

  pushConst(size: Size, v: bigint): void {
    this.put(Where.Const, -1, v, size, -1);
  }
  pushReg(size: Size, r: number): void {
    this.put(Where.Reg, r, 0n, size, -1);
  }
  /** An entry whose value is in its home slot (block results, values left after a merge). */
  pushSlot(size: Size): void {
    this.put(Where.Slot, -1, 0n, size, -1);
  }

  /**
   * Where a block's single result travels at its end label (see visitor.ts): the first register of the pool. Every
   * other entry is in its home slot at a block boundary, so this register is free on every path that reaches it.
   */
  get resultReg(): number {
    return this.pool[0]!;
  }

  /** Pushes an entry held in register r, which must be free (a block result arriving in resultReg). */
  pushFixed(size: Size, r: number): void {
    const free = this.free;
    const i = free.indexOf(r);
    if (i < 0) throw new Error(`register allocator: result register ${r} is not free at a block end`);
    // Remove by hand, keeping the order (splice would allocate the array of removed elements).
    for (let j = i; j < free.length - 1; j++) free[j] = free[j + 1]!;
    free.pop();
    this.freeMask &= ~(1 << r);
    this.pushReg(size, r);
  }

  /** A free register, spilling the deepest register-held entry if none is free. */
  alloc(): number {
    const r = this.free.pop();
    if (r !== undefined) {
      this.freeMask &= ~(1 << r);
      return r;
    }
    for (let k = 0; k < this.h; k++) {
      if (this.where[k] === Where.Reg) {
        const x = this.regOf[k]!;
        this.spillEntry(k);
        this.free.pop();
        this.freeMask &= ~(1 << x);
        return x;
      }
    }
    throw new Error("register allocator: no register to spill");
  }
  release(r: number): void {
    // Bit masks for "in the pool" and "already free": release runs for nearly every popped operand.
    const bit = 1 << r;
    if (r >= 0 && (this.poolMask & bit) !== 0 && (this.freeMask & bit) === 0) {
      this.free.push(r);
      this.freeMask |= bit;
    }
  }

  private spillEntry(k: number): void {
    const w = this.where[k]!;
    if (w === Where.Slot) return;
    const size = this.sizeOf[k]!;
    if (w === Where.Reg || w === Where.Local) {
      this.masm.a.mov(this.home(k, 8), reg(this.regOf[k]!, 8));
      this.release(this.regOf[k]!);
    } else this.masm.storeTo(8, this.home(k, 8), { k: "imm", v: size === 4 ? BigInt.asUintN(32, this.constOf[k]!) : this.constOf[k]! });
    this.where[k] = Where.Slot;
    this.regOf[k] = -1;
  }

  /** Puts every entry in its home slot and frees all registers: the state agreed at every control-flow merge. */
  spillAll(): void {
    for (let k = 0; k < this.h; k++) this.spillEntry(k);
  }

  /** Spills every entry except the top `n` (call arguments, pushed straight from where they are). */
  spillBelow(n: number): void {
    for (let k = 0; k < this.h - n; k++) this.spillEntry(k);
  }

  /** Pushes the top `n` entries on the machine stack, deepest first, without popping them. */
  pushTop(n: number): void {
    const a = this.masm.a;
    for (let k = this.h - n; k < this.h; k++) {
      const w = this.where[k]!;
      if (w === Where.Reg || w === Where.Local) a.push(reg(this.regOf[k]!, 8));
      else if (w === Where.Slot) a.push(this.home(k, 8));
      else {
        const v = this.sizeOf[k] === 4 ? BigInt.asIntN(32, this.constOf[k]!) : BigInt.asIntN(64, this.constOf[k]!);
        if (v >= -0x80000000n && v <= 0x7fffffffn) a.push(Number(v));
        else {
          a.mov(reg(11, 8), v);
          a.push(reg(11, 8));
        }
      }
    }
  }

  /** The top entry without popping: its constant, if it is one. */
  peekConst(depth = 0): bigint | null {
    const k = this.h - 1 - depth;
    return this.where[k] === Where.Const ? this.constOf[k]! : null;
  }

  /** Pops the top entry into a register the caller then owns (and must release or push). */
  popReg(): number {
    const k = this.h - 1;
    const w = this.where[k]!;
    const size = this.sizeOf[k]!;
    let r: number;
    if (w === Where.Reg) r = this.regOf[k]!;
    else if (w === Where.Local) {
      const p = this.regOf[k]!;
      this.truncate(k);
      r = this.alloc();
      this.masm.a.mov(reg(r, size), reg(p, size));
      return r;
    } else {
      const v = this.constOf[k]!;
      this.truncate(k);
      r = this.alloc();
      if (w === Where.Const) this.masm.movImm(size, r, v);
      else this.masm.a.mov(reg(r, size), this.home(k, size));
      return r;
    }
    this.truncate(k);
    return r;
  }

  /**
   * Pops the top entry as an operand: a register (caller releases it with `done`), an immediate, or its home slot.
   * A slot operand stays valid only until the next push, which may reuse the slot.
   */
  pop(): Opnd {
    const k = this.h - 1;
    const w = this.where[k]!;
    const size = this.sizeOf[k]!;
    let o: Opnd;
    if (w === Where.Reg || w === Where.Local) o = REG_OPND[this.regOf[k]!]!;
    else if (w === Where.Const) o = { k: "imm", v: this.constOf[k]! };
    else o = this.homeOpnd(k, size);
    this.truncate(k);
    return o;
  }
  done(o: Opnd): void {
    if (o.k === "reg") this.release(o.r);
  }

  drop(): void {
    const k = this.h - 1;
    if (this.where[k] === Where.Reg) this.release(this.regOf[k]!);
    this.truncate(k);
  }

  private truncate(k: number): void {
    // Only the height moves: the arrays never shrink (entries at and above h are stale and never read).
    if (k < this.h) this.h = k;
  }

  /** Appends an entry at height h (an indexed store at the arrays' length or below, so they stay packed). */
  private put(w: Where, r: number, c: bigint, size: Size, local: number): void {
    const k = this.h;
    this.where[k] = w;
    this.regOf[k] = r;
    this.constOf[k] = c;
    this.sizeOf[k] = size;
    this.localOf[k] = local;
    this.h = k + 1;
  }

  /** Forgets everything above `height` (dead code) and marks entries from `height` as slot-resident results. */
  resetTo(height: number, sizes: Size[]): void {
    for (let k = height; k < this.h; k++) if (this.where[k] === Where.Reg) this.release(this.regOf[k]!);
    this.truncate(Math.min(height, this.h));
    while (this.h < height) this.pushSlot(8);
    for (const s of sizes) this.pushSlot(s);
  }

  /** Copies the top `n` entries into the home slots starting at `base` without changing the model (branch moves). */
  moveTopTo(n: number, base: number): void {
    const top = this.h - n;
    for (let i = 0; i < n; i++) {
      const k = top + i;
      const dst = base + i;
      const w = this.where[k]!;
      if (w === Where.Slot && k === dst) continue;
      const size = this.sizeOf[k]!;
      if (w === Where.Reg || w === Where.Local) this.masm.a.mov(this.home(dst, 8), reg(this.regOf[k]!, 8));
      else if (w === Where.Const) this.masm.storeTo(8, this.home(dst, 8), { k: "imm", v: size === 4 ? BigInt.asUintN(32, this.constOf[k]!) : this.constOf[k]! });
      else {
        this.masm.a.mov(reg(11, 8), this.home(k, 8));
        this.masm.a.mov(this.home(dst, 8), reg(11, 8));
      }
    }
  }

  /** Loads the top entry into a specific scratch register without popping (return values, call arguments). */
  loadTopInto(r: number, depth = 0): void {
    const k = this.h - 1 - depth;
    const size = this.sizeOf[k]!;
    const w = this.where[k]!;
    if (w === Where.Reg || w === Where.Local) this.masm.a.mov(reg(r, size), reg(this.regOf[k]!, size));
    else if (w === Where.Const) this.masm.movImm(size, r, this.constOf[k]!);
    else this.masm.a.mov(reg(r, size), this.home(k, size));
  }

  /** Registers currently held by stack entries (for assertions in tests). */
  liveRegs(): number[] {
    return this.regOf.slice(0, this.h).filter((r) => r >= 0);
  }
}
