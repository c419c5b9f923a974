// The wasm opcode table and the streaming instruction reader used by the validator (validate.ts) and the code
// generator (visitor.ts). Only the accepted integer subset carries a signature; every other MVP opcode has a name so
// the rejection error can say exactly which instruction was found.
import { Reader } from "./decode.ts";

// A plain enum, not `const enum`: tsx/esbuild transpile file by file and cannot inline a const enum across modules
// anyway, and a plain enum can be aliased to a module-local constant (see visitor.ts).
export enum Op {
  Unreachable = 0x00, Nop = 0x01, Block = 0x02, Loop = 0x03, If = 0x04, Else = 0x05, End = 0x0b, Br = 0x0c,
  BrIf = 0x0d, BrTable = 0x0e, Return = 0x0f, Call = 0x10, CallIndirect = 0x11, Drop = 0x1a, Select = 0x1b,
  SelectT = 0x1c, LocalGet = 0x20, LocalSet = 0x21, LocalTee = 0x22, GlobalGet = 0x23, GlobalSet = 0x24,
  I32Load = 0x28, I64Load = 0x29, I64Store32 = 0x3e, MemorySize = 0x3f, MemoryGrow = 0x40, I32Const = 0x41,
  I64Const = 0x42, I32Eqz = 0x45, I64Eqz = 0x50, I32WrapI64 = 0xa7, I64ExtendI32S = 0xac, I64ExtendI32U = 0xad,
  I32Extend8S = 0xc0, I32Extend16S = 0xc1, I64Extend8S = 0xc2, I64Extend16S = 0xc3, I64Extend32S = 0xc4,
}

const NAMES: string[] = [];
function names(start: number, list: string): void {
  list.split(" ").forEach((n, i) => (NAMES[start + i] = n));
}
names(0x00, "unreachable nop block loop if else try catch throw rethrow throw_ref end br br_if br_table return call call_indirect return_call return_call_indirect call_ref return_call_ref");
names(0x1a, "drop select select");
names(0x20, "local.get local.set local.tee global.get global.set table.get table.set");
names(0x28, "i32.load i64.load f32.load f64.load i32.load8_s i32.load8_u i32.load16_s i32.load16_u i64.load8_s i64.load8_u i64.load16_s i64.load16_u i64.load32_s i64.load32_u i32.store i64.store f32.store f64.store i32.store8 i32.store16 i64.store8 i64.store16 i64.store32 memory.size memory.grow i32.const i64.const f32.const f64.const");
names(0x45, "i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne f64.lt f64.gt f64.le f64.ge");
names(0x67, "i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr i64.clz i64.ctz i64.popcnt i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u i64.and i64.or i64.xor i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr");
names(0x8b, "f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest f32.sqrt f32.add f32.sub f32.mul f32.div f32.min f32.max f32.copysign f64.abs f64.neg f64.ceil f64.floor f64.trunc f64.nearest f64.sqrt f64.add f64.sub f64.mul f64.div f64.min f64.max f64.copysign");
names(0xa7, "i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u i64.extend_i32_s i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u f32.demote_f64 f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u f64.promote_f32 i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64");
names(0xc0, "i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s");
names(0xd0, "ref.null ref.is_null ref.func ref.as_non_null br_on_null ref.eq br_on_non_null");
const FC_NAMES = "i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s i32.trunc_sat_f64_u i64.trunc_sat_f32_s i64.trunc_sat_f32_u i64.trunc_sat_f64_s i64.trunc_sat_f64_u memory.init data.drop memory.copy memory.fill table.init elem.drop table.copy table.grow table.size table.fill".split(" ");

/** The textual name of an opcode (prefixed opcodes as 0xfc00 + sub-opcode etc.). */
export function opName(op: number): string {
  if (op >= 0xfc00 && op < 0xfd00) return FC_NAMES[op - 0xfc00] ?? `0xfc ${op - 0xfc00}`;
  if (op >= 0xfd00 && op < 0xfe00) return `SIMD instruction 0xfd ${op - 0xfd00}`;
  if (op >= 0xfe00 && op < 0xff00) return `atomic instruction 0xfe ${op - 0xfe00}`;
  return NAMES[op] ?? `unknown opcode 0x${op.toString(16)}`;
}

const I = 0x7f;
const L = 0x7e;
/** Pure numeric operators of the accepted subset: opcode → [operand types, result type]. */
export const NUMERIC = new Map<number, readonly [readonly number[], number]>();
for (let op = 0x46; op <= 0x4f; op++) NUMERIC.set(op, [[I, I], I]);
for (let op = 0x51; op <= 0x5a; op++) NUMERIC.set(op, [[L, L], I]);
NUMERIC.set(0x45, [[I], I]);
NUMERIC.set(0x50, [[L], I]);
for (let op = 0x67; op <= 0x69; op++) NUMERIC.set(op, [[I], I]);
for (let op = 0x6a; op <= 0x78; op++) NUMERIC.set(op, [[I, I], I]);
for (let op = 0x79; op <= 0x7b; op++) NUMERIC.set(op, [[L], L]);
for (let op = 0x7c; op <= 0x8a; op++) NUMERIC.set(op, [[L, L], L]);
NUMERIC.set(0xa7, [[L], I]);
NUMERIC.set(0xac, [[I], L]);
NUMERIC.set(0xad, [[I], L]);
NUMERIC.set(0xc0, [[I], I]);
NUMERIC.set(0xc1, [[I], I]);
for (let op = 0xc2; op <= 0xc4; op++) NUMERIC.set(op, [[L], L]);

export interface MemAccess {
  /** Bytes accessed. */
  size: 1 | 2 | 4 | 8;
  /** Value type on the stack. */
  type: number;
  signed: boolean;
  store: boolean;
}
/** Integer loads and stores: opcode → access shape. */
export const MEMORY = new Map<number, MemAccess>([
  [0x28, { size: 4, type: I, signed: false, store: false }],
  [0x29, { size: 8, type: L, signed: false, store: false }],
  [0x2c, { size: 1, type: I, signed: true, store: false }],
  [0x2d, { size: 1, type: I, signed: false, store: false }],
  [0x2e, { size: 2, type: I, signed: true, store: false }],
  [0x2f, { size: 2, type: I, signed: false, store: false }],
  [0x30, { size: 1, type: L, signed: true, store: false }],
  [0x31, { size: 1, type: L, signed: false, store: false }],
  [0x32, { size: 2, type: L, signed: true, store: false }],
  [0x33, { size: 2, type: L, signed: false, store: false }],
  [0x34, { size: 4, type: L, signed: true, store: false }],
  [0x35, { size: 4, type: L, signed: false, store: false }],
  [0x36, { size: 4, type: I, signed: false, store: true }],
  [0x37, { size: 8, type: L, signed: false, store: true }],
  [0x3a, { size: 1, type: I, signed: false, store: true }],
  [0x3b, { size: 2, type: I, signed: false, store: true }],
  [0x3c, { size: 1, type: L, signed: false, store: true }],
  [0x3d, { size: 2, type: L, signed: false, store: true }],
  [0x3e, { size: 4, type: L, signed: false, store: true }],
]);

/** NUMERIC and MEMORY as arrays indexed by opcode (the hot loops index them once per instruction). */
export const NUMERIC_BY_OP: (readonly [readonly number[], number] | undefined)[] = Array.from({ length: 256 }, (_, i) => NUMERIC.get(i));
export const MEMORY_BY_OP: (MemAccess | undefined)[] = Array.from({ length: 256 }, (_, i) => MEMORY.get(i));

/** One decoded instruction. Fields beyond `op` are set only for opcodes that carry them. */
export interface Instr {
  op: number;
  /** Byte offset of the opcode in the module. */
  at: number;
  /** Index immediate: local, global, function, label depth, type index (call_indirect), block type. */
  a: number;
  /** Second immediate: table index (call_indirect), memory offset (loads/stores). */
  b: number;
  /** Constant value (i32.const as a number, i64.const as a bigint). */
  i64: bigint;
  /** br_table targets, the default last. */
  targets: number[] | null;
}

/** Reads the next instruction's immediates into `ins` (reused to avoid garbage in the hot loop). */
export function readInstr(r: Reader, ins: Instr): void {
  ins.at = r.pos;
  let op = r.u8();
  ins.targets = null;
  switch (op) {
    case 0x02: case 0x03: case 0x04:
      ins.a = r.blockType();
      break;
    case 0x0c: case 0x0d: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24:
      ins.a = r.u32();
      break;
    case 0x0e: {
      const n = r.u32();
      if (n > r.end - r.pos) r.fail("br_table has more targets than bytes left");
      const t: number[] = [];
      for (let i = 0; i <= n; i++) t.push(r.u32());
      ins.targets = t;
      break;
    }
    case 0x11:
      ins.a = r.u32();
      ins.b = r.u32();
      break;
    case 0x1c: {
      const n = r.u32();
      if (n !== 1) r.fail("invalid result arity: typed select must name exactly one type");
      ins.a = r.valType();
      break;
    }
    case 0x3f: case 0x40:
      if (r.u8() !== 0) r.fail("zero byte expected (memory.size/memory.grow take memory index 0)");
      break;
    case 0x41:
      ins.a = r.s32();
      break;
    case 0x42:
      ins.i64 = r.s64();
      break;
    case 0x43:
      r.take(4);
      break;
    case 0x44:
      r.take(8);
      break;
    case 0xfc: case 0xfd: case 0xfe:
      op = (op << 8) + r.u32();
      break;
    default:
      if (op >= 0x28 && op <= 0x3e) {
        const align = r.u32();
        if (align >= 64) r.fail("multi-memory alignment flags are not accepted");
        ins.a = align;
        ins.b = r.u32();
      }
  }
  ins.op = op;
}

export function newInstr(): Instr {
  return { op: 0, at: 0, a: 0, b: 0, i64: 0n, targets: null };
}

/**
 * The decoded instructions of a module's function bodies, recorded by the validator so that the code generator does
 * not decode every LEB128 immediate a second time. Parallel typed arrays grown by doubling. `a` holds the s32 or
 * validated index immediates (all within int32), `b` the u32 ones (memory offsets). i64 holds i64.const values (other
 * entries are stale); for br_table, `a` indexes `tables`.
 */
export class InstrStream {
  count = 0;
  op = new Int32Array(4096);
  a = new Int32Array(4096);
  b = new Uint32Array(4096);
  at = new Int32Array(4096);
  i64 = new BigInt64Array(4096);
  tables: number[][] = [];

  push(ins: Instr): void {
    const i = this.count;
    if (i === this.op.length) this.grow();
    const op = ins.op;
    this.op[i] = op;
    this.b[i] = ins.b;
    this.at[i] = ins.at;
    if (op === 0x0e) {
      this.a[i] = this.tables.length;
      this.tables.push(ins.targets!);
    } else this.a[i] = ins.a;
    if (op === 0x42) this.i64[i] = ins.i64;
    this.count = i + 1;
  }

  private grow(): void {
    const n = this.op.length * 2;
    const op = new Int32Array(n), a = new Int32Array(n), b = new Uint32Array(n), at = new Int32Array(n), i64 = new BigInt64Array(n);
    op.set(this.op);
    a.set(this.a);
    b.set(this.b);
    at.set(this.at);
    i64.set(this.i64);
    this.op = op;
    this.a = a;
    this.b = b;
    this.at = at;
    this.i64 = i64;
  }

  clear(): void {
    this.count = 0;
    this.tables.length = 0;
  }
}

let spareStream: InstrStream | null = null;
/** An empty stream, reusing the last one given back (compiling a module allocates no new arrays once warm). */
export function takeStream(): InstrStream {
  const s = spareStream ?? new InstrStream();
  spareStream = null;
  s.clear();
  return s;
}
export function giveBackStream(s: InstrStream): void {
  s.tables.length = 0;
  spareStream = s;
}
