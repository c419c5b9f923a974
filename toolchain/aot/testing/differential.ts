// The differential oracle for the AOT compiler: runs the same wasm in V8 and as AOT-compiled native code (host.ts)
// and compares results, traps and linear-memory bytes call by call. Shared by the tests, the fuzzer and the
// benchmarks' sanity checks.
import { Trap } from "../abi.ts";
import { type HostImport, HostInstance } from "../host.ts";
import { ValType } from "../decode.ts";
import { WA, type WasmInstance, type WasmMemory } from "../../../core/webassembly.ts";

export interface Call {
  name: string;
  args: bigint[];
}

export interface Outcome {
  trap: number;
  value: bigint;
}

export interface Mismatch {
  call: Call;
  aot: Outcome;
  v8: Outcome;
  what: string;
}

/** Maps a V8 trap to this backend's trap code (null/mismatched call_indirect share one V8 message). */
export function v8TrapCode(e: unknown): number {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof RangeError || /call stack/i.test(msg)) return Trap.StackOverflow;
  if (/unreachable/.test(msg)) return Trap.Unreachable;
  if (/divide by zero|remainder by zero/.test(msg)) return Trap.DivByZero;
  if (/unrepresentable|overflow/.test(msg)) return Trap.IntOverflow;
  if (/memory access out of bounds/.test(msg)) return Trap.MemoryOutOfBounds;
  if (/table index is out of bounds/.test(msg)) return Trap.TableOutOfBounds;
  if (/null function|signature mismatch/.test(msg)) return Trap.SignatureMismatch;
  if (/panic/.test(msg)) return Trap.Panic;
  throw e;
}

const sameTrap = (a: number, b: number): boolean =>
  a === b || ((a === Trap.NullFunction || a === Trap.SignatureMismatch) && (b === Trap.NullFunction || b === Trap.SignatureMismatch));

export interface Pair {
  aot: HostInstance;
  v8: WasmInstance;
  v8Memory: WasmMemory | null;
}

/** Instantiates both engines. `imports` are given as bigint functions and adapted for V8. */
export function instantiateBoth(wasm: Uint8Array, imports: Record<string, Record<string, HostImport>> = {}, maxPages?: number): Pair {
  const wm = new WA.Module(wasm);
  const v8Imports: Record<string, Record<string, unknown>> = {};
  const aot = new HostInstance(wasm, imports, maxPages === undefined ? {} : { maxPages });
  let imported: WasmMemory | null = null;
  for (const d of WA.Module.imports(wm)) {
    if (d.kind === "memory") {
      // Give V8 the same limits the AOT instance got, so memory.grow agrees.
      const lim = aot.compiled.memory!;
      imported = new WA.Memory({ initial: lim.minPages, maximum: lim.maxPages });
      (v8Imports[d.module] ??= {})[d.name] = imported;
      continue;
    }
    if (d.kind !== "function") continue;
    const fn = imports[d.module]?.[d.name];
    if (!fn) throw new Error(`missing import ${d.module}.${d.name}`);
    // Both engines hand the import the same unsigned view of its arguments (koffi passes uint32/uint64).
    const sig = aot.compiled.imports.find((i) => i.module === d.module && i.name === d.name);
    const bits = (i: number) => (sig?.params[i] === ValType.I64 ? 64 : 32);
    (v8Imports[d.module] ??= {})[d.name] = (...args: (number | bigint)[]) => {
      const r = fn(...args.map((x, i) => BigInt.asUintN(bits(i), BigInt(x))));
      if (r === undefined || !sig?.results.length) return undefined;
      return sig.results[0] === ValType.I64 ? BigInt.asIntN(64, BigInt(r)) : Number(BigInt.asIntN(32, BigInt(r)));
    };
  }
  const v8 = new WA.Instance(wm, v8Imports);
  const mem = imported ?? (Object.values(v8.exports).find((x) => x instanceof WA.Memory) as WasmMemory | undefined);
  return { aot, v8, v8Memory: mem ?? null };
}

export function callV8(pair: Pair, call: Call): Outcome {
  const e = pair.aot.compiled.exports.find((x) => x.name === call.name)!;
  const f = pair.v8.exports[call.name] as (...a: (number | bigint)[]) => number | bigint | undefined;
  try {
    const r = f(...call.args.map((a, i) => (e.params[i] === ValType.I64 ? BigInt.asIntN(64, a) : Number(BigInt.asIntN(32, a)))));
    if (r === undefined) return { trap: 0, value: 0n };
    return { trap: 0, value: typeof r === "bigint" ? BigInt.asUintN(64, r) : BigInt(r >>> 0) };
  } catch (err) {
    return { trap: v8TrapCode(err), value: 0n };
  }
}

/** Runs one call in both engines and compares the outcome and the first `window` bytes of memory (all if omitted). */
export function compareCall(pair: Pair, call: Call, window?: number, tally?: Record<number, number>): Mismatch | null {
  const a = pair.aot.call(call.name, call.args);
  if (tally) tally[a.trap] = (tally[a.trap] ?? 0) + 1;
  const v = callV8(pair, call);
  const aot = { trap: a.trap, value: a.value };
  if (!sameTrap(aot.trap, v.trap)) return { call, aot, v8: v, what: "trap" };
  if (aot.trap === 0 && aot.value !== v.value) return { call, aot, v8: v, what: "value" };
  const diff = compareMemory(pair, window);
  if (diff) return { call, aot, v8: v, what: diff };
  return null;
}

/** null when equal, else a description of the first difference. */
export function compareMemory(pair: Pair, window?: number): string | null {
  if (!pair.v8Memory) return null;
  const vb = new Uint8Array(pair.v8Memory.buffer);
  const ab = pair.aot.memory;
  if (vb.length !== ab.length) return `memory size ${ab.length} vs V8 ${vb.length}`;
  const n = window === undefined ? vb.length : Math.min(window, vb.length);
  const x = Buffer.from(ab.buffer, ab.byteOffset, n);
  const y = Buffer.from(vb.buffer, vb.byteOffset, n);
  if (x.equals(y)) return null;
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return `memory byte ${i}: ${x[i]} vs V8 ${y[i]}`;
  return null;
}

export function describeMismatch(m: Mismatch): string {
  const o = (x: Outcome) => (x.trap ? `trap ${x.trap}` : `0x${x.value.toString(16)}`);
  return `${m.call.name}(${m.call.args.map((a) => `0x${a.toString(16)}`).join(", ")}): ${m.what} differs — aot ${o(m.aot)}, V8 ${o(m.v8)}`;
}
