// WebAssembly binary decoder: the first stage of the AOT compiler (decode → validate → compile → x64). Reads the MVP
// module sections into plain objects and leaves function bodies as byte ranges that opcodes.ts's `readInstr` walks
// instruction by instruction during validation and code generation. Structural errors name the section and byte offset.

export enum ValType {
  I32 = 0x7f,
  I64 = 0x7e,
  F32 = 0x7d,
  F64 = 0x7c,
  V128 = 0x7b,
  FuncRef = 0x70,
  ExternRef = 0x6f,
}

export function valTypeName(t: number): string {
  switch (t) {
    case ValType.I32: return "i32";
    case ValType.I64: return "i64";
    case ValType.F32: return "f32";
    case ValType.F64: return "f64";
    case ValType.V128: return "v128";
    case ValType.FuncRef: return "funcref";
    case ValType.ExternRef: return "externref";
    default: return `type 0x${t.toString(16)}`;
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

export interface Limits {
  min: number;
  max: number | null;
}

export type ImportDesc =
  | { kind: "func"; type: number }
  | { kind: "table"; elem: number; limits: Limits }
  | { kind: "memory"; limits: Limits }
  | { kind: "global"; type: number; mutable: boolean };

export interface Import {
  module: string;
  name: string;
  desc: ImportDesc;
}

/** A constant expression: the MVP forms (i32/i64.const, global.get of an import, ref.null/ref.func). */
export type ConstExpr =
  | { op: "i32.const"; value: number }
  | { op: "i64.const"; value: bigint }
  | { op: "global.get"; index: number }
  | { op: "ref.null"; type: number }
  | { op: "ref.func"; index: number }
  | { op: "float"; value: number; type: number };

export interface Global {
  type: number;
  mutable: boolean;
  init: ConstExpr;
}

export interface Export {
  name: string;
  kind: "func" | "table" | "memory" | "global";
  index: number;
}

export interface ElemSegment {
  /** Active segments are written into `table` at `offset` during instantiation; others are dropped (MVP has none). */
  mode: "active" | "passive" | "declarative";
  /** Element type: funcref (0x70) or externref (0x6f). */
  type: number;
  table: number;
  offset: ConstExpr | null;
  funcs: (number | null)[];
}

export interface DataSegment {
  mode: "active" | "passive";
  memory: number;
  offset: ConstExpr | null;
  bytes: Uint8Array;
}

export interface FuncBody {
  /** Declared locals after the parameters, expanded (one entry per local). */
  locals: number[];
  /** Byte range of the instruction sequence (after the local declarations) in `Module.bytes`. */
  start: number;
  end: number;
}

export interface Module {
  bytes: Uint8Array;
  types: FuncType[];
  imports: Import[];
  /** Type index of each defined (non-imported) function. */
  funcs: number[];
  tables: { elem: number; limits: Limits }[];
  memories: Limits[];
  globals: Global[];
  exports: Export[];
  start: number | null;
  elems: ElemSegment[];
  datas: DataSegment[];
  bodies: FuncBody[];
  /** Function names from the "name" custom section, by function index (imports included). */
  names: Map<number, string>;
  // Derived index spaces: imports come first in each.
  numImportedFuncs: number;
  numImportedGlobals: number;
  /** The data count section's value, or null without one. */
  dataCount: number | null;
}

export class DecodeError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`wasm decode error at byte 0x${offset.toString(16)}: ${message}`);
    this.name = "DecodeError";
  }
}

/** The module is invalid (fails validation), or malformed in a way found after decoding. validate.ts re-exports it. */
export class CompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompileError";
  }
}

/** The module uses something outside the accepted subset (floats, SIMD, bulk memory, multiple results ...). */
export class UnsupportedError extends CompileError {
  /** The feature (proposal or limit) the construct belongs to: "floats", "reference types", "bulk memory" ... */
  readonly feature: string;
  constructor(readonly func: string, readonly instruction: string, offset: number) {
    const feature = featureOf(instruction);
    super(`${func}: unsupported instruction \`${instruction}\` at byte 0x${offset.toString(16)} (${feature}: not supported by the AOT backend; see toolchain/aot/ABI.md)`);
    this.name = "UnsupportedError";
    this.feature = feature;
  }
}

/** The WebAssembly feature an unsupported instruction or construct belongs to (ABI.md's list). */
export function featureOf(what: string): string {
  if (/f32|f64|float/.test(what)) return "floats";
  if (/v128|SIMD/.test(what)) return "SIMD";
  if (/return_call/.test(what)) return "tail calls";
  if (/atomic/.test(what)) return "threads/atomics";
  if (/memory\.(init|copy|fill)|data\.drop|passive data/.test(what)) return "bulk memory";
  if (/reference types|externref|funcref|ref\.|table\.|elem\.drop|non-funcref|imported table|multiple tables|table other than 0/.test(what)) return "reference types";
  if (/multiple results/.test(what)) return "multi-value";
  if (/^(try|catch|throw|rethrow|throw_ref|delegate|catch_all)$/.test(what)) return "exception handling";
  if (/imported mutable global/.test(what)) return "imported mutable globals";
  if (/global\.get offset/.test(what)) return "segment offsets from imported globals";
  if (/if with block parameters/.test(what)) return "if with block parameters";
  if (/more than 6 parameters/.test(what)) return "imports with more than 6 parameters";
  if (/locals \(implementation limit/.test(what)) return "more than 50000 locals";
  if (/hw\./.test(what)) return "hw intrinsics";
  return what;
}

/** A cursor over wasm bytes with LEB128 readers. Shared by the section decoder and the opcode reader. */
export class Reader {
  constructor(readonly bytes: Uint8Array, public pos = 0, public end = bytes.length) {}

  fail(msg: string, at = this.pos): never {
    throw new DecodeError(msg, at);
  }
  get done(): boolean {
    return this.pos >= this.end;
  }
  u8(): number {
    if (this.pos >= this.end) this.fail("unexpected end of section or function");
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    // One-byte encodings (values below 128: local indices, depths, offsets) without the loop; this runs per immediate.
    const p = this.pos;
    if (p < this.end) {
      const b = this.bytes[p]!;
      if (b < 0x80) {
        this.pos = p + 1;
        return b;
      }
    }
    return this.u32Slow();
  }
  private u32Slow(): number {
    let result = 0;
    let shift = 0;
    const at = this.pos;
    for (;;) {
      const b = this.u8();
      if (shift === 28 && (b & 0x70) !== 0) this.fail("integer too large (u32 LEB128 out of range)", at);
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 28) this.fail("integer representation too long (u32 LEB128)", at);
    }
  }
  s32(): number {
    // One-byte encodings (−64..63) first, then in doubles (exact below 2^53), not BigInt: this runs per i32.const.
    const p = this.pos;
    if (p < this.end) {
      const b = this.bytes[p]!;
      if (b < 0x80) {
        this.pos = p + 1;
        return b & 0x40 ? b - 0x80 : b;
      }
    }
    const at = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) {
        if (i === 4) {
          const hi = (b >> 3) & 0xf;
          if (hi !== 0 && hi !== 0xf) this.fail("integer too large (s32 LEB128 out of range)", at);
        }
        if (b & 0x40) result -= mul;
        return result | 0;
      }
    }
    return this.fail("integer representation too long (s32 LEB128)", at);
  }
  s64(): bigint {
    // Fast path in doubles (exact below 2^53) for encodings of up to 7 bytes (49 bits): nearly every i64.const.
    const start = this.pos;
    const n = Math.min(7, this.end - start);
    let v = 0;
    let mul = 1;
    for (let i = 0; i < n; i++) {
      const byte = this.bytes[start + i]!;
      v += (byte & 0x7f) * mul;
      mul *= 128;
      if ((byte & 0x80) === 0) {
        this.pos = start + i + 1;
        return BigInt(byte & 0x40 ? v - mul : v);
      }
    }
    return this.s64Slow();
  }
  private s64Slow(): bigint {
    // Longer encodings: bits 0–48 and 49–69 in two doubles (both exact), joined by one BigInt step.
    const at = this.pos;
    let lo = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      const b = this.u8();
      lo += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return BigInt(b & 0x40 ? lo - mul : lo);
    }
    let hi = 0;
    let hmul = 1;
    let shift = 49;
    let b: number;
    do {
      b = this.u8();
      hi += (b & 0x7f) * hmul;
      hmul *= 128;
      shift += 7;
      if (shift > 70) this.fail("integer representation too long (s64 LEB128)", at);
    } while (b & 0x80);
    if (shift === 70) {
      const top = b & 0x7f;
      if (top !== 0 && top !== 0x7f) this.fail("integer too large (s64 LEB128 out of range)", at);
    }
    let result = BigInt(lo) + (BigInt(hi) << 49n);
    if (b & 0x40 && shift < 70) result -= 1n << BigInt(shift);
    return BigInt.asIntN(64, result);
  }
  /** s33 block type: a value type byte, 0x40, or a non-negative type index. */
  blockType(): number {
    const b = this.bytes[this.pos];
    if (b === 0x40 || b === 0x7f || b === 0x7e || b === 0x7d || b === 0x7c || b === 0x7b || b === 0x70 || b === 0x6f) {
      this.pos++;
      return -b;
    }
    const at = this.pos;
    const v = this.s64();
    if (v < 0n) this.fail("invalid block type", at);
    return Number(v);
  }
  u32le(): number {
    const b = this.take(4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.end) this.fail(`unexpected end (length out of bounds: need ${n} bytes, ${this.end - this.pos} left)`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  name(): string {
    const n = this.u32();
    const at = this.pos;
    try {
      // ignoreBOM: a leading U+FEFF is part of the name (names.wast exports one), not a byte-order mark to strip.
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(this.take(n));
    } catch (e) {
      if (e instanceof DecodeError) throw e;
      return this.fail("malformed UTF-8 encoding: name is not valid UTF-8", at);
    }
  }
  /** A reference type (table element types, ref.null, typed element segments). */
  refType(): number {
    const at = this.pos;
    const t = this.u8();
    if (t !== 0x70 && t !== 0x6f) this.fail(`malformed reference type 0x${t.toString(16)}`, at);
    return t;
  }
  valType(): number {
    const at = this.pos;
    const t = this.u8();
    if (!(t === 0x7f || t === 0x7e || t === 0x7d || t === 0x7c || t === 0x7b || t === 0x70 || t === 0x6f)) this.fail(`malformed value type: unknown value type 0x${t.toString(16)}`, at);
    return t;
  }
  limits(): Limits {
    const at = this.pos;
    const flag = this.u8();
    if (flag >= 0x80) this.fail(`integer representation too long: limits flag 0x${flag.toString(16)}`, at);
    if (flag > 1) this.fail(`integer too large: limits flag 0x${flag.toString(16)} (shared and 64-bit memories are not wasm 2.0)`, at);
    const min = this.u32();
    const max = flag === 1 ? this.u32() : null;
    return { min, max };
  }
  constExpr(): ConstExpr {
    const at = this.pos;
    const op = this.u8();
    let e: ConstExpr;
    switch (op) {
      case 0x41: e = { op: "i32.const", value: this.s32() }; break;
      case 0x42: e = { op: "i64.const", value: this.s64() }; break;
      case 0x43: this.take(4); e = { op: "float", value: 0, type: ValType.F32 }; break;
      case 0x44: this.take(8); e = { op: "float", value: 0, type: ValType.F64 }; break;
      case 0x23: e = { op: "global.get", index: this.u32() }; break;
      case 0xd0: e = { op: "ref.null", type: this.refType() }; break;
      case 0xd2: e = { op: "ref.func", index: this.u32() }; break;
      // An empty expression leaves no value: a type mismatch. Any other instruction (even a valid one such as
      // i32.add) makes the expression non-constant; a byte that is no instruction at all is malformed.
      case 0x0b: throw new CompileError(`type mismatch: empty constant expression at byte 0x${at.toString(16)}`);
      default:
        if (op > 0xd2 && op < 0xfc) this.fail(`illegal opcode 0x${op.toString(16)}`, at);
        throw new CompileError(`constant expression required (opcode 0x${op.toString(16)} at byte 0x${at.toString(16)})`);
    }
    if (this.pos >= this.end) this.fail("unexpected end of section or function: constant expression without `end`", at);
    if (this.u8() !== 0x0b) throw new CompileError(`constant expression required (more than one instruction at byte 0x${at.toString(16)}; type mismatch)`);
    return e;
  }
}

const SECTION_NAMES = ["custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "datacount"];

/** Decodes a whole module. Throws DecodeError naming the offending byte on malformed input. */
export function decodeModule(bytes: Uint8Array): Module {
  const r = new Reader(bytes);
  if (bytes.length < 4) r.fail("unexpected end: no magic header", 0);
  if (r.u32le() !== 0x6d736100) r.fail("magic header not detected (not a WebAssembly module)", 0);
  if (bytes.length < 8) r.fail("unexpected end: no version", 4);
  if (r.u32le() !== 1) r.fail("unknown binary version (expected 1)", 4);
  const m: Module = {
    bytes, types: [], imports: [], funcs: [], tables: [], memories: [], globals: [], exports: [], start: null, elems: [],
    datas: [], bodies: [], names: new Map(), numImportedFuncs: 0, numImportedGlobals: 0, dataCount: null,
  };
  let lastId = 0;
  const order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11];
  while (!r.done) {
    const idAt = r.pos;
    const id = r.u8();
    const size = r.u32();
    const end = r.pos + size;
    if (id > 12) r.fail(`malformed section id ${id}`, idAt);
    if (end > bytes.length) r.fail(`unexpected end: section ${SECTION_NAMES[id] ?? id} runs past the end of the module (length out of bounds)`, idAt);
    const s = new Reader(bytes, r.pos, end);
    if (id !== 0) {
      if (order.indexOf(id) <= order.indexOf(lastId)) r.fail(`unexpected content after last section: section ${SECTION_NAMES[id]} out of order or repeated (junk after last section)`, idAt);
      lastId = id;
    }
    decodeSection(m, id, s);
    if (s.pos !== end) s.fail(`section size mismatch: section ${SECTION_NAMES[id]} has ${end - s.pos} trailing bytes`);
    r.pos = end;
  }
  if (m.funcs.length !== m.bodies.length) {
    throw new DecodeError(`function and code section have inconsistent lengths: function section declares ${m.funcs.length} functions, code section has ${m.bodies.length}`, bytes.length);
  }
  if (m.dataCount !== null && m.dataCount !== m.datas.length) {
    throw new DecodeError(`data count and data section have inconsistent lengths: data count ${m.dataCount}, data section ${m.datas.length}`, bytes.length);
  }
  return m;
}

function vec<T>(r: Reader, f: (i: number) => T): T[] {
  const n = r.u32();
  if (n > r.end - r.pos) r.fail(`unexpected end of section or function: vector length ${n} exceeds the section (length out of bounds)`);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(f(i));
  return out;
}

function decodeSection(m: Module, id: number, r: Reader): void {
  switch (id) {
    case 0: {
      const name = r.name();
      if (name === "name") {
        try {
          decodeNames(m, r);
        } catch {
          // The name section is advisory; a malformed one is ignored, as engines do.
        }
      }
      r.pos = r.end;
      return;
    }
    case 1:
      m.types = vec(r, () => {
        const at = r.pos;
        if (r.u8() !== 0x60) r.fail("integer representation too long / malformed type: expected function type (0x60)", at);
        return { params: vec(r, () => r.valType()), results: vec(r, () => r.valType()) };
      });
      return;
    case 2:
      m.imports = vec(r, () => {
        const module = r.name();
        const name = r.name();
        const at = r.pos;
        const kind = r.u8();
        let desc: ImportDesc;
        if (kind === 0) {
          desc = { kind: "func", type: r.u32() };
          m.numImportedFuncs++;
        } else if (kind === 1) desc = { kind: "table", elem: r.refType(), limits: r.limits() };
        else if (kind === 2) desc = { kind: "memory", limits: r.limits() };
        else if (kind === 3) {
          const type = r.valType();
          const mAt = r.pos;
          const mut = r.u8();
          if (mut > 1) r.fail("malformed mutability", mAt);
          desc = { kind: "global", type, mutable: mut === 1 };
          m.numImportedGlobals++;
        } else r.fail(`malformed import kind ${kind}`, at);
        return { module, name, desc };
      });
      return;
    case 3:
      m.funcs = vec(r, () => r.u32());
      return;
    case 4:
      m.tables = vec(r, () => ({ elem: r.refType(), limits: r.limits() }));
      return;
    case 5:
      m.memories = vec(r, () => r.limits());
      return;
    case 6:
      m.globals = vec(r, () => {
        const type = r.valType();
        const at = r.pos;
        const mut = r.u8();
        if (mut > 1) r.fail("malformed mutability", at);
        return { type, mutable: mut === 1, init: r.constExpr() };
      });
      return;
    case 7:
      m.exports = vec(r, () => {
        const name = r.name();
        const at = r.pos;
        const k = r.u8();
        const kind = (["func", "table", "memory", "global"] as const)[k];
        if (!kind) r.fail(`malformed export kind ${k}`, at);
        return { name, kind, index: r.u32() };
      });
      return;
    case 8:
      m.start = r.u32();
      return;
    case 9:
      m.elems = vec(r, () => decodeElem(r));
      return;
    case 10:
      m.bodies = vec(r, (i) => {
        const size = r.u32();
        const end = r.pos + size;
        if (end > r.end) r.fail("unexpected end of section or function: function body runs past the code section");
        const b = new Reader(r.bytes, r.pos, end);
        const locals: number[] = [];
        const groups = vec(b, () => [b.u32(), b.valType()] as const);
        // The specification allows up to 2^32 − 1 locals; beyond that the module is malformed, below it large counts
        // are an implementation limit of this compiler (frame slots).
        const total = groups.reduce((n, g) => n + g[0], 0);
        if (total > 0xffffffff) b.fail("too many locals");
        if (total > 50000) throw new UnsupportedError(`func ${m.numImportedFuncs + i}`, `${total} locals (implementation limit 50000)`, b.pos);
        for (const [n, t] of groups) for (let k = 0; k < n; k++) locals.push(t);
        r.pos = b.pos;
        const body = { locals, start: r.pos, end };
        r.pos = end;
        return body;
      });
      return;
    case 11:
      m.datas = vec(r, () => {
        const at = r.pos;
        const flag = r.u32();
        if (flag === 0) return { mode: "active" as const, memory: 0, offset: r.constExpr(), bytes: r.take(r.u32()) };
        if (flag === 1) return { mode: "passive" as const, memory: 0, offset: null, bytes: r.take(r.u32()) };
        // Flag 2 names the memory explicitly (index 0 in wasm 2.0; validation rejects others).
        if (flag === 2) {
          const memory = r.u32();
          return { mode: "active" as const, memory, offset: r.constExpr(), bytes: r.take(r.u32()) };
        }
        return r.fail(`malformed data segment flag ${flag}`, at);
      });
      return;
    case 12:
      m.dataCount = r.u32();
      return;
  }
}

function decodeElem(r: Reader): ElemSegment {
  const at = r.pos;
  const flag = r.u32();
  const funcIdx = (): (number | null)[] => vec(r, () => r.u32());
  let type = 0x70;
  const elemKind = (): void => {
    const k = r.pos;
    if (r.u8() !== 0x00) r.fail("malformed element kind", k);
  };
  const exprs = (): (number | null)[] =>
    vec(r, () => {
      const e = r.constExpr();
      if (e.op === "ref.func") {
        if (type !== 0x70) throw new CompileError("type mismatch: ref.func in an externref element segment");
        return e.index;
      }
      if (e.op === "ref.null") {
        if (e.type !== type) throw new CompileError("type mismatch: ref.null of another reference type in an element segment");
        return null;
      }
      if (e.op === "global.get") throw new UnsupportedError("element segment", "global.get element expression (reference types)", r.pos);
      throw new CompileError("type mismatch: element expression must be ref.func, ref.null or global.get");
    });
  switch (flag) {
    case 0: return { mode: "active", type, table: 0, offset: r.constExpr(), funcs: funcIdx() };
    case 1: elemKind(); return { mode: "passive", type, table: 0, offset: null, funcs: funcIdx() };
    case 2: { const table = r.u32(); const offset = r.constExpr(); elemKind(); return { mode: "active", type, table, offset, funcs: funcIdx() }; }
    case 3: elemKind(); return { mode: "declarative", type, table: 0, offset: null, funcs: funcIdx() };
    case 4: { const offset = r.constExpr(); return { mode: "active", type, table: 0, offset, funcs: exprs() }; }
    case 5: type = r.refType(); return { mode: "passive", type, table: 0, offset: null, funcs: exprs() };
    case 6: { const table = r.u32(); const offset = r.constExpr(); type = r.refType(); return { mode: "active", type, table, offset, funcs: exprs() }; }
    case 7: type = r.refType(); return { mode: "declarative", type, table: 0, offset: null, funcs: exprs() };
    default: return r.fail(`malformed elements segment kind (flag ${flag})`, at);
  }
}

function decodeNames(m: Module, r: Reader): void {
  while (!r.done) {
    const id = r.u8();
    const size = r.u32();
    const end = r.pos + size;
    if (id === 1) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const idx = r.u32();
        m.names.set(idx, r.name());
      }
    }
    r.pos = end;
  }
}

/** The signature of function `index` (imports first). */
export function funcType(m: Module, index: number): FuncType {
  let t: number | undefined;
  if (index < m.numImportedFuncs) {
    let k = 0;
    for (const imp of m.imports) {
      if (imp.desc.kind !== "func") continue;
      if (k++ === index) t = imp.desc.type;
    }
  } else t = m.funcs[index - m.numImportedFuncs];
  const ft = t === undefined ? undefined : m.types[t];
  if (!ft) throw new DecodeError(`function index ${index} or its type index is out of range`, 0);
  return ft;
}

/** A readable name for function `index`: its export or name-section name, else `func[N]`. */
export function funcName(m: Module, index: number): string {
  const n = m.names.get(index);
  if (n) return `${n} (func ${index})`;
  const e = m.exports.find((x) => x.kind === "func" && x.index === index);
  if (e) return `"${e.name}" (func ${index})`;
  if (index < m.numImportedFuncs) {
    const imp = m.imports.filter((i) => i.desc.kind === "func")[index];
    if (imp) return `${imp.module}.${imp.name} (func ${index})`;
  }
  return `func ${index}`;
}
