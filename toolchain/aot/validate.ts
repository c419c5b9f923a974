// Validation and the accepted-subset check, the stage between decode.ts and the code generator. Type-checks every
// function body (operand stack, control frames, branch arities) for the integer subset the backend compiles and
// rejects anything else with an error naming the function and the instruction. Also measures each function's
// maximum operand-stack depth, which fixes its frame size before code generation starts.
import { type FuncType, type Module, Reader, ValType as ValTypeEnum, funcName, funcType, valTypeName } from "./decode.ts";
import { MEMORY_BY_OP as MEMORY_BY_OP_, NUMERIC_BY_OP as NUMERIC_BY_OP_, Op as OpEnum, newInstr, opName, readInstr as readInstr_ } from "./opcodes.ts";

// Hot imports aliased to module-local constants: when tsx loads this file as CommonJS (required from a script outside
// this ESM package), every use of an imported binding is an export-getter call (~15% of compile time by --cpu-prof);
// loaded as ESM (npm run bench, uvt) the alias costs nothing either way.
const Op = OpEnum;
const ValType = ValTypeEnum;
const MEMORY_BY_OP = MEMORY_BY_OP_;
const NUMERIC_BY_OP = NUMERIC_BY_OP_;
const readInstr = readInstr_;

export class CompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompileError";
  }
}

/** The module uses something outside the accepted subset (floats, SIMD, bulk memory, multiple results ...). */
export class UnsupportedError extends CompileError {
  constructor(readonly func: string, readonly instruction: string, offset: number) {
    super(`${func}: unsupported instruction \`${instruction}\` at byte 0x${offset.toString(16)} (the AOT backend accepts the integer MVP subset only; see toolchain/aot/ABI.md)`);
    this.name = "UnsupportedError";
  }
}

export interface FuncInfo {
  /** Maximum operand-stack depth, counting values of all enclosing blocks. */
  maxStack: number;
  /** local.get/set/tee count per local, uses inside loops weighted by 8 per nesting level (register pinning). */
  localWeights: Float64Array;
  /** Whether each local is ever written (local.set/tee): unwritten pinned locals need no save around calls. */
  localWritten: Uint8Array;
}

const isInt = (t: number): boolean => t === ValType.I32 || t === ValType.I64;

/** Resolves a block type immediate into params/results. */
export function blockSig(m: Module, bt: number): FuncType {
  if (bt === -0x40) return { params: [], results: [] };
  if (bt < 0) return { params: [], results: [-bt] };
  const t = m.types[bt];
  if (!t) throw new CompileError(`block type index ${bt} out of range`);
  return t;
}

/** Checks module-level structure against the subset; throws CompileError/UnsupportedError. */
export function validateModule(m: Module): FuncInfo[] {
  const where = (what: string): string => `module ${what}`;
  for (const [i, t] of m.types.entries()) {
    for (const v of [...t.params, ...t.results]) {
      if (!isInt(v)) throw new UnsupportedError(where(`type ${i}`), `${valTypeName(v)} value type`, 0);
    }
  }
  for (const imp of m.imports) {
    if (imp.desc.kind === "table") throw new UnsupportedError(where(`import ${imp.module}.${imp.name}`), "imported table", 0);
    if (imp.desc.kind === "global") throw new UnsupportedError(where(`import ${imp.module}.${imp.name}`), "imported global", 0);
    if (imp.desc.kind === "func") {
      const t = m.types[imp.desc.type];
      if (!t) throw new CompileError(`import ${imp.module}.${imp.name}: type index out of range`);
      if (t.results.length > 1 || t.params.length > 6) {
        throw new UnsupportedError(where(`import ${imp.module}.${imp.name}`), "import with more than 6 parameters or more than one result", 0);
      }
    }
  }
  const memCount = m.memories.length + m.imports.filter((i) => i.desc.kind === "memory").length;
  if (memCount > 1) throw new UnsupportedError(where("memories"), "multiple memories", 0);
  if (m.tables.length > 1) throw new UnsupportedError(where("tables"), "multiple tables", 0);
  for (const t of m.tables) if (t.elem !== ValType.FuncRef) throw new UnsupportedError(where("table"), "non-funcref table", 0);
  for (const [i, g] of m.globals.entries()) {
    if (!isInt(g.type)) throw new UnsupportedError(where(`global ${i}`), `${valTypeName(g.type)} global`, 0);
    if (g.init.op !== "i32.const" && g.init.op !== "i64.const") throw new UnsupportedError(where(`global ${i}`), `${g.init.op} initializer`, 0);
    if ((g.init.op === "i32.const") !== (g.type === ValType.I32)) throw new CompileError(`global ${i}: initializer type mismatch`);
  }
  for (const e of m.elems) {
    if (e.mode !== "active") continue;
    if (e.table !== 0 || m.tables.length === 0) throw new CompileError("element segment refers to a missing table");
    if (e.offset?.op !== "i32.const") throw new UnsupportedError(where("element segment"), `${e.offset?.op ?? "missing"} offset`, 0);
    for (const f of e.funcs) if (f !== null && f >= m.numImportedFuncs + m.funcs.length) throw new CompileError(`element segment names function ${f}, which does not exist`);
  }
  for (const d of m.datas) {
    if (d.mode !== "active") throw new UnsupportedError(where("data segment"), "passive data segment", 0);
    if (memCount === 0) throw new CompileError("data segment without a memory");
    if (d.offset?.op !== "i32.const") throw new UnsupportedError(where("data segment"), `${d.offset?.op ?? "missing"} offset`, 0);
  }
  const nf = m.numImportedFuncs + m.funcs.length;
  if (m.start !== null) {
    if (m.start >= nf) throw new CompileError(`start function ${m.start} does not exist`);
    const t = funcType(m, m.start);
    if (t.params.length || t.results.length) throw new CompileError("start function must take and return nothing");
  }
  for (const e of m.exports) {
    const limit = e.kind === "func" ? nf : e.kind === "global" ? m.globals.length : 1;
    if (e.index >= limit) throw new CompileError(`export "${e.name}" refers to a missing ${e.kind}`);
  }
  return m.bodies.map((_, i) => validateFunction(m, m.numImportedFuncs + i));
}

interface Frame {
  op: number;
  params: number[];
  results: number[];
  height: number;
  unreachable: boolean;
}

/** Type-checks one defined function and returns its maximum stack depth. */
export function validateFunction(m: Module, index: number): FuncInfo {
  // Named only when an error needs it: funcName searches the exports.
  const name = (): string => funcName(m, index);
  const type = funcType(m, index);
  if (type.results.length > 1) throw new UnsupportedError(name(), "multiple results", 0);
  const body = m.bodies[index - m.numImportedFuncs]!;
  const locals = [...type.params, ...body.locals];
  for (const t of body.locals) if (!isInt(t)) throw new UnsupportedError(name(), `${valTypeName(t)} local`, body.start);
  const memCount = m.memories.length + (m.imports.length ? m.imports.filter((i) => i.desc.kind === "memory").length : 0);
  const nfuncs = m.numImportedFuncs + m.funcs.length;
  const weights = new Float64Array(locals.length);
  const written = new Uint8Array(locals.length);
  let loops = 0;
  const r = new Reader(m.bytes, body.start, body.end);
  const ins = newInstr();
  const stack: number[] = [];
  const frames: Frame[] = [{ op: Op.Block, params: [], results: type.results, height: 0, unreachable: false }];
  let max = 0;
  const bad = (msg: string): never => {
    throw new CompileError(`${name()}: invalid code at byte 0x${ins.at.toString(16)} (${opName(ins.op)}): ${msg}`);
  };
  const push = (t: number): void => {
    stack.push(t);
    if (stack.length > max) max = stack.length;
  };
  const pop = (expect?: number): number => {
    const f = frames[frames.length - 1]!;
    if (stack.length === f.height) {
      if (f.unreachable) return expect ?? 0;
      bad(`operand stack underflow${expect ? ` (expected ${valTypeName(expect)})` : ""}`);
    }
    const t = stack.pop()!;
    if (expect && t && t !== expect) bad(`expected ${valTypeName(expect)}, found ${valTypeName(t)}`);
    return t;
  };
  const popAll = (ts: number[]): void => {
    for (let i = ts.length - 1; i >= 0; i--) pop(ts[i]);
  };
  const labelTypes = (depth: number): number[] => {
    const f = frames[frames.length - 1 - depth];
    if (!f) return bad(`branch depth ${depth} exceeds nesting`);
    return f.op === Op.Loop ? f.params : f.results;
  };
  const setUnreachable = (): void => {
    const f = frames[frames.length - 1]!;
    stack.length = f.height;
    f.unreachable = true;
  };
  const needMemory = (): void => {
    if (memCount === 0) bad("no memory is declared");
  };
  while (frames.length > 0) {
    if (r.done) bad("function body ends before its final `end`");
    readInstr(r, ins);
    const op = ins.op;
    const num = op < 256 ? NUMERIC_BY_OP[op] : undefined;
    if (num) {
      const ins2 = num[0];
      if (ins2.length === 2) {
        pop(ins2[1]);
        pop(ins2[0]);
      } else pop(ins2[0]);
      push(num[1]);
      continue;
    }
    const acc = op < 256 ? MEMORY_BY_OP[op] : undefined;
    if (acc) {
      needMemory();
      if (2 ** ins.a > acc.size) bad(`alignment 2^${ins.a} exceeds the access size ${acc.size}`);
      if (acc.store) {
        pop(acc.type);
        pop(ValType.I32);
      } else {
        pop(ValType.I32);
        push(acc.type);
      }
      continue;
    }
    switch (op) {
      case Op.Unreachable:
        setUnreachable();
        break;
      case Op.Nop:
        break;
      case Op.Block: case Op.Loop: case Op.If: {
        const sig = blockSig(m, ins.a);
        for (const t of [...sig.params, ...sig.results]) if (!isInt(t)) throw new UnsupportedError(name(), `block of ${valTypeName(t)}`, ins.at);
        if (op === Op.If) pop(ValType.I32);
        popAll(sig.params);
        frames.push({ op, params: sig.params, results: sig.results, height: stack.length, unreachable: false });
        if (op === Op.Loop) loops++;
        for (const t of sig.params) push(t);
        break;
      }
      case Op.Else: {
        const f = frames[frames.length - 1]!;
        if (f.op !== Op.If) bad("else without if");
        popAll(f.results);
        if (stack.length !== f.height) bad("values left on the stack at else");
        f.op = Op.Else;
        f.unreachable = false;
        for (const t of f.params) push(t);
        break;
      }
      case Op.End: {
        const f = frames[frames.length - 1]!;
        popAll(f.results);
        if (stack.length !== f.height) bad("values left on the stack at end of block");
        if (f.op === Op.If && f.params.join() !== f.results.join()) bad("if without else must have matching params and results");
        frames.pop();
        if (f.op === Op.Loop) loops--;
        for (const t of f.results) push(t);
        break;
      }
      case Op.Br:
        popAll(labelTypes(ins.a));
        setUnreachable();
        break;
      case Op.BrIf: {
        pop(ValType.I32);
        const ts = labelTypes(ins.a);
        popAll(ts);
        for (const t of ts) push(t);
        break;
      }
      case Op.BrTable: {
        pop(ValType.I32);
        const targets = ins.targets!;
        const arity = labelTypes(targets[targets.length - 1]!).length;
        for (const d of targets) {
          const ts = labelTypes(d);
          if (ts.length !== arity) bad("br_table targets have different arities");
          // Check each target against the current stack without consuming it.
          const saved = stack.slice();
          popAll(ts);
          stack.length = 0;
          stack.push(...saved);
        }
        setUnreachable();
        break;
      }
      case Op.Return:
        popAll(type.results);
        setUnreachable();
        break;
      case Op.Call: {
        if (ins.a >= nfuncs) bad(`call to missing function ${ins.a}`);
        const t = funcType(m, ins.a);
        popAll(t.params);
        for (const x of t.results) push(x);
        break;
      }
      case Op.CallIndirect: {
        if (ins.b !== 0 || m.tables.length === 0) bad("call_indirect needs table 0");
        const t = m.types[ins.a];
        if (!t) return bad(`type index ${ins.a} out of range`);
        if (t.results.length > 1) throw new UnsupportedError(name(), "call_indirect with multiple results", ins.at);
        pop(ValType.I32);
        popAll(t.params);
        for (const x of t.results) push(x);
        break;
      }
      case Op.Drop:
        pop();
        break;
      case Op.Select: case Op.SelectT: {
        pop(ValType.I32);
        const want = op === Op.SelectT ? ins.a : undefined;
        if (want !== undefined && !isInt(want)) throw new UnsupportedError(name(), `select of ${valTypeName(want)}`, ins.at);
        const b = pop(want);
        const a = pop(want ?? (b || undefined));
        const t = a || b;
        if (t && !isInt(t)) throw new UnsupportedError(name(), `select of ${valTypeName(t)}`, ins.at);
        push(t || (want ?? 0));
        break;
      }
      case Op.LocalGet: case Op.LocalSet: case Op.LocalTee: {
        const t = locals[ins.a];
        if (t === undefined) return bad(`local ${ins.a} out of range`);
        weights[ins.a] = weights[ins.a]! + 8 ** Math.min(loops, 5);
        if (op !== Op.LocalGet) written[ins.a] = 1;
        if (op === Op.LocalGet) push(t);
        else {
          pop(t);
          if (op === Op.LocalTee) push(t);
        }
        break;
      }
      case Op.GlobalGet: case Op.GlobalSet: {
        const g = m.globals[ins.a];
        if (!g) return bad(`global ${ins.a} out of range`);
        if (op === Op.GlobalGet) push(g.type);
        else {
          if (!g.mutable) bad(`global ${ins.a} is immutable`);
          pop(g.type);
        }
        break;
      }
      case Op.MemorySize:
        needMemory();
        push(ValType.I32);
        break;
      case Op.MemoryGrow:
        needMemory();
        pop(ValType.I32);
        push(ValType.I32);
        break;
      case Op.I32Const:
        push(ValType.I32);
        break;
      case Op.I64Const:
        push(ValType.I64);
        break;
      default:
        throw new UnsupportedError(name(), opName(op), ins.at);
    }
  }
  if (!r.done) bad("bytes after the function's final `end`");
  return { maxStack: max, localWeights: weights, localWritten: written };
}
