// The per-function code generator: reads a validated body instruction by instruction and calls one small method per
// opcode. Each method works on the value stack through the context (context.ts) and emits through the macro-assembler
// (masm.ts). Control flow follows one rule: at every block boundary and branch every value is in its home slot, so
// labels need no register state. Calls use this backend's internal convention (see ABI.md): arguments pushed on the
// machine stack, first one first; result in rax; every allocatable register caller-saved.
import { type Condition, type Gpr, type Label, type Mem, dword, mem, qword, rdx, rsp } from "../x64/index.ts";
import { type Module, ValType, funcName, funcType } from "./decode.ts";
import { type CtxLayout, Trap, VMCTX } from "./abi.ts";
import { Context } from "./context.ts";
import { type AluOp, type MacroAssembler, RAX, type ShiftOp, type Size, reg as reg_ } from "./masm.ts";
import { type InstrStream, MEMORY_BY_OP as MEMORY_BY_OP_, Op as OpEnum } from "./opcodes.ts";
import { type FuncInfo, UnsupportedError, blockSig } from "./validate.ts";
import { type Intrinsic } from "./intrinsics.ts";

// Hot imports aliased to module-local constants: when tsx loads this file as CommonJS (required from a script outside
// this ESM package), every use of an imported binding is an export-getter call (~15% of compile time by --cpu-prof);
// loaded as ESM (npm run bench, uvt) the alias costs nothing either way.
const Op = OpEnum;
const MEMORY_BY_OP = MEMORY_BY_OP_;
const reg = reg_;

/** How the module compiler wants calls and imports lowered. */
export interface ModuleEnv {
  module: Module;
  layout: CtxLayout;
  /** Label of each defined function, by function index (imports map to null). */
  funcLabels: (Label | null)[];
  /** For imported functions: an inline intrinsic, or the vmctx slot / external symbol to call. */
  importLowering: (index: number) => { intrinsic: Intrinsic } | { slot: number; symbol: Label | null };
  /** Canonical signature id per type index (structurally equal types share an id). */
  sigIds: number[];
  tableSize: number;
  /** Bytes of linear memory that always exist (the initial size; memory never shrinks). */
  minMemoryBytes: number;
  /** The bodies' instructions as the validator decoded them (FuncInfo.first/count index it). */
  stream: InstrStream;
  /** Value type of every global, imported ones first (the global index space). */
  globalTypes: number[];
  /** Per global: its slot holds the address of a cell shared with the exporter (imported mutable globals). */
  globalIndirect: boolean[];
}

interface Ctl {
  op: number;
  /** Stack height below the block's params. */
  base: number;
  params: Size[];
  results: Size[];
  /** Branch target: loop head, or the end of block/if. */
  label: Label;
  elseLabel: Label | null;
  /** The function body: branches to it are returns. */
  isFunction: boolean;
}

const sz = (t: number): Size => (t === ValType.I64 ? 8 : 4);

/** BigInt(v) for i32.const, shared for the common small values (a BigInt is a heap object). */
const SMALL_BIGINTS: bigint[] = Array.from({ length: 1280 }, (_, i) => BigInt(i - 256));
function smallBigInt(v: number): bigint {
  return v >= -256 && v < 1024 ? SMALL_BIGINTS[v + 256]! : BigInt(v);
}

const CMP: Record<number, Condition> = {
  0: "e", 1: "ne", 2: "l", 3: "b", 4: "g", 5: "a", 6: "le", 7: "be", 8: "ge", 9: "ae",
};

/** arith() operator numbers (from clz = 0 within a width) that are plain ALU ops or shifts. */
const ALU: (AluOp | undefined)[] = [];
ALU[3] = "add"; ALU[4] = "sub"; ALU[10] = "and"; ALU[11] = "or"; ALU[12] = "xor";
const SHIFTS: (ShiftOp | undefined)[] = [];
SHIFTS[13] = "shl"; SHIFTS[14] = "sar"; SHIFTS[15] = "shr"; SHIFTS[16] = "rol"; SHIFTS[17] = "ror";

const NEGATE: Record<string, Condition> = { e: "ne", ne: "e", l: "ge", ge: "l", g: "le", le: "g", b: "ae", ae: "b", a: "be", be: "a" };

/** Value sizes of a block type's params and results. */
interface BlockSizes {
  params: Size[];
  results: Size[];
}

/** What every function of one module can share: block-type sizes (index bt + 0x80) and global slot operands. */
interface EnvShared {
  blockSizes: (BlockSizes | undefined)[];
  globals: (Mem | undefined)[];
}
const SHARED = new WeakMap<ModuleEnv, EnvShared>();
function sharedOf(env: ModuleEnv): EnvShared {
  let s = SHARED.get(env);
  if (!s) SHARED.set(env, (s = { blockSizes: [], globals: [] }));
  return s;
}

export class FunctionCompiler {
  private readonly cx: Context;
  private readonly shared: EnvShared;
  private readonly ctl: Ctl[] = [];
  private dead = false;
  private deadDepth = 0;
  private readonly retLabel: Label;
  private readonly resultSize: Size | null;
  /** Set by fuseCompare: the condition the next br_if/if tests is in the flags. */
  private flags: Condition | null = null;

  constructor(
    private readonly env: ModuleEnv,
    private readonly masm: MacroAssembler,
    private readonly index: number,
    private readonly info: FuncInfo,
  ) {
    const m = env.module;
    this.shared = sharedOf(env);
    const t = funcType(m, index);
    const body = m.bodies[index - m.numImportedFuncs]!;
    const np = t.params.length;
    const sizes: Size[] = [];
    for (let i = 0; i < np; i++) sizes.push(sz(t.params[i]!));
    for (let i = 0; i < body.locals.length; i++) sizes.push(sz(body.locals[i]!));
    this.cx = new Context(masm, t.params.length, body.locals.length, sizes, pickPinned(info.localWeights));
    this.retLabel = masm.a.label();
    this.resultSize = t.results.length ? sz(t.results[0]!) : null;
  }

  compile(): void {
    const m = this.env.module;
    const body = m.bodies[this.index - m.numImportedFuncs]!;
    const a = this.masm.a;
    const cx = this.cx;
    this.masm.prologue(cx.frameBytes(this.info.maxStack));
    const np = cx.numParams;
    // Slots of unpinned locals, and of pinned ones never written (reloaded after calls without being saved), start 0.
    let zeroed = false;
    for (let j = 0; j < body.locals.length; j++) {
      if (cx.pinned[np + j]! >= 0 && this.info.localWritten[np + j]) continue;
      if (!zeroed) a.xor(reg(RAX, 4), reg(RAX, 4));
      zeroed = true;
      a.mov(this.masm.frame(-8 * (j + 1)), reg(RAX, 8));
    }
    this.slotSynced = new Int32Array(cx.pinned.length);
    for (const i of cx.pinnedLocals) {
      const r = cx.pinned[i]!;
      if (i < np) {
        a.mov(reg(r, cx.localSizes[i]!), cx.local(i));
        this.slotSynced[i] = this.syncGen;
      } else a.xor(reg(r, 4), reg(r, 4));
    }
    this.ctl.push({
      op: Op.Block, base: 0, params: [], results: this.resultSize ? [this.resultSize] : [], label: this.retLabel,
      elseLabel: null, isFunction: true,
    });
    // The instructions as the validator decoded them (no second LEB128 decode).
    const s = this.env.stream;
    const end = this.info.first + this.info.count;
    if (this.info.first < 0) throw new Error(`function ${this.index}: the validator recorded no instructions (validateModule needs the stream)`);
    let i = this.info.first;
    while (this.ctl.length) {
      if (i >= end) throw new Error(`function ${this.index}: instruction stream ends before the body's final end`);
      const op = s.op[i]!;
      i++;
      if (this.dead) {
        if (op === Op.Block || op === Op.Loop || op === Op.If) {
          this.deadDepth++;
          continue;
        }
        if (op === Op.End && this.deadDepth > 0) {
          this.deadDepth--;
          continue;
        }
        if (op !== Op.End && op !== Op.Else) continue;
        if (op === Op.Else && this.deadDepth > 0) continue;
      }
      if (op >= 0x45 && op <= 0x5a && i < end && (s.op[i] === Op.BrIf || s.op[i] === Op.If)) {
        this.fuseCompare(op);
        continue;
      }
      this.visit(op, s.a[i - 1]!, i - 1);
    }
    this.bindLabel(this.retLabel);
    this.masm.epilogue();
  }

  /**
   * Whether each pinned local's frame slot holds the same value as its register, so savePinned can skip the store.
   * Only claimed on a straight-line path: local.set/tee clears it, and every label forgets it (another path may join).
   */
  private slotSynced: Int32Array = new Int32Array(0);
  /**
   * A local is synced when its slotSynced entry equals syncGen; binding a label forgets them all by moving syncGen on
   * (no fill of the array at every label).
   */
  private syncGen = 1;

  /** Binds a label where paths may join: forgets the per-path facts (bounds checks, synced pinned slots). */
  private bindLabel(l: Label): void {
    this.syncGen++;
    this.masm.bind(l);
  }

  private unsupported(what: string, at: number): never {
    throw new UnsupportedError(funcName(this.env.module, this.index), what, at);
  }

  /** One instruction: opcode, its first immediate, and its index in the stream (for the rarer immediates). */
  private visit(op: number, a: number, idx: number): void {
    const acc = op < 256 ? MEMORY_BY_OP[op] : undefined;
    if (acc) {
      const b = this.env.stream.b[idx]!;
      if (acc.store) this.store(acc.size, b);
      else this.load(sz(acc.type), acc.size, acc.signed, b);
      return;
    }
    if (op >= 0x46 && op <= 0x4f) return this.compare(4, CMP[op - 0x46]!);
    if (op >= 0x51 && op <= 0x5a) return this.compare(8, CMP[op - 0x51]!);
    if (op >= 0x67 && op <= 0x78) return this.arith(4, op - 0x67);
    if (op >= 0x79 && op <= 0x8a) return this.arith(8, op - 0x79);
    switch (op) {
      case Op.Unreachable: return this.visitUnreachable();
      case Op.Nop: return;
      case Op.Block: return this.visitBlock(op, a);
      case Op.Loop: return this.visitBlock(op, a);
      case Op.If: return this.visitIf(a, this.env.stream.at[idx]!);
      case Op.Else: return this.visitElse();
      case Op.End: return this.visitEnd();
      case Op.Br: return this.visitBr(a);
      case Op.BrIf: return this.visitBrIf(a);
      case Op.BrTable: return this.visitBrTable(this.env.stream.tables[a]!);
      case Op.Return: return this.visitBr(this.ctl.length - 1);
      case Op.Call: return this.visitCall(a);
      case Op.CallIndirect: return this.visitCallIndirect(a);
      case Op.Drop: return this.cx.drop();
      case Op.Select: case Op.SelectT: return this.visitSelect();
      case Op.LocalGet: return this.visitLocalGet(a);
      case Op.LocalSet: return this.visitLocalSet(a, false);
      case Op.LocalTee: return this.visitLocalSet(a, true);
      case Op.GlobalGet: return this.visitGlobalGet(a);
      case Op.GlobalSet: return this.visitGlobalSet(a);
      case Op.MemorySize: return this.visitMemorySize();
      case Op.MemoryGrow: return this.visitMemoryGrow();
      case Op.I32Const: return this.cx.pushConst(4, smallBigInt(a));
      case Op.I64Const: return this.cx.pushConst(8, this.env.stream.i64[idx]!);
      case Op.I32Eqz: case Op.I64Eqz: case Op.I32WrapI64: case Op.I64ExtendI32S: case Op.I64ExtendI32U:
      case Op.I32Extend8S: case Op.I32Extend16S: case Op.I64Extend8S: case Op.I64Extend16S: case Op.I64Extend32S:
        return this.unary(op);
      default: return this.unsupported(`opcode 0x${op.toString(16)}`, this.env.stream.at[idx]!);
    }
  }

  // ---- numeric ------------------------------------------------------------------------------------------------------

  /** The one-operand conversions and tests, in place on the operand's register (a switch, not a closure per use). */
  private unary(op: number): void {
    const m = this.masm;
    const r = this.cx.popReg();
    let out: Size = 4;
    switch (op) {
      case Op.I32Eqz: m.eqz(4, r); break;
      case Op.I64Eqz: m.eqz(8, r); break;
      case Op.I32WrapI64: m.wrap(r); break;
      case Op.I64ExtendI32S: m.extend(8, r, 32, true); out = 8; break;
      case Op.I64ExtendI32U: m.extend(8, r, 32, false); out = 8; break;
      case Op.I32Extend8S: m.extend(4, r, 8, true); break;
      case Op.I32Extend16S: m.extend(4, r, 16, true); break;
      case Op.I64Extend8S: m.extend(8, r, 8, true); out = 8; break;
      case Op.I64Extend16S: m.extend(8, r, 16, true); out = 8; break;
      case Op.I64Extend32S: m.extend(8, r, 32, true); out = 8; break;
      default: throw new Error(`unary: opcode 0x${op.toString(16)} is not a unary operator`);
    }
    this.cx.pushReg(out, r);
  }

  private compare(size: Size, cc: Condition): void {
    const rhs = this.cx.pop();
    const lhs = this.cx.popReg();
    this.masm.compare(cc, size, lhs, rhs);
    this.cx.done(rhs);
    this.cx.pushReg(4, lhs);
  }

  /** Opcodes clz..rotr, numbered from 0 within their width. */
  private arith(size: Size, k: number): void {
    const m = this.masm;
    if (k <= 2) {
      const r = this.cx.popReg();
      if (k === 0) m.clz(size, r);
      else if (k === 1) m.ctz(size, r);
      else m.popcnt(size, r);
      this.cx.pushReg(size, r);
      return;
    }
    if ((k === 3 || k === 4) && this.addConstToPinned(size, k === 4)) return;
    const rhs = this.cx.pop();
    const lhs = this.cx.popReg();
    const aluOp = ALU[k];
    const shiftOp = SHIFTS[k];
    if (aluOp) m.alu(aluOp, size, lhs, rhs);
    else if (shiftOp) m.shift(shiftOp, size, lhs, rhs);
    else if (k === 5) m.mul(size, lhs, rhs);
    else m.divRem(size, k === 6 || k === 8, k === 8 || k === 9, lhs, rhs);
    this.cx.done(rhs);
    this.cx.pushReg(size, lhs);
  }

  /**
   * `local.get p; const c; add|sub` with p pinned: one `lea dst, [p ± c]` instead of copying p and adding. A 32-bit
   * lea keeps the low half of the 64-bit sum, which is the wrapping i32 result since p is held zero-extended.
   */
  private addConstToPinned(size: Size, sub: boolean): boolean {
    const c = this.cx.peekConst(0);
    if (c === null || this.cx.height < 2) return false;
    const k = this.cx.height - 2;
    const p = this.cx.pinnedAt(k);
    if (p < 0) return false;
    const v = size === 4 ? BigInt.asIntN(32, sub ? -c : c) : BigInt.asIntN(64, sub ? -c : c);
    if (v < -0x80000000n || v > 0x7fffffffn) return false;
    this.cx.drop();
    this.cx.drop();
    const dst = this.cx.alloc();
    this.masm.a.lea(reg(dst, size), this.masm.baseDisp(8, p, Number(v)));
    this.cx.pushReg(size, dst);
    return true;
  }

  // ---- variables ----------------------------------------------------------------------------------------------------

  private visitLocalGet(i: number): void {
    const p = this.cx.pinned[i]!;
    if (p >= 0) {
      this.cx.pushLocal(this.cx.localSizes[i]!, i);
      return;
    }
    const r = this.cx.alloc();
    const m = this.cx.local(i);
    this.masm.a.mov(reg(r, m.size as Size), m);
    this.cx.pushReg(m.size as Size, r);
  }

  private visitLocalSet(i: number, tee: boolean): void {
    const p = this.cx.pinned[i]!;
    if (p >= 0) {
      const size = this.cx.localSizes[i]!;
      const v = this.cx.pop();
      this.cx.materializeLocal(i);
      this.masm.forgetCheck(p);
      this.slotSynced[i] = 0;
      this.masm.load(size, p, v);
      this.cx.done(v);
      if (tee) this.cx.pushLocal(size, i);
      return;
    }
    const m = this.cx.local(i);
    const size = m.size as Size;
    if (tee) {
      const r = this.cx.popReg();
      this.masm.a.mov(m, reg(r, size));
      this.cx.pushReg(size, r);
      return;
    }
    const v = this.cx.pop();
    this.masm.storeTo(size, m, v);
    this.cx.done(v);
  }

  /** Global i's VM-context slot, sized by its type (one operand per global and module, see shared). */
  private globalSlot(i: number): Mem {
    const cache = this.shared.globals;
    return (cache[i] ??= this.masm.ctx(this.env.layout.globals + 8 * i, sz(this.env.globalTypes[i]!)));
  }

  /**
   * Where global i's value is: its slot, or for an imported mutable global the cell its slot points to (the pointer
   * is loaded into rdx, a scratch register no wasm value lives in across instructions).
   */
  private globalRef(i: number): Mem {
    if (!this.env.globalIndirect[i]) return this.globalSlot(i);
    this.masm.a.mov(rdx, this.masm.ctx(this.env.layout.globals + 8 * i, 8));
    return mem(sz(this.env.globalTypes[i]!), rdx);
  }

  private visitGlobalGet(i: number): void {
    const m = this.globalRef(i);
    const size = m.size as Size;
    const r = this.cx.alloc();
    this.masm.a.mov(reg(r, size), m);
    this.cx.pushReg(size, r);
  }

  private visitGlobalSet(i: number): void {
    const v = this.cx.pop();
    const m = this.globalRef(i);
    const size = m.size as Size;
    this.masm.storeTo(size, m, v);
    this.cx.done(v);
  }

  // ---- memory -------------------------------------------------------------------------------------------------------

  /** A constant address whose access lies inside the initial memory needs no bounds check. */
  private constAddress(depth: number, offset: number, bytes: number): number | null {
    const c = this.cx.peekConst(depth);
    if (c === null) return null;
    const ea = Number(BigInt.asUintN(32, c)) + offset;
    return ea + bytes <= this.env.minMemoryBytes && ea <= 0x7fffffff ? ea : null;
  }

  private load(size: Size, bytes: 1 | 2 | 4 | 8, signed: boolean, offset: number): void {
    const ea = this.constAddress(0, offset, bytes);
    if (ea !== null) {
      this.cx.drop();
      const dst = this.cx.alloc();
      this.masm.loadHeapConst(size, bytes, signed, dst, ea);
      this.cx.pushReg(size, dst);
      return;
    }
    const pinned = this.cx.topPinned();
    if (pinned >= 0) {
      // Address straight from a pinned local's register; the result needs a register of its own.
      this.cx.drop();
      const dst = this.cx.alloc();
      this.masm.loadHeap(size, bytes, signed, dst, pinned, offset, true);
      this.cx.pushReg(size, dst);
      return;
    }
    const addr = this.cx.popReg();
    this.masm.loadHeap(size, bytes, signed, addr, addr, offset);
    this.cx.pushReg(size, addr);
  }

  private store(bytes: 1 | 2 | 4 | 8, offset: number): void {
    const ea = this.constAddress(1, offset, bytes);
    if (ea !== null) {
      const value = this.cx.pop();
      this.cx.drop();
      this.masm.storeHeapConst(bytes, value, ea);
      this.cx.done(value);
      return;
    }
    const value = this.cx.pop();
    const pinned = this.cx.topPinned();
    const addr = pinned >= 0 ? pinned : this.cx.popReg();
    if (pinned >= 0) this.cx.drop();
    this.masm.storeHeap(bytes, value, addr, offset, pinned >= 0);
    this.cx.done(value);
    this.cx.release(addr);
  }

  private visitMemorySize(): void {
    const r = this.cx.alloc();
    this.masm.memorySize(r);
    this.cx.pushReg(4, r);
  }

  private visitMemoryGrow(): void {
    const r = this.cx.popReg();
    this.masm.memoryGrow(r);
    this.cx.pushReg(4, r);
  }

  private visitSelect(): void {
    const cond = this.cx.popReg();
    const other = this.cx.pop();
    const size = this.cx.sizeAt(this.cx.height - 1);
    const dst = this.cx.popReg();
    this.masm.select(size, dst, other, cond);
    this.cx.release(cond);
    this.cx.done(other);
    this.cx.pushReg(size, dst);
  }

  // ---- control ------------------------------------------------------------------------------------------------------

  /** A block type's value sizes, computed once per block type and module (the arrays are shared, never modified). */
  private blockSizes(bt: number): BlockSizes {
    const cache = this.shared.blockSizes;
    const k = bt + 0x80;
    let b = cache[k];
    if (b === undefined) {
      const s = blockSig(this.env.module, bt);
      b = cache[k] = { params: s.params.map(sz), results: s.results.map(sz) };
    }
    return b;
  }

  private visitBlock(op: number, bt: number): void {
    const { params, results } = this.blockSizes(bt);
    this.cx.spillAll();
    const label = this.masm.a.label();
    if (op === Op.Loop) this.bindLabel(label);
    this.ctl.push({ op, base: this.cx.height - params.length, params, results, label, elseLabel: null, isFunction: false });
  }

  /**
   * A comparison directly followed by br_if or if: emit only the cmp/test and leave the condition in the flags for
   * that branch (no setcc/movzx/test). Everything emitted in between is mov, which leaves the flags alone.
   */
  private fuseCompare(op: number): void {
    const eqz = op === Op.I32Eqz || op === Op.I64Eqz;
    const size: Size = op >= Op.I64Eqz ? 8 : 4;
    if (eqz) {
      const pinned = this.cx.topPinned();
      if (pinned >= 0) this.cx.drop();
      const r = pinned >= 0 ? pinned : this.cx.popReg();
      this.masm.a.test(reg(r, size), reg(r, size));
      this.cx.release(r);
      this.flags = "e";
      return;
    }
    const rhs = this.cx.pop();
    // A pinned local is compared in its own register (cmp only reads it); release() ignores pinned registers.
    const pinned = this.cx.topPinned();
    if (pinned >= 0) this.cx.drop();
    const lhs = pinned >= 0 ? pinned : this.cx.popReg();
    this.masm.cmp(size, lhs, rhs);
    this.cx.done(rhs);
    this.cx.release(lhs);
    this.flags = CMP[op - (size === 8 ? 0x51 : 0x46)]!;
  }

  /** Jumps to `target` when the pending branch condition is false (flags from fuseCompare, or a popped i32). */
  private jumpIfFalse(target: Label, cond: number): void {
    if (this.flags) this.masm.a.jcc(NEGATE[this.flags]!, target);
    else this.masm.jumpIfZero(cond, target);
    this.flags = null;
  }
  private jumpIfTrue(target: Label, cond: number): void {
    if (this.flags) this.masm.a.jcc(this.flags, target);
    else this.masm.jumpIfNonZero(cond, target);
    this.flags = null;
  }

  private visitIf(bt: number, at: number): void {
    const { params, results } = this.blockSizes(bt);
    if (params.length) this.unsupported("if with block parameters", at);
    const cond = this.flags ? -1 : this.cx.popReg();
    this.cx.spillAll();
    const elseLabel = this.masm.a.label();
    this.jumpIfFalse(elseLabel, cond);
    if (cond >= 0) this.cx.release(cond);
    this.ctl.push({ op: Op.If, base: this.cx.height, params, results, label: this.masm.a.label(), elseLabel, isFunction: false });
  }

  /**
   * Blocks and ifs with one result hand it over in the context's resultReg rather than in a home slot: every path to
   * the end label (fall-through, br, br_if, br_table) leaves it there, which saves a store and a dependent reload at
   * each merge. Loops (whose label takes params) and the function body (result in rax) keep their own conventions.
   */
  private resultInReg(f: Ctl): boolean {
    return !f.isFunction && f.op !== Op.Loop && f.results.length === 1;
  }

  /** The fall-through edge into f's end label: the agreed state there. */
  private fallToEnd(f: Ctl): void {
    if (this.resultInReg(f)) {
      this.cx.spillBelow(1);
      this.cx.loadTopInto(this.cx.resultReg);
    } else this.cx.spillAll();
  }

  private visitElse(): void {
    const f = this.ctl[this.ctl.length - 1]!;
    if (!this.dead) {
      this.fallToEnd(f);
      this.masm.a.jmp(f.label);
    }
    this.bindLabel(f.elseLabel!);
    f.elseLabel = null;
    f.op = Op.Else;
    this.dead = false;
    this.cx.resetTo(f.base, f.params);
  }

  private visitEnd(): void {
    const f = this.ctl.pop()!;
    if (f.isFunction) {
      if (!this.dead && this.resultSize) this.cx.loadTopInto(RAX);
      if (!this.dead) this.cx.resetTo(0, []);
      this.dead = false;
      return;
    }
    if (!this.dead) this.fallToEnd(f);
    if (f.elseLabel) this.bindLabel(f.elseLabel);
    if (f.op !== Op.Loop) this.bindLabel(f.label);
    this.dead = false;
    if (this.resultInReg(f)) {
      this.cx.resetTo(f.base, []);
      this.cx.pushFixed(f.results[0]!, this.cx.resultReg);
    } else this.cx.resetTo(f.base, f.results);
  }

  private target(depth: number): { f: Ctl; arity: number } {
    const f = this.ctl[this.ctl.length - 1 - depth]!;
    return { f, arity: f.op === Op.Loop ? f.params.length : f.results.length };
  }

  /** Emits the moves and jump of a taken branch; the value-stack model is left as it was. */
  private branchTo(depth: number): void {
    const { f, arity } = this.target(depth);
    if (f.isFunction) {
      if (this.resultSize) this.cx.loadTopInto(RAX);
      this.masm.a.jmp(f.label);
      return;
    }
    if (this.resultInReg(f)) this.cx.loadTopInto(this.cx.resultReg);
    else this.cx.moveTopTo(arity, f.base);
    this.masm.a.jmp(f.label);
  }

  private markDead(): void {
    this.dead = true;
    this.deadDepth = 0;
  }

  private visitBr(depth: number): void {
    this.branchTo(depth);
    this.markDead();
  }

  private visitBrIf(depth: number): void {
    const cond = this.flags ? -1 : this.cx.popReg();
    const { f, arity } = this.target(depth);
    if (cond >= 0) this.cx.release(cond);
    this.cx.spillAll();
    if (arity === 0 && !f.isFunction) {
      this.jumpIfTrue(f.label, cond);
      return;
    }
    const skip = this.masm.a.label();
    this.jumpIfFalse(skip, cond);
    this.branchTo(depth);
    this.bindLabel(skip);
  }

  private visitBrTable(targets: number[]): void {
    const idx = this.cx.popReg();
    this.cx.release(idx);
    this.cx.spillAll();
    const a = this.masm.a;
    const n = targets.length - 1;
    // A binary search over the index (unsigned compares), linear at the leaves; a jump table would need
    // label-difference data from the assembler (see ABI.md). Methods, not closures: see brTableLabel.
    const stubs: { label: Label; depth: number }[] = [];
    const r32 = reg(idx, 4);
    if (n === 0) a.jmp(this.brTableLabel(targets[0]!, stubs));
    else {
      a.cmp(r32, n);
      a.jae(this.brTableLabel(targets[n]!, stubs));
      this.brTableSearch(r32, targets, stubs, 0, n);
    }
    for (const s of stubs) {
      this.bindLabel(s.label);
      this.branchTo(s.depth);
    }
    this.markDead();
  }

  /**
   * br_table's jump target for a depth: the label itself when no value has to move, else a stub (made once per depth)
   * that moves the values and branches. (Methods rather than closures in visitBrTable: tsx's keepNames names every
   * closure with Object.defineProperty when it is created.)
   */
  private brTableLabel(depth: number, stubs: { label: Label; depth: number }[]): Label {
    const { f, arity } = this.target(depth);
    if (!f.isFunction && (arity === 0 || (!this.resultInReg(f) && f.base === this.cx.height - arity))) return f.label;
    let s = stubs.find((x) => x.depth === depth);
    if (!s) {
      s = { label: this.masm.a.label(), depth };
      stubs.push(s);
    }
    return s.label;
  }

  /** The compare tree over targets[lo, hi), where lo <= index < hi holds. */
  private brTableSearch(r32: Gpr, targets: number[], stubs: { label: Label; depth: number }[], lo: number, hi: number): void {
    const a = this.masm.a;
    if (hi - lo <= 4) {
      for (let i = lo; i < hi - 1; i++) {
        a.cmp(r32, i);
        a.je(this.brTableLabel(targets[i]!, stubs));
      }
      a.jmp(this.brTableLabel(targets[hi - 1]!, stubs));
      return;
    }
    const mid = (lo + hi) >>> 1;
    const left = a.label();
    a.cmp(r32, mid);
    a.jb(left);
    this.brTableSearch(r32, targets, stubs, mid, hi);
    this.bindLabel(left);
    this.brTableSearch(r32, targets, stubs, lo, mid);
  }

  private visitUnreachable(): void {
    this.masm.a.jmp(this.masm.trap(Trap.Unreachable));
    this.markDead();
  }

  // ---- calls --------------------------------------------------------------------------------------------------------

  /** Wasm callees may use every allocatable register, so pinned locals go to their frame slots around calls. */
  private savePinned(): void {
    for (const i of this.cx.pinnedLocals) {
      // A local never written still has its initial value in its slot (parameter, or the prologue's zero).
      // So does one whose slot was stored since its last write on this straight-line path.
      if (!this.info.localWritten[i] || this.slotSynced[i] === this.syncGen) continue;
      this.masm.a.mov(this.cx.local(i), reg(this.cx.pinned[i]!, this.cx.localSizes[i]!));
      this.slotSynced[i] = this.syncGen;
    }
  }
  private reloadPinned(): void {
    for (const i of this.cx.pinnedLocals) this.masm.a.mov(reg(this.cx.pinned[i]!, this.cx.localSizes[i]!), this.cx.local(i));
  }

  private finishCall(nargs: number, results: number[]): void {
    for (let i = 0; i < nargs; i++) this.cx.drop();
    if (results.length) {
      const size = sz(results[0]!);
      const r = this.cx.alloc();
      this.masm.a.mov(reg(r, size), reg(RAX, size));
      this.cx.pushReg(size, r);
    }
  }

  private visitCall(fi: number): void {
    const t = funcType(this.env.module, fi);
    const a = this.masm.a;
    if (fi < this.env.module.numImportedFuncs) {
      const low = this.env.importLowering(fi);
      if ("intrinsic" in low) {
        low.intrinsic.lower(this.masm, this.cx);
        return;
      }
      this.cx.spillAll();
      // r10 (a pinned register) is caller-saved under System V, so pinned locals go to their slots here too.
      this.savePinned();
      // System V call to the embedder: arguments in registers, stack aligned to 16.
      const argRegs = [7, 6, 2, 1, 8, 9];
      const h = this.cx.height;
      t.params.forEach((p, i) => a.mov(reg(argRegs[i]!, sz(p)), this.cx.home(h - t.params.length + i, sz(p))));
      // Keep the old rsp on the aligned stack itself: rbx/r12/r13 may hold pinned locals.
      a.mov(reg(11, 8), rsp);
      a.and(rsp, -16);
      a.sub(rsp, 8);
      a.push(reg(11, 8));
      if (low.symbol) a.call(low.symbol);
      else a.call(this.masm.ctx(low.slot));
      a.pop(rsp);
      this.reloadPinned();
      this.finishCall(t.params.length, t.results);
      return;
    }
    this.cx.spillBelow(t.params.length);
    this.savePinned();
    this.cx.pushTop(t.params.length);
    a.call(this.env.funcLabels[fi]!);
    if (t.params.length) a.add(rsp, 8 * t.params.length);
    this.reloadPinned();
    this.finishCall(t.params.length, t.results);
  }

  private visitCallIndirect(typeIndex: number): void {
    const t = this.env.module.types[typeIndex]!;
    const a = this.masm.a;
    const idx = this.cx.popReg();
    this.cx.release(idx);
    this.cx.spillBelow(t.params.length);
    // idx is no longer on the stack and spilling only stores, so it still holds the index here.
    a.cmp(reg(idx, 8), this.env.tableSize);
    a.jae(this.masm.trap(Trap.TableOutOfBounds));
    a.shl(reg(idx, 8), 4);
    const entry = { base: VMCTX, index: reg(idx, 8), disp: this.env.layout.table };
    a.mov(reg(RAX, 8), qword(entry));
    a.test(reg(RAX, 8), reg(RAX, 8));
    a.jz(this.masm.trap(Trap.NullFunction));
    a.cmp(dword({ ...entry, disp: entry.disp + 8 }), this.env.sigIds[typeIndex]!);
    a.jne(this.masm.trap(Trap.SignatureMismatch));
    this.savePinned();
    this.cx.pushTop(t.params.length);
    a.call(reg(RAX, 8));
    if (t.params.length) a.add(rsp, 8 * t.params.length);
    this.reloadPinned();
    this.finishCall(t.params.length, t.results);
  }
}

/** Registers that hold the most-used locals for the whole function (see ABI.md). */
export const PINNED = [3, 12, 13, 10];

/** Chooses the locals to keep in PINNED registers: the highest weights (see FuncInfo.localWeights), at least 2. */
function pickPinned(weight: Float64Array): number[] {
  const n = weight.length;
  // Insertion into a top-k list (k = 4): ties keep the lower index, as a stable sort by descending weight would.
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    const w = weight[i]!;
    if (w < 2) continue;
    let k = order.length;
    while (k > 0 && weight[order[k - 1]!]! < w) k--;
    if (k >= PINNED.length) continue;
    // Insert at k by hand (splice would allocate the array of removed elements on every call).
    order.push(i);
    for (let j = order.length - 1; j > k; j--) order[j] = order[j - 1]!;
    order[k] = i;
    if (order.length > PINNED.length) order.pop();
  }
  const out = new Array<number>(n).fill(-1);
  for (let k = 0; k < order.length; k++) out[order[k]!] = PINNED[k]!;
  return out;
}
