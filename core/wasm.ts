// Loads out/core.wasm for TypeScript users (core's bindings, sim/, tests, benches): rebuilds it when stale, supplies
// the simulator's model of the `hw` imports (docs/specs/core-wasm.md) and instantiates it in V8 over a caller-sized memory.
import { readFileSync } from "node:fs";
import { buildCore, coreWasmPath } from "./build.ts";
import { WA, type WasmInstance, type WasmMemory, type WasmModule } from "./webassembly.ts";

/** A fatal error raised by core.wasm through hw.panic: a bug in core or corrupted state, never bad input. */
export class CorePanic extends Error {
  override name = "CorePanic";
}

/** Thrown by a fault injector from inside an hw import to model a processor failure at that point. */
export class InjectedFault extends Error {
  override name = "InjectedFault";
}

export type HwImports = Record<string, unknown>;

export interface LoadOptions {
  /** Linear memory (= host physical memory from address 0). Default: DEFAULT_MEMORY_PAGES. */
  memory?: WasmMemory;
  /** Replaces or adds `hw` imports (for example a `flush` that injects faults). */
  hw?: HwImports;
  /** Where carve() takes scratch from (default: by growing the memory); see Core.carve. */
  carve?: (bytes: number) => number;
}

export interface Core {
  instance: WasmInstance;
  memory: WasmMemory;
  /** Every export of core.wasm, untyped; core's bindings (channel.ts, database.ts, schedule.ts) type the ones they use. */
  exports: Record<string, unknown>;
  /**
   * Fresh zeroed scratch of at least `bytes` that no database page uses, when the memory's owner hands it out itself:
   * a memory shared by many hosts (sim/arena.ts) reserves it up front, since growing a large memory makes V8 account
   * all of it again and collect garbage. Unset: core/channel.ts carve() grows the memory.
   */
  carve?: (bytes: number) => number;
}

const WASM_PAGE = 65536;

/**
 * Pages of 64 KiB of the default memory (8 MiB + 64 KiB): room for the channel and schedule callers' scratch. Core has
 * no static data, so any size instantiates; the database needs its pages (sim/host.ts sizes its own memory).
 */
export const DEFAULT_MEMORY_PAGES = (8 << 20) / WASM_PAGE + 1;

let compiled: WasmModule | undefined;

/** Compiles core.wasm once per process (building it first if a source changed). */
export async function coreModule(): Promise<WasmModule> {
  if (!compiled) {
    await buildCore();
    compiled = new WA.Module(readFileSync(coreWasmPath));
  }
  return compiled as WasmModule;
}

/**
 * The named functions of core.wasm as a typed record; names the missing ones (a stale build) rather than letting a
 * call fail later as "not a function".
 */
export function typedExports<T>(core: Core, names: readonly string[], what: string): T {
  // One record per core and list: platforms ask for them on every definition.
  let byList = exportCache.get(core);
  if (!byList) exportCache.set(core, (byList = new Map()));
  const hit = byList.get(names);
  if (hit) return hit as T;
  const made = makeTypedExports<T>(core, names, what);
  byList.set(names, made);
  return made;
}

const exportCache = new WeakMap<Core, Map<readonly string[], unknown>>();

function makeTypedExports<T>(core: Core, names: readonly string[], what: string): T {
  const missing = names.filter((n) => typeof core.exports[n] !== "function");
  if (missing.length) throw new Error(`core.wasm lacks ${what} exports ${missing.join(", ")}: rebuild it (npx tsx core/build.ts --force)`);
  return Object.fromEntries(names.map((n) => [n, core.exports[n]])) as T;
}

/** Reads an AssemblyScript string (UTF-16LE, byte length in the u32 before it) out of linear memory. */
export function readAsString(memory: WasmMemory, ptr: number): string | null {
  if (ptr === 0) return null;
  const buf = memory.buffer;
  if (ptr < 4 || ptr > buf.byteLength) return `<bad string pointer ${ptr}>`;
  const len = new DataView(buf).getUint32(ptr - 4, true);
  if (ptr + len > buf.byteLength || len % 2 !== 0) return `<bad string at ${ptr}>`;
  return Buffer.from(buf, ptr, len).toString("utf16le");
}

/** Instantiates core.wasm. Instantiation is synchronous after the first compile, so hosts can make many. */
export async function loadCore(opts: LoadOptions = {}): Promise<Core> {
  const module = await coreModule();
  return instantiateCore(module, opts);
}

export function instantiateCore(module: WasmModule, opts: LoadOptions = {}): Core {
  const memory = opts.memory ?? new WA.Memory({ initial: DEFAULT_MEMORY_PAGES });
  const hw: HwImports = {
    panic(msg: number, file: number, line: number, col: number): never {
      const text = readAsString(memory, msg >>> 0) ?? "panic";
      const where = readAsString(memory, file >>> 0);
      throw new CorePanic(where ? `${text} (${where}:${line}:${col})` : text);
    },
    flush(_addr: number, _len: number): void {},
    // Store ordering for channel queues: V8 runs one thread over this memory, so program order already holds.
    mfence(): void {},
    ...opts.hw,
  };
  const missing = WA.Module.imports(module)
    .filter((i) => i.module === "hw" && !(i.name in hw))
    .map((i) => `hw.${i.name}`);
  if (missing.length) {
    throw new Error(`core.wasm imports ${missing.join(", ")}, which core/wasm.ts does not model yet; add it there and to docs/specs/core-wasm.md`);
  }
  const instance = new WA.Instance(module, { env: { memory }, hw });
  const core: Core = { instance, memory, exports: instance.exports as Record<string, unknown> };
  if (opts.carve) core.carve = opts.carve;
  return core;
}
