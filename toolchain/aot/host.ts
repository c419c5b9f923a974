// Runs an AOT-compiled module on this machine (Linux x86-64) for tests and benchmarks: maps the code with
// toolchain/x64/native.ts, reserves linear memory up to its maximum, fills the VM context (globals, imports as koffi
// callbacks, table, trap handler) and calls exports through their System V entry thunks. Not used by images.
import koffi from "koffi";
import { ExecRegion, HostBuffer } from "../x64/native.ts";
import { Ctx, TRAP_NAMES } from "./abi.ts";
import { type CompileOptions, type CompiledModule, compileWasm } from "./compile.ts";
import { ValType } from "./decode.ts";
import { INTRINSICS } from "./intrinsics.ts";

export type HostImport = (...args: bigint[]) => bigint | number | void;

export interface CallResult {
  /** 0, or the trap code (abi.ts Trap). */
  trap: number;
  /** The result (i32 results as their unsigned 32-bit value), 0n when there is none or on a trap. */
  value: bigint;
  /** For hw.panic: the first argument (message pointer). */
  detail: bigint;
}

/** What an instance is bound to besides functions: an imported memory and imported globals' values. */
export interface HostBinding {
  memory?: { pages: number; buffer?: HostBuffer };
  /** Imported globals: a value (immutable ones), or the exporting instance and its global index (mutable ones). */
  globals?: Record<string, Record<string, bigint | { inst: HostInstance; index: number }>>;
}

export class HostTrap extends Error {
  constructor(readonly code: number, readonly detail: bigint) {
    super(`wasm trap ${code}: ${TRAP_NAMES[code] ?? "unknown"}`);
  }
}

/**
 * The koffi callback type of an import signature. koffi type names are process-wide, so each signature is declared
 * once and shared by every instance (a name per import index collided as soon as two instances had imports).
 */
const protos = new Map<string, ReturnType<typeof koffi.proto>>();
function importProto(params: number[], results: number[]): ReturnType<typeof koffi.proto> {
  const ty = (t: number) => (t === ValType.I64 ? "uint64_t" : "uint32_t");
  const ret = results.length ? ty(results[0]!) : "void";
  const key = `${ret}(${params.map(ty).join(", ")})`;
  let p = protos.get(key);
  if (!p) {
    p = koffi.proto(`${ret} uv_import_${protos.size}(${params.map(ty).join(", ")})`);
    protos.set(key, p);
  }
  return p;
}

/** Bytes of native stack generated code may use below the entry thunk before calls trap (the call-depth limit). */
const STACK_BUDGET = 512 * 1024;

export class HostInstance {
  readonly compiled: CompiledModule;
  private readonly code: ExecRegion;
  private readonly ctx: HostBuffer;
  private readonly mem: HostBuffer | null;
  private readonly ownsMemory: boolean;
  private readonly scratch: HostBuffer;
  private readonly callbacks: unknown[] = [];
  /** The JS functions bound to non-intrinsic imports, by function index (re-exported imports are called directly). */
  private readonly importFns: ((args: bigint[]) => bigint)[] = [];
  /** Imported mutable globals: the instance and index that own the cell. */
  private readonly cells: ({ inst: HostInstance; index: number } | undefined)[] = [];
  private readonly exportsByName = new Map<string, CompiledModule["exports"][number]>();

  /**
   * `binding.memory` binds an imported memory: its current size in pages (default: the import's minimum; data
   * segments are checked against it, as instantiation does) and optionally the buffer of another instance's memory to
   * share (`HostInstance.memoryBuffer`; it must be reserved up to this module's maximum). Instances sharing a buffer
   * keep their own size fields: the embedder copies `memoryPages` across when control passes between them.
   * `binding.globals` gives the values of imported (immutable) globals, by module and name.
   */
  constructor(wasmOrCompiled: Uint8Array | CompiledModule, imports: Record<string, Record<string, HostImport>> = {}, opts: CompileOptions = {}, binding: HostBinding = {}) {
    const memory = binding.memory;
    const c = wasmOrCompiled instanceof Uint8Array ? compileWasm(wasmOrCompiled, { ...opts, hostThunks: true }) : wasmOrCompiled;
    if (c.hostTrap < 0) throw new Error("HostInstance needs a module compiled with hostThunks: true");
    if (c.memoryBase !== null) throw new Error("HostInstance runs modules with the memory base in r15; memoryBase is for identity-mapped images");
    for (const imp of c.imports) {
      // A privileged sequence (hlt, in/out, mov cr3, int 0x80 ...) at ring 3 kills this process with a signal
      // instead of returning a wasm trap: refuse it up front.
      if (imp.intrinsic && !INTRINSICS.get(imp.intrinsic)!.hostSafe) {
        throw new Error(`import hw.${imp.intrinsic} is a privileged intrinsic (docs/specs/intrinsics.md): it runs only in the bare-metal image, not in a host process`);
      }
    }
    this.compiled = c;
    this.code = new ExecRegion(c.code.length).load(c.code);
    const base = this.code.address;
    this.ctx = new HostBuffer(c.layout.size);
    this.scratch = new HostBuffer(8 * 64);
    const pages = c.memory ? (c.memoryImported && memory ? memory.pages : c.memory.minPages) : 0;
    if (c.memory && pages > c.memory.maxPages) throw new Error(`imported memory of ${pages} pages exceeds the module's maximum of ${c.memory.maxPages}`);
    const shared = c.memoryImported ? memory?.buffer : undefined;
    if (shared && shared.bytes.length < c.memory!.maxPages * 65536) throw new Error(`shared memory of ${shared.bytes.length} bytes is smaller than the module's maximum of ${c.memory!.maxPages} pages`);
    this.ownsMemory = !shared;
    this.mem = shared ?? (c.memory ? new HostBuffer(Math.max(1, c.memory.maxPages) * 65536) : null);
    const v = this.ctx.view;
    v.setBigUint64(Ctx.MemBase, this.mem ? this.mem.address : 0n, true);
    v.setBigUint64(Ctx.MemSize, BigInt(pages * 65536), true);
    v.setBigUint64(Ctx.MemMaxPages, BigInt(c.memory?.maxPages ?? 0), true);
    v.setBigUint64(Ctx.TrapHandler, base + BigInt(c.hostTrap), true);
    v.setBigUint64(Ctx.StackBudget, BigInt(STACK_BUDGET), true);
    v.setBigUint64(Ctx.TableSize, BigInt(c.table.length), true);
    const imported = c.globalImports.map((g) => {
      const x = binding.globals?.[g.module]?.[g.name];
      if (x === undefined) throw new Error(`missing import ${g.module}.${g.name} (global)`);
      if ((typeof x === "bigint") === g.mutable) throw new Error(`import ${g.module}.${g.name}: a ${g.mutable ? "mutable global needs the exporting instance" : "constant global needs a value"}`);
      if (typeof x !== "bigint") this.cells[g.index] = x;
      return typeof x === "bigint" ? x : x.inst.global(x.index);
    });
    c.globals.forEach((g, i) => {
      const cell = this.cells[i];
      v.setBigUint64(c.layout.globals + 8 * i, cell ? cell.inst.globalAddress(cell.index) : BigInt.asUintN(64, g.fromImport >= 0 ? imported[g.fromImport]! : g.init), true);
    });
    const setEntry = (e: { func: number | null; sig: number }, i: number) => {
      v.setBigUint64(c.layout.table + 16 * i, e.func === null ? 0n : base + BigInt(c.funcOffsets[e.func]!), true);
      v.setBigInt64(c.layout.table + 16 * i + 8, BigInt(e.sig), true);
    };
    c.table.forEach(setEntry);
    for (const t of c.tableInits) {
      const at = t.offsetImport >= 0 ? Number(BigInt.asUintN(32, imported[t.offsetImport]!)) : t.offset;
      if (at + t.entries.length > c.table.length) {
        this.dispose();
        throw new Error(`element segment at ${at} (+${t.entries.length}) is outside the table of ${c.table.length} (out of bounds table access)`);
      }
      t.entries.forEach((e, i) => setEntry(e, at + i));
    }
    for (const imp of c.imports) {
      if (imp.intrinsic) continue;
      const fn = imports[imp.module]?.[imp.name];
      if (!fn) throw new Error(`missing import ${imp.module}.${imp.name}`);
      const proto = importProto(imp.params, imp.results);
      this.importFns[imp.func] = (args) => {
        const r = fn(...args.map((x, i) => BigInt.asUintN(imp.params[i] === ValType.I64 ? 64 : 32, x)));
        return imp.results.length ? BigInt.asUintN(imp.results[0] === ValType.I64 ? 64 : 32, BigInt(r ?? 0)) : 0n;
      };
      const cb = koffi.register((...args: (number | bigint)[]) => {
        // koffi hands a uint64_t at or above 2^63 over as a negative value: normalise to the unsigned view the
        // HostImport contract promises (an import that shifts or compares its arguments would see the difference).
        const r = fn(...args.map((x, i) => BigInt.asUintN(imp.params[i] === ValType.I64 ? 64 : 32, BigInt(x))));
        if (!imp.results.length) return undefined;
        const big = BigInt(r ?? 0);
        return imp.results[0] === ValType.I64 ? BigInt.asUintN(64, big) : Number(BigInt.asUintN(32, big));
      }, koffi.pointer(proto));
      this.callbacks.push(cb);
      v.setBigUint64(imp.slot, BigInt(koffi.address(cb as never)), true);
    }
    for (const e of c.exports) this.exportsByName.set(e.name, e);
    // Data segments in order, each checked against the current size (wasm 2.0: the ones before a failing segment stay
    // written, which another instance sharing an imported memory can see).
    for (const d of c.datas) {
      const at = d.offsetImport >= 0 ? Number(BigInt.asUintN(32, imported[d.offsetImport]!)) : d.offset;
      if (!this.mem || at + d.bytes.length > pages * 65536) {
        this.dispose();
        throw new Error(`data segment at ${at} (+${d.bytes.length}) is outside the memory of ${pages} pages (out of bounds memory access)`);
      }
      this.mem.bytes.set(d.bytes, at);
    }
    if (c.start >= 0) {
      const r = this.callThunk(c.start, []);
      if (r.trap) throw new HostTrap(r.trap, r.detail);
    }
    if (c.startImport >= 0) this.callImport(c.startImport, []);
  }

  /** The linear memory's current bytes (a live view, no copy). */
  get memory(): Uint8Array {
    if (!this.mem) return new Uint8Array(0);
    const size = Number(this.ctx.view.getBigUint64(Ctx.MemSize, true));
    return this.mem.bytes.subarray(0, size);
  }

  /** The buffer behind linear memory (to share it with an instance that imports this memory), or null. */
  get memoryBuffer(): HostBuffer | null {
    return this.mem;
  }

  /** The current memory size in pages (the size field memory.size/grow and the bounds checks use). */
  get memoryPages(): number {
    return Number(this.ctx.view.getBigUint64(Ctx.MemSize, true)) / 65536;
  }
  set memoryPages(pages: number) {
    this.ctx.view.setBigUint64(Ctx.MemSize, BigInt(pages * 65536), true);
  }

  /** memory.grow from the embedder's side: returns the old page count, or −1 past the maximum. */
  growMemory(pages: number): number {
    const v = this.ctx.view;
    const old = Number(v.getBigUint64(Ctx.MemSize, true)) / 65536;
    if (!this.compiled.memory || old + pages > this.compiled.memory.maxPages) return -1;
    v.setBigUint64(Ctx.MemSize, BigInt((old + pages) * 65536), true);
    return old;
  }

  global(i: number): bigint {
    const cell = this.cells[i];
    if (cell) return cell.inst.global(cell.index);
    return this.ctx.view.getBigUint64(this.compiled.layout.globals + 8 * i, true);
  }

  /** The address of the 8 bytes holding global i (what an importer of it as a mutable global points at). */
  globalAddress(i: number): bigint {
    const cell = this.cells[i];
    if (cell) return cell.inst.globalAddress(cell.index);
    return this.ctx.address + BigInt(this.compiled.layout.globals + 8 * i);
  }

  exportNames(): string[] {
    return [...this.exportsByName.keys()];
  }

  /**
   * Calls an export with integer arguments (numbers or bigints; i32 arguments are taken modulo 2^32). `abi: "ms"`
   * enters through the Microsoft x64 thunk (module compiled with msThunks) via the module's test adapter.
   */
  call(name: string, args: (number | bigint)[], abi: "sysv" | "ms" = "sysv"): CallResult {
    const e = this.exportsByName.get(name);
    if (!e) throw new Error(`no exported function "${name}" (exports: ${this.exportNames().join(", ")})`);
    if (args.length !== e.params.length) throw new Error(`${name} takes ${e.params.length} arguments, got ${args.length}`);
    if (abi === "ms" && (e.msThunk < 0 || this.compiled.msAdapter < 0)) throw new Error(`${name}: compiled without msThunks`);
    if (e.thunk < 0 && e.func < this.compiled.imports.length) {
      // A re-exported import: no code of ours runs, the bound function is called directly.
      return { trap: 0, value: this.callImport(e.func, args.map((x, i) => BigInt.asUintN(e.params[i] === ValType.I64 ? 64 : 32, BigInt(x)))), detail: 0n };
    }
    const r = this.callThunk(abi === "ms" ? e.msThunk : e.thunk, args.map((x, i) => (e.params[i] === ValType.I32 ? BigInt.asUintN(32, BigInt(x)) : BigInt.asUintN(64, BigInt(x)))), abi === "ms");
    if (r.trap === 0 && e.results[0] === ValType.I32) r.value = BigInt.asUintN(32, r.value);
    if (r.trap === 0 && e.results.length === 0) r.value = 0n;
    return r;
  }

  private callImport(func: number, args: bigint[]): bigint {
    const fn = this.importFns[func];
    if (!fn) throw new Error(`export of import ${this.compiled.imports[func]!.module}.${this.compiled.imports[func]!.name}: an intrinsic runs only inline in compiled code`);
    return fn(args);
  }

  private callThunk(offset: number, args: bigint[], ms = false): CallResult {
    if (args.length > 60) throw new Error("at most 60 arguments");
    const v = this.scratch.view;
    args.forEach((x, i) => v.setBigUint64(16 + 8 * i, x, true));
    v.setBigUint64(0, 0n, true);
    const trap = Number(
      ms
        ? this.code.call(this.compiled.msAdapter, this.code.address + BigInt(offset), this.ctx.address, this.scratch.address + 16n, this.scratch.address)
        : this.code.call(offset, this.ctx.address, this.scratch.address + 16n, this.scratch.address),
    );
    const out = v.getBigUint64(0, true);
    return trap ? { trap, value: 0n, detail: out } : { trap: 0, value: out, detail: 0n };
  }

  dispose(): void {
    for (const cb of this.callbacks) koffi.unregister(cb as never);
    this.code.dispose();
    this.ctx.dispose();
    this.scratch.dispose();
    if (this.ownsMemory) this.mem?.dispose();
  }
}
