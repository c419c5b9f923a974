// Builds the AssemblyScript guest (partitions/assembly/guest.ts) into a partition program: asc → guest.wasm →
// toolchain/aot (x86-64, System V entry thunks, imports as symbols) merged with a small assembly runtime that
// supplies the two imports (`env.hypercall` → int 0x80, `env.console` → the console channel), the VM context, the
// linear memory (a data section of the window with the data segments in place) and the start code that enters
// `main` through its thunk. A wasm trap comes back out of the thunk, is printed, and ends the partition with #UD.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Assembler, type Label, ecx, edi, esi, ptr, qword, r12, r15, rax, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { compileWasm, type CompiledModule } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import { HYPERCALL_VECTOR } from "../monitor-gen/layout.ts";
import { consoleLine, emitRuntime } from "./runtime.ts";
import { PROGRAM_ENTRY } from "./programs.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = join(root, "partitions", "assembly", "guest.ts");
const OUT = join(root, "out", "partitions", "guest.wasm");
/** Stack the entry thunk lets generated code use (the window's stack is 16 KiB). */
const STACK_BUDGET = 12 * 1024;
const WASM_PAGE = 65536;

/** asc command line for the guest (same feature restrictions as core.wasm: the AOT subset). */
export function guestAscArgs(outFile: string): string[] {
  return [
    SOURCE, "--outFile", outFile, "--runtime", "stub", "--optimizeLevel", "3", "--shrinkLevel", "0",
    "--disable", "bulk-memory,nontrapping-f2i", "--initialMemory", "1", "--maximumMemory", "1", "--use", "abort=", "--noColors",
  ];
}

/** out/partitions/guest.wasm, rebuilt with asc when the source is newer. */
export async function guestWasm(): Promise<Uint8Array> {
  return ascBuild(SOURCE, OUT, guestAscArgs);
}

/** `out` rebuilt from the AssemblyScript `source` with asc (args from `argsFor(tmpFile)`) when the source is newer. */
export async function ascBuild(source: string, out: string, argsFor: (outFile: string) => string[]): Promise<Uint8Array> {
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    const { default: asc } = await import("assemblyscript/asc");
    let log = "";
    const sink = { write(s: string | Uint8Array): boolean { log += typeof s === "string" ? s : Buffer.from(s).toString(); return true; } };
    const { error } = await asc.main(argsFor(tmp), { stdout: sink, stderr: sink });
    if (error) throw new Error(`asc failed on ${source}: ${error.message}\n${log}`);
    renameSync(tmp, out);
  }
  return new Uint8Array(readFileSync(out));
}

export interface AotGuest {
  object: ObjectFile;
  compiled: CompiledModule;
  /** The linear memory's initial bytes (data segments in place). */
  memory: Uint8Array;
  /** Wasm address range the guest's checksum covers: its static data. */
  dataRange: [number, number];
}

/** Appends `b` to `a`: section indices shifted, b's local `.L` labels renamed so they cannot meet a's. */
export function mergeObjects(a: ObjectFile, b: ObjectFile, tag: string, aliases: Array<{ name: string; section: number; offset: number }> = []): ObjectFile {
  const shift = a.sections.length;
  const local = new Set(b.symbols.filter((s) => s.name.startsWith(".L")).map((s) => s.name));
  const rename = (n: string): string => (local.has(n) ? `${tag}${n}` : n);
  return {
    sections: [...a.sections, ...b.sections],
    symbols: [
      ...a.symbols,
      ...b.symbols.map((s) => ({ ...s, name: rename(s.name), section: s.section + shift })),
      ...aliases.map((x) => ({ name: x.name, section: x.section + shift, offset: x.offset, global: false })),
    ],
    relocations: [...a.relocations, ...b.relocations.map((r) => ({ ...r, section: r.section + shift, target: rename(r.target) }))],
  };
}

/**
 * `outOfBounds` makes the checksum range run 64 bytes past the linear memory: the generated bounds check traps (code
 * 4), the thunk returns it, and the partition ends with #UD — a wasm trap is contained like any other fault.
 */
export function assembleAotGuest(wasm: Uint8Array, period: number, outOfBounds = false): AotGuest {
  const compiled = compileWasm(wasm, { hostThunks: true, importsAsSymbols: true, symbolPrefix: "wasm" });
  const main = compiled.exports.find((e) => e.name === "main");
  if (!main || main.thunk < 0) throw new Error("the AssemblyScript guest must export main(period, dataStart, dataEnd)");
  if (!compiled.memory) throw new Error("the AssemblyScript guest defines no memory");
  for (const imp of compiled.imports) {
    if (imp.intrinsic === null && !(imp.module === "env" && (imp.name === "hypercall" || imp.name === "console"))) {
      throw new Error(`the AssemblyScript guest imports ${imp.module}.${imp.name}; a partition offers env.hypercall and env.console only`);
    }
  }
  const memory = new Uint8Array(compiled.memory.minPages * WASM_PAGE);
  let lo = memory.length, hi = 0;
  for (const d of compiled.datas) {
    memory.set(d.bytes, d.offset);
    lo = Math.min(lo, d.offset);
    hi = Math.max(hi, d.offset + d.bytes.length);
  }
  if (hi === 0) lo = 0;

  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  a.section(".text");
  a.bind(L("p_image_start"));
  a.bind(L(PROGRAM_ENTRY));
  a.lea(rdi, ptr(L("aot_ctx"))).lea(rsi, ptr(L("aot_args"))).lea(rdx, ptr(L("aot_result")));
  a.call(L("aot_main_thunk"));
  a.mov(r12, rax); // main never returns: the thunk came back with a trap code
  consoleLine(a, "wasm trap ", { dec: (x) => x.mov(rax, r12) }, "; stopping with #UD");
  a.ud2();

  // env.hypercall(nr, a, b) → i64 (System V from generated code): the hypercall ABI's rax, rcx, rdx.
  a.bind(L("env.hypercall"));
  a.mov(rax, rdi).mov(rcx, rsi);
  a.int(HYPERCALL_VECTOR);
  a.ret();
  // env.console(ptr, len): ptr is a wasm address, r15 the linear-memory base (pinned, preserved across imports).
  a.bind(L("env.console"));
  a.mov(edi, edi).mov(ecx, esi);
  a.lea(rsi, qword({ base: r15, index: rdi, scale: 1 }));
  a.call(L("con_line"));
  a.ret();
  emitRuntime(a);

  a.section(".data");
  a.align(16);
  a.bind(L("aot_ctx"));
  emitImageContext(a, compiled, {
    memBase: L("aot_memory"), memBytes: memory.length, maxPages: compiled.memory.minPages,
    trapHandler: L("aot_host_trap"), stackBudget: STACK_BUDGET, tableFunc: (f) => L(`wasm.f${f}`),
  });
  a.bind(L("aot_args"));
  a.dq(BigInt(period), BigInt(lo), BigInt(outOfBounds ? memory.length + 64 : hi));
  a.bind(L("aot_result"));
  a.dq(0n);
  // The checksum range of the assembly guests ends here; this guest checksums its wasm data instead.
  a.section(".rdata");
  a.bind(L("p_ro_end"));
  a.section(".lmem", "data", 4096);
  a.bind(L("aot_memory"));
  a.db(memory);

  const text = compiled.object.sections.findIndex((s) => s.name === ".text");
  const object = mergeObjects(a.finish(), compiled.object, "wasm$", [
    { name: "aot_main_thunk", section: text, offset: main.thunk },
    { name: "aot_host_trap", section: text, offset: compiled.hostTrap },
  ]);
  return { object, compiled, memory, dataRange: [lo, hi] };
}
