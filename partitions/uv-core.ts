// The ultravisor partition with the resource manager's core: core.wasm compiled by toolchain/aot (linear memory in a
// register, r15 = DBWIN, so wasm address p is the database's physical page p as the monitor mapped it for CPL 3)
// merged with the partition's assembly. At start it attaches to the database the lead monitor bootstrapped and reads
// it back through core's own exports — deprivileged, with page tables that map only the database's pages ([0159]) —
// then serves the command channel like partitions/programs.ts's version.
import { Assembler, type Label, addr, dword, eax, ptr, qword, r12, r13, r13d, r14, r15, r15d, rax, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { compileWasm } from "../toolchain/aot/compile.ts";
import { Ctx } from "../toolchain/aot/abi.ts";
import { DBWIN, HC } from "../monitor-gen/layout.ts";
import { consoleLine, hypercall } from "./runtime.ts";
import { emitUltravisorLoop } from "./programs.ts";
import { mergeObjects } from "./aot-guest.ts";

const CALLS = ["db_attach", "db_order", "db_ui_address", "db_get_owner"] as const;
const STACK_BUDGET = 12 * 1024;
/** The byte address whose owner the partition reports (the database's first page). */
export const OWNER_PROBE = 0x400000;
/** The two scales of the map summary the partition prints: [lo, hi) in steps of one map entry. */
export const MAP_SCALES = [
  { name: "4M", lo: 0, hi: 0x1_0000_0000, step: 0x400000 },
  { name: "4K", lo: 0x400000, hi: 0x800000, step: 0x1000 },
] as const;

export function assembleUltravisorWithCore(coreWasm: Uint8Array, ui: number, memoryBytes: number): ObjectFile {
  const core = compileWasm(coreWasm, { hostThunks: true, importsAsSymbols: true, symbolPrefix: "ucore" });
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  a.section(".text");
  a.bind(L("p_start"));
  // call(fn, args…) → r-value in [ucore_result]; the thunk's eax is the trap code (0).
  const call = (fn: (typeof CALLS)[number], ...args: number[]): void => {
    args.forEach((v, i) => a.mov(qword({ label: L("ucore_args"), disp: 8 * i }), v));
    a.lea(rdi, ptr(L("ucore_ctx"))).lea(rsi, ptr(L("ucore_args"))).lea(rdx, ptr(L("ucore_result")));
    a.call(L(`ucore_thunk_${fn}`));
  };
  call("db_attach", ui);
  a.mov(r12, qword(L("ucore_result")));
  call("db_order");
  a.mov(r13, qword(L("ucore_result")));
  call("db_ui_address");
  a.mov(r14, qword(L("ucore_result")));
  consoleLine(a, "db attach ", { hex: (x) => x.mov(rax, r12) }, " order ", { dec: (x) => x.mov(rax, r13) }, " ui ", { hex: (x) => x.mov(rax, r14) });
  call("db_get_owner", OWNER_PROBE, 0);
  a.mov(r15, qword(L("ucore_result")));
  consoleLine(a, `owner of 0x${OWNER_PROBE.toString(16)}: `, { hex: (x) => x.mov(rax, r15) });
  // The memory map at two scales, as runs of one owner (GetMemOwner per entry): 4 MiB entries over 4 GiB, and the
  // 4 KiB entries of the database's own 4 MiB page.
  for (const m of MAP_SCALES) {
    const next = a.label();
    const same = a.label();
    const done = a.label();
    a.xor(r13d, r13d); // address (offset from m.lo)
    a.mov(r14, -1); // owner of the open run
    a.xor(r15d, r15d); // start of the open run
    const loop = a.here();
    a.mov(rax, r13).add(rax, m.lo).mov(qword(L("ucore_args")), rax).mov(qword({ label: L("ucore_args"), disp: 8 }), 0);
    a.lea(rdi, ptr(L("ucore_ctx"))).lea(rsi, ptr(L("ucore_args"))).lea(rdx, ptr(L("ucore_result")));
    a.call(L("ucore_thunk_db_get_owner"));
    a.mov(eax, dword(L("ucore_result")));
    a.cmp(rax, r14).je(same);
    a.cmp(r14, -1).je(next);
    a.mov(qword(L("ucore_next_owner")), rax);
    a.call(L(`ucore_print_${m.name}`));
    a.mov(rax, qword(L("ucore_next_owner")));
    a.bind(next);
    a.mov(r14, rax).mov(r15, r13);
    a.bind(same);
    a.add(r13, m.step).mov(rax, BigInt(m.hi - m.lo)).cmp(r13, rax).jb(loop);
    a.call(L(`ucore_print_${m.name}`));
    a.jmp(done);
    // ucore_print_*: "map NAME lo-hi: owner" for the run [r15, r13) owned by r14.
    a.bind(L(`ucore_print_${m.name}`));
    consoleLine(a, `map ${m.name} `, { hex: (x) => x.mov(rax, r15).add(rax, m.lo) }, "-", { hex: (x) => x.mov(rax, r13).add(rax, m.lo - 1) }, ": ", { hex: (x) => x.mov(rax, r14) });
    hypercall(a, HC.yield); // one line per quantum: the console queue holds 15 and the I/O partition drains it in its own quanta
    a.ret();
    a.bind(done);
  }
  emitUltravisorLoop(a);

  a.section(".data");
  a.align(16);
  a.bind(L("ucore_ctx"));
  const ctx: Array<bigint | ReturnType<typeof addr>> = new Array(core.layout.size / 8).fill(0n);
  ctx[Ctx.MemBase / 8] = DBWIN;
  ctx[Ctx.MemSize / 8] = BigInt(memoryBytes);
  ctx[Ctx.MemMaxPages / 8] = BigInt(memoryBytes / 65536);
  ctx[Ctx.TrapHandler / 8] = addr(L("ucore_host_trap"));
  ctx[Ctx.StackBudget / 8] = BigInt(STACK_BUDGET);
  core.globals.forEach((g, i) => (ctx[(core.layout.globals + 8 * i) / 8] = BigInt.asUintN(64, g.init)));
  for (const v of ctx) a.dq(v);
  a.bind(L("ucore_args"));
  a.dq(0n, 0n, 0n, 0n);
  a.bind(L("ucore_result"));
  a.dq(0n);
  a.bind(L("ucore_next_owner"));
  a.dq(0n);

  const text = core.object.sections.findIndex((x) => x.name === ".text");
  const thunk = (n: string): number => {
    const e = core.exports.find((x) => x.name === n);
    if (!e || e.thunk < 0) throw new Error(`core.wasm lacks ${n}`);
    return e.thunk;
  };
  return mergeObjects(a.finish(), core.object, "ucore$", [
    ...CALLS.map((n) => ({ name: `ucore_thunk_${n}`, section: text, offset: thunk(n) })),
    { name: "ucore_host_trap", section: text, offset: core.hostTrap },
  ]);
}
