// The resource database built at boot by core.wasm compiled with toolchain/aot (the same module the simulator runs
// in V8): generated ring-0 code that zeroes the database's 4 MiB page and core's private 4 MiB page (chosen by the
// loader, g_core_private), writes the bootstrap parameters into the private page's request buffer and calls
// `db_bootstrap` through the compiled module's System V entry thunk, with linear memory identity-mapped at physical
// address 0 (memoryBase 0). test/hw/ultravisor.test.ts reads the pages back over QMP and compares them byte for byte
// with the simulator's database after the same call.
import { Assembler, type Label, dword, eax, ecx, ptr, qword, r12, rax, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import { compileWasm, type CompiledModule } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { monitorLine } from "./console.ts";
import { PRIVATE_PAGE_BYTES } from "./layout.ts";

/** Where the bootstrap places the database: its own 4 MiB page is fixed at build time, core's private page is not. */
export interface CoreDbPlan {
  /**
   * The first fourteen u32 bootstrap words (docs/specs/memory-layout.md §10); logBase and logPages (words 6, 7) are
   * filled in at run time from the private page, as are hostBytes (from the firmware's map) and the private page.
   */
  words: number[];
  /** Linear-memory size core is compiled for: all of the first 4 GiB, where the private page may lie (bytes). */
  memoryBytes: number;
  /** The database's own 4 MiB page [0,region,*], zeroed before the bootstrap. */
  dbPage: { lo: number; hi: number };
  /** Offsets in the private page (core/database.ts privateArea): the request buffer, the default log's first page. */
  requestOffset: number;
  logPageOffset: number;
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
  // core.wasm has no data segments (core/build.ts refuses them): nothing of it sits at a fixed physical address.
  if (core.datas.some((d) => d.bytes.length > 0)) throw new Error("core.wasm has static data, which core/build.ts refuses; rebuild it (npx tsx core/build.ts --force)");
  const L = (n: string): Label => a.symbol(n);
  a.section(".text");
  a.bind(L("uv_core_db"));
  a.push(r12);
  // Both 4 MiB pages zeroed: the simulator's memory starts zeroed, and the comparison over QMP covers them.
  a.mov(rdi, plan.dbPage.lo).mov(rcx, (plan.dbPage.hi - plan.dbPage.lo) / 8).xor(eax, eax);
  a.rep().stosq();
  a.mov(rdi, qword(L("g_core_private"))).mov(rcx, PRIVATE_PAGE_BYTES / 8);
  a.rep().stosq();
  // The parameter block in the private page's request buffer: the plan's words, then the run-time ones.
  a.mov(r12, qword(L("g_core_private"))).add(r12, plan.requestOffset);
  a.lea(rsi, ptr(L("core_params"))).mov(rdi, r12).mov(ecx, 56);
  a.rep().movsb();
  a.mov(rax, qword(L("g_core_private"))).shr(rax, 12).add(rax, plan.logPageOffset).mov(dword(r12, 24), eax); // logBase
  a.mov(dword(r12, 28), 1024 - plan.logPageOffset); // logPages: the rest of the private page
  a.mov(rax, qword(L("g_ram_top"))).mov(qword(r12, 56), rax);
  a.mov(rax, qword(L("g_core_private"))).shr(rax, 22).mov(dword(r12, 64), eax);
  a.mov(qword(L("core_args")), r12);
  a.lea(rdi, ptr(L("core_ctx"))).lea(rsi, ptr(L("core_args"))).lea(rdx, ptr(L("core_result")));
  a.call(L("core_bootstrap_thunk"));
  a.mov(r12, rax);
  monitorLine(a, "ultravisor: resource database bootstrapped by the AOT-compiled core: trap ", { dec: (x) => x.mov(rdi, r12) },
    " status ", { hex: (x) => x.mov(rdi, qword(L("core_result"))) }, " host bytes ", { hex: (x) => x.mov(rdi, qword(L("g_ram_top"))) });
  a.pop(r12).ret();

  a.section(".rdata");
  a.align(8);
  a.bind(L("core_params"));
  a.dd(...plan.words.slice(0, 14).concat(new Array(Math.max(0, 14 - plan.words.length)).fill(0)));
  a.section(".data");
  a.align(16);
  a.bind(L("core_ctx"));
  emitImageContext(a, core, { memBase: 0n, memBytes: plan.memoryBytes, trapHandler: L("core_host_trap"), stackBudget: STACK_BUDGET });
  a.bind(L("core_args"));
  a.dq(0n, 0n);
  a.bind(L("core_result"));
  a.dq(0n);
  a.bind(L("g_corelock"));
  a.dq(0n);
  a.section(".text");
}

/**
 * Takes g_corelock (spins with `xchg`, which is locked); every register but the flags is kept. The ring-0 core is one
 * instance: core_ctx (its stack limit, the rsp a trap returns to, its globals), core_args and core_result are shared,
 * so a caller holds the lock from writing core_args to reading core_result. Without it a pair client on PCPU 1
 * asking PAIR_EPOCH while the I/O partition's DMA_ADDR ran in core on PCPU 0 swapped their stack limits and trap
 * stacks (docs/specs/smp.md §2.4). Never held while a monitor line is written (the log lock is taken inside it).
 */
export function coreLock(a: Assembler): void {
  a.push(rax);
  const spin = a.here();
  const got = a.label();
  a.mov(eax, 1).xchg(rax, qword(a.symbol("g_corelock")));
  a.test(rax, rax).jz(got);
  a.pause().jmp(spin);
  a.bind(got);
  a.pop(rax);
}

/** Releases g_corelock (an aligned store; x86 keeps core's stores before it). */
export function coreUnlock(a: Assembler): void {
  a.mov(qword(a.symbol("g_corelock")), 0);
}
