// Validation and the accepted-subset check, the stage between decode.ts and the code generator. Type-checks every
// function body (operand stack, control frames, branch arities) for the integer subset the backend compiles and
// rejects anything else with an error naming the function and the instruction. Also measures each function's
// maximum operand-stack depth, which fixes its frame size before code generation starts, and records the decoded
// instructions (opcodes.ts InstrStream) so that the code generator does not decode them again.
import { CompileError, type ConstExpr, DecodeError, type FuncType, type Limits, type Module, Reader, UnsupportedError, ValType as ValTypeEnum, funcName, funcType, valTypeName } from "./decode.ts";
import {
  type InstrStream, MEMORY_BY_OP as MEMORY_BY_OP_, NUMERIC_BY_OP as NUMERIC_BY_OP_, Op as OpEnum, newInstr, opName, readInstr as readInstr_,
} from "./opcodes.ts";

// Hot imports aliased to module-local constants: when tsx loads this file as CommonJS (required from a script outside
// this ESM package), every use of an imported binding is an export-getter call (~15% of compile time by --cpu-prof);
// loaded as ESM (npm run bench, uvt) the alias costs nothing either way.
const Op = OpEnum;
const ValType = ValTypeEnum;
const MEMORY_BY_OP = MEMORY_BY_OP_;
const NUMERIC_BY_OP = NUMERIC_BY_OP_;
const readInstr = readInstr_;

// The error classes live in decode.ts (the decoder raises them too); re-exported here, where callers have always found them.
export { CompileError, UnsupportedError };

export interface FuncInfo {
  /** Maximum operand-stack depth, counting values of all enclosing blocks. */
  maxStack: number;
  /** local.get/set/tee count per local, uses inside loops weighted by 8 per nesting level (register pinning). */
  localWeights: Float64Array;
  /** Whether each local is ever written (local.set/tee): unwritten pinned locals need no save around calls. */
  localWritten: Uint8Array;
  /** The body's instructions in the InstrStream given to validateModule: first index and count (−1, 0: none). */
  first: number;
  count: number;
}

const isInt = (t: number): boolean => t === ValType.I32 || t === ValType.I64;

const F32 = ValTypeEnum.F32, F64 = ValTypeEnum.F64, I32 = ValTypeEnum.I32, I64 = ValTypeEnum.I64;
/** Float operators (valid, refused by the backend after type checking): opcode → [operand types, result type]. */
const FLOAT_NUMERIC: (readonly [readonly number[], number] | undefined)[] = [];
const fnum = (lo: number, hi: number, ops: number[], res: number): void => {
  for (let o = lo; o <= hi; o++) FLOAT_NUMERIC[o] = [ops, res];
};
fnum(0x5b, 0x60, [F32, F32], I32);
fnum(0x61, 0x66, [F64, F64], I32);
fnum(0x8b, 0x91, [F32], F32);
fnum(0x92, 0x98, [F32, F32], F32);
fnum(0x99, 0x9f, [F64], F64);
fnum(0xa0, 0xa6, [F64, F64], F64);
fnum(0xa8, 0xa9, [F32], I32);
fnum(0xaa, 0xab, [F64], I32);
fnum(0xae, 0xaf, [F32], I64);
fnum(0xb0, 0xb1, [F64], I64);
fnum(0xb2, 0xb3, [I32], F32);
fnum(0xb4, 0xb5, [I64], F32);
fnum(0xb6, 0xb6, [F64], F32);
fnum(0xb7, 0xb8, [I32], F64);
fnum(0xb9, 0xba, [I64], F64);
fnum(0xbb, 0xbb, [F32], F64);
fnum(0xbc, 0xbc, [F32], I32);
fnum(0xbd, 0xbd, [F64], I64);
fnum(0xbe, 0xbe, [I32], F32);
fnum(0xbf, 0xbf, [I64], F64);
/** The saturating truncations 0xfc 0..7. */
const TRUNC_SAT: (readonly [readonly number[], number])[] = [
  [[F32], I32], [[F32], I32], [[F64], I32], [[F64], I32], [[F32], I64], [[F32], I64], [[F64], I64], [[F64], I64],
];
const FLOAT_MEMORY = new Map<number, { size: number; type: number; store: boolean }>([
  [0x2a, { size: 4, type: F32, store: false }], [0x2b, { size: 8, type: F64, store: false }],
  [0x38, { size: 4, type: F32, store: true }], [0x39, { size: 8, type: F64, store: true }],
]);

/** Signatures of the value-type block types (immediate −0x40 is empty, −t has the single result t), shared. */
const SHORT_BLOCK_SIGS: FuncType[] = [];
for (let t = 0; t <= 0x7f; t++) SHORT_BLOCK_SIGS.push(Object.freeze({ params: [], results: t === 0x40 ? [] : [t] }));

/** Resolves a block type immediate into params/results (the caller must not modify them). */
export function blockSig(m: Module, bt: number): FuncType {
  if (bt < 0 && bt >= -0x7f) return SHORT_BLOCK_SIGS[-bt]!;
  const t = m.types[bt];
  if (!t) throw new CompileError(`unknown type ${bt} (block type index out of range)`);
  return t;
}

/**
 * Checks module-level structure against the subset; throws CompileError/UnsupportedError. With a stream, every body's
 * decoded instructions are recorded in it for the code generator (FuncInfo.first/count).
 */
export function validateModule(m: Module, stream: InstrStream | null = null): FuncInfo[] {
  // Validity first, for the whole module (an invalid module is reported as invalid even when it also uses an
  // unsupported feature), then the accepted subset: the body validator type-checks every wasm 2.0 instruction and
  // only records the first one it refuses.
  validateStructure(m);
  // One validator for every body: its stack and frames are reused.
  const v = new FunctionValidator(m, stream);
  const infos = m.bodies.map((_, i) => v.run(m.numImportedFuncs + i));
  checkSubset(m);
  if (v.refused) throw v.refused;
  return infos;
}

const PAGES_4GIB = 65536;

function checkLimits(what: string, l: Limits, memory: boolean): void {
  if (memory && (l.min > PAGES_4GIB || (l.max !== null && l.max > PAGES_4GIB))) {
    throw new CompileError(`${what}: memory size must be at most 65536 pages (4GiB) (min ${l.min}, max ${l.max ?? "none"})`);
  }
  if (l.max !== null && l.max < l.min) throw new CompileError(`${what}: size minimum must not be greater than maximum (min ${l.min}, max ${l.max})`);
}

/**
 * The specification's module-level validity rules (wasm 2.0) for everything outside function bodies, independent of
 * what this compiler supports: an invalid module is reported as invalid (CompileError, with the specification's
 * wording), never as unsupported.
 */
function validateStructure(m: Module): void {
  const importedGlobals: { type: number; mutable: boolean }[] = [];
  let tables = 0;
  let memories = 0;
  const tableTypes: number[] = [];
  for (const imp of m.imports) {
    const what = `import ${imp.module}.${imp.name}`;
    const d = imp.desc;
    if (d.kind === "func" && !m.types[d.type]) throw new CompileError(`${what}: unknown type ${d.type}`);
    if (d.kind === "table") {
      checkLimits(what, d.limits, false);
      tables++;
      tableTypes.push(d.elem);
    }
    if (d.kind === "memory") {
      checkLimits(what, d.limits, true);
      memories++;
    }
    if (d.kind === "global") importedGlobals.push({ type: d.type, mutable: d.mutable });
  }
  for (const [i, t] of m.funcs.entries()) if (!m.types[t]) throw new CompileError(`func ${m.numImportedFuncs + i}: unknown type ${t}`);
  for (const t of m.tables) {
    checkLimits("table", t.limits, false);
    tables++;
    tableTypes.push(t.elem);
  }
  for (const l of m.memories) {
    checkLimits("memory", l, true);
    memories++;
  }
  if (memories > 1) throw new CompileError(`multiple memories (${memories}; wasm 2.0 allows one)`);
  const nf = m.numImportedFuncs + m.funcs.length;
  const nglobals = importedGlobals.length + m.globals.length;
  /** Checks a constant expression's type; global.get may read imported immutable globals only. */
  const constExpr = (what: string, e: ConstExpr, want: number): void => {
    let t: number;
    switch (e.op) {
      case "i32.const": t = ValType.I32; break;
      case "i64.const": t = ValType.I64; break;
      case "float": t = e.type; break;
      case "ref.null": t = e.type; break;
      case "ref.func":
        if (e.index >= nf) throw new CompileError(`${what}: unknown function ${e.index}`);
        t = ValType.FuncRef;
        break;
      case "global.get": {
        if (e.index >= nglobals) throw new CompileError(`${what}: unknown global ${e.index}`);
        const g = importedGlobals[e.index];
        if (!g) throw new CompileError(`${what}: unknown global ${e.index} (constant expressions read imported globals only)`);
        if (g.mutable) throw new CompileError(`${what}: constant expression required (global ${e.index} is mutable)`);
        t = g.type;
        break;
      }
    }
    if (t !== want) throw new CompileError(`${what}: type mismatch (constant expression of ${valTypeName(t)}, expected ${valTypeName(want)})`);
  };
  for (const [i, g] of m.globals.entries()) constExpr(`global ${importedGlobals.length + i}`, g.init, g.type);
  const names = new Set<string>();
  for (const e of m.exports) {
    if (names.has(e.name)) throw new CompileError(`duplicate export name "${e.name}"`);
    names.add(e.name);
    const limit = e.kind === "func" ? nf : e.kind === "global" ? nglobals : e.kind === "table" ? tables : memories;
    if (e.index >= limit) throw new CompileError(`export "${e.name}": unknown ${e.kind === "func" ? "function" : e.kind} ${e.index}`);
  }
  if (m.start !== null) {
    if (m.start >= nf) throw new CompileError(`unknown function ${m.start} (start)`);
    const t = funcType(m, m.start);
    if (t.params.length || t.results.length) throw new CompileError("start function must take and return nothing (type mismatch)");
  }
  for (const [i, e] of m.elems.entries()) {
    const what = `element segment ${i}`;
    for (const f of e.funcs) if (f !== null && f >= nf) throw new CompileError(`${what}: unknown function ${f}`);
    if (e.mode !== "active") continue;
    if (e.table >= tables) throw new CompileError(`${what}: unknown table ${e.table}`);
    constExpr(what, e.offset!, ValType.I32);
    if (tableTypes[e.table] !== e.type) throw new CompileError(`${what}: type mismatch (${valTypeName(e.type)} elements, ${valTypeName(tableTypes[e.table]!)} table)`);
  }
  for (const [i, d] of m.datas.entries()) {
    if (d.mode !== "active") continue;
    if (d.memory >= memories) throw new CompileError(`data segment ${i}: unknown memory ${d.memory}`);
    constExpr(`data segment ${i}`, d.offset!, ValType.I32);
  }
}

/** Valid modules this compiler refuses: UnsupportedError naming the feature. */
function checkSubset(m: Module): void {
  const where = (what: string): string => `module ${what}`;
  for (const [i, t] of m.types.entries()) {
    for (const v of [...t.params, ...t.results]) {
      if (!isInt(v)) throw new UnsupportedError(where(`type ${i}`), `${valTypeName(v)} value type`, 0);
    }
  }
  for (const imp of m.imports) {
    if (imp.desc.kind === "table") throw new UnsupportedError(where(`import ${imp.module}.${imp.name}`), "imported table", 0);
    if (imp.desc.kind === "global") {
      if (!isInt(imp.desc.type)) throw new UnsupportedError(where(`import ${imp.module}.${imp.name}`), `${valTypeName(imp.desc.type)} global`, 0);
    }
    if (imp.desc.kind === "func") {
      const t = m.types[imp.desc.type]!;
      if (t.results.length > 1 || t.params.length > 6) {
        throw new UnsupportedError(where(`import ${imp.module}.${imp.name}`), "import with more than 6 parameters or more than one result", 0);
      }
    }
  }
  if (m.tables.length > 1) throw new UnsupportedError(where("tables"), "multiple tables (reference types)", 0);
  for (const t of m.tables) if (t.elem !== ValType.FuncRef) throw new UnsupportedError(where("table"), "non-funcref table", 0);
  for (const [i, g] of m.globals.entries()) {
    if (!isInt(g.type)) throw new UnsupportedError(where(`global ${i}`), `${valTypeName(g.type)} global`, 0);
    // global.get initialisers name imported immutable globals (validated), whose values the embedder binds.
    if (g.init.op !== "i32.const" && g.init.op !== "i64.const" && g.init.op !== "global.get") throw new UnsupportedError(where(`global ${i}`), `${g.init.op} initializer`, 0);
  }
  for (const e of m.elems) {
    // Passive and declarative segments only matter to table.init and ref.func, which are refused themselves.
    if (e.mode !== "active") continue;
    if (e.offset?.op !== "i32.const" && e.offset?.op !== "global.get") throw new UnsupportedError(where("element segment"), `${e.offset?.op ?? "missing"} offset`, 0);
  }
  for (const d of m.datas) {
    if (d.mode !== "active") throw new UnsupportedError(where("data segment"), "passive data segment (bulk memory)", 0);
    if (d.offset?.op !== "i32.const" && d.offset?.op !== "global.get") throw new UnsupportedError(where("data segment"), `${d.offset?.op ?? "missing"} offset`, 0);
  }
}

/** A control frame. Frames are reused by depth (one validator runs per function), so they are mutable. */
interface Frame {
  op: number;
  params: readonly number[];
  results: readonly number[];
  height: number;
  unreachable: boolean;
}

const NO_TYPES: readonly number[] = [];

/** Type-checks one defined function and returns its maximum stack depth. */
export function validateFunction(m: Module, index: number, stream: InstrStream | null = null): FuncInfo {
  const v = new FunctionValidator(m, stream);
  const info = v.run(index);
  if (v.refused) throw v.refused;
  return info;
}

/**
 * Validates a module's functions one after another, reusing its stack and frames. A class rather than closures over
 * locals: tsx compiles with esbuild's keepNames, which names every closure through Object.defineProperty when it is
 * created, and closures would be created per function.
 */
class FunctionValidator {
  /** The function being validated (set by run). */
  private index = 0;
  private readonly r: Reader;
  private readonly ins = newInstr();
  /** Operand types, valid below sp (0: unknown, from unreachable code); the array only grows. */
  private readonly stack: number[] = [];
  private sp = 0;
  private max = 0;
  private readonly frames: Frame[] = [];
  /** Number of open frames (frames[fp - 1] is the innermost). */
  private fp = 0;

  /** The first valid-but-unsupported construct met (thrown by validateModule once the whole module validated). */
  refused: UnsupportedError | null = null;
  private readonly importedGlobals: { type: number; mutable: boolean }[] = [];
  /** Element types of the tables, imports first. */
  private readonly tableTypes: number[];
  /** Functions a ref.func may name (element segments, exports, global initialisers: the spec's C.refs). */
  private declared: Set<number> | null = null;

  constructor(private readonly m: Module, private readonly stream: InstrStream | null) {
    this.r = new Reader(m.bytes, 0, 0);
    this.tableTypes = [];
    for (const i of m.imports) if (i.desc.kind === "table") this.tableTypes.push(i.desc.elem);
    for (const i of m.imports) if (i.desc.kind === "global") this.importedGlobals.push({ type: i.desc.type, mutable: i.desc.mutable });
    for (const t of m.tables) this.tableTypes.push(t.elem);
  }

  private refuse(what: string, at: number): void {
    this.refused ??= new UnsupportedError(this.name(), what, at);
  }

  private tableType(x: number): number {
    const t = this.tableTypes[x];
    if (t === undefined) return this.bad(`unknown table ${x}`);
    return t;
  }

  private memoryCount(): number {
    return this.m.memories.length + this.m.imports.filter((i) => i.desc.kind === "memory").length;
  }

  private zeroByte(): void {
    const at = this.r.pos;
    if (this.r.u8() !== 0) throw new DecodeError("zero byte expected (memory index 0)", at);
  }

  /**
   * Valid wasm 2.0 instructions outside the accepted subset (floats, reference types, bulk memory, tail calls):
   * type-checked like the rest, then refused. Returns false for opcodes it does not know.
   */
  private extended(op: number, at: number, results: readonly number[]): boolean {
    const r = this.r;
    const fl = op < 256 ? FLOAT_NUMERIC[op] : op >= 0xfc00 && op <= 0xfc07 ? TRUNC_SAT[op - 0xfc00] : undefined;
    if (fl) {
      this.popAll(fl[0]);
      this.push(fl[1]);
      this.refuse(opName(op), at);
      return true;
    }
    const fm = FLOAT_MEMORY.get(op);
    if (fm) {
      if (this.memoryCount() === 0) this.bad("unknown memory 0 (no memory is declared)");
      if (2 ** this.ins.a > fm.size) this.bad(`alignment must not be larger than natural (2^${this.ins.a} > ${fm.size})`);
      if (fm.store) {
        this.pop(fm.type);
        this.pop(ValType.I32);
      } else {
        this.pop(ValType.I32);
        this.push(fm.type);
      }
      this.refuse(opName(op), at);
      return true;
    }
    const I = ValType.I32;
    switch (op) {
      case 0x43: this.push(ValType.F32); break;
      case 0x44: this.push(ValType.F64); break;
      case 0xd0: this.push(r.refType()); break;
      case 0xd1: {
        const t = this.pop();
        if (t && t !== ValType.FuncRef && t !== ValType.ExternRef) this.bad(`type mismatch: ref.is_null of ${valTypeName(t)}`);
        this.push(I);
        break;
      }
      case 0xd2: {
        const f = r.u32();
        if (f >= this.m.numImportedFuncs + this.m.funcs.length) this.bad(`unknown function ${f}`);
        if (!this.declaredFuncs().has(f)) this.bad(`undeclared function reference ${f}`);
        this.push(ValType.FuncRef);
        break;
      }
      case 0x25: { const t = this.tableType(r.u32()); this.pop(I); this.push(t); break; }
      case 0x26: { const t = this.tableType(r.u32()); this.pop(t); this.pop(I); break; }
      case 0x12: case 0x13: {
        let t: FuncType;
        if (op === 0x12) {
          const f = r.u32();
          if (f >= this.m.numImportedFuncs + this.m.funcs.length) this.bad(`unknown function ${f}`);
          t = funcType(this.m, f);
        } else {
          const ti = r.u32();
          const tt = this.tableType(r.u32());
          if (tt !== ValType.FuncRef) this.bad("type mismatch: return_call_indirect through a non-funcref table");
          const ft = this.m.types[ti];
          if (!ft) return this.bad(`unknown type ${ti}`);
          t = ft;
          this.pop(I);
        }
        if (t.results.join() !== results.join()) this.bad("type mismatch: tail call results differ from the function's");
        this.popAll(t.params);
        this.setUnreachable();
        break;
      }
      case 0xfc08: case 0xfc09: {
        const d = r.u32();
        if (op === 0xfc08) {
          this.zeroByte();
          if (this.memoryCount() === 0) this.bad("unknown memory 0 (no memory is declared)");
        }
        if (this.m.dataCount === null) throw new DecodeError("data count section required", at);
        if (d >= this.m.dataCount) this.bad(`unknown data segment ${d}`);
        if (op === 0xfc08) this.popAll([I, I, I]);
        break;
      }
      case 0xfc0a: case 0xfc0b:
        this.zeroByte();
        if (op === 0xfc0a) this.zeroByte();
        if (this.memoryCount() === 0) this.bad("unknown memory 0 (no memory is declared)");
        this.popAll([I, I, I]);
        break;
      case 0xfc0c: case 0xfc0d: {
        const e = r.u32();
        const tt = op === 0xfc0c ? this.tableType(r.u32()) : 0;
        const seg = this.m.elems[e];
        if (!seg) this.bad(`unknown elem segment ${e}`);
        if (op === 0xfc0c) {
          if (seg!.type !== tt) this.bad(`type mismatch: table.init of ${valTypeName(seg!.type)} elements into a ${valTypeName(tt)} table`);
          this.popAll([I, I, I]);
        }
        break;
      }
      case 0xfc0e: {
        const dst = this.tableType(r.u32());
        const src = this.tableType(r.u32());
        if (dst !== src) this.bad("type mismatch: table.copy between tables of different element types");
        this.popAll([I, I, I]);
        break;
      }
      case 0xfc0f: { const t = this.tableType(r.u32()); this.pop(I); this.pop(t); this.push(I); break; }
      case 0xfc10: this.tableType(r.u32()); this.push(I); break;
      case 0xfc11: { const t = this.tableType(r.u32()); this.pop(I); this.pop(t); this.pop(I); break; }
      default: return false;
    }
    this.refuse(opName(op), at);
    return true;
  }

  private declaredFuncs(): Set<number> {
    if (this.declared) return this.declared;
    const d = new Set<number>();
    for (const e of this.m.elems) for (const f of e.funcs) if (f !== null) d.add(f);
    for (const e of this.m.exports) if (e.kind === "func") d.add(e.index);
    for (const g of this.m.globals) if (g.init.op === "ref.func") d.add(g.init.index);
    return (this.declared = d);
  }

  /** Named only when an error needs it: funcName searches the exports. */
  private name(): string {
    return funcName(this.m, this.index);
  }

  private bad(msg: string): never {
    const ins = this.ins;
    throw new CompileError(`${this.name()}: invalid code at byte 0x${ins.at.toString(16)} (${opName(ins.op)}): ${msg}`);
  }

  private push(t: number): void {
    const sp = this.sp;
    this.stack[sp] = t;
    this.sp = sp + 1;
    if (sp + 1 > this.max) this.max = sp + 1;
  }

  private pop(expect?: number): number {
    const f = this.frames[this.fp - 1]!;
    if (this.sp === f.height) {
      if (f.unreachable) return expect ?? 0;
      this.bad(`type mismatch: operand stack underflow${expect ? ` (expected ${valTypeName(expect)})` : ""}`);
    }
    const t = this.stack[--this.sp]!;
    if (expect && t && t !== expect) this.bad(`type mismatch: expected ${valTypeName(expect)}, found ${valTypeName(t)}`);
    return t;
  }

  private popAll(ts: readonly number[]): void {
    for (let i = ts.length - 1; i >= 0; i--) this.pop(ts[i]);
  }

  private pushAll(ts: readonly number[]): void {
    for (let i = 0; i < ts.length; i++) this.push(ts[i]!);
  }

  private labelTypes(depth: number): readonly number[] {
    const f = depth < this.fp ? this.frames[this.fp - 1 - depth] : undefined;
    if (!f) return this.bad(`unknown label ${depth} (branch depth exceeds nesting)`);
    return f.op === Op.Loop ? f.params : f.results;
  }

  private setUnreachable(): void {
    const f = this.frames[this.fp - 1]!;
    this.sp = f.height;
    f.unreachable = true;
  }

  private pushFrame(op: number, params: readonly number[], results: readonly number[]): void {
    const f = this.frames[this.fp];
    if (f) {
      f.op = op;
      f.params = params;
      f.results = results;
      f.height = this.sp;
      f.unreachable = false;
    } else this.frames.push({ op, params, results, height: this.sp, unreachable: false });
    this.fp++;
  }

  /** Validates defined function `index`; the validator can run again for another function afterwards. */
  run(index: number): FuncInfo {
    const m = this.m;
    this.index = index;
    const type = funcType(m, index);
    const body = m.bodies[index - m.numImportedFuncs]!;
    const { r, ins } = this;
    r.pos = body.start;
    r.end = body.end;
    this.sp = 0;
    this.max = 0;
    this.fp = 0;
    if (type.results.length > 1) this.refuse("multiple results", body.start);
    const np = type.params.length;
    const nlocals = np + body.locals.length;
    for (const t of body.locals) if (!isInt(t)) this.refuse(`${valTypeName(t)} local`, body.start);
    const memCount = m.memories.length + (m.imports.length ? m.imports.filter((i) => i.desc.kind === "memory").length : 0);
    const nfuncs = m.numImportedFuncs + m.funcs.length;
    const weights = new Float64Array(nlocals);
    const written = new Uint8Array(nlocals);
    let loops = 0;
    const stream = this.stream;
    const first = stream ? stream.count : -1;
    this.pushFrame(Op.Block, NO_TYPES, type.results);
    while (this.fp > 0) {
      if (r.done) throw new DecodeError("unexpected end of section or function: END opcode expected (the body ends before its final `end`)", r.pos);
      readInstr(r, ins);
      if (stream) stream.push(ins);
      const op = ins.op;
      const num = op < 256 ? NUMERIC_BY_OP[op] : undefined;
      if (num) {
        const ins2 = num[0];
        if (ins2.length === 2) {
          this.pop(ins2[1]);
          this.pop(ins2[0]);
        } else this.pop(ins2[0]);
        this.push(num[1]);
        continue;
      }
      const acc = op < 256 ? MEMORY_BY_OP[op] : undefined;
      if (acc) {
        if (memCount === 0) this.bad("unknown memory 0 (no memory is declared)");
        if (2 ** ins.a > acc.size) this.bad(`alignment must not be larger than natural (2^${ins.a} > ${acc.size})`);
        if (acc.store) {
          this.pop(acc.type);
          this.pop(ValType.I32);
        } else {
          this.pop(ValType.I32);
          this.push(acc.type);
        }
        continue;
      }
      switch (op) {
        case Op.Unreachable:
          this.setUnreachable();
          break;
        case Op.Nop:
          break;
        case Op.Block: case Op.Loop: case Op.If: {
          const sig = blockSig(m, ins.a);
          for (const t of sig.params) if (!isInt(t)) this.refuse(`block of ${valTypeName(t)}`, ins.at);
          for (const t of sig.results) if (!isInt(t)) this.refuse(`block of ${valTypeName(t)}`, ins.at);
          if (op === Op.If && sig.params.length) this.refuse("if with block parameters", ins.at);
          if (op === Op.If) this.pop(ValType.I32);
          this.popAll(sig.params);
          this.pushFrame(op, sig.params, sig.results);
          if (op === Op.Loop) loops++;
          this.pushAll(sig.params);
          break;
        }
        case Op.Else: {
          const f = this.frames[this.fp - 1]!;
          if (f.op !== Op.If) throw new DecodeError("else without if (END opcode expected)", ins.at);
          this.popAll(f.results);
          if (this.sp !== f.height) this.bad("type mismatch: values left on the stack at else");
          f.op = Op.Else;
          f.unreachable = false;
          this.pushAll(f.params);
          break;
        }
        case Op.End: {
          const f = this.frames[this.fp - 1]!;
          this.popAll(f.results);
          if (this.sp !== f.height) this.bad("type mismatch: values left on the stack at end of block");
          if (f.op === Op.If && f.params.join() !== f.results.join()) this.bad("type mismatch: if without else must have matching params and results");
          this.fp--;
          if (f.op === Op.Loop) loops--;
          this.pushAll(f.results);
          break;
        }
        case Op.Br:
          this.popAll(this.labelTypes(ins.a));
          this.setUnreachable();
          break;
        case Op.BrIf: {
          this.pop(ValType.I32);
          const ts = this.labelTypes(ins.a);
          this.popAll(ts);
          this.pushAll(ts);
          break;
        }
        case Op.BrTable: {
          this.pop(ValType.I32);
          const targets = ins.targets!;
          const arity = this.labelTypes(targets[targets.length - 1]!).length;
          for (const d of targets) {
            const ts = this.labelTypes(d);
            if (ts.length !== arity) this.bad("type mismatch: br_table targets have different arities");
            // Check each target against the current stack without consuming it (pop only moves sp).
            const saved = this.sp;
            this.popAll(ts);
            this.sp = saved;
          }
          this.setUnreachable();
          break;
        }
        case Op.Return:
          this.popAll(type.results);
          this.setUnreachable();
          break;
        case Op.Call: {
          if (ins.a >= nfuncs) this.bad(`unknown function ${ins.a}`);
          const t = funcType(m, ins.a);
          this.popAll(t.params);
          this.pushAll(t.results);
          break;
        }
        case Op.CallIndirect: {
          const ntables = m.tables.length + m.imports.filter((i) => i.desc.kind === "table").length;
          if (ins.b >= ntables) this.bad(`unknown table ${ins.b}`);
          if (this.tableTypes[ins.b] !== ValType.FuncRef) this.bad(`type mismatch: call_indirect through a ${valTypeName(this.tableTypes[ins.b]!)} table`);
          if (ins.b !== 0) this.refuse("call_indirect through a table other than 0 (reference types)", ins.at);
          const t = m.types[ins.a];
          if (!t) return this.bad(`unknown type ${ins.a}`);
          if (t.results.length > 1) this.refuse("call_indirect with multiple results", ins.at);
          this.pop(ValType.I32);
          this.popAll(t.params);
          this.pushAll(t.results);
          break;
        }
        case Op.Drop:
          this.pop();
          break;
        case Op.Select: case Op.SelectT: {
          this.pop(ValType.I32);
          const want = op === Op.SelectT ? ins.a : undefined;
          const b = this.pop(want);
          const a = this.pop(want ?? (b || undefined));
          const t = want ?? (a || b);
          if (want === undefined && (t === ValType.FuncRef || t === ValType.ExternRef)) this.bad("type mismatch: select without a type needs numeric operands");
          if (t && !isInt(t)) this.refuse(`select of ${valTypeName(t)}`, ins.at);
          this.push(t || 0);
          break;
        }
        case Op.LocalGet: case Op.LocalSet: case Op.LocalTee: {
          const i = ins.a;
          if (i >= nlocals) return this.bad(`unknown local ${i}`);
          const t = i < np ? type.params[i]! : body.locals[i - np]!;
          weights[i] = weights[i]! + 8 ** Math.min(loops, 5);
          if (op !== Op.LocalGet) written[i] = 1;
          if (op === Op.LocalGet) this.push(t);
          else {
            this.pop(t);
            if (op === Op.LocalTee) this.push(t);
          }
          break;
        }
        case Op.GlobalGet: case Op.GlobalSet: {
          // The index space starts with imported globals (which checkSubset refuses, so the code generator only ever
          // sees defined ones).
          const g = ins.a < this.importedGlobals.length ? this.importedGlobals[ins.a] : m.globals[ins.a - this.importedGlobals.length];
          if (!g) return this.bad(`unknown global ${ins.a}`);
          if (op === Op.GlobalGet) this.push(g.type);
          else {
            if (!g.mutable) this.bad(`global is immutable (global ${ins.a})`);
            this.pop(g.type);
          }
          break;
        }
        case Op.MemorySize:
          if (memCount === 0) this.bad("unknown memory 0 (no memory is declared)");
          this.push(ValType.I32);
          break;
        case Op.MemoryGrow:
          if (memCount === 0) this.bad("unknown memory 0 (no memory is declared)");
          this.pop(ValType.I32);
          this.push(ValType.I32);
          break;
        case Op.I32Const:
          this.push(ValType.I32);
          break;
        case Op.I64Const:
          this.push(ValType.I64);
          break;
        default:
          if (this.extended(op, ins.at, type.results)) break;
          // Opcodes of no proposal this file names are not WebAssembly at all: malformed, not unsupported.
          if (/^unknown opcode|^0xfc \d/.test(opName(op))) throw new DecodeError(`illegal opcode ${opName(op)}`, ins.at);
          // SIMD, atomics, exceptions: not type-checked here, refused at once.
          throw new UnsupportedError(this.name(), opName(op), ins.at);
      }
    }
    if (!r.done) throw new DecodeError("section size mismatch: bytes after the function's final `end`", r.pos);
    return { maxStack: this.max, localWeights: weights, localWritten: written, first, count: stream ? stream.count - first : 0 };
  }
}
