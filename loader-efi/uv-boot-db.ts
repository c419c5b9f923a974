// The boot partition's transactions on the machine (generated ring-0 code around an AOT-compiled module): after
// core's db_bootstrap, `uv_boot_db` prints the UEFI memory map the loader read last (so a test can feed the same map
// to the simulator), then runs the boot partition's module (core/boot/assembly/boot.ts, built by core/boot-module.ts,
// the same wasm the simulator runs in V8) — compiled by toolchain/aot, linear memory = physical memory — whose only
// ways out are two imports supplied here: `env.db_submit` and `env.db_log_truncate`, each a call into the same
// AOT-compiled core.wasm the bootstrap used (same VM context).
import { Assembler, type Label, eax, edi, ptr, qword, r12, r13, r14, r15, rax, rcx, rdi, rdx, rsi, rsp, dword } from "../toolchain/x64/index.ts";
import { compileWasm, type CompiledModule } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import { monitorLine } from "../monitor-gen/console.ts";
import { BOOT_MODULE_EXPORTS, BOOT_MODULE_IMPORTS, BOOT_OPS_BYTES, type UefiDescriptor } from "../core/boot-module.ts";

const STACK_BUDGET = 8 * 1024;
/** The module addresses physical memory below 4 GiB (its bounds check; the last 64 KiB are never database pages). */
const MEMORY_BYTES = 0xffff_0000;

export const BOOT_DB_LINES = {
  map: /^ultravisor: firmware map: type (\d+) base (0x[0-9a-f]+) pages (\d+)$/,
  done: /^ultravisor: boot transactions by the AOT-compiled core: trap (\d+) result (-?\d+)$/,
};

/** Parses the loader's firmware-map lines (BOOT_DB_LINES.map) back into descriptors. */
export function parseFirmwareMap(lines: readonly string[]): UefiDescriptor[] {
  return lines.flatMap((l) => {
    const m = BOOT_DB_LINES.map.exec(l);
    return m ? [{ type: Number(m[1]), base: BigInt(m[2]!), pages: BigInt(m[3]!) }] : [];
  });
}

/** The boot module compiled for an image; `prefix` names its symbols (the ring-0 instance and the ultravisor partition's). */
export function compileBootDb(wasm: Uint8Array, prefix = "bootdb"): CompiledModule {
  const c = compileWasm(wasm, { hostThunks: true, importsAsSymbols: true, symbolPrefix: prefix });
  for (const i of c.imports) {
    if (i.intrinsic === null && !(i.module === "env" && (BOOT_MODULE_IMPORTS as readonly string[]).includes(i.name))) {
      throw new Error(`core/boot/assembly/boot.ts imports ${i.module}.${i.name}; the boot module may import env.db_submit and env.db_log_truncate only`);
    }
  }
  for (const n of BOOT_MODULE_EXPORTS) {
    const e = c.exports.find((x) => x.name === n);
    if (!e || e.thunk < 0) throw new Error(`core/boot/assembly/boot.ts must export ${n}`);
  }
  if (c.datas.some((d) => d.bytes.length > 0)) throw new Error("core/boot/assembly/boot.ts must have no static data (its linear memory is physical memory)");
  return c;
}

export interface BootDbPlan {
  ui: number;
  region: number;
  /** Offset of core's request buffer in its private 4 MiB page (at g_core_private, chosen by the loader). */
  requestOffset: number;
}

/**
 * Emits `uv_boot_db` and the two import shims. Needs from the image: `core_ctx`/`core_args`/`core_result` (monitor-gen/
 * core-db.ts), the core thunks `core_submit_thunk` and `core_truncate_thunk`, and the module's `bootdb_main_thunk` and
 * `bootdb_host_trap` aliases (image/ultravisor.ts merges the objects).
 */
export function emitBootDb(a: Assembler, mod: CompiledModule, plan: BootDbPlan): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(16);
  a.bind(L("g_boot_ops"));
  a.zero(BOOT_OPS_BYTES);
  a.section(".text");

  a.bind(L("uv_boot_db"));
  a.push(r12).push(r13).push(r14).push(r15).sub(rsp, 8);
  {
    a.mov(r12, qword(L("g_map_buf")));
    a.mov(r13, r12).add(r13, qword(L("g_map_size")));
    const loop = a.here();
    const done = a.label();
    a.cmp(r12, r13).jae(done);
    monitorLine(a, "ultravisor: firmware map: type ", { dec: (x) => x.mov(edi, dword(r12, 0)) }, " base ", { hex: (x) => x.mov(rdi, qword(r12, 8)) },
      " pages ", { dec: (x) => x.mov(rdi, qword(r12, 24)) });
    a.add(r12, qword(L("g_desc_size"))).jmp(loop);
    a.bind(done);
  }
  const args = [BigInt(plan.ui), null, null, null, BigInt(plan.region), null, null];
  args.forEach((v, i) => {
    if (v !== null) a.mov(rax, v).mov(qword({ label: L("bootdb_args"), disp: 8 * i }), rax);
  });
  a.mov(rax, qword(L("g_core_private"))).add(rax, plan.requestOffset).mov(qword({ label: L("bootdb_args"), disp: 40 }), rax);
  a.mov(rax, qword(L("g_map_buf"))).mov(qword({ label: L("bootdb_args"), disp: 8 }), rax);
  a.mov(rax, qword(L("g_map_size"))).mov(qword({ label: L("bootdb_args"), disp: 16 }), rax);
  a.mov(rax, qword(L("g_desc_size"))).mov(qword({ label: L("bootdb_args"), disp: 24 }), rax);
  a.lea(rax, ptr(L("g_boot_ops"))).mov(qword({ label: L("bootdb_args"), disp: 48 }), rax);
  // The ultravisor region (first page, pages), given to the ultravisor partition after the boot's backup point.
  a.mov(rax, qword(L("g_region"))).shr(rax, 12).mov(qword({ label: L("bootdb_args"), disp: 56 }), rax);
  a.mov(rax, qword(L("g_region_pages"))).mov(qword({ label: L("bootdb_args"), disp: 64 }), rax);
  // The partitions' allotments (reserved by the lead monitor before this call), marked at 4 KiB granularity.
  a.mov(rax, qword(L("g_allot_lo"))).shr(rax, 12).mov(qword({ label: L("bootdb_args"), disp: 72 }), rax);
  a.mov(rax, qword(L("g_allot_hi"))).sub(rax, qword(L("g_allot_lo"))).shr(rax, 12).mov(qword({ label: L("bootdb_args"), disp: 80 }), rax);
  a.lea(rdi, ptr(L("bootdb_ctx"))).lea(rsi, ptr(L("bootdb_args"))).lea(rdx, ptr(L("bootdb_result")));
  a.call(L("bootdb_main_thunk"));
  a.mov(r12, rax);
  a.movsxd(r13, dword(L("bootdb_result")));
  const neg = a.label();
  const shown = a.label();
  a.test(r13, r13).js(neg);
  monitorLine(a, "ultravisor: boot transactions by the AOT-compiled core: trap ", { dec: (x) => x.mov(rdi, r12) }, " result ", { dec: (x) => x.mov(rdi, r13) });
  a.jmp(shown);
  a.bind(neg);
  monitorLine(a, "ultravisor: boot transactions by the AOT-compiled core: trap ", { dec: (x) => x.mov(rdi, r12) }, " result -", { dec: (x) => x.mov(rdi, r13).neg(rdi) });
  a.bind(shown);
  a.add(rsp, 8).pop(r15).pop(r14).pop(r13).pop(r12).ret();

  // boot_create(rdi = definition payload, rsi = first page, rdx = pages, rcx = owner they come from) → rax: the new
  // partition's number or a negative error (core/boot/assembly/boot.ts create); a trap becomes −100 − trap code.
  a.bind(L("boot_create"));
  {
    a.sub(rsp, 8);
    a.mov(qword({ label: L("bootdb_args"), disp: 16 }), rdi).mov(qword({ label: L("bootdb_args"), disp: 24 }), rsi);
    a.mov(qword({ label: L("bootdb_args"), disp: 32 }), rdx).mov(qword({ label: L("bootdb_args"), disp: 40 }), rcx);
    a.mov(rax, BigInt(plan.ui)).mov(qword(L("bootdb_args")), rax);
    a.mov(rax, qword(L("g_core_private"))).add(rax, plan.requestOffset).mov(qword({ label: L("bootdb_args"), disp: 8 }), rax);
    a.lea(rdi, ptr(L("bootdb_ctx"))).lea(rsi, ptr(L("bootdb_args"))).lea(rdx, ptr(L("bootdb_result")));
    a.call(L("bootdb_create_thunk"));
    const ok = a.label();
    a.test(eax, eax).jz(ok);
    a.neg(eax).sub(eax, 100).movsxd(rax, eax);
    a.add(rsp, 8).ret();
    a.bind(ok);
    a.movsxd(rax, dword(L("bootdb_result")));
    a.add(rsp, 8).ret();
  }

  emitBootImports(a, { ctx: "core_ctx", args: "core_args", result: "core_result", submit: "core_submit_thunk", truncate: "core_truncate_thunk" });

  a.section(".data");
  a.align(16);
  a.bind(L("bootdb_ctx"));
  emitImageContext(a, mod, { memBase: 0n, memBytes: MEMORY_BYTES, trapHandler: L("bootdb_host_trap"), stackBudget: STACK_BUDGET });
  a.bind(L("bootdb_args"));
  a.dq(0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n);
  a.bind(L("bootdb_result"));
  a.dq(0n);
  a.section(".text");
}

/**
 * The boot module's two imports, `env.db_submit` and `env.db_log_truncate`, as System V functions that call a compiled
 * core's entry thunks (symbols named in `core`): eax = core's result, or −100 − trap code when core trapped. Callee-
 * saved registers are kept by the thunk. Emitted once per embedding of the module: the ring-0 instance (here) and the
 * ultravisor partition's (partitions/uv-core.ts).
 */
export function emitBootImports(a: Assembler, core: { ctx: string; args: string; result: string; submit: string; truncate: string }): void {
  const L = (n: string): Label => a.symbol(n);
  const shim = (name: string, thunk: string, withArg: boolean): void => {
    a.bind(L(name));
    a.sub(rsp, 8);
    if (withArg) a.mov(edi, edi).mov(qword(L(core.args)), rdi);
    a.lea(rdi, ptr(L(core.ctx))).lea(rsi, ptr(L(core.args))).lea(rdx, ptr(L(core.result)));
    a.call(L(thunk));
    const ok = a.label();
    a.test(eax, eax).jz(ok);
    a.neg(eax).sub(eax, 100);
    a.add(rsp, 8).ret();
    a.bind(ok);
    a.mov(eax, dword(L(core.result)));
    a.add(rsp, 8).ret();
  };
  shim("env.db_submit", core.submit, true);
  shim("env.db_log_truncate", core.truncate, false);
}
