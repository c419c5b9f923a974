// The resource database built at boot by core.wasm compiled with toolchain/aot (the same module the simulator runs
// in V8): generated ring-0 code that zeroes the database's pages, places core's static data, writes the bootstrap
// parameters and calls `db_bootstrap` through the compiled module's System V entry thunk, with linear memory
// identity-mapped at physical address 0 (memoryBase 0). test/hw/ultravisor.test.ts reads the pages back over QMP and
// compares them byte for byte with the simulator's database after the same call.
import { Assembler, type Label, eax, ecx, ptr, qword, r12, rax, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import { compileWasm, type CompiledModule } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { kline } from "./console.ts";

/** Physical ranges the bootstrap writes, zeroed first (the simulator's memory starts zeroed). */
export interface CoreDbPlan {
  /** Sixteen u32 bootstrap words (docs/specs/memory-layout.md §10) without hostBytes, which comes from the firmware. */
  words: number[];
  requestBuffer: number;
  /** Linear-memory size the simulator gives core for this database (bytes). */
  memoryBytes: number;
  zero: Array<[number, number]>;
  /** Ranges that must be usable RAM in the firmware's map (checked by the loader before anything is written). */
  require: Array<{ lo: number; hi: number; types: number[] }>;
}

export interface CoreForImage {
  compiled: CompiledModule;
  object: ObjectFile;
}

export function compileCoreForImage(wasm: Uint8Array): CoreForImage {
  const compiled = compileWasm(wasm, { hostThunks: true, importsAsSymbols: true, memoryBase: 0, symbolPrefix: "core" });
  const bad = compiled.imports.filter((i) => i.intrinsic === null);
  if (bad.length) throw new Error(`core.wasm imports ${bad.map((i) => `${i.module}.${i.name}`).join(", ")}, which the image does not supply`);
  if (!compiled.exports.some((e) => e.name === "db_bootstrap")) throw new Error("core.wasm has no db_bootstrap export");
  return { compiled, object: compiled.object };
}

const STACK_BUDGET = 48 * 1024;

/** Emits `uv_core_db` (called by the lead monitor when g_core_ok is set) and the data it needs. */
export function emitCoreDb(a: Assembler, core: CompiledModule, plan: CoreDbPlan): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".text");
  a.bind(L("uv_core_db"));
  a.push(r12);
  for (const [lo, hi] of plan.zero) {
    a.mov(rdi, lo).mov(rcx, (hi - lo) / 8).xor(eax, eax);
    a.rep().stosq();
  }
  core.datas.forEach((d, i) => {
    a.lea(rsi, ptr(L(`core_data_${i}`))).mov(rdi, d.offset).mov(rcx, d.bytes.length);
    a.rep().movsb();
  });
  a.lea(rsi, ptr(L("core_params"))).mov(rdi, plan.requestBuffer).mov(ecx, 56);
  a.rep().movsb();
  a.mov(rax, qword(L("g_ram_top"))).mov(qword({ disp: plan.requestBuffer + 56 }), rax);
  a.lea(rdi, ptr(L("core_ctx"))).lea(rsi, ptr(L("core_args"))).lea(rdx, ptr(L("core_result")));
  a.call(L("core_bootstrap_thunk"));
  a.mov(r12, rax);
  kline(a, "ultravisor: resource database bootstrapped by the AOT-compiled core: trap ", { dec: (x) => x.mov(rdi, r12) },
    " status ", { hex: (x) => x.mov(rdi, qword(L("core_result"))) }, " host bytes ", { hex: (x) => x.mov(rdi, qword(L("g_ram_top"))) });
  a.pop(r12).ret();

  a.section(".rdata");
  core.datas.forEach((d, i) => {
    a.bind(L(`core_data_${i}`));
    a.db(d.bytes);
  });
  a.align(8);
  a.bind(L("core_params"));
  a.dd(...plan.words.slice(0, 14).concat(new Array(Math.max(0, 14 - plan.words.length)).fill(0)));
  a.section(".data");
  a.align(16);
  a.bind(L("core_ctx"));
  emitImageContext(a, core, { memBase: 0n, memBytes: plan.memoryBytes, trapHandler: L("core_host_trap"), stackBudget: STACK_BUDGET });
  a.bind(L("core_args"));
  a.dq(BigInt(plan.requestBuffer), 0n);
  a.bind(L("core_result"));
  a.dq(0n);
  a.section(".text");
}
