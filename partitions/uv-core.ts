// The ultravisor partition with the resource manager's core: core.wasm compiled by toolchain/aot (linear memory in a
// register, r15 = DBWIN, so wasm address p is the database's physical page p as the monitor mapped it for CPL 3)
// merged with the partition's assembly. At start it attaches to the database the lead monitor bootstrapped and reads
// it back through core's own exports — deprivileged, with page tables that map only the database's pages ([0159]) —
// then serves the command channel: each boot-time definition becomes a partition in the database, with the
// transaction sim/resource-service.ts's create() submits for a partition without memory (a descriptor page taken for
// the ultravisor, InitializePartition, the page handed to the new partition). Once all are applied, and near the end
// of a finite run, it sends the summary — the memory map at the PMM and PKM scales and the schedule — as console
// lines, which the I/O partition writes to COM1.
import { Assembler, type Label, dword, eax, ecx, edx, ptr, qword, r8, r8d, r9, r9d, r10d, r11, r11d, r12, r13, r13d, r14, r15, r15d, rax, rbx, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { compileWasm } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import { DBWIN, HC, WIN } from "../monitor-gen/layout.ts";
import { consoleLine, emitRuntime, hypercall, windowAddress } from "./runtime.ts";
import { emitCommandServeLoop } from "./programs.ts";
import { mergeObjects } from "./aot-guest.ts";

const CALLS = ["db_attach", "db_order", "db_ui_address", "db_get_owner", "db_submit"] as const;
const STACK_BUDGET = 12 * 1024;
/** The byte address whose owner the partition reports (the database's first page). */
export const OWNER_PROBE = 0x400000;
/** The two scales of the map summary the partition prints: [lo, hi) in steps of one map entry. */
export const MAP_SCALES = [
  { name: "4M", lo: 0, hi: 0x1_0000_0000, step: 0x400000 },
  { name: "4K", lo: 0x400000, hi: 0x800000, step: 0x1000 },
] as const;

/** Lines the summary leaves in the console queue before waiting for the I/O partition (the queue holds 15). */
const LINES_PER_QUANTUM = 8;
const REQ_MAGIC = 0x52545655;
const PD_MAGIC = 0x44505655;
const PN_MASK = 0x3fffffff;

export interface UltravisorCoreOptions {
  /** Page number of the Ultravisor Index. */
  ui: number;
  /** Linear-memory size of core (bytes). */
  memoryBytes: number;
  /** Offset of core's request buffer in its private 4 MiB page, which the index page names (memory-layout.md §3). */
  requestOffset: number;
  /** Definitions the command partition sends; the summary follows the last one. */
  definitions: number;
  /** Quantum from which the summary may be sent (the end of a finite run). */
  summaryAt: number;
  /** The schedule as runs "quanta A-B: NAME" (one summary line each). */
  schedule: string[];
}

export function assembleUltravisorWithCore(coreWasm: Uint8Array, o: UltravisorCoreOptions): ObjectFile {
  const { ui, memoryBytes } = o;
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
  // The request buffer is in core's private 4 MiB page, wherever the loader put it: M from the index page.
  a.mov(rax, DBWIN + BigInt(ui * 4096)).mov(eax, dword(rax, 64)).shl(rax, 22).add(rax, o.requestOffset).mov(qword(L("ucore_req")), rax);
  call("db_order");
  a.mov(r13, qword(L("ucore_result")));
  call("db_ui_address");
  a.mov(r14, qword(L("ucore_result")));
  consoleLine(a, "db attach ", { hex: (x) => x.mov(rax, r12) }, " order ", { dec: (x) => x.mov(rax, r13) }, " ui ", { hex: (x) => x.mov(rax, r14) });
  call("db_get_owner", OWNER_PROBE, 0);
  a.mov(r15, qword(L("ucore_result")));
  consoleLine(a, `owner of 0x${OWNER_PROBE.toString(16)}: `, { hex: (x) => x.mov(rax, r15) });
  emitServe(a, o);

  // uv_summary: the map at two scales as runs of one owner (GetMemOwner per entry), 4 MiB entries over 4 GiB and the
  // 4 KiB entries of the database's own 4 MiB page, then the schedule.
  a.bind(L("uv_summary"));
  for (const r of [rbx, r12, r13, r14, r15]) a.push(r);
  consoleLine(a, "summary: memory map (runs of one owner) and schedule");
  a.call(L("uv_line_sent"));
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
    a.call(L("uv_line_sent"));
    a.ret();
    a.bind(done);
  }
  for (const line of o.schedule) {
    consoleLine(a, line);
    a.call(L("uv_line_sent"));
  }
  for (const r of [r15, r14, r13, r12, rbx]) a.pop(r);
  a.ret();

  // uv_line_sent: once LINES_PER_QUANTUM lines wait in the console queue, yields until the I/O partition has taken
  // them all (a full queue would drop lines: the runtime's writer does not block).
  a.bind(L("uv_line_sent"));
  {
    const keep = a.label();
    const q0 = windowAddress(WIN.slot(0) + 128);
    const pending = (): void => {
      a.mov(rcx, q0).mov(eax, dword(rcx, 60)).sub(eax, dword(rcx, 72)).and(eax, 15);
    };
    pending();
    a.cmp(eax, LINES_PER_QUANTUM).jb(keep);
    const again = a.here();
    hypercall(a, HC.yield);
    pending();
    a.test(eax, eax).jnz(again);
    a.bind(keep).ret();
  }
  emitRuntime(a);

  a.section(".data");
  a.align(16);
  a.bind(L("ucore_ctx"));
  emitImageContext(a, core, { memBase: DBWIN, memBytes: memoryBytes, trapHandler: L("ucore_host_trap"), stackBudget: STACK_BUDGET });
  a.bind(L("ucore_args"));
  a.dq(0n, 0n, 0n, 0n);
  a.bind(L("ucore_result"));
  a.dq(0n);
  a.bind(L("ucore_next_owner"));
  a.dq(0n);
  for (const n of ["ucore_req", "ucore_applied", "ucore_free_count", "ucore_free_map", "ucore_free_index", "ucore_free_page", "ucore_summary_done"]) {
    a.bind(L(n));
    a.dq(0n);
  }

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

/**
 * The command-channel service loop: drain the channel whenever it is signalled, apply each definition; once all are
 * applied and the run is near its end, send the summary once.
 */
function emitServe(a: Assembler, o: UltravisorCoreOptions): void {
  const L = (n: string): Label => a.symbol(n);
  emitCommandServeLoop(
    a,
    (x) => x.lea(rbx, qword(r15, 64)).call(L("uv_create")),
    (x) => {
      const later = x.label();
      x.cmp(qword(L("ucore_summary_done")), 0).jne(later);
      x.cmp(qword(L("ucore_applied")), o.definitions).jb(later);
      hypercall(x, HC.time);
      x.cmp(rax, o.summaryAt).jb(later);
      x.mov(qword(L("ucore_summary_done")), 1);
      x.call(L("uv_summary"));
      x.bind(later);
    },
  );

  // uv_create(rbx = definition payload, r12 = request number): the create transaction of a partition without memory.
  a.bind(L("uv_create"));
  {
    const uiAt = DBWIN + BigInt(o.ui * 4096);
    const none = a.label();
    a.call(L("uv_find_free"));
    a.cmp(qword(L("ucore_free_count")), 2).jb(none);
    a.mov(rdi, DBWIN).add(rdi, qword(L("ucore_req")));
    a.xor(eax, eax);
    for (let off = 0; off < 160; off += 8) a.mov(qword(rdi, off), rax);
    a.mov(rsi, uiAt);
    a.mov(r8, qword(L("ucore_free_map"))).mov(r9, qword(L("ucore_free_index"))).mov(r11, qword(L("ucore_free_page")));
    a.mov(dword(rdi, 0), REQ_MAGIC).mov(dword(rdi, 4), 160).mov(dword(rdi, 8), 3);
    const changeOwner = (at: number, from: () => void, to: () => void): void => {
      a.mov(dword(rdi, at), 2).mov(dword(rdi, at + 4), 32).mov(dword(rdi, at + 8), r8d).mov(dword(rdi, at + 12), r9d).mov(dword(rdi, at + 16), r9d);
      from();
      a.mov(dword(rdi, at + 20), eax);
      to();
      a.mov(dword(rdi, at + 24), eax);
    };
    changeOwner(16, () => a.mov(eax, dword(rsi, 28)), () => a.mov(eax, dword(rsi, 24))); // Available → Ultra
    a.mov(dword(rdi, 48), 3).mov(dword(rdi, 52), 80).mov(dword(rdi, 56), r11d);
    a.mov(dword(rdi, 64), PD_MAGIC).mov(dword(rdi, 68), r11d);
    a.mov(eax, dword(rbx, 32)).mov(dword(rdi, 72), eax);
    for (let k = 0; k < 32; k += 8) a.mov(rax, qword(rbx, k)).mov(qword(rdi, 80 + k), rax);
    changeOwner(128, () => a.mov(eax, dword(rsi, 24)), () => a.mov(eax, r11d)); // Ultra → the new partition
    a.mov(rax, qword(L("ucore_req"))).mov(qword(L("ucore_args")), rax);
    a.lea(rdi, ptr(L("ucore_ctx"))).lea(rsi, ptr(L("ucore_args"))).lea(rdx, ptr(L("ucore_result")));
    a.call(L("ucore_thunk_db_submit"));
    const refused = a.label();
    a.movsxd(rax, dword(L("ucore_result")));
    a.test(rax, rax).js(refused);
    a.inc(qword(L("ucore_applied")));
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": partition ", { hex: (x) => x.mov(rax, qword(L("ucore_free_page"))) },
      " created");
    a.ret();
    a.bind(refused);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": refused by core, error -",
      { dec: (x) => x.movsxd(rax, dword(L("ucore_result"))).neg(rax) });
    a.ret();
    a.bind(none);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": no free database page (growing the database is not implemented)");
    a.ret();
  }

  // uv_find_free: the two lowest Available 4 KiB pages of the PKMs in address order (ResourceService.allocDbPage
  // keeps one spare), walking the order-2 map's PMM; the first one's map, index and page are kept.
  a.bind(L("uv_find_free"));
  {
    const uiAt = DBWIN + BigInt(o.ui * 4096);
    const done = a.label();
    a.push(rbx);
    a.mov(qword(L("ucore_free_count")), 0);
    a.mov(rsi, uiAt);
    a.mov(r10d, dword(rsi, 28)); // Available
    a.mov(eax, dword(rsi, 12)).shl(rax, 12).mov(r8, DBWIN).add(r8, rax); // the PMM, in the view
    a.xor(ecx, ecx);
    const nextI = a.label();
    const loopI = a.here();
    a.cmp(ecx, 1024).jae(done);
    a.movsxd(rax, dword({ base: r8, index: rcx, scale: 4 }));
    a.test(rax, rax).jns(nextI);
    a.and(eax, PN_MASK).mov(r11, rax);
    a.shl(rax, 12).mov(rbx, DBWIN).add(rbx, rax); // the PKM, in the view
    a.xor(edx, edx);
    const loopJ = a.here();
    const nextJ = a.label();
    a.cmp(edx, 1024).jae(nextI);
    a.cmp(dword({ base: rbx, index: rdx, scale: 4 }), r10d).jne(nextJ);
    a.mov(eax, ecx).shl(eax, 10).add(eax, edx);
    a.test(eax, eax).jz(nextJ);
    a.cmp(eax, r10d).je(nextJ);
    const second = a.label();
    a.cmp(qword(L("ucore_free_count")), 0).jne(second);
    a.mov(qword(L("ucore_free_page")), rax).mov(qword(L("ucore_free_map")), r11).mov(qword(L("ucore_free_index")), rdx);
    a.inc(qword(L("ucore_free_count"))).jmp(nextJ);
    a.bind(second);
    a.inc(qword(L("ucore_free_count"))).jmp(done);
    a.bind(nextJ);
    a.inc(edx).jmp(loopJ);
    a.bind(nextI);
    a.inc(ecx).jmp(loopI);
    a.bind(done);
    a.pop(rbx).ret();
  }
}
