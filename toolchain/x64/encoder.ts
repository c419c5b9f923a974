// The instruction encoder: picks the first form of forms.ts that accepts the operands and writes its bytes (legacy
// prefixes, REX, opcode, ModRM/SIB/displacement, immediate). The single place in the project that produces x86-64
// instruction bytes; the Assembler (assembler.ts) owns the buffers, labels and relocations around it.
import { type Candidates, type Form, type FormList, FORMS, type Imm, type Spec } from "./forms.ts";
import { type Label, type Mem, SIZE_NAMES, type SymRef } from "./operands.ts";
import { type CtrlReg, type DbgReg, type Gpr, K, type SegReg } from "./registers.ts";

export type Operand = Gpr | SegReg | CtrlReg | DbgReg | Mem | Label | SymRef | number | bigint;

/** A growable byte buffer; instructions are at most 15 bytes, so one `ensure(16)` per instruction suffices. */
export class Sink {
  buf: Uint8Array;
  pos = 0;
  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** Prefix flags requested by the caller (Assembler.lock()/rep()/repne()). */
export const LOCK = 1, REP = 2, REPNE = 4;

/**
 * What the last encode() left for the caller to finish: a RIP-relative disp32 aimed at a label, and an immediate that is
 * a symbol address. Reused between calls (no allocation per instruction).
 */
export const pending = {
  ripAt: -1,
  ripLabel: null as Label | null,
  ripAddend: 0,
  ripTail: 0,
  symAt: -1,
  symRef: null as SymRef | null,
  symSize: 0,
};

export class EncodeError extends Error {
  override name = "EncodeError";
}

export function describe(mnemonic: string, ops: readonly Operand[]): string {
  const show = (o: Operand) => (typeof o === "bigint" ? (o < 0n ? `-0x${(-o).toString(16)}` : `0x${o.toString(16)}`) : String(o));
  return ops.length ? `${mnemonic} ${ops.map(show).join(", ")}` : mnemonic;
}

const TWO63 = 2 ** 63, TWO64 = 2 ** 64;
// BigInt bounds computed once: a BigInt expression allocates each time it is evaluated.
const MIN_I64N = -(1n << 63n), TWO64N = 1n << 64n, TWO53N = 2n ** 53n;

// Local copies of the operand tags (registers.ts K) and immediate kinds (forms.ts Imm): the hot path must not pay for a
// cross-module enum lookup per operand (tsx/esbuild do not inline enums across files).
const KGPR = 1, KMEM = 2, KSREG = 8, KCREG = 16, KDREG = 32, KSYM = 128;
const IB = 1, IBS = 2, UB = 3, IW = 4, UW = 5, IZ = 6, IO = 7, ONE = 8;

/** Value of an immediate as a signed integer of `osize` bytes, or NaN if it does not fit (signed or unsigned). */
function signedAs(v: number, osize: number): number {
  switch (osize) {
    case 1: return v < -128 || v > 255 ? NaN : v > 127 ? v - 256 : v;
    case 2: return v < -32768 || v > 65535 ? NaN : v > 32767 ? v - 65536 : v;
    case 4: return v < -2147483648 || v > 4294967295 ? NaN : v > 2147483647 ? v - 4294967296 : v;
    default: return v < -TWO63 || v >= TWO64 ? NaN : v >= TWO63 ? v - TWO64 : v;
  }
}

function immFits(kind: Imm, osize: number, value: number | bigint): boolean {
  let v: number;
  if (typeof value === "bigint") {
    if (value < MIN_I64N || value >= TWO64N) return false;
    const s = BigInt.asIntN(64, value);
    if (s < -TWO53N || s > TWO53N) return kind === IO;
    v = Number(osize === 8 ? s : value);
  } else {
    v = value;
    if (!Number.isInteger(v)) return false;
  }
  switch (kind) {
    case IB: return v >= -128 && v <= 255;
    case UB: return v >= 0 && v <= 255;
    case IBS: {
      const s = signedAs(v, osize);
      return s >= -128 && s <= 127;
    }
    case IW: return v >= -32768 && v <= 65535;
    case UW: return v >= 0 && v <= 65535;
    case IZ: {
      if (osize === 8) {
        const s = signedAs(v, 8);
        return s >= -2147483648 && s <= 2147483647;
      }
      return !Number.isNaN(signedAs(v, osize === 2 ? 2 : 4));
    }
    case IO: return v >= -TWO63 && v < TWO64;
    case ONE: return v === 1;
    default: return false;
  }
}

function matchOp(s: Spec, op: Operand, f: Form, ops: readonly Operand[]): boolean {
  if (typeof op === "number" || typeof op === "bigint") return s.imm !== 0 && immFits(s.imm, f.osize, op);
  switch (op.k) {
    case KGPR:
      return (s.mask & KGPR) !== 0 && s.size === op.size && (s.num < 0 || s.num === op.num) && !(s.num >= 0 && op.noRex);
    case KMEM: {
      if ((s.mask & KMEM) === 0) return false;
      if (s.moffs && (op.base || op.index || op.rip)) return false;
      if (s.size === 0) return op.size === 0 || !s.unsizedOnly;
      if (op.size === s.size) return true;
      if (op.size !== 0) return false;
      if (s.implied) return true;
      // An unsized memory operand takes the width of a register operand of the same instruction (mov [rax], ebx).
      for (const o of ops) if (typeof o === "object" && o.k === KGPR && o.size === s.size) return true;
      return false;
    }
    case KSREG:
      return (s.mask & KSREG) !== 0 && (s.num < 0 || s.num === op.num);
    case KCREG:
      return (s.mask & KCREG) !== 0;
    case KDREG:
      return (s.mask & KDREG) !== 0;
    case KSYM:
      return s.imm === IO || (s.imm === IZ && f.osize === 4);
    default:
      return false;
  }
}

const C_IMM_LOCAL = 1 << 12;
const clsOf = (o: Operand | undefined): number => (o === undefined ? 0 : typeof o === "object" ? o.cls : C_IMM_LOCAL);

/** Index 0..17 of an operand class bit (0 for no operand). */
const bitIndex = (c: number): number => (c === 0 ? 0 : 32 - Math.clz32(c));

/**
 * Whether form f accepts any operands of these classes without looking at them: registers with no fixed register number,
 * sized memory that is not a moffs, and (immKnown) an immediate whose bucket the form was already filtered for.
 * Other immediates and unsized memory always need matchOp.
 */
function alwaysMatches(f: Form, classes: readonly number[], immKnown: boolean): boolean {
  if (f.distinct) return false;
  for (let j = 0; j < f.ops.length; j++) {
    const c = classes[j]!;
    const s = f.ops[j]!;
    if (c === C_IMM_LOCAL && immKnown) continue;
    const reg = c <= 8 || c === C_SREG_BIT || c === C_CREG_BIT || c === C_DREG_BIT;
    const sizedMem = c > 0x10 && c <= 0x800;
    if (reg ? s.num >= 0 : !sizedMem || s.moffs) return false;
  }
  return true;
}
const C_SREG_BIT = 1 << 13, C_CREG_BIT = 1 << 14, C_DREG_BIT = 1 << 15;

/**
 * The forms that can match operands of classes c0..c2, computed on a cache miss. A separate function on purpose: the
 * filter closure captures the classes, and in select() that capture would make V8 allocate a context on every call.
 */
function candidates(forms: readonly Form[], n: number, c0: number, c1: number, c2: number, bucket: number): Candidates {
  const classes = [c0, c1, c2];
  const list = forms.filter((f) => {
    if (f.ops.length !== n) return false;
    const acc = f.acc;
    if (n > 0 && ((acc[0]! & c0) === 0 || (n > 1 && ((acc[1]! & c1) === 0 || (n > 2 && (acc[2]! & c2) === 0))))) return false;
    if (bucket === 0) return true;
    // The one immediate operand: every value of its bucket fits this form, or none does (see immBucket).
    for (let j = 0; j < n; j++) {
      const sp = f.ops[j]!;
      if (classes[j] === C_IMM_LOCAL && (sp.imm === 0 || !immFits(sp.imm, f.osize, BUCKET_SAMPLE[bucket]!))) return false;
    }
    return true;
  });
  return { list, sure: list.length > 0 && alwaysMatches(list[0]!, classes, bucket !== 0) ? list[0]! : null };
}

/**
 * The bucket of an immediate: a range of values inside which every immFits answer (each immediate kind at each
 * operand size) is the same, so select() can cache the forms that match per bucket as it does per operand class.
 * The bounds are those of immFits: ±128, 256, 2^15, 2^16 − 128 and 2^16 (imm8 sign-extended to 16 bits), 2^31,
 * 2^32 − 128 and 2^32; 13 is a 64-bit value beyond ±2^53 (only imm64 fits). 0: none (a non-integer, another value
 * beyond those bounds): matchOp decides.
 */
function immBucket(v: number | bigint): number {
  if (typeof v === "bigint") {
    if (v < MIN_I64N || v >= TWO64N) return 0;
    const s = BigInt.asIntN(64, v);
    return s < -TWO53N || s > TWO53N ? 13 : 0;
  }
  if (v >= 0) {
    if (v <= 127) return v === 1 ? 1 : Number.isInteger(v) ? 2 : 0;
    if (!Number.isInteger(v)) return 0;
    if (v <= 255) return 4;
    if (v <= 32767) return 6;
    if (v <= 65407) return 7;
    if (v <= 65535) return 8;
    if (v <= 0x7fffffff) return 10;
    if (v < 4294967168) return 11;
    if (v <= 4294967295) return 12;
    return 0;
  }
  if (!Number.isInteger(v)) return 0;
  if (v >= -128) return 3;
  if (v >= -32768) return 5;
  if (v >= -2147483648) return 9;
  return 0;
}
/** One value of each bucket (index 0 unused). */
const BUCKET_SAMPLE: (number | bigint)[] = [0, 1, 0, -1, 128, -129, 256, 32768, 65408, -32769, 65536, 2 ** 31, 4294967168, 2n ** 62n];

/**
 * A direct-mapped cache in front of the per-mnemonic byClass maps, shared by all mnemonics: one typed-array compare
 * per instruction instead of a Map lookup (which showed in the AOT compiler's profile).
 */
const RECENT_SLOTS = 1024;
const RECENT_KEYS = new Int32Array(RECENT_SLOTS).fill(-1);
const RECENT: (Candidates | undefined)[] = new Array<Candidates | undefined>(RECENT_SLOTS).fill(undefined);
if (FORMS.size > 1 << 10) throw new Error("encoder.ts: the form cache key holds 10 bits of mnemonic list id");

/** The first form of `forms` accepting the operands, or null. */
export function select(forms: readonly Form[], ops: readonly Operand[]): Form | null {
  const n = ops.length;
  const c0 = clsOf(ops[0]), c1 = clsOf(ops[1]), c2 = clsOf(ops[2]);
  // With exactly one immediate operand, its bucket joins the key (two immediates, as in enter, keep bucket 0).
  let bucket = 0;
  if (c0 === C_IMM_LOCAL) bucket = c1 === C_IMM_LOCAL || c2 === C_IMM_LOCAL ? 0 : immBucket(ops[0] as number | bigint);
  else if (c1 === C_IMM_LOCAL) bucket = c2 === C_IMM_LOCAL ? 0 : immBucket(ops[1] as number | bigint);
  else if (c2 === C_IMM_LOCAL) bucket = immBucket(ops[2] as number | bigint);
  const cache = (forms as FormList).byClass;
  let cands: Candidates | undefined;
  if (cache === undefined) cands = candidates(forms, n, c0, c1, c2, bucket);
  else {
    // 5 bits per class index (0..18), the arity above them and the immediate's bucket above that: a small integer key.
    const key = (bucket << 17) | (n << 15) | (bitIndex(c0) << 10) | (bitIndex(c1) << 5) | bitIndex(c2);
    // The mnemonic's list id above the 21 key bits makes the key unique across FORMS (ids stay below 2^10).
    const full = (forms[0]!.listId << 21) | key;
    const slot = (full ^ (full >>> 7) ^ (full >>> 15)) & (RECENT_SLOTS - 1);
    if (RECENT_KEYS[slot] === full) cands = RECENT[slot]!;
    else {
      cands = cache.get(key);
      if (cands === undefined) {
        cands = candidates(forms, n, c0, c1, c2, bucket);
        cache.set(key, cands);
      }
      RECENT_KEYS[slot] = full;
      RECENT[slot] = cands;
    }
  }
  if (cands.sure !== null) return cands.sure;
  const list = cands.list;
  outer: for (let i = 0; i < list.length; i++) {
    const f = list[i]!;
    if (f.distinct && ops[0] === ops[1]) continue;
    for (let j = 0; j < n; j++) if (!matchOp(f.ops[j]!, ops[j]!, f, ops)) continue outer;
    return f;
  }
  return null;
}

/** Why no form matched, in words a user can act on. */
export function explain(mnemonic: string, ops: readonly Operand[]): string {
  const forms = FORMS.get(mnemonic);
  const what = describe(mnemonic, ops);
  if (!forms) return `${what}: unknown instruction '${mnemonic}'`;
  const objs = ops.filter((o): o is Exclude<Operand, number | bigint> => typeof o === "object");
  if (objs.filter((o) => o.k === K.Mem).length > 1) return `${what}: two memory operands (memory-to-memory) cannot be encoded; load one into a register first`;
  if (!forms.some((f) => f.ops.length === ops.length)) {
    const counts = [...new Set(forms.map((f) => f.ops.length))].join(" or ");
    return `${what}: takes ${counts} operand(s), got ${ops.length}`;
  }
  const gprSizes = new Set(objs.filter((o) => o.k === K.Gpr).map((o) => (o as Gpr).size));
  const mem = objs.find((o) => o.k === K.Mem) as Mem | undefined;
  const imm = ops.find((o) => typeof o === "number" || typeof o === "bigint");
  if (mem && mem.size === 0 && gprSizes.size === 0 && forms.every((f) => f.ops.every((s) => s.size !== 0 || !(s.mask & K.Mem))))
    return `${what}: operand size unknown; write byte/word/dword/qword ptr`;
  if (imm !== undefined) {
    // Would the instruction match with a small immediate? Then this one is out of range.
    const probe = ops.map((o) => (o === imm ? 1 : o));
    if (select(forms, probe)) {
      if (typeof imm === "number" && !Number.isInteger(imm)) return `${what}: immediate ${imm} is not an integer`;
      return `${what}: immediate ${typeof imm === "bigint" ? (imm < 0n ? `-0x${(-imm).toString(16)}` : `0x${imm.toString(16)}`) : imm} does not fit the instruction's immediate field`;
    }
  }
  if (gprSizes.size > 1 || (mem && mem.size && gprSizes.size === 1 && !gprSizes.has(mem.size as 1)))
    return `${what}: operand widths differ (${objs.map((o) => ("size" in o && o.size ? `${SIZE_NAMES[o.size]}` : "?")).join(" vs ")})`;
  return `${what}: no encoding of '${mnemonic}' takes these operands`;
}

function emitImm(s: Sink, v: number | bigint, width: number): void {
  const b = s.buf;
  let p = s.pos;
  if (typeof v === "bigint") {
    // Two 32-bit halves as numbers: two BigInt operations instead of two per byte.
    let lo = Number(BigInt.asUintN(32, v));
    let hi = Number(BigInt.asUintN(32, v >> 32n));
    for (let i = 0; i < width; i++) {
      if (i < 4) {
        b[p++] = lo & 0xff;
        lo >>>= 8;
      } else {
        b[p++] = hi & 0xff;
        hi >>>= 8;
      }
    }
  } else if (width <= 4) {
    for (let i = 0; i < width; i++) {
      b[p++] = v & 0xff;
      v >>= 8;
    }
  } else {
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) >>> 0;
    b[p] = lo & 0xff; b[p + 1] = (lo >>> 8) & 0xff; b[p + 2] = (lo >>> 16) & 0xff; b[p + 3] = lo >>> 24;
    b[p + 4] = hi & 0xff; b[p + 5] = (hi >>> 8) & 0xff; b[p + 6] = (hi >>> 16) & 0xff; b[p + 7] = hi >>> 24;
    p += 8;
  }
  s.pos = p;
}

function immWidth(f: Form, spec: Spec): number {
  switch (spec.imm) {
    case IB: case IBS: case UB: return 1;
    case IW: case UW: return 2;
    case IZ: return f.osize === 2 ? 2 : 4;
    case IO: return 8;
    default: return 0;
  }
}

const SEG_PREFIX = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

/** Encodes `ops` with form `f` into `s` (checking memory operands first). `prefixes` is a set of LOCK/REP/REPNE flags. */
export function encode(s: Sink, f: Form, ops: readonly Operand[], prefixes: number): void {
  s.ensure(16);
  pending.ripAt = -1;
  pending.symAt = -1;
  let rex = f.rexW ? 8 : 0;
  let needRex = false;
  let noRex = false;
  let mem: Mem | null = null;
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!;
    if (typeof o !== "object") continue;
    if (o.k === KGPR) {
      if (o.needsRex) needRex = true;
      if (o.noRex) noRex = true;
    } else if (o.k === KMEM) {
      // Checked here, in the one pass over the operands, before any byte is written.
      if (!o.valid) checkMem(f.mnemonic, ops, o, f.ops[i]!.moffs);
      mem = o;
    }
  }
  // ModRM fields
  let reg = 0, rmReg: Gpr | null = null;
  if (f.modrm >= 0) {
    if (f.modrm === 8) {
      const r = ops[f.regOp] as Gpr | SegReg | CtrlReg | DbgReg;
      reg = r.num;
      const rm = ops[f.rmOp] as Gpr | Mem;
      if (rm.k === KGPR) rmReg = rm;
    } else if (f.modrm === 9) {
      rmReg = ops[0] as Gpr;
      reg = rmReg.num;
    } else {
      reg = f.modrm;
      const rm = ops[f.rmOp] as Gpr | Mem;
      if (rm.k === KGPR) rmReg = rm;
    }
    if (reg & 8) rex |= 4;
    if (rmReg && rmReg.num & 8) rex |= 1;
    if (mem && f.modrm >= 0 && ops[f.rmOp] === mem) {
      if (mem.base && mem.base.num & 8) rex |= 1;
      if (mem.index && mem.index.num & 8) rex |= 2;
    }
  }
  let plus = 0;
  if (f.plusR >= 0) {
    const r = ops[f.plusR] as Gpr;
    plus = r.num & 7;
    if (r.num & 8) rex |= 1;
  }
  if (rex) needRex = true;
  if (needRex && noRex) {
    throw new EncodeError(`${describe(f.mnemonic, ops)}: ah/bh/ch/dh cannot be used in an instruction that needs a REX prefix (64-bit operand, r8-r15, spl/bpl/sil/dil)`);
  }
  const b = s.buf;
  let p = s.pos;
  if (mem && mem.seg) {
    // Like GNU as, drop an override that names the default segment of the addressing form (ss for rsp/rbp bases).
    const ssBase = mem.base !== null && (mem.base.num === 4 || mem.base.num === 5);
    const dflt = ssBase ? 2 : 3;
    if (mem.seg.num !== dflt) b[p++] = SEG_PREFIX[mem.seg.num]!;
  }
  if (f.o16) b[p++] = 0x66;
  if (prefixes & REP) b[p++] = 0xf3;
  else if (prefixes & REPNE) b[p++] = 0xf2;
  if (f.mand) b[p++] = f.mand;
  if (prefixes & LOCK) b[p++] = 0xf0;
  if (needRex) b[p++] = 0x40 | rex;
  const opc = f.opcode;
  const last = opc.length - 1;
  for (let i = 0; i < last; i++) b[p++] = opc[i]!;
  b[p++] = opc[last]! + plus;
  if (f.modrm >= 0) {
    const r = reg & 7;
    if (rmReg) {
      b[p++] = 0xc0 | (r << 3) | (rmReg.num & 7);
    } else {
      const m = mem!;
      const disp = m.disp;
      if (m.rip) {
        b[p++] = (r << 3) | 5;
        if (m.label) {
          pending.ripAt = p;
          pending.ripLabel = m.label;
          pending.ripAddend = disp;
          pending.ripTail = f.immOp >= 0 ? immWidth(f, f.ops[f.immOp]!) : 0;
          b[p] = b[p + 1] = b[p + 2] = b[p + 3] = 0;
          p += 4;
        } else {
          b[p] = disp & 0xff; b[p + 1] = (disp >> 8) & 0xff; b[p + 2] = (disp >> 16) & 0xff; b[p + 3] = (disp >> 24) & 0xff;
          p += 4;
        }
      } else if (!m.base) {
        // No base: SIB with base=101 and a disp32 (absolute when there is no index either).
        b[p++] = (r << 3) | 4;
        const idx = m.index;
        if (idx && (idx.num & 15) === 4) throw new EncodeError(`${describe(f.mnemonic, ops)}: rsp cannot be an index register`);
        b[p++] = ((idx ? SCALE[m.scale]! : 0) << 6) | ((idx ? idx.num & 7 : 4) << 3) | 5;
        b[p] = disp & 0xff; b[p + 1] = (disp >> 8) & 0xff; b[p + 2] = (disp >> 16) & 0xff; b[p + 3] = (disp >> 24) & 0xff;
        p += 4;
      } else {
        const base = m.base.num & 7;
        // mod 00 with base 101 means RIP/disp32, so rbp/r13 need an explicit disp8 of 0.
        const mod = disp === 0 && base !== 5 ? 0 : disp >= -128 && disp <= 127 ? 1 : 2;
        const idx = m.index;
        if (idx || base === 4) {
          if (idx && idx.num === 4) throw new EncodeError(`${describe(f.mnemonic, ops)}: rsp cannot be an index register`);
          b[p++] = (mod << 6) | (r << 3) | 4;
          b[p++] = ((idx ? SCALE[m.scale]! : 0) << 6) | ((idx ? idx.num & 7 : 4) << 3) | base;
        } else {
          b[p++] = (mod << 6) | (r << 3) | base;
        }
        if (mod === 1) b[p++] = disp & 0xff;
        else if (mod === 2) {
          b[p] = disp & 0xff; b[p + 1] = (disp >> 8) & 0xff; b[p + 2] = (disp >> 16) & 0xff; b[p + 3] = (disp >> 24) & 0xff;
          p += 4;
        }
      }
    }
  }
  s.pos = p;
  if (f.immOp >= 0) {
    const spec = f.ops[f.immOp]!;
    const v = ops[f.immOp]!;
    const w = spec.imm === ONE ? 0 : immWidth(f, spec);
    if (typeof v === "object") {
      pending.symAt = s.pos;
      pending.symRef = v as SymRef;
      pending.symSize = w;
      s.buf.fill(0, s.pos, s.pos + w);
      s.pos += w;
    } else if (w) emitImm(s, v, w);
  } else if (f.moffsOp >= 0) {
    // moffs: the 64-bit absolute address follows the opcode.
    emitImm(s, (ops[f.moffsOp] as Mem).disp, 8);
  }
}

const SCALE: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

/** Checks that a memory operand is encodable: 64-bit base/index registers, 32-bit displacement, valid scale. */
export function checkMem(mnemonic: string, ops: readonly Operand[], m: Mem, moffs: boolean): void {
  let why = "";
  if (m.base && m.base.size !== 8) why = `base register ${m.base.name} must be 64-bit (32-bit addressing is not supported)`;
  else if (m.index && m.index.size !== 8) why = `index register ${m.index.name} must be 64-bit`;
  else if (m.index && m.index.num === 4) why = "rsp cannot be an index register";
  else if (m.scale !== 1 && m.scale !== 2 && m.scale !== 4 && m.scale !== 8) why = `scale ${m.scale} is not 1, 2, 4 or 8`;
  else if (!Number.isInteger(m.disp)) why = `displacement ${m.disp} is not an integer`;
  else if (!moffs && (m.disp < -2147483648 || m.disp > 2147483647)) why = `displacement ${m.disp} does not fit in 32 bits (signed)`;
  if (why) throw new EncodeError(`${describe(mnemonic, ops)}: ${why}`);
}

/**
 * Encodes one instruction: select + encode. `forms` is FORMS.get(mnemonic) (callers cache it). Throws an
 * EncodeError naming the instruction and its operands.
 */
export function assemble(s: Sink, forms: readonly Form[] | undefined, mnemonic: string, ops: readonly Operand[], prefixes: number): Form {
  const f = forms ? select(forms, ops) : null;
  if (!f) throw new EncodeError(explain(mnemonic, ops));
  encode(s, f, ops, prefixes);
  return f;
}

// ---- bytes the Assembler places itself: relaxed branches, call rel32, NOP padding ------------------------------------

/** Writes a little-endian 32-bit value. */
export function writeI32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >> 8) & 0xff;
  out[at + 2] = (v >> 16) & 0xff;
  out[at + 3] = (v >> 24) & 0xff;
}

/**
 * A jmp (cc = -1) or jcc at `at`: short (eb/70+cc rel8) or near (e9/0f 80+cc rel32), with displacement `rel` from the
 * end of the instruction (the Assembler's layout guarantees it fits).
 */
export function encodeBranch(out: Uint8Array, at: number, cc: number, near: boolean, rel: number): void {
  if (!near) {
    out[at] = cc < 0 ? 0xeb : 0x70 + cc;
    out[at + 1] = rel & 0xff;
  } else if (cc < 0) {
    out[at] = 0xe9;
    writeI32(out, at + 1, rel);
  } else {
    out[at] = 0x0f;
    out[at + 1] = 0x80 + cc;
    writeI32(out, at + 2, rel);
  }
}

/** `call rel32` with a zero displacement; returns the offset of the rel32 field for the caller's fixup. */
export function encodeCallRel32(s: Sink): number {
  s.ensure(8);
  s.buf[s.pos++] = 0xe8;
  const field = s.pos;
  s.buf.fill(0, field, field + 4);
  s.pos = field + 4;
  return field;
}

/** Recommended multi-byte NOP sequences (Intel SDM, "NOP" instruction), by length 1..9. */
const NOPS: number[][] = [
  [],
  [0x90],
  [0x66, 0x90],
  [0x0f, 0x1f, 0x00],
  [0x0f, 0x1f, 0x40, 0x00],
  [0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
  [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
  [0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];

export function writeNops(out: Uint8Array, at: number, n: number): void {
  while (n > 0) {
    const k = Math.min(n, 9);
    out.set(NOPS[k]!, at);
    at += k;
    n -= k;
  }
}
