// The AOT compiler's module driver: decode → validate (accepted subset) → one FunctionCompiler per body → trap stubs
// and entry thunks, all through one toolchain/x64 Assembler. The result is an ObjectFile plus everything an embedder
// needs to instantiate it (VM-context layout, globals, table and data initialisers, export offsets). host.ts runs it
// on this machine; image/ links it into the bare-metal image.
import { Assembler, type Gpr, type Label, type Mem, type ObjectFile, qword, r8, r9, r12, r13, r14, r15, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp } from "../x64/index.ts";
import { Ctx, type CtxLayout, Trap, ctxLayout } from "./abi.ts";
import { type Module, ValType, decodeModule, funcType } from "./decode.ts";
import { INTRINSICS, type Intrinsic } from "./intrinsics.ts";
import { MacroAssembler, reg } from "./masm.ts";
import { FunctionCompiler, type ModuleEnv } from "./visitor.ts";
import { type InstrStream, giveBackStream, takeStream } from "./opcodes.ts";
import { CompileError, type FuncInfo, UnsupportedError, validateModule } from "./validate.ts";

export interface CompileOptions {
  /** Emit System V entry thunks for every export (and the start function) plus the host trap handler. */
  hostThunks?: boolean;
  /**
   * Emit Microsoft x64 entry thunks (the UEFI calling convention the image's loader and monitor use), with the same
   * `uint32_t thunk(vmctx *ctx, const uint64_t *args, uint64_t *result)` contract as the System V ones.
   */
  msThunks?: boolean;
  /** Lower non-hw imports as calls to external symbols `module.name` (images) instead of VM-context slots (host). */
  importsAsSymbols?: boolean;
  /** The most pages memory.grow may reach, below the module's own maximum. Default 1024 (64 MiB). */
  maxPages?: number;
  /**
   * Linear memory at a constant address below 2^31 (identity-mapped images: accesses become [addr + base + offset]
   * and r15 is not needed). Default: the base is in r15, chosen by the embedder at run time.
   */
  memoryBase?: number;
  /** Prefix of every symbol this module defines (several modules can share one image). */
  symbolPrefix?: string;
}

export interface ExportInfo {
  name: string;
  func: number;
  params: number[];
  results: number[];
  /** Offset of the function's code in .text. */
  offset: number;
  /** Offset of its System V entry thunk (hostThunks/msThunks), else −1. */
  thunk: number;
  /** Offset of its Microsoft x64 entry thunk (msThunks), else −1. */
  msThunk: number;
}

export interface ImportInfo {
  module: string;
  name: string;
  func: number;
  params: number[];
  results: number[];
  /** Byte offset of its code-pointer slot in the VM context (−1 for intrinsics). */
  slot: number;
  intrinsic: string | null;
}

export interface CompiledModule {
  object: ObjectFile;
  /** The .text bytes (what host.ts maps; position-independent unless imports are symbols). */
  code: Uint8Array;
  layout: CtxLayout;
  /** Offset of each function in .text, by function index (imports: −1, or their adapter's when they sit in the table). */
  funcOffsets: number[];
  exports: ExportInfo[];
  imports: ImportInfo[];
  /**
   * Every global's slot, imported ones first: type and initial value. `fromImport` ≥ 0: the value is that imported
   * global's (an imported global itself, or a `global.get` initialiser), which the embedder binds (`globalImports`).
   */
  globals: { type: number; init: bigint; fromImport: number }[];
  /**
   * Imported globals, by global index. An immutable one's slot holds its value; a mutable one's slot holds the address
   * of the 8-byte cell it shares with the exporting instance (global.get/set go through it).
   */
  globalImports: { module: string; name: string; index: number; type: number; mutable: boolean }[];
  memory: { minPages: number; maxPages: number } | null;
  /** Active data segments; `offsetImport` ≥ 0: the offset is that imported global's value (`offset` is then 0). */
  datas: { offset: number; offsetImport: number; bytes: Uint8Array }[];
  /** Initial table: function index or null, and the signature id stored beside each entry. */
  table: { func: number | null; sig: number }[];
  /**
   * Element segments the embedder applies in order after `table` at instantiation (from the first whose offset is an
   * imported global's value, `offsetImport` ≥ 0), each checked against the table size.
   */
  tableInits: { offset: number; offsetImport: number; entries: { func: number | null; sig: number }[] }[];
  /** Start function thunk offset (hostThunks) or −1. */
  start: number;
  /** The start function when it is an imported one (the embedder calls the import itself), else −1. */
  startImport: number;
  /** Host trap handler offset (hostThunks) or −1. */
  hostTrap: number;
  /** hostThunks + msThunks: a System V function `adapter(fn, ctx, args, result)` that calls an MS x64 thunk (tests). */
  msAdapter: number;
  /** Whether the memory is imported (its `minPages` is then the import's minimum, not necessarily the actual size). */
  memoryImported: boolean;
  /** Code-section bytes of the input (for throughput figures). */
  inputCodeBytes: number;
  /** The constant memory base compiled in, or null when it is taken from r15. */
  memoryBase: number | null;
}

/** Compiles a wasm binary (or an already decoded module). Throws CompileError / UnsupportedError / DecodeError. */
export function compileWasm(input: Uint8Array | Module, opts: CompileOptions = {}): CompiledModule {
  const m = input instanceof Uint8Array ? decodeModule(input) : input;
  // The validator records the decoded instructions for the code generator; the arrays are reused across compiles.
  const stream = takeStream();
  try {
    return compileValidated(m, validateModule(m, stream), stream, opts);
  } finally {
    giveBackStream(stream);
  }
}

function compileValidated(m: Module, infos: FuncInfo[], stream: InstrStream, opts: CompileOptions): CompiledModule {
  const prefix = opts.symbolPrefix ?? "wasm";
  const a = new Assembler();
  const trapLabels = new Map<Trap, Label>();
  for (let t = Trap.Unreachable; t <= Trap.StackOverflow; t++) trapLabels.set(t, a.label(`${prefix}.trap.${t}`));
  const mb = opts.memoryBase;
  if (mb !== undefined && (!Number.isInteger(mb) || mb < 0 || mb > 0x7fffffff)) {
    throw new CompileError(`memoryBase ${mb} must be an integer in [0, 2^31) (it is encoded as a 32-bit displacement)`);
  }
  const masm = new MacroAssembler(a, trapLabels, mb ?? null);

  const funcImports = m.imports.filter((i) => i.desc.kind === "func");
  const numImportSlots = funcImports.length;
  const tableDecl = m.tables[0];
  const tableSize = tableDecl ? tableDecl.limits.min : 0;
  if (tableSize > 1 << 20) throw new CompileError(`table of ${tableSize} entries is too large (limit 2^20)`);
  const globalImports = m.imports.flatMap((imp) => (imp.desc.kind === "global" ? [{ module: imp.module, name: imp.name, type: imp.desc.type, mutable: imp.desc.mutable }] : [])).map((g, index) => ({ ...g, index }));
  const layout = ctxLayout(globalImports.length + m.globals.length, numImportSlots, tableSize);

  const { imports, intrinsicOf } = lowerImports(m, funcImports, layout);
  const sigIds = canonicalSignatures(m);
  const nf = m.numImportedFuncs + m.funcs.length;
  const funcLabels: (Label | null)[] = [];
  for (let f = 0; f < nf; f++) funcLabels.push(f < m.numImportedFuncs ? null : a.label(`${prefix}.f${f}`));
  const symbolLabels = new Map<number, Label>();
  const env: ModuleEnv = {
    module: m, layout, funcLabels, sigIds, tableSize, stream, globalTypes: [...globalImports.map((g) => g.type), ...m.globals.map((g) => g.type)],
    globalIndirect: [...globalImports.map((g) => g.mutable), ...m.globals.map(() => false)],
    minMemoryBytes: 65536 * (m.memories[0]?.min ?? (m.imports.find((i) => i.desc.kind === "memory")?.desc as { limits?: { min: number } } | undefined)?.limits?.min ?? 0),
    importLowering: (index) => {
      const intr = intrinsicOf[index];
      if (intr) return { intrinsic: intr };
      let sym: Label | null = null;
      if (opts.importsAsSymbols) {
        sym = symbolLabels.get(index) ?? a.label(`${imports[index]!.module}.${imports[index]!.name}`);
        symbolLabels.set(index, sym);
      }
      return { slot: imports[index]!.slot, symbol: sym };
    },
  };

  for (let i = 0; i < m.bodies.length; i++) {
    const f = m.numImportedFuncs + i;
    a.align(16);
    a.bind(funcLabels[f]!);
    new FunctionCompiler(env, masm, f, infos[i]!).compile();
  }

  const importStubs = emitImportStubs(a, m, env, imports, intrinsicOf, prefix);

  emitTrapStubs(a, masm, trapLabels);

  const exportFuncs = m.exports.filter((e) => e.kind === "func");
  const { thunkLabels, msLabels, startLabel, hostTrap, msAdapter } = emitThunks(a, m, masm, opts, prefix, funcLabels, imports, exportFuncs);

  const object = a.finish();
  const text = object.sections.find((s) => s.name === ".text")!;
  const off = (l: Label | null | undefined): number => (l ? a.labelOffset(l) : -1);
  const funcOffsets = funcLabels.map((l, f) => off(l ?? importStubs.get(f)));
  const exports: ExportInfo[] = exportFuncs.map((e) => {
    const t = funcType(m, e.index);
    return { name: e.name, func: e.index, params: t.params, results: t.results, offset: funcOffsets[e.index]!, thunk: off(thunkLabels.get(e.index)), msThunk: off(msLabels.get(e.index)) };
  });
  const memDecl = m.memories[0] ?? (m.imports.find((i) => i.desc.kind === "memory")?.desc as { limits: { min: number; max: number | null } } | undefined)?.limits;
  const cap = opts.maxPages ?? 1024;
  const memory = memDecl ? { minPages: memDecl.min, maxPages: Math.min(memDecl.max ?? 65536, Math.max(cap, memDecl.min)) } : null;
  const table: { func: number | null; sig: number }[] = Array.from({ length: tableSize }, () => ({ func: null, sig: -1 }));
  const entry = (f: number | null) => {
    const typeIdx = f === null ? -1 : f < m.numImportedFuncs ? (m.imports.filter((i) => i.desc.kind === "func")[f]!.desc as { type: number }).type : m.funcs[f - m.numImportedFuncs]!;
    return { func: f, sig: f === null ? -1 : sigIds[typeIdx]! };
  };
  // Segments apply in order; once one's offset is an imported global's value, it and every later one are left to the
  // embedder (tableInits), which knows the value.
  const tableInits: CompiledModule["tableInits"] = [];
  for (const e of m.elems) {
    if (e.mode !== "active") continue;
    if (e.offset?.op === "global.get" || tableInits.length) {
      tableInits.push({ offset: e.offset?.op === "i32.const" ? e.offset.value >>> 0 : 0, offsetImport: e.offset?.op === "global.get" ? e.offset.index : -1, entries: e.funcs.map(entry) });
      continue;
    }
    if (e.offset?.op !== "i32.const") continue;
    const base = e.offset.value >>> 0;
    if (base + e.funcs.length > tableSize) throw new CompileError(`element segment at ${base} (+${e.funcs.length}) does not fit the table of ${tableSize} (instantiation would fail)`);
    e.funcs.forEach((f, i) => (table[base + i] = entry(f)));
  }
  const datas = m.datas.map((d) => {
    const o = d.offset!.op === "i32.const" ? (d.offset as { value: number }).value >>> 0 : 0;
    const offsetImport = d.offset!.op === "global.get" ? d.offset!.index : -1;
    // An imported memory may be larger than its import's minimum, and an imported global's offset is known only at
    // instantiation: the embedder checks those.
    if (memory && m.memories.length && offsetImport < 0 && o + d.bytes.length > memory.minPages * 65536) throw new CompileError(`data segment at ${o} (+${d.bytes.length}) is outside the initial memory (instantiation would fail)`);
    return { offset: o, offsetImport, bytes: d.bytes };
  });
  return {
    object, code: text.bytes, layout, funcOffsets, exports, imports,
    globals: [
      ...globalImports.map((g) => ({ type: g.type, init: 0n, fromImport: g.index })),
      ...m.globals.map((g) => ({
        type: g.type,
        init: g.init.op === "i64.const" ? g.init.value : g.init.op === "i32.const" ? BigInt(g.init.value) : 0n,
        fromImport: g.init.op === "global.get" ? g.init.index : -1,
      })),
    ],
    globalImports,
    tableInits, memory, memoryImported: m.memories.length === 0 && memory !== null, datas, table, start: off(startLabel), startImport: m.start !== null && m.start < m.numImportedFuncs ? m.start : -1, hostTrap: off(hostTrap), msAdapter: off(msAdapter),
    inputCodeBytes: m.bodies.reduce((n, b) => n + (b.end - b.start), 0),
    memoryBase: mb ?? null,
  };
}

/** Each imported function: an hw intrinsic (lowered inline; its signature checked) or a slot in the context. */
function lowerImports(m: Module, funcImports: Module["imports"], layout: ReturnType<typeof ctxLayout>): { imports: ImportInfo[]; intrinsicOf: (Intrinsic | null)[] } {
  const imports: ImportInfo[] = [];
  const intrinsicOf: (Intrinsic | null)[] = [];
  funcImports.forEach((imp, i) => {
    const t = m.types[(imp.desc as { type: number }).type]!;
    let intr: Intrinsic | null = null;
    if (imp.module === "hw") {
      intr = INTRINSICS.get(imp.name) ?? null;
      if (!intr) throw new UnsupportedError(`import hw.${imp.name}`, `unknown hw intrinsic (known: ${[...INTRINSICS.keys()].join(", ")})`, 0);
      if (intr.params.join() !== t.params.join() || intr.results.join() !== t.results.join()) {
        throw new CompileError(`import hw.${imp.name}: signature (${t.params.map(tn)}) -> (${t.results.map(tn)}) does not match the intrinsic's (${intr.params.map(tn)}) -> (${intr.results.map(tn)}); see docs/specs/intrinsics.md`);
      }
    }
    intrinsicOf.push(intr);
    imports.push({ module: imp.module, name: imp.name, func: i, params: t.params, results: t.results, slot: intr ? -1 : layout.imports + 8 * i, intrinsic: intr ? intr.name : null });
  });
  return { imports, intrinsicOf };
}

/** Type index → canonical signature id (equal signatures, equal ids): what call_indirect compares. */
function canonicalSignatures(m: Module): number[] {
  const sigKey = (i: number) => `${m.types[i]!.params.join()}>${m.types[i]!.results.join()}`;
  const canon = new Map<string, number>();
  return m.types.map((_, i) => {
    const k = sigKey(i);
    if (!canon.has(k)) canon.set(k, canon.size);
    return canon.get(k)!;
  });
}

// Imported functions placed in the table: an adapter from the internal convention (arguments on the stack, i32
// result zero-extended in rax) to the System V call every other import call makes, so call_indirect can reach them.
// Named like a defined function's label, so an embedder that resolves table entries by symbol finds it too.
function emitImportStubs(a: Assembler, m: Module, env: ModuleEnv, imports: ImportInfo[], intrinsicOf: (Intrinsic | null)[], prefix: string): Map<number, Label> {
  const importStubs = new Map<number, Label>();
  for (const e of m.elems) {
    if (e.mode !== "active") continue;
    for (const f of e.funcs) {
      if (f === null || f >= m.numImportedFuncs || importStubs.has(f)) continue;
      if (intrinsicOf[f]) throw new UnsupportedError("element segment", `intrinsic hw.${imports[f]!.name} in a table`, 0);
      const l = a.label(`${prefix}.f${f}`);
      importStubs.set(f, l);
      const lower = env.importLowering(f) as { slot: number; symbol: Label | null };
      const n = imports[f]!.params.length;
      a.align(16);
      a.bind(l);
      a.push(rbp);
      a.mov(rbp, rsp);
      const argRegs = [rdi, rsi, rdx, rcx, r8, r9];
      for (let i = 0; i < n; i++) a.mov(argRegs[i]!, qword(rbp, 16 + 8 * (n - 1 - i)));
      a.and(rsp, -16);
      if (lower.symbol) a.call(lower.symbol);
      else a.call(qword(r14, lower.slot));
      if (imports[f]!.results[0] === ValType.I32) a.mov(reg(0, 4), reg(0, 4));
      a.leave();
      a.ret();
    }
  }
  return importStubs;
}

// Trap stubs: the handler never returns (the host one unwinds to the entry thunk; an image's halts or reports).
function emitTrapStubs(a: Assembler, masm: MacroAssembler, trapLabels: Map<Trap, Label>): void {
  for (const [code, label] of trapLabels) {
    a.bind(label);
    a.mov(reg(7, 4), code);
    a.xor(reg(6, 4), reg(6, 4));
    a.call(masm.ctx(Ctx.TrapHandler));
    a.ud2();
  }
}

/** Entry thunks for the embedder: System V host thunks, MS x64 thunks and their adapter, the host trap handler. */
interface Thunks { thunkLabels: Map<number, Label>; msLabels: Map<number, Label>; startLabel: Label | null; hostTrap: Label | null; msAdapter: Label | null }

function emitThunks(a: Assembler, m: Module, masm: MacroAssembler, opts: CompileOptions, prefix: string, funcLabels: (Label | null)[], imports: ImportInfo[], exportFuncs: Module["exports"]): Thunks {
  const thunkLabels = new Map<number, Label>();
  let startLabel: Label | null = null;
  const msLabels = new Map<number, Label>();
  let hostTrap: Label | null = null;
  let msAdapter: Label | null = null;
  if (opts.hostThunks || opts.msThunks) {
    const thunkFor = (fi: number): Label => {
      let l = thunkLabels.get(fi);
      if (l) return l;
      l = a.label(`${prefix}.thunk.f${fi}`);
      thunkLabels.set(fi, l);
      emitHostThunk(a, l, fi, m, funcLabels, imports);
      return l;
    };
    // An exported (or start) function that is itself an import has no code here: the host embedder calls the import
    // directly (host.ts); images, which link MS thunks by symbol, still refuse it (emitHostThunk).
    const direct = (fi: number): boolean => fi < m.numImportedFuncs && !opts.msThunks;
    for (const e of exportFuncs) if (!direct(e.index)) thunkFor(e.index);
    if (m.start !== null && !direct(m.start)) startLabel = thunkFor(m.start);
  }
  if (opts.msThunks) {
    for (const e of exportFuncs) {
      if (msLabels.has(e.index)) continue;
      const l = a.label(`${prefix}.ms.${e.name}`);
      a.global(l);
      msLabels.set(e.index, l);
      a.align(16);
      a.bind(l);
      // MS x64: rcx, rdx, r8 carry the three pointers; rdi and rsi are callee-saved there, so keep them around the
      // System V thunk (whose frame the host trap handler knows how to unwind).
      a.push(rdi);
      a.push(rsi);
      a.mov(rdi, rcx);
      a.mov(rsi, rdx);
      a.mov(rdx, r8);
      a.sub(rsp, 8);
      a.call(thunkLabels.get(e.index)!);
      a.add(rsp, 8);
      a.pop(rsi);
      a.pop(rdi);
      a.ret();
    }
    if (opts.hostThunks) {
      msAdapter = a.label(`${prefix}.ms_adapter`);
      a.align(16);
      a.bind(msAdapter);
      // System V (fn, ctx, args, result) → MS x64 fn(ctx, args, result) with its 32-byte shadow space.
      a.push(rbx);
      a.mov(rax, rdi);
      a.mov(r8, rcx);
      a.mov(rcx, rsi);
      a.sub(rsp, 32);
      a.call(rax);
      a.add(rsp, 32);
      a.pop(rbx);
      a.ret();
    }
  }
  if (opts.hostThunks) {
    hostTrap = a.label(`${prefix}.host_trap`);
    a.align(16);
    a.bind(hostTrap);
    // edi = trap code, esi = detail. Unwind to the entry thunk's frame and return the code to the caller.
    a.mov(rsp, masm.ctx(Ctx.SavedRsp));
    a.pop(rdx);
    a.mov(qword(rdx), rsi);
    a.mov(reg(0, 4), reg(7, 4));
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
  return { thunkLabels, msLabels, startLabel, hostTrap, msAdapter };
}

const tn = (t: number): string => (t === ValType.I64 ? "i64" : t === ValType.I32 ? "i32" : `0x${t.toString(16)}`);

/**
 * `uint32_t thunk(vmctx *ctx, const uint64_t *args, uint64_t *result)`: saves the System V callee-saved registers,
 * pins r14/r15, records rsp for the trap handler and the stack limit, pushes the arguments in the internal
 * convention and calls the function. Returns 0, or the trap code when the trap handler unwound to here.
 */
function emitHostThunk(a: Assembler, l: Label, fi: number, m: Module, funcLabels: (Label | null)[], imports: ImportInfo[]): void {
  if (fi < m.numImportedFuncs) {
    throw new UnsupportedError(`export "${m.exports.find((e) => e.kind === "func" && e.index === fi)?.name}"`, `re-export of imported function ${imports[fi]?.module}.${imports[fi]?.name}`, 0);
  }
  const t = funcType(m, fi);
  const o = thunkOperands();
  a.align(16);
  a.bind(l);
  for (const r of o.saved) a.push(r);
  a.push(rdx);
  a.mov(r14, rdi);
  a.mov(r15, o.memBase);
  a.mov(o.savedRsp, rsp);
  a.mov(rax, rsp);
  a.sub(rax, o.stackBudget);
  a.mov(o.stackLimit, rax);
  for (let i = 0; i < t.params.length; i++) a.push(o.arg(i));
  a.call(funcLabels[fi]!);
  if (t.params.length) a.add(rsp, 8 * t.params.length);
  a.pop(rdx);
  a.mov(o.result, rax);
  a.xor(reg(0, 4), reg(0, 4));
  for (let i = o.saved.length - 1; i >= 0; i--) a.pop(o.saved[i]!);
  a.ret();
}

/** The entry thunks' operands, built once (a module may export hundreds of functions, each with a thunk). */
interface ThunkOperands {
  saved: Gpr[];
  memBase: Mem;
  savedRsp: Mem;
  stackBudget: Mem;
  stackLimit: Mem;
  result: Mem;
  arg(i: number): Mem;
}
let thunkOps: ThunkOperands | null = null;
function thunkOperands(): ThunkOperands {
  if (thunkOps) return thunkOps;
  const args: Mem[] = [];
  return (thunkOps = {
    saved: [rbx, rbp, r12, r13, r14, r15],
    memBase: qword(r14, Ctx.MemBase),
    savedRsp: qword(r14, Ctx.SavedRsp),
    stackBudget: qword(r14, Ctx.StackBudget),
    stackLimit: qword(r14, Ctx.StackLimit),
    result: qword(rdx),
    arg: (i) => (args[i] ??= qword(rsi, 8 * i)),
  });
}
