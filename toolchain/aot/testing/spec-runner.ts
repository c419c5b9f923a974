// The WebAssembly spec-suite runner behind toolchain/aot/spec-*.test.ts: drives one converted .wast script (wast.ts)
// against the AOT compiler (compiled code run natively through host.ts) and, as the control, against V8. Every
// command is counted per engine as passed, failed or skipped; the AOT side may skip only what the compiler refuses
// as unsupported (UnsupportedError: floats, SIMD, reference types, bulk memory, ...), with that feature as the reason.
import { Trap } from "../abi.ts";
import { compileWasm, type CompiledModule } from "../compile.ts";
import { DecodeError, type Module, decodeModule } from "../decode.ts";
import { type HostImport, HostInstance, HostTrap } from "../host.ts";
import { HostBuffer } from "../../x64/native.ts";
import { CompileError, UnsupportedError } from "../validate.ts";
import { type Converted, type WastAction, type WastCommand, type WastValue, convertWast, spectestWasm } from "./wast.ts";

// ---- V8's WebAssembly API, the parts the control uses (the project's tsconfig has no DOM lib) -----------------------
interface V8Api {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum?: number }) => object;
  Table: new (d: { initial: number; maximum?: number; element: string }) => object;
  Global: new (d: { value: string; mutable?: boolean }, v: unknown) => { value: unknown };
  CompileError: new () => Error;
  LinkError: new () => Error;
  RuntimeError: new () => Error;
}
const V8 = (globalThis as unknown as { WebAssembly: V8Api }).WebAssembly;

export interface EngineTally {
  passed: number;
  failed: number;
  skipped: number;
  /** Skip reason → count. */
  reasons: Map<string, number>;
  /** The first few failures, "line N: what". */
  failures: string[];
}

export interface FileResult {
  file: string;
  aot: EngineTally;
  v8: EngineTally;
  /** Invalid/malformed binaries the AOT rejected: how many with the suite's message text, how many as unsupported. */
  rejectedWithSpecText: number;
  rejectedAsUnsupported: number;
  rejectedOther: number;
  /** Text-format assert_malformed commands (wast2json cannot write them as binaries). */
  textMalformed: number;
  ms: number;
}

const tally = (): EngineTally => ({ passed: 0, failed: 0, skipped: 0, reasons: new Map(), failures: [] });
function pass(t: EngineTally): void {
  t.passed++;
}
function fail(t: EngineTally, line: number, what: string): void {
  t.failed++;
  if (t.failures.length < 20) t.failures.push(`line ${line}: ${what}`);
}
function skip(t: EngineTally, reason: string): void {
  t.skipped++;
  t.reasons.set(reason, (t.reasons.get(reason) ?? 0) + 1);
}

/**
 * The unsupported feature a module's text uses, for modules wast2json cannot parse (the compiler never sees them):
 * the skip reason their assertions get. Compiled modules report UnsupportedError.feature instead.
 */
export function featureOf(text: string): string {
  if (/f32|f64/.test(text)) return "floats";
  if (/v128/.test(text)) return "SIMD";
  if (/return_call/.test(text)) return "tail calls";
  if (/memory\.(init|copy|fill)|data\.drop/.test(text)) return "bulk memory";
  if (/externref|ref\.|table\.|elem\.drop/.test(text)) return "reference types";
  return "no unsupported feature found";
}

/** Trap codes for the suite's assert_trap texts. */
function trapOfText(text: string): number[] {
  if (/unreachable/.test(text)) return [Trap.Unreachable];
  if (/integer divide by zero/.test(text)) return [Trap.DivByZero];
  if (/integer overflow/.test(text)) return [Trap.IntOverflow];
  if (/out of bounds memory access/.test(text)) return [Trap.MemoryOutOfBounds];
  if (/undefined element/.test(text)) return [Trap.TableOutOfBounds];
  if (/uninitialized element/.test(text)) return [Trap.NullFunction, Trap.SignatureMismatch];
  if (/indirect call type mismatch/.test(text)) return [Trap.SignatureMismatch, Trap.NullFunction];
  if (/call stack exhausted/.test(text)) return [Trap.StackOverflow];
  return [];
}

// ---- the AOT side -----------------------------------------------------------------------------------------------------

/**
 * One linear memory and every instance bound to it (its definer and importers share the buffer). Each instance has
 * its own size field, so the size is copied in when control enters an instance and out when it leaves.
 */
interface MemGroup {
  buffer: HostBuffer;
  pages: number;
  /** The memory's declared maximum (link checks), and the pages reserved (memory.grow's cap). */
  declaredMax: number | null;
  reserved: number;
}

interface AotModule {
  inst: HostInstance;
  compiled: CompiledModule;
  group: MemGroup | null;
  /** Export name → kind. */
  exportKinds: Map<string, string>;
  /** Global exports: name → global index, type and mutability. */
  globalTypes: Map<string, { type: number; mutable: boolean }>;
  /** Global exports: name → global index. */
  globals: Map<string, number>;
}
/** A module slot: an instance, or the reason it was skipped (unsupported feature), or a failure already counted. */
type AotSlot = { kind: "ok"; m: AotModule } | { kind: "skip"; reason: string } | { kind: "broken"; why: string };

type V8Slot = { kind: "ok"; exports: Record<string, unknown> } | { kind: "broken"; why: string };

/** spectest's function exports the AOT side can link (float ones are refused as unsupported before linking). */
const SPECTEST_FUNCS: Record<string, string> = { print: ">", print_i32: "127>", print_i64: "126>", print_f32: "125>", print_f64: "124>", print_i32_f32: "127,125>", print_f64_f64: "124,124>" };

interface Link {
  imports: Record<string, Record<string, HostImport>>;
  /** Values of imported globals (mutable ones: the exporting instance and index). */
  globals: Record<string, Record<string, bigint | { inst: HostInstance; index: number }>>;
  /** The memory an imported memory binds to. */
  group: MemGroup | null;
  /** The importing instance once it exists (import calls copy its memory size out and back in). */
  holder: { m: AotModule | null };
}

/** spectest's global exports the AOT side can link (all immutable, value 666). */
const SPECTEST_GLOBALS: Record<string, number> = { global_i32: 0x7f, global_i64: 0x7e, global_f32: 0x7d, global_f64: 0x7c };

class Interrupt {
  constructor(readonly trap: number) {}
}

/** Runs one .wast file (converted with wast2json, cached) and returns the tallies. */
export function runWastFile(file: string): FileResult {
  const t0 = Date.now();
  const conv = convertWast(file);
  const r: FileResult = { file, aot: tally(), v8: tally(), rejectedWithSpecText: 0, rejectedAsUnsupported: 0, rejectedOther: 0, textMalformed: 0, ms: 0 };
  const run = new FileRun(conv, r);
  try {
    run.all();
  } finally {
    run.dispose();
  }
  r.ms = Date.now() - t0;
  return r;
}

class FileRun {
  private readonly aotInstances: HostInstance[] = [];
  private aotCurrent: AotSlot | null = null;
  private v8Current: V8Slot | null = null;
  private readonly aotNamed = new Map<string, AotSlot>();
  private readonly v8Named = new Map<string, V8Slot>();
  private readonly aotRegistered = new Map<string, AotSlot>();
  private readonly v8Registered = new Map<string, Record<string, unknown>>();
  private readonly externs = new Map<string, object>();
  /** A trap raised inside an import that called into another AOT instance (it cannot unwind the caller's frames). */
  private pendingTrap = 0;
  /** Set when a call reached a tainted instance through an import: the assertion is skipped with its reason. */
  private pendingTaint: string | null = null;
  private readonly spectestV8: Record<string, unknown>;

  constructor(private readonly conv: Converted, private readonly r: FileResult) {
    this.spectestV8 = new V8.Instance(new V8.Module(spectestWasm()), {}).exports;
  }

  dispose(): void {
    for (const i of this.aotInstances) i.dispose();
    this.spectestMemory?.buffer.dispose();
  }

  all(): void {
    // Commands wast2json could not parse come back as "dropped": a module's reason covers its assertions too.
    const dropped = [...this.conv.dropped];
    let droppedReason = "";
    for (const c of this.conv.commands) {
      while (dropped.length && dropped[0]!.line < c.line) {
        const d = dropped.shift()!;
        if (d.kind === "module") droppedReason = `${featureOf(d.text)} (module text wast2json 1.0.32 cannot parse)`;
        const reason = d.kind === "module" ? droppedReason : droppedReason || "unparseable by wast2json 1.0.32";
        skip(this.r.aot, reason);
        skip(this.r.v8, reason);
        if (d.kind === "module") {
          this.aotCurrent = { kind: "skip", reason };
          this.v8Current = { kind: "broken", why: reason };
          if (d.name) {
            this.aotNamed.set(d.name, this.aotCurrent);
            this.v8Named.set(d.name, this.v8Current);
          }
        }
      }
      this.command(c);
    }
    for (let i = 0; i < dropped.length; i++) {
      skip(this.r.aot, droppedReason || "unparseable by wast2json 1.0.32");
      skip(this.r.v8, droppedReason || "unparseable by wast2json 1.0.32");
    }
  }

  private command(c: WastCommand): void {
    switch (c.type) {
      case "module": return this.module(c);
      case "register": {
        const a = c.name ? this.aotNamed.get(c.name) : this.aotCurrent;
        const v = c.name ? this.v8Named.get(c.name) : this.v8Current;
        if (a) this.aotRegistered.set(c.as!, a);
        if (v?.kind === "ok") this.v8Registered.set(c.as!, v.exports);
        return;
      }
      case "action": case "assert_return": case "assert_trap": case "assert_exhaustion":
        this.aotAction(c);
        this.v8Action(c);
        return;
      case "assert_invalid": case "assert_malformed":
        if (c.module_type === "text") {
          this.r.textMalformed++;
          skip(this.r.aot, "text-format assert_malformed (wast2json writes no binary)");
          skip(this.r.v8, "text-format assert_malformed (wast2json writes no binary)");
          return;
        }
        return this.rejected(c);
      case "assert_unlinkable": case "assert_uninstantiable":
        return this.uninstantiable(c);
      default:
        fail(this.r.aot, c.line, `unknown command ${c.type}`);
    }
  }

  // ---- modules ----

  private module(c: WastCommand): void {
    const bytes = this.conv.wasm(c.filename!);
    const a = this.instantiateAot(bytes, c.line, true);
    this.aotCurrent = a;
    let v: V8Slot;
    try {
      v = { kind: "ok", exports: this.instantiateV8(bytes) };
    } catch (e) {
      fail(this.r.v8, c.line, `V8 rejected a valid module: ${(e as Error).message}`);
      v = { kind: "broken", why: "V8 rejected the module" };
    }
    this.v8Current = v;
    if (c.name) {
      this.aotNamed.set(c.name, a);
      this.v8Named.set(c.name, v);
    }
  }

  /** Compiles and instantiates; counts the module command itself (pass, or skip when unsupported). */
  private instantiateAot(bytes: Uint8Array, line: number, count: boolean): AotSlot {
    let compiled: CompiledModule;
    const t = this.r.aot;
    const maxPages = this.importedMemoryMax(bytes);
    try {
      compiled = compileWasm(bytes, { hostThunks: true, ...(maxPages === undefined ? {} : { maxPages }) });
    } catch (e) {
      if (e instanceof UnsupportedError) {
        const reason = e.feature;
        this.taintProviders(bytes, reason);
        if (count) skip(t, reason);
        return { kind: "skip", reason };
      }
      if (count) fail(t, line, `rejected a valid module: ${(e as Error).message}`);
      return { kind: "broken", why: (e as Error).message };
    }
    const link = this.linkAot(compiled, decodeModule(bytes));
    if (typeof link === "string") {
      if (link.startsWith("skip:")) {
        this.taintProviders(bytes, link.slice(5));
        if (count) skip(t, link.slice(5));
        return { kind: "skip", reason: link.slice(5) };
      }
      if (count) fail(t, line, link);
      return { kind: "broken", why: link };
    }
    let inst: HostInstance;
    try {
      inst = this.newInstance(compiled, link);
    } catch (e) {
      const why = e instanceof HostTrap ? `start function trapped: ${e.message}` : (e as Error).message;
      if (count) fail(t, line, why);
      return { kind: "broken", why };
    }
    const decoded = decodeModule(bytes);
    const globals = new Map<string, number>();
    const globalTypes = new Map<string, { type: number; mutable: boolean }>();
    const exportKinds = new Map<string, string>();
    const allGlobals = [
      ...decoded.imports.flatMap((i) => (i.desc.kind === "global" ? [{ type: i.desc.type, mutable: i.desc.mutable }] : [])),
      ...decoded.globals.map((g) => ({ type: g.type, mutable: g.mutable })),
    ];
    for (const ex of decoded.exports) {
      exportKinds.set(ex.name, ex.kind);
      if (ex.kind === "global") {
        globals.set(ex.name, ex.index);
        globalTypes.set(ex.name, allGlobals[ex.index]!);
      }
    }
    let group = link.group;
    if (!group && compiled.memory) {
      group = { buffer: inst.memoryBuffer!, pages: inst.memoryPages, declaredMax: decoded.memories[0]?.max ?? null, reserved: compiled.memory.maxPages };
    }
    const m: AotModule = { inst, compiled, globals, globalTypes, group, exportKinds };
    link.holder.m = m;
    if (count) pass(t);
    return { kind: "ok", m };
  }

  /** Instantiates with the link's imports and memory binding; the group's size follows the instantiation. */
  private newInstance(compiled: CompiledModule, link: Link): HostInstance {
    const g = link.group;
    const inst = new HostInstance(compiled, link.imports, {}, { globals: link.globals, ...(g ? { memory: { pages: g.pages, buffer: g.buffer } } : {}) });
    this.aotInstances.push(inst);
    if (g) g.pages = inst.memoryPages; // the start function may have grown it
    return inst;
  }

  /** Control enters instance m: it sees its memory's current size. */
  private enter(m: AotModule): void {
    if (m.group) m.inst.memoryPages = m.group.pages;
  }
  /** Control leaves instance m: its memory.grow calls become the memory's size. */
  private leave(m: AotModule): void {
    if (m.group) m.group.pages = m.inst.memoryPages;
  }

  /**
   * A module this runner cannot run may still change the state (table, memory, globals) of an instance it imports
   * from, so later assertions on that instance are skipped for the same reason.
   */
  private taintProviders(bytes: Uint8Array, reason: string): void {
    let m: Module;
    try {
      m = decodeModule(bytes);
    } catch {
      return;
    }
    for (const imp of m.imports) {
      if (imp.desc.kind === "func") continue;
      const p = this.aotRegistered.get(imp.module);
      if (p?.kind === "ok") this.tainted.set(p.m.inst, `${reason} (in a module sharing its ${imp.desc.kind})`);
    }
  }
  private readonly tainted = new Map<HostInstance, string>();

  /** An imported memory's cap is its provider's (spectest's: 2 pages), so memory.grow agrees with V8. */
  private importedMemoryMax(bytes: Uint8Array): number | undefined {
    try {
      const m = decodeModule(bytes);
      const imp = m.imports.find((i) => i.desc.kind === "memory");
      if (!imp) return undefined;
      if (imp.module === "spectest") return 2;
      const p = this.aotRegistered.get(imp.module);
      return p?.kind === "ok" && p.m.group ? p.m.group.reserved : undefined;
    } catch {
      return undefined;
    }
  }

  /** The import object for an AOT instance, "skip:reason" when a provider is unsupported, or a link error. */
  private linkAot(c: CompiledModule, m: Module): Link | string {
    const out: Record<string, Record<string, HostImport>> = {};
    const holder: { m: AotModule | null } = { m: null };
    for (const imp of c.imports) {
      if (imp.intrinsic) continue;
      let fn: HostImport;
      if (imp.module === "spectest") {
        const sig = SPECTEST_FUNCS[imp.name];
        if (!sig) return `unknown import spectest.${imp.name}`;
        if (sig !== `${imp.params.join()}>${imp.results.join()}`) return `incompatible import type spectest.${imp.name}`;
        fn = () => undefined;
      } else {
        const p = this.aotRegistered.get(imp.module);
        if (!p) return `unknown import module ${imp.module}`;
        if (p.kind === "skip") return `skip:${p.reason}`;
        if (p.kind === "broken") return `import from a broken module: ${p.why}`;
        const ex = p.m.compiled.exports.find((e) => e.name === imp.name);
        if (!ex) return `${p.m.exportKinds.has(imp.name) ? "incompatible import type" : "unknown import"} ${imp.module}.${imp.name}`;
        if (ex.params.join() !== imp.params.join() || ex.results.join() !== imp.results.join()) return `incompatible import type ${imp.module}.${imp.name}`;
        const callee = p.m;
        fn = (...args: bigint[]) => {
          const t = this.tainted.get(callee.inst);
          if (t) this.pendingTaint ??= t;
          if (this.pendingTrap) return 0n;
          const caller = holder.m;
          if (caller) this.leave(caller);
          this.enter(callee);
          const res = callee.inst.call(imp.name, args);
          this.leave(callee);
          if (caller) this.enter(caller);
          if (res.trap) this.pendingTrap = res.trap;
          return res.value;
        };
      }
      (out[imp.module] ??= {})[imp.name] = fn;
    }
    let group: MemGroup | null = null;
    for (const imp of m.imports) {
      if (imp.desc.kind !== "memory") continue;
      const l = imp.desc.limits;
      if (imp.module === "spectest") {
        if (imp.name !== "memory") return `unknown import spectest.${imp.name}`;
        group = this.spectestMemory ??= { buffer: new HostBuffer(2 * 65536), pages: 1, declaredMax: 2, reserved: 2 };
      } else {
        const p = this.aotRegistered.get(imp.module);
        if (!p) return `unknown import module ${imp.module}`;
        if (p.kind === "skip") return `skip:${p.reason}`;
        if (p.kind === "broken") return `import from a broken module: ${p.why}`;
        const kind = p.m.exportKinds.get(imp.name);
        if (kind !== "memory") return `${kind ? "incompatible import type" : "unknown import"} ${imp.module}.${imp.name}`;
        group = p.m.group!;
      }
      if (l.min > group.pages || (l.max !== null && (group.declaredMax === null || group.declaredMax > l.max))) return `incompatible import type ${imp.module}.${imp.name}`;
    }
    const globals: Record<string, Record<string, bigint | { inst: HostInstance; index: number }>> = {};
    for (const imp of m.imports) {
      if (imp.desc.kind !== "global") continue;
      const want = imp.desc;
      let value: bigint | { inst: HostInstance; index: number };
      if (imp.module === "spectest") {
        const t = SPECTEST_GLOBALS[imp.name];
        if (!t) return `unknown import spectest.${imp.name}`;
        if (t !== want.type || want.mutable) return `incompatible import type spectest.${imp.name}`;
        value = 666n;
      } else {
        const p = this.aotRegistered.get(imp.module);
        if (!p) return `unknown import module ${imp.module}`;
        if (p.kind === "skip") return `skip:${p.reason}`;
        if (p.kind === "broken") return `import from a broken module: ${p.why}`;
        const g = p.m.globalTypes.get(imp.name);
        if (!g) return `${p.m.exportKinds.has(imp.name) ? "incompatible import type" : "unknown import"} ${imp.module}.${imp.name}`;
        if (g.type !== want.type || g.mutable !== want.mutable) return `incompatible import type ${imp.module}.${imp.name}`;
        const index = p.m.globals.get(imp.name)!;
        value = want.mutable ? { inst: p.m.inst, index } : p.m.inst.global(index);
      }
      (globals[imp.module] ??= {})[imp.name] = value;
    }
    return { imports: out, group, holder, globals };
  }
  private spectestMemory: MemGroup | null = null;

  private instantiateV8(bytes: Uint8Array): Record<string, unknown> {
    const imports: Record<string, Record<string, unknown>> = { spectest: this.spectestV8 };
    for (const [k, v] of this.v8Registered) imports[k] = v;
    return new V8.Instance(new V8.Module(bytes), imports).exports;
  }

  // ---- actions ----

  private aotTarget(a: WastAction): AotSlot | null {
    return a.module ? (this.aotNamed.get(a.module) ?? null) : this.aotCurrent;
  }

  /** Runs the action on the AOT instance: the results (unsigned bigints), or an Interrupt for a trap. */
  private aotRun(m: AotModule, a: WastAction): bigint[] | Interrupt {
    if (a.type === "get") {
      const g = m.globals.get(a.field);
      if (g === undefined) throw new Error(`no global export ${a.field}`);
      return [m.inst.global(g)];
    }
    this.pendingTrap = 0;
    this.enter(m);
    const res = m.inst.call(a.field, (a.args ?? []).map((v) => BigInt(v.value as string)));
    this.leave(m);
    const trap = res.trap || this.pendingTrap;
    this.pendingTrap = 0;
    if (trap) return new Interrupt(trap);
    const e = m.compiled.exports.find((x) => x.name === a.field)!;
    return e.results.length ? [res.value] : [];
  }

  private aotAction(c: WastCommand): void {
    const t = this.r.aot;
    const slot = this.aotTarget(c.action!);
    if (!slot) return fail(t, c.line, `no module for ${c.action!.field}`);
    if (slot.kind === "skip") return skip(t, slot.reason);
    if (slot.kind === "broken") return fail(t, c.line, `module failed earlier: ${slot.why}`);
    const tainted = this.tainted.get(slot.m.inst);
    if (tainted) return skip(t, tainted);
    let out: bigint[] | Interrupt;
    this.pendingTaint = null;
    try {
      out = this.aotRun(slot.m, c.action!);
    } catch (e) {
      return fail(t, c.line, `${c.action!.field}: ${(e as Error).message}`);
    }
    if (this.pendingTaint) return skip(t, this.pendingTaint);
    this.judge(t, c, out instanceof Interrupt ? { trap: out.trap } : { values: out }, (v, w) => matchInt(v as bigint, w));
  }

  private v8Action(c: WastCommand): void {
    const t = this.r.v8;
    const a = c.action!;
    const slot = a.module ? this.v8Named.get(a.module) : this.v8Current;
    if (!slot) return fail(t, c.line, `no module for ${a.field}`);
    if (slot.kind === "broken") return skip(t, slot.why);
    // A NaN's payload does not survive a JS number (V8 may quiet a signalling NaN on the way in).
    if ((a.args ?? []).some(signallingNaN)) return skip(t, "signalling NaN argument (V8 quiets it on the way through a JS number)");
    let outcome: { trap: number } | { values: unknown[] };
    try {
      if (a.type === "get") outcome = { values: [(slot.exports[a.field] as { value: unknown }).value] };
      else {
        const f = slot.exports[a.field] as (...x: unknown[]) => unknown;
        const r = f(...(a.args ?? []).map((v) => this.toJs(v)));
        outcome = { values: c.expected && c.expected.length > 1 ? [...(r as unknown[])] : r === undefined ? [] : [r] };
      }
    } catch (e) {
      if (e instanceof RangeError || /call stack/i.test(String(e))) outcome = { trap: Trap.StackOverflow };
      else if (e instanceof V8.RuntimeError) outcome = { trap: -1 };
      else return fail(t, c.line, `${a.field}: ${(e as Error).message}`);
    }
    this.judge(t, c, outcome, (v, w) => this.matchJs(v, w));
  }

  private judge(t: EngineTally, c: WastCommand, out: { trap: number } | { values: unknown[] }, match: (v: unknown, w: WastValue) => boolean): void {
    const what = `${c.action!.field}(${(c.action!.args ?? []).map((x) => x.value).join(", ")})`;
    if (c.type === "action") return "trap" in out && out.trap !== Trap.StackOverflow && out.trap > 0 ? fail(t, c.line, `${what} trapped ${out.trap}`) : pass(t);
    if (c.type === "assert_return") {
      if ("trap" in out) return fail(t, c.line, `${what}: trapped (${out.trap}), expected a result`);
      const exp = c.expected ?? [];
      if (out.values.length !== exp.length || !exp.every((w, i) => match(out.values[i], w))) {
        return fail(t, c.line, `${what}: got ${out.values.map(String).join(", ")}, expected ${exp.map((w) => w.value).join(", ")}`);
      }
      return pass(t);
    }
    // assert_trap / assert_exhaustion
    if (!("trap" in out)) return fail(t, c.line, `${what}: returned ${out.values.map(String).join(", ")}, expected trap "${c.text}"`);
    if (c.type === "assert_exhaustion") return out.trap === Trap.StackOverflow ? pass(t) : fail(t, c.line, `${what}: trap ${out.trap}, expected stack exhaustion`);
    if (out.trap === -1) return pass(t); // V8: a RuntimeError; its message wording is V8's own
    const want = trapOfText(c.text ?? "");
    return want.includes(out.trap) ? pass(t) : fail(t, c.line, `${what}: trap ${out.trap}, expected "${c.text}"`);
  }

  private toJs(v: WastValue): unknown {
    const s = v.value as string;
    switch (v.type) {
      case "i32": return Number(BigInt.asIntN(32, BigInt(s)));
      case "i64": return BigInt.asIntN(64, BigInt(s));
      case "f32": { const dv = new DataView(new ArrayBuffer(4)); dv.setUint32(0, Number(s)); return dv.getFloat32(0); }
      case "f64": { const dv = new DataView(new ArrayBuffer(8)); dv.setBigUint64(0, BigInt(s)); return dv.getFloat64(0); }
      case "externref": return s === "null" ? null : this.extern(s);
      case "funcref": return null;
      default: throw new Error(`argument type ${v.type}`);
    }
  }

  private extern(s: string): object {
    let o = this.externs.get(s);
    if (!o) this.externs.set(s, (o = { externref: s }));
    return o;
  }

  private matchJs(v: unknown, w: WastValue): boolean {
    const s = w.value as string | undefined;
    switch (w.type) {
      case "i32": return typeof v === "number" && BigInt(v >>> 0) === BigInt(s!);
      case "i64": return typeof v === "bigint" && BigInt.asUintN(64, v) === BigInt(s!);
      case "f32": case "f64": {
        if (typeof v !== "number") return false;
        if (s!.startsWith("nan:")) return Number.isNaN(v);
        const dv = new DataView(new ArrayBuffer(8));
        if (w.type === "f32") {
          dv.setFloat32(0, v);
          const bits = dv.getUint32(0);
          // A NaN's payload does not survive the trip through a JS number: any NaN matches an expected NaN.
          return Number.isNaN(v) ? (Number(s) & 0x7f800000) === 0x7f800000 && (Number(s) & 0x7fffff) !== 0 : bits === Number(s);
        }
        dv.setFloat64(0, v);
        const exp = BigInt(s!);
        return Number.isNaN(v) ? (exp & 0x7ff0000000000000n) === 0x7ff0000000000000n && (exp & 0xfffffffffffffn) !== 0n : dv.getBigUint64(0) === exp;
      }
      case "externref": return s === "null" ? v === null : v === this.extern(s!);
      case "funcref": return s === "null" ? v === null : typeof v === "function";
      default: return false;
    }
  }

  // ---- modules that must not compile, link or instantiate ----

  private rejected(c: WastCommand): void {
    const bytes = this.conv.wasm(c.filename!);
    try {
      new V8.Module(bytes);
      fail(this.r.v8, c.line, `V8 accepted a module the suite calls ${c.type === "assert_invalid" ? "invalid" : "malformed"} ("${c.text}")`);
    } catch {
      pass(this.r.v8);
    }
    try {
      compileWasm(bytes);
      fail(this.r.aot, c.line, `accepted a module the suite calls ${c.type === "assert_invalid" ? "invalid" : "malformed"} ("${c.text}")`);
    } catch (e) {
      if (!(e instanceof CompileError || e instanceof DecodeError)) return fail(this.r.aot, c.line, `crashed on an invalid module: ${String(e)}`);
      pass(this.r.aot);
      const msg = e.message;
      if (msg.includes(c.text ?? "\0")) this.r.rejectedWithSpecText++;
      else if (e instanceof UnsupportedError) this.r.rejectedAsUnsupported++;
      else this.r.rejectedOther++;
    }
  }

  private uninstantiable(c: WastCommand): void {
    const bytes = this.conv.wasm(c.filename!);
    try {
      this.instantiateV8(bytes);
      fail(this.r.v8, c.line, `V8 instantiated a module the suite calls ${c.type === "assert_unlinkable" ? "unlinkable" : "uninstantiable"} ("${c.text}")`);
    } catch (e) {
      const ok = c.type === "assert_unlinkable" ? e instanceof V8.LinkError : e instanceof V8.RuntimeError;
      if (ok) pass(this.r.v8);
      else fail(this.r.v8, c.line, `V8: ${(e as Error).message}`);
    }
    // The AOT compiler rejects at compile time what instantiation would refuse (data/element segments outside the
    // initial memory/table); a trap in the start function surfaces from the instance's constructor.
    let compiled: CompiledModule;
    try {
      const maxPages = this.importedMemoryMax(bytes);
      compiled = compileWasm(bytes, { hostThunks: true, ...(maxPages === undefined ? {} : { maxPages }) });
    } catch (e) {
      if (e instanceof UnsupportedError) {
        this.taintProviders(bytes, e.feature);
        return skip(this.r.aot, e.feature);
      }
      if (c.type === "assert_uninstantiable" && e instanceof CompileError && /instantiation would fail/.test(e.message)) return pass(this.r.aot);
      return fail(this.r.aot, c.line, `rejected at compile time: ${(e as Error).message}`);
    }
    const link = this.linkAot(compiled, decodeModule(bytes));
    if (typeof link === "string") {
      if (link.startsWith("skip:")) {
        this.taintProviders(bytes, link.slice(5));
        return skip(this.r.aot, link.slice(5));
      }
      return c.type === "assert_unlinkable" ? pass(this.r.aot) : fail(this.r.aot, c.line, link);
    }
    try {
      this.newInstance(compiled, link);
      fail(this.r.aot, c.line, `instantiated a module the suite calls ${c.type === "assert_unlinkable" ? "unlinkable" : "uninstantiable"} ("${c.text}")`);
    } catch (e) {
      if (c.type === "assert_uninstantiable" && (e instanceof HostTrap || /out of bounds/.test((e as Error).message))) return pass(this.r.aot);
      fail(this.r.aot, c.line, (e as Error).message);
    }
  }
}

/** AOT results are unsigned (i32 as its 32-bit value). */
function matchInt(v: bigint, w: WastValue): boolean {
  if (w.type !== "i32" && w.type !== "i64") return false;
  return v === BigInt(w.value as string);
}

function signallingNaN(v: WastValue): boolean {
  if (v.type === "f32") {
    const b = Number(v.value);
    return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0 && (b & 0x400000) === 0;
  }
  if (v.type === "f64") {
    const b = BigInt(v.value as string);
    return (b & 0x7ff0000000000000n) === 0x7ff0000000000000n && (b & 0xfffffffffffffn) !== 0n && (b & 0x8000000000000n) === 0n;
  }
  return false;
}
