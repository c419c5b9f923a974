// The macro-assembler: operations shaped like wasm instructions (binop, divide with its traps, bounds-checked load and
// store, compare-and-set ...) lowered to x86-64 through the typed assembler in toolchain/x64, which is the only
// writer of instruction bytes. Sits between the codegen context (context.ts) and the assembler; knows registers and
// operands, but not the wasm value stack.
import * as x64 from "../x64/index.ts";
import { type Assembler, type Condition, type Gpr, type Label } from "../x64/index.ts";
import * as abi from "./abi.ts";

// Hot imports aliased to module-local constants: when tsx loads this file as CommonJS (required from a script outside
// this ESM package), every use of an imported binding is an export-getter call (~15% of compile time by --cpu-prof);
// loaded as ESM (npm run bench, uvt) the alias costs nothing either way.
const { GPR8, GPR16, GPR32, GPR64, Mem } = x64;
type Mem = x64.Mem;
const { Ctx, FP, MEMBASE, Trap, VMCTX } = abi;
type Trap = abi.Trap;

export type Size = 4 | 8;
/** Scratch registers that are never allocated to values: the lowering of one instruction may clobber them. */
export const RAX = 0, RCX = 1, RDX = 2, R11 = 11;

/** A source operand: a register number, an immediate, or a memory location. */
export type Opnd = { k: "reg"; r: number } | { k: "imm"; v: bigint } | { k: "mem"; m: Mem };

export function reg(n: number, size: Size | 1 | 2): Gpr {
  return (size === 8 ? GPR64 : size === 4 ? GPR32 : size === 2 ? GPR16 : GPR8)[n]!;
}

function memSized(size: 1 | 2 | 4 | 8, base: Gpr, disp: number, index?: Gpr): Mem {
  // The Mem directly (what qword({ base, index, disp }) builds), without an Address object per access.
  return new Mem(size, base, index ?? null, 1, disp, null, false, null);
}

/** The same address with another access width. */
export function resize(m: Mem, size: 1 | 2 | 4 | 8): Mem {
  return m.size === size ? m : new Mem(size, m.base, m.index, m.scale, m.disp, m.label, m.rip, m.seg);
}

const fitsI32 = (v: bigint): boolean => v >= -0x80000000n && v <= 0x7fffffffn;
const RAX_OPND: Opnd = Object.freeze({ k: "reg", r: RAX });

export type AluOp = "add" | "sub" | "and" | "or" | "xor";
export type ShiftOp = "shl" | "sar" | "shr" | "rol" | "ror";

export class MacroAssembler {
  /** One label per trap code, bound by the module compiler to stubs that call the trap handler. */
  constructor(
    readonly a: Assembler,
    readonly trapLabels: Map<Trap, Label>,
    /** Linear memory at this constant address (identity-mapped images), or null for the base in r15. */
    readonly memBase: number | null = null,
  ) {}

  /**
   * Bounds already proven on the current straight-line path: checkedEnd[r] = E means `r + E <= memory size` was
   * checked for register r, which holds a pinned local (its value changes only through local.set/tee, which calls
   * forgetCheck). Memory never shrinks, so a check stays true across calls and memory.grow; it is dropped at every
   * label the visitor binds (another path may join there) and at each function's prologue.
   */
  private readonly checkedEnd: number[] = new Array<number>(16).fill(-1);

  private anyChecked = false;

  forgetChecks(): void {
    if (!this.anyChecked) return;
    this.checkedEnd.fill(-1);
    this.anyChecked = false;
  }
  forgetCheck(r: number): void {
    this.checkedEnd[r] = -1;
  }
  /** Binds a label where control flow may join: forgets the checks proven on the fall-through path. */
  bind(l: Label): void {
    this.forgetChecks();
    this.a.bind(l);
  }

  trap(code: Trap): Label {
    const l = this.trapLabels.get(code);
    if (!l) throw new Error(`no trap stub for code ${code}`);
    return l;
  }

  /** `[r + disp]` for register number r (no Address object in between). */
  baseDisp(size: 1 | 2 | 4 | 8, r: number, disp: number): Mem {
    return memSized(size, reg(r, 8), disp);
  }

  /** `[rbp + disp]`, a frame slot. */
  frame(disp: number, size: 1 | 2 | 4 | 8 = 8): Mem {
    // Frame slots are multiples of 8 from rbp: 4- and 8-byte ones are cached by disp/8 (below and above rbp) and shared
    // by every function of the module, since spills, locals and call arguments ask for the same few slots constantly.
    if ((size === 8 || size === 4) && (disp & 7) === 0) {
      const cache = disp < 0 ? (size === 8 ? this.below8 : this.below4) : size === 8 ? this.above8 : this.above4;
      const k = (disp < 0 ? -disp : disp) >> 3;
      return (cache[k] ??= memSized(size, FP, disp));
    }
    return memSized(size, FP, disp);
  }
  /** The frame slot as a source operand, cached like frame(). */
  frameOpnd(disp: number, size: 4 | 8): Opnd {
    if ((disp & 7) !== 0 || disp >= 0) return { k: "mem", m: this.frame(disp, size) };
    const cache = size === 8 ? this.belowOpnd8 : this.belowOpnd4;
    return (cache[-disp >> 3] ??= { k: "mem", m: this.frame(disp, size) });
  }
  private readonly below8: Mem[] = [];
  private readonly below4: Mem[] = [];
  private readonly above8: Mem[] = [];
  private readonly above4: Mem[] = [];
  private readonly belowOpnd8: Opnd[] = [];
  private readonly belowOpnd4: Opnd[] = [];
  ctx(disp: number, size: 1 | 2 | 4 | 8 = 8): Mem {
    // The memory-size field is read by every bounds check: one shared operand.
    if (disp === Ctx.MemSize && size === 8) return this.memSizeField;
    return memSized(size, VMCTX, disp);
  }
  private readonly memSizeField: Mem = memSized(8, VMCTX, Ctx.MemSize);

  /** Materialises a constant: 32-bit values are written zero-extended. */
  movImm(size: Size, dst: number, v: bigint): void {
    if (size === 4) {
      const u = Number(BigInt.asIntN(32, v));
      if (u === 0) this.a.xor(reg(dst, 4), reg(dst, 4));
      else this.a.mov(reg(dst, 4), u);
      return;
    }
    v = BigInt.asIntN(64, v);
    if (v === 0n) this.a.xor(reg(dst, 4), reg(dst, 4));
    else if (v > 0n && v <= 0xffffffffn) this.a.mov(reg(dst, 4), Number(BigInt.asIntN(32, v)));
    else if (fitsI32(v)) this.a.mov(reg(dst, 8), Number(v));
    else this.a.mov(reg(dst, 8), v);
  }

  /** Loads an operand into register `dst` (width `size`; a 32-bit load zero-extends). */
  load(size: Size, dst: number, src: Opnd): void {
    if (src.k === "imm") this.movImm(size, dst, src.v);
    else if (src.k === "reg") {
      if (src.r !== dst) this.a.mov(reg(dst, size), reg(src.r, size));
    } else this.a.mov(reg(dst, size), resize(src.m, size));
  }

  /** Stores an operand into memory of width `size` (uses r11 for constants that do not fit an imm32). */
  storeTo(size: 1 | 2 | 4 | 8, m: Mem, src: Opnd): void {
    if (src.k === "reg") this.a.mov(m, reg(src.r, size));
    else if (src.k === "imm") {
      const v = src.v;
      if (size === 8 && !fitsI32(BigInt.asIntN(64, v))) {
        this.a.mov(reg(R11, 8), BigInt.asIntN(64, v));
        this.a.mov(m, reg(R11, 8));
      } else {
        const bits = size * 8;
        this.a.mov(m, Number(BigInt.asIntN(Math.min(bits, 32), v)));
      }
    } else {
      this.a.mov(reg(R11, size), resize(src.m, size));
      this.a.mov(m, reg(R11, size));
    }
  }

  /** Turns an operand into something an ALU instruction accepts as its source (imm32 or register or memory). */
  private src(size: Size, s: Opnd): Gpr | Mem | number {
    if (s.k === "reg") return reg(s.r, size);
    if (s.k === "mem") return s.m;
    const v = size === 4 ? BigInt.asIntN(32, s.v) : BigInt.asIntN(64, s.v);
    if (fitsI32(v)) return Number(v);
    this.a.mov(reg(R11, 8), v);
    return reg(R11, 8);
  }

  alu(op: AluOp, size: Size, dst: number, s: Opnd): void {
    const d = reg(dst, size);
    const v = this.src(size, s);
    // A switch rather than this.a[op](...): a keyed method load by string is megamorphic, and alu runs per ALU op.
    switch (op) {
      case "add": this.a.add(d, v); break;
      case "sub": this.a.sub(d, v); break;
      case "and": this.a.and(d, v); break;
      case "or": this.a.or(d, v); break;
      case "xor": this.a.xor(d, v); break;
    }
  }

  mul(size: Size, dst: number, s: Opnd): void {
    const src = this.src(size, s);
    if (typeof src === "number") this.a.imul(reg(dst, size), reg(dst, size), src);
    else this.a.imul(reg(dst, size), src);
  }

  /** Integer division and remainder with wasm's traps: divide by zero, and INT_MIN / -1 for signed division. */
  divRem(size: Size, signed: boolean, rem: boolean, dst: number, s: Opnd): void {
    const a = this.a;
    let divisor: Gpr | Mem;
    if (s.k === "imm") {
      const v = size === 4 ? BigInt.asIntN(32, s.v) : BigInt.asIntN(64, s.v);
      if (v === 0n) {
        a.jmp(this.trap(Trap.DivByZero));
        return;
      }
      this.movImm(size, RCX, v);
      divisor = reg(RCX, size);
    } else {
      divisor = s.k === "reg" ? reg(s.r, size) : s.m;
      a.cmp(divisor, 0);
      a.je(this.trap(Trap.DivByZero));
    }
    const done = a.label();
    const mayBeMinusOne = s.k !== "imm" || BigInt.asIntN(size * 8, s.v) === -1n;
    if (signed && mayBeMinusOne) {
      const normal = a.label();
      a.cmp(divisor, -1);
      a.jne(normal);
      if (rem) {
        a.xor(reg(dst, 4), reg(dst, 4));
      } else {
        // x / -1 overflows only for INT_MIN; otherwise it is a negation.
        if (size === 4) a.cmp(reg(dst, 4), -0x80000000);
        else {
          a.mov(reg(R11, 8), -(2n ** 63n));
          a.cmp(reg(dst, 8), reg(R11, 8));
        }
        a.je(this.trap(Trap.IntOverflow));
        a.neg(reg(dst, size));
      }
      a.jmp(done);
      a.bind(normal);
    }
    a.mov(reg(RAX, size), reg(dst, size));
    if (signed) {
      if (size === 4) a.cdq();
      else a.cqo();
      a.idiv(divisor);
    } else {
      a.xor(reg(RDX, 4), reg(RDX, 4));
      a.div(divisor);
    }
    a.mov(reg(dst, size), reg(rem ? RDX : RAX, size));
    a.bind(done);
  }

  shift(op: ShiftOp, size: Size, dst: number, s: Opnd): void {
    if (s.k === "imm") {
      const n = Number(BigInt.asUintN(8, s.v)) & (size * 8 - 1);
      if (n !== 0) this.shiftBy(op, reg(dst, size), n);
      else if (size === 4) this.a.mov(reg(dst, 4), reg(dst, 4));
      return;
    }
    this.load(4, RCX, s);
    this.shiftBy(op, reg(dst, size), reg(RCX, 1));
  }

  private shiftBy(op: ShiftOp, d: Gpr, by: Gpr | number): void {
    switch (op) {
      case "shl": this.a.shl(d, by); break;
      case "sar": this.a.sar(d, by); break;
      case "shr": this.a.shr(d, by); break;
      case "rol": this.a.rol(d, by); break;
      case "ror": this.a.ror(d, by); break;
    }
  }

  /** Sets the flags for `dst <cc> s` (the fused compare-and-branch path). */
  cmp(size: Size, dst: number, s: Opnd): void {
    this.a.cmp(reg(dst, size), this.src(size, s));
  }

  /** dst = (dst <cc> s) ? 1 : 0, as an i32. */
  compare(cc: Condition, size: Size, dst: number, s: Opnd): void {
    this.a.cmp(reg(dst, size), this.src(size, s));
    this.a.setcc(cc, reg(dst, 1));
    this.a.movzx(reg(dst, 4), reg(dst, 1));
  }

  eqz(size: Size, dst: number): void {
    this.a.test(reg(dst, size), reg(dst, size));
    this.a.sete(reg(dst, 1));
    this.a.movzx(reg(dst, 4), reg(dst, 1));
  }

  /** clz via bsr (no LZCNT dependency): bsr leaves ZF set for 0, which selects 2*width-1 so the xor yields width. */
  clz(size: Size, dst: number): void {
    const w = size * 8;
    this.a.mov(reg(R11, 4), 2 * w - 1);
    this.a.bsr(reg(RAX, size), reg(dst, size));
    this.a.cmovz(reg(RAX, size), reg(R11, size));
    this.a.xor(reg(RAX, 4), w - 1);
    this.a.mov(reg(dst, 4), reg(RAX, 4));
  }

  ctz(size: Size, dst: number): void {
    this.a.mov(reg(R11, 4), size * 8);
    this.a.bsf(reg(RAX, size), reg(dst, size));
    this.a.cmovz(reg(RAX, size), reg(R11, size));
    this.a.mov(reg(dst, 4), reg(RAX, 4));
  }

  /** Population count by the SWAR bit trick, so the image does not depend on the POPCNT extension. */
  popcnt(size: Size, dst: number): void {
    const a = this.a;
    const d = reg(dst, size);
    const t = reg(RAX, size);
    const m = reg(R11, size);
    // The masks as r11 immediates: the 64-bit pattern, or its low 32 bits as a signed imm32 for i32.
    const w = size === 8;
    // d - ((d >> 1) & 0x55..)
    a.mov(t, d);
    a.shr(t, 1);
    if (w) a.mov(m, 0x5555555555555555n);
    else a.mov(m, 0x55555555);
    a.and(t, m);
    a.sub(d, t);
    // (d & 0x33..) + ((d >> 2) & 0x33..)
    if (w) a.mov(m, 0x3333333333333333n);
    else a.mov(m, 0x33333333);
    a.mov(t, d);
    a.shr(t, 2);
    a.and(d, m);
    a.and(t, m);
    a.add(d, t);
    // (d + (d >> 4)) & 0x0f..
    a.mov(t, d);
    a.shr(t, 4);
    a.add(d, t);
    if (w) a.mov(m, 0x0f0f0f0f0f0f0f0fn);
    else a.mov(m, 0x0f0f0f0f);
    a.and(d, m);
    // multiply by 0x0101.. and take the top byte
    if (w) a.mov(m, 0x0101010101010101n);
    else a.mov(m, 0x01010101);
    a.imul(d, m);
    a.shr(d, size * 8 - 8);
  }

  /** Sign/zero extensions: from `bits` to `size`. */
  extend(size: Size, dst: number, bits: 8 | 16 | 32, signed: boolean): void {
    if (!signed) {
      // Only i64.extend_i32_u: the value is already zero-extended in its register.
      this.a.mov(reg(dst, 4), reg(dst, 4));
      return;
    }
    if (bits === 32) this.a.movsxd(reg(dst, 8), reg(dst, 4));
    else this.a.movsx(reg(dst, size), reg(dst, bits === 8 ? 1 : 2));
  }

  wrap(dst: number): void {
    this.a.mov(reg(dst, 4), reg(dst, 4));
  }

  /** dst = cond ? dst : other. */
  select(size: Size, dst: number, other: Opnd, cond: number): void {
    // Materialise the constant first: movImm may use xor, which would clobber the flags of the test.
    if (other.k === "imm") this.load(size, R11, other);
    this.a.test(reg(cond, 4), reg(cond, 4));
    if (other.k === "imm") {
      this.a.cmovz(reg(dst, size), reg(R11, size));
    } else this.a.cmovz(reg(dst, size), other.k === "reg" ? reg(other.r, size) : other.m);
  }

  /**
   * Bounds check then the address of a linear-memory access of `bytes` at addr + offset (addr: an i32 held
   * zero-extended in a register). Memory is not guarded by page protection: the compare against the current size
   * is the only check, so it must precede every access.
   */
  heapAddr(addr: number, offset: number, bytes: number, size: 1 | 2 | 4 | 8, pinned = false): Mem {
    const a = this.a;
    const end = offset + bytes;
    if (!pinned || this.checkedEnd[addr]! < end) {
      if (end <= 0x7fffffff) a.lea(reg(R11, 8), memSized(8, reg(addr, 8), end));
      else {
        a.mov(reg(R11, 8), end);
        a.add(reg(R11, 8), reg(addr, 8));
      }
      a.cmp(reg(R11, 8), this.ctx(Ctx.MemSize));
      a.ja(this.trap(Trap.MemoryOutOfBounds));
      if (pinned) {
        this.checkedEnd[addr] = end;
        this.anyChecked = true;
      }
    }
    if (this.memBase !== null) {
      // Constant base: [addr + base + offset], or through r11 when that sum needs more than a disp32.
      const disp = this.memBase + offset;
      if (disp <= 0x7fffffff) return memSized(size, reg(addr, 8), disp);
      a.mov(reg(R11, 8), disp);
      a.add(reg(R11, 8), reg(addr, 8));
      return memSized(size, reg(R11, 8), 0);
    }
    if (offset <= 0x7fffffff) return memSized(size, MEMBASE, offset, reg(addr, 8));
    a.mov(reg(R11, 8), offset);
    a.add(reg(R11, 8), reg(addr, 8));
    return memSized(size, MEMBASE, 0, reg(R11, 8));
  }

  /** The operand for linear-memory address `ea`, known in bounds at compile time. */
  private heapConst(ea: number, size: 1 | 2 | 4 | 8): Mem {
    if (this.memBase === null) return memSized(size, MEMBASE, ea);
    const disp = this.memBase + ea;
    if (disp > 0x7fffffff) {
      this.a.mov(reg(R11, 8), disp);
      return memSized(size, reg(R11, 8), 0);
    }
    return new Mem(size, null, null, 1, disp, null, false, null);
  }

  loadHeapConst(size: Size, bytes: 1 | 2 | 4 | 8, signed: boolean, dst: number, ea: number): void {
    this.loadFrom(size, bytes, signed, dst, this.heapConst(ea, bytes));
  }

  storeHeapConst(bytes: 1 | 2 | 4 | 8, value: Opnd, ea: number): void {
    const v = this.storable(bytes, value);
    this.storeValue(bytes, this.heapConst(ea, bytes), v);
  }

  /**
   * A store's value as a register or an immediate the store can encode: a slot value or a 64-bit constant beyond
   * imm32 goes through rax first (before the address, whose computation may use r11).
   */
  private storable(bytes: 1 | 2 | 4 | 8, value: Opnd): Opnd {
    if (value.k === "mem") {
      this.a.mov(reg(RAX, bytes), resize(value.m, bytes));
      return RAX_OPND;
    }
    if (value.k === "imm" && bytes === 8 && !fitsI32(BigInt.asIntN(64, value.v))) {
      this.a.mov(reg(RAX, 8), BigInt.asIntN(64, value.v));
      return RAX_OPND;
    }
    return value;
  }

  private storeValue(bytes: 1 | 2 | 4 | 8, m: Mem, value: Opnd): void {
    if (value.k === "reg") this.a.mov(m, reg(value.r, bytes));
    else if (value.k === "imm") this.a.mov(m, Number(BigInt.asIntN(Math.min(bytes * 8, 32), value.v)));
    else throw new Error("storeValue: a memory operand must go through storable() first");
  }

  private loadFrom(size: Size, bytes: 1 | 2 | 4 | 8, signed: boolean, dst: number, m: Mem): void {
    const a = this.a;
    if (bytes === 8 || (bytes === 4 && !signed)) a.mov(reg(dst, bytes as Size), m);
    else if (bytes === 4) a.movsxd(reg(dst, 8), m);
    else if (signed) a.movsx(reg(dst, size), m);
    else a.movzx(reg(dst, 4), m);
  }

  /** `pinned`: addr is a pinned local's register (its bounds check may be reused, see checkedEnd). */
  loadHeap(size: Size, bytes: 1 | 2 | 4 | 8, signed: boolean, dst: number, addr: number, offset: number, pinned = false): void {
    this.loadFrom(size, bytes, signed, dst, this.heapAddr(addr, offset, bytes, bytes, pinned));
  }

  storeHeap(bytes: 1 | 2 | 4 | 8, value: Opnd, addr: number, offset: number, pinned = false): void {
    const v = this.storable(bytes, value);
    this.storeValue(bytes, this.heapAddr(addr, offset, bytes, bytes, pinned), v);
  }

  memorySize(dst: number): void {
    this.a.mov(reg(dst, 8), this.ctx(Ctx.MemSize));
    this.a.shr(reg(dst, 8), 16);
  }

  /** memory.grow: the memory is reserved up to its maximum, so growing only moves the size; -1 past the maximum. */
  memoryGrow(dst: number): void {
    const a = this.a;
    const fail = a.label();
    const done = a.label();
    a.mov(reg(RAX, 8), this.ctx(Ctx.MemSize));
    a.shr(reg(RAX, 8), 16);
    a.mov(reg(RCX, 8), this.ctx(Ctx.MemMaxPages));
    // Headroom = maximum − current, unsigned: a maximum below the current size (which validation and the embedder
    // rule out) fails every grow instead of wrapping to a huge headroom. The delta is an unsigned i32: zero-extend it.
    a.sub(reg(RCX, 8), reg(RAX, 8));
    a.jcc("b", fail);
    a.mov(reg(dst, 4), reg(dst, 4));
    a.cmp(reg(dst, 8), reg(RCX, 8));
    a.ja(fail);
    a.shl(reg(dst, 8), 16);
    a.add(this.ctx(Ctx.MemSize), reg(dst, 8));
    a.mov(reg(dst, 4), reg(RAX, 4));
    a.jmp(done);
    a.bind(fail);
    a.mov(reg(dst, 4), -1);
    a.bind(done);
  }

  jumpIfZero(r: number, target: Label): void {
    this.a.test(reg(r, 4), reg(r, 4));
    this.a.jz(target);
  }
  jumpIfNonZero(r: number, target: Label): void {
    this.a.test(reg(r, 4), reg(r, 4));
    this.a.jnz(target);
  }

  /** Frame setup: `frameBytes` below rbp, checked against the stack limit before anything is written there. */
  prologue(frameBytes: number): void {
    const a = this.a;
    this.forgetChecks();
    a.push(FP);
    a.mov(FP, reg(4, 8));
    if (frameBytes > 0) a.sub(reg(4, 8), frameBytes);
    a.cmp(reg(4, 8), this.ctx(Ctx.StackLimit));
    a.jb(this.trap(Trap.StackOverflow));
  }
  epilogue(): void {
    this.a.leave();
    this.a.ret();
  }
}
