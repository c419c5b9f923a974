// The ultravisor partition with the resource manager's core: core.wasm compiled by toolchain/aot (linear memory in a
// register, r15 = DBWIN, so wasm address p is the database's physical page p as the monitor mapped it for CPL 3)
// merged with the partition's assembly. At start it attaches to the database the lead monitor bootstrapped and reads
// it back through core's own exports — deprivileged, with page tables that map only the database's pages ([0159]) —
// then serves the command channel: each boot-time definition becomes a partition in the database with its allotment,
// the transaction sim/resource-service.ts's create() submits with explicit runs (built by core/boot/assembly/boot.ts
// `create`, compiled by toolchain/aot a second time for this partition), and is started by the START hypercall,
// which makes the monitor build its address space from the database view; every request drained is answered with a
// completion on the channel's queue 1 (status, source, the new partition's number). Once all are applied, and near the end
// of a finite run, it sends the summary — the memory map at the PMM and PKM scales and the schedule — as console
// lines, which the I/O partition writes to COM1. It takes the boot module from loader-efi/uv-boot-db.ts, the layer
// below partitions/ (docs/architecture.md, Layers).
import { Assembler, type Label, byte, dword, eax, ecx, edx, ptr, word, qword, r12, r13, r13d, r14, r14d, r15, rax, rbx, rcx, rdi, rdx, rsi, rsp } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { compileWasm } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import { CHAN, CMDCHAN, DB_PAGES, DBWIN, HYPERCALL, INFO, MAX_NUMBER, WINDOW_LAYOUT } from "../monitor-gen/layout.ts";
import { compileBootDb, emitBootImports } from "../loader-efi/uv-boot-db.ts";
import { consoleLine, emitCommandServer, emitRuntime, hypercall, windowAddress } from "./runtime.ts";
import { DEFINITION_BYTES, complete, emitCommandServeLoop } from "./programs.ts";
import { mergeObjects } from "../toolchain/aot/merge-objects.ts";
import { FOUR_MIB, PAGE, PD_MAGIC } from "../core/database.ts";
import { CREATE_PAYLOAD } from "../core/boot-module.ts";

const CALLS = ["db_attach", "db_order", "db_ui_address", "db_get_owner", "db_submit", "db_log_truncate"] as const;
/** Where the definition payload is copied for the boot module: the request buffer's last 256 bytes (database view). */
const PAYLOAD_OFFSET = CREATE_PAYLOAD.offset;
const UVTX_STACK_BUDGET = 2 * 1024;
const STACK_BUDGET = 12 * 1024;
/** The byte address whose owner the partition reports (the database's first page). */
export const OWNER_PROBE = FOUR_MIB;
/** The two scales of the map summary the partition prints: [lo, hi) in steps of one map entry. */
export const MAP_SCALES = [
  { name: "4M", lo: 0, hi: 0x1_0000_0000, step: FOUR_MIB },
  { name: "4K", lo: FOUR_MIB, hi: 2 * FOUR_MIB, step: PAGE },
] as const;

/** The scale name of the summary's third map: the 4 KiB entries of the 4 MiB page(s) holding the allotments. */
export const ALLOTMENT_SCALE = "4K-allotments";

/**
 * Yields in a row the ultravisor partition waits for the I/O partition to take one more of its lines (uv_line_sent):
 * each is a whole schedule cycle, in which the I/O partition has its duty (at least 1 quantum).
 */
const LINE_WAIT_YIELDS = 16;
/** Lines the summary leaves in the console queue before waiting for the I/O partition (the queue holds 15). */
const LINES_PER_QUANTUM = 8;

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
  /**
   * Test builds: give the partition with this number one page less than its allotment when creating it, so the
   * monitor's ownership check must refuse its START (test/hw/ultravisor.test.ts).
   */
  shortAllotment?: number;
  /** Test builds: before creating each partition, call START with −1 and with the ultravisor's number (both refused). */
  startProbes?: boolean;
}

export function assembleUltravisorWithCore(coreWasm: Uint8Array, bootWasm: Uint8Array, o: UltravisorCoreOptions): ObjectFile {
  const { ui, memoryBytes } = o;
  const core = compileWasm(coreWasm, { hostThunks: true, importsAsSymbols: true, symbolPrefix: "ucore" });
  const uvtx = compileBootDb(bootWasm, "uvtx");
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
  {
    // Without the database (skipped at boot) the monitor maps no view: say so and refuse every definition.
    const haveDb = a.label();
    a.mov(rax, windowAddress(INFO.database)).cmp(qword(rax), 0).jne(haveDb);
    consoleLine(a, "no resource database (skipped at boot): definitions are refused");
    emitCommandServeLoop(a, (x) => {
      consoleLine(x, "command ", { dec: (y) => y.mov(rax, r12) }, ": refused: no resource database");
      complete(x, CMDCHAN.source.ultravisor, CMDCHAN.refusal.noDatabase);
    });
    a.bind(haveDb);
  }
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

  // uv_summary: the map as runs of one owner (GetMemOwner per entry, owners by name from their descriptors): the
  // 4 MiB entries over 4 GiB, the 4 KiB entries of the database's own 4 MiB page, and the 4 KiB entries of the 4 MiB
  // page(s) holding the partitions' allotments (from the info page); then the schedule.
  a.bind(L("uv_summary"));
  for (const r of [rbx, r12, r13, r14, r15]) a.push(r);
  consoleLine(a, "summary: memory map (runs of one owner) and schedule");
  a.call(L("uv_line_sent"));
  const scaleNames: string[] = [];
  const scan = (name: string, lo: () => void, hi: () => void, step: number): void => {
    if (!scaleNames.includes(name)) scaleNames.push(name);
    lo();
    a.mov(qword(L("ucore_scan_lo")), rax);
    hi();
    a.mov(qword(L("ucore_scan_hi")), rax);
    a.mov(qword(L("ucore_scan_step")), step);
    a.lea(rax, ptr(L(`ucore_scale_${scaleNames.indexOf(name)}`))).mov(qword(L("ucore_scan_name")), rax);
    a.call(L("uv_scan"));
  };
  for (const m of MAP_SCALES) scan(m.name, () => a.mov(rax, m.lo), () => a.mov(rax, BigInt(m.hi)), m.step);
  {
    // [lowest allotment, end of the highest) widened to whole 4 MiB pages.
    a.mov(r12, -1).xor(r13d, r13d);
    a.mov(rbx, windowAddress(INFO.allotment(0)));
    a.xor(ecx, ecx);
    const loop = a.here();
    const skip = a.label();
    const done = a.label();
    a.cmp(ecx, MAX_NUMBER).jae(done);
    a.mov(rax, qword(rbx, 8)).test(rax, rax).jz(skip);
    a.shl(rax, 12).add(rax, qword(rbx)).cmp(rax, r13).cmova(r13, rax);
    a.mov(rax, qword(rbx)).cmp(rax, r12).cmovb(r12, rax);
    a.bind(skip);
    a.add(rbx, 16).inc(ecx).jmp(loop);
    a.bind(done);
    const none = a.label();
    a.test(r13, r13).jz(none);
    scan(ALLOTMENT_SCALE, () => a.mov(rax, r12).and(rax, -FOUR_MIB), () => a.lea(rax, qword(r13, FOUR_MIB - 1)).and(rax, -FOUR_MIB), PAGE);
    a.bind(none);
  }
  for (const line of o.schedule) {
    consoleLine(a, line);
    a.call(L("uv_line_sent"));
  }
  for (const r of [r15, r14, r13, r12, rbx]) a.pop(r);
  a.ret();

  // uv_scan: [ucore_scan_lo, ucore_scan_hi) in steps of ucore_scan_step, one line per run of one owner.
  a.bind(L("uv_scan"));
  {
    const next = a.label();
    const same = a.label();
    a.sub(rsp, 8); // rsp 16-byte aligned at the calls into the compiled core
    a.mov(r13, qword(L("ucore_scan_lo"))); // address
    a.mov(r14, -1); // owner of the open run
    a.mov(r15, r13); // start of the open run
    const loop = a.here();
    a.mov(qword(L("ucore_args")), r13).mov(qword({ label: L("ucore_args"), disp: 8 }), 0);
    a.lea(rdi, ptr(L("ucore_ctx"))).lea(rsi, ptr(L("ucore_args"))).lea(rdx, ptr(L("ucore_result")));
    a.call(L("ucore_thunk_db_get_owner"));
    a.mov(eax, dword(L("ucore_result")));
    a.cmp(rax, r14).je(same);
    a.cmp(r14, -1).je(next);
    a.mov(qword(L("ucore_next_owner")), rax);
    a.call(L("uv_print_run"));
    a.mov(rax, qword(L("ucore_next_owner")));
    a.bind(next);
    a.mov(r14, rax).mov(r15, r13);
    a.bind(same);
    a.add(r13, qword(L("ucore_scan_step"))).cmp(r13, qword(L("ucore_scan_hi"))).jb(loop);
    a.call(L("uv_print_run"));
    a.add(rsp, 8);
    a.ret();
  }

  // uv_print_run: "map SCALE lo-hi: OWNER" for the run [r15, r13) owned by r14; OWNER is the name in the owner's
  // descriptor when that page is in this partition's view of the database, else its number.
  a.bind(L("uv_print_run"));
  {
    const byNumber = a.label();
    const printed = a.label();
    a.mov(rax, r14).shl(rax, 12);
    a.cmp(rax, DB_PAGES.lo).jb(byNumber);
    a.cmp(rax, DB_PAGES.hi).jae(byNumber);
    a.mov(rsi, DBWIN).add(rsi, rax);
    a.cmp(dword(rsi), PD_MAGIC).jne(byNumber);
    a.cmp(dword(rsi, 4), r14d).jne(byNumber);
    a.mov(rax, qword(rsi, 16)).mov(qword(L("ucore_owner_name")), rax);
    a.mov(rax, qword(rsi, 24)).mov(qword({ label: L("ucore_owner_name"), disp: 8 }), rax);
    a.cmp(byte(L("ucore_owner_name")), 0).je(byNumber);
    const line = (owner: Parameters<typeof consoleLine>[1]): void =>
      consoleLine(a, "map ", { str: (x) => x.mov(rsi, qword(L("ucore_scan_name"))) }, " ", { hex: (x) => x.mov(rax, r15) }, "-", { hex: (x) => x.lea(rax, qword(r13, -1)) }, ": ", owner);
    line({ str: (x) => x.lea(rsi, ptr(L("ucore_owner_name"))) });
    a.jmp(printed);
    a.bind(byNumber);
    line({ hex: (x) => x.mov(rax, r14) });
    a.bind(printed);
    a.call(L("uv_line_sent"));
    a.ret();
  }

  // uv_line_sent: once LINES_PER_QUANTUM lines wait in the console queue, yields until the I/O partition has taken
  // them all (a full queue would drop lines: the runtime's writer does not block) — as long as it makes progress.
  // The head and tail are the I/O partition's to write, and a hostile one that never lets them meet must not keep
  // the ultravisor partition from its work (test/hw/fuzz-server.test.ts); an honest one that is merely slow (a loaded
  // host under TCG) must not lose the summary. So the wait ends when the queue is empty, or after LINE_WAIT_YIELDS
  // yields in a row without a new lowest count of pending lines: the lowest count can only fall 15 times, so the
  // wait is bounded whatever the I/O partition writes. The lines still pending are then dropped, as when full.
  // uv_line_sent waits once LINES_PER_QUANTUM lines are pending; uv_drain once any is (the end of the summary).
  for (const [label, threshold] of [["uv_line_sent", LINES_PER_QUANTUM], ["uv_drain", 1]] as const) {
    a.bind(L(label));
    const keep = a.label();
    const done = a.label();
    const lower = a.label();
    const q0 = windowAddress(WINDOW_LAYOUT.slot(0) + 128);
    const pending = (): void => {
      a.mov(rcx, q0).mov(eax, dword(rcx, 60)).sub(eax, dword(rcx, 72)).and(eax, 15);
    };
    pending();
    a.cmp(eax, threshold).jb(keep);
    // [rsp + 8]: the lowest pending count seen; [rsp]: yields left without a new lowest.
    a.push(rax).push(LINE_WAIT_YIELDS);
    const again = a.here();
    hypercall(a, HYPERCALL.yield);
    pending();
    a.test(eax, eax).jz(done);
    a.cmp(rax, qword(rsp, 8)).jb(lower);
    a.dec(qword(rsp)).jnz(again);
    a.jmp(done);
    a.bind(lower);
    a.mov(qword(rsp, 8), rax).mov(qword(rsp), LINE_WAIT_YIELDS).jmp(again);
    a.bind(done);
    a.add(rsp, 16);
    a.bind(keep).ret();
  }
  emitRuntime(a);
  emitCommandServer(a);

  a.section(".rdata");
  scaleNames.forEach((n, i) => {
    a.bind(L(`ucore_scale_${i}`));
    a.asciz(n);
  });
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
  a.bind(L("uvtx_ctx"));
  emitImageContext(a, uvtx, { memBase: DBWIN, memBytes: memoryBytes, trapHandler: L("uvtx_host_trap"), stackBudget: UVTX_STACK_BUDGET });
  a.bind(L("uvtx_args"));
  a.dq(0n, 0n, 0n, 0n, 0n, 0n);
  a.bind(L("uvtx_result"));
  a.dq(0n);
  a.bind(L("ucore_owner_name"));
  a.zero(24); // 16 name bytes, always NUL-terminated
  for (const n of ["ucore_req", "ucore_applied", "ucore_summary_done", "ucore_scan_lo", "ucore_scan_hi", "ucore_scan_step", "ucore_scan_name"]) {
    a.bind(L(n));
    a.dq(0n);
  }

  const text = core.object.sections.findIndex((x) => x.name === ".text");
  const thunk = (n: string): number => {
    const e = core.exports.find((x) => x.name === n);
    if (!e || e.thunk < 0) throw new Error(`core.wasm lacks ${n}`);
    return e.thunk;
  };
  const merged = mergeObjects(a.finish(), core.object, "ucore$", [
    ...CALLS.map((n) => ({ name: `ucore_thunk_${n}`, section: text, offset: thunk(n) })),
    { name: "ucore_host_trap", section: text, offset: core.hostTrap },
  ]);
  const uvtxText = uvtx.object.sections.findIndex((x) => x.name === ".text");
  return mergeObjects(merged, uvtx.object, "uvtx$", [
    { name: "uvtx_thunk_create", section: uvtxText, offset: uvtx.exports.find((e) => e.name === "create")!.thunk },
    { name: "uvtx_host_trap", section: uvtxText, offset: uvtx.hostTrap },
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
      hypercall(x, HYPERCALL.time);
      x.cmp(rax, o.summaryAt).jb(later);
      x.mov(qword(L("ucore_summary_done")), 1);
      x.call(L("uv_summary"));
      // Sent and taken: the monitor ends a finite run only then (INFO.summaryDone, docs/specs/image-layout.md).
      x.call(L("uv_drain"));
      x.mov(rax, windowAddress(WINDOW_LAYOUT.info + INFO.summaryDone)).mov(qword(rax), 1);
      x.bind(later);
    },
  );

  // uv_create(rbx = definition payload, r12 = request number): the create transaction of a partition with its
  // allotment (core/boot/assembly/boot.ts `create`, a second instance of the boot module running here over the
  // database view), then START, so the monitor builds the partition's address space from the database. Every exit
  // fills in the request's completion (`complete`: status, its source, the partition's number when started).
  a.bind(L("uv_create"));
  {
    const uiAt = DBWIN + BigInt(o.ui * 4096);
    const exit = a.label();
    const noAllot = a.label();
    const malformed = a.label();
    const refused = a.label();
    const trapped = a.label();
    const noPage = a.label();
    a.push(rbx).push(r13).push(r14).push(r15).sub(rsp, 8); // the service loop's registers; rsp 16-byte aligned at calls
    // A definition is opcode 2 with exactly DEFINITION_BYTES inline; anything else is refused unread.
    a.cmp(dword(rbx, -64), CHAN.opDefine).jne(malformed);
    a.cmp(word(rbx, -64 + 20), DEFINITION_BYTES).jne(malformed);
    // The payload is copied to the end of core's request buffer (wasm address [ucore_req] + PAYLOAD_OFFSET) and read
    // only from there: the command partition can rewrite the channel page while this runs.
    a.mov(rdi, DBWIN + BigInt(PAYLOAD_OFFSET)).add(rdi, qword(L("ucore_req")));
    for (let k = 0; k < DEFINITION_BYTES; k += 8) a.mov(rax, qword(rbx, k)).mov(qword(rdi, k), rax);
    a.mov(byte(rdi, 15), 0); // the name is printed: NUL-terminated within its 16 bytes
    a.mov(rbx, rdi);
    a.mov(eax, dword(rbx, 36)).mov(r13, rax); // the partition's number
    a.cmp(r13, MAX_NUMBER).jae(noAllot);
    a.mov(rax, windowAddress(INFO.number)).cmp(r13, qword(rax)).je(noAllot); // never its own allotment
    a.mov(rax, windowAddress(INFO.allotment(0))).mov(rcx, r13).shl(rcx, 4).add(rax, rcx);
    a.mov(rcx, qword(rax)).shr(rcx, 12).mov(rdx, qword(rax, 8));
    a.test(rdx, rdx).jz(noAllot);
    if (o.shortAllotment !== undefined) {
      const whole = a.label();
      a.cmp(r13, o.shortAllotment).jne(whole);
      a.dec(rdx);
      a.bind(whole);
    }
    if (o.startProbes) {
      // Test builds: START with a number that is not the partition's descriptor must be refused (−4) by the monitor.
      for (const bad of [() => a.mov(rdx, -1), () => a.mov(rax, uiAt).mov(edx, dword(rax, 24))]) {
        a.push(rcx).push(rdx);
        a.mov(rcx, r13);
        bad();
        hypercall(a, HYPERCALL.start);
        a.mov(r14, rax).neg(r14);
        consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": probe: START refused: -", { dec: (x) => x.mov(rax, r14) });
        a.pop(rdx).pop(rcx);
      }
    }
    a.mov(rax, BigInt(o.ui)).mov(qword(L("uvtx_args")), rax);
    a.mov(rax, qword(L("ucore_req"))).mov(qword({ label: L("uvtx_args"), disp: 8 }), rax);
    a.add(rax, PAYLOAD_OFFSET).mov(qword({ label: L("uvtx_args"), disp: 16 }), rax);
    a.mov(qword({ label: L("uvtx_args"), disp: 24 }), rcx).mov(qword({ label: L("uvtx_args"), disp: 32 }), rdx);
    a.mov(rax, uiAt).mov(eax, dword(rax, 24)).mov(qword({ label: L("uvtx_args"), disp: 40 }), rax); // from the ultravisor
    a.lea(rdi, ptr(L("uvtx_ctx"))).lea(rsi, ptr(L("uvtx_args"))).lea(rdx, ptr(L("uvtx_result")));
    a.call(L("uvtx_thunk_create"));
    a.mov(r14, rax);
    a.test(eax, eax).jnz(trapped);
    a.movsxd(rax, dword(L("uvtx_result")));
    a.mov(qword(L("ucore_result")), rax);
    a.cmp(rax, -1003).je(noPage);
    a.test(rax, rax).js(refused);
    a.mov(r14, rax);
    a.inc(qword(L("ucore_applied")));
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": partition ", { hex: (x) => x.mov(rax, r14) }, " created");
    a.mov(rcx, r13).mov(rdx, r14);
    hypercall(a, HYPERCALL.start);
    const started = a.label();
    a.test(rax, rax).jz(started);
    a.mov(r15, rax).neg(r15);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": ", { str: (x) => x.mov(rsi, rbx) }, " not started: result -", { dec: (x) => x.mov(rax, r15) });
    complete(a, CMDCHAN.source.start, (x) => x.mov(rax, r15).neg(rax));
    a.jmp(exit);
    a.bind(started);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": ", { str: (x) => x.mov(rsi, rbx) }, " started");
    complete(a, CMDCHAN.source.applied, 0, (x) => x.mov(eax, r14d));
    a.jmp(exit);
    a.bind(refused);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": refused by core, error -",
      { dec: (x) => x.movsxd(rax, dword(L("ucore_result"))).neg(rax) });
    complete(a, CMDCHAN.source.core, (x) => x.mov(eax, dword(L("ucore_result"))));
    a.jmp(exit);
    a.bind(trapped);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": wasm trap ", { dec: (x) => x.mov(rax, r14) });
    complete(a, CMDCHAN.source.ultravisor, CMDCHAN.refusal.trapped);
    a.jmp(exit);
    a.bind(noPage);
    // Growing the database (a new PKM once its own 4 MiB page is full) is not implemented (image-layout.md).
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": no free database page");
    complete(a, CMDCHAN.source.core, (x) => x.mov(eax, dword(L("ucore_result"))));
    a.jmp(exit);
    a.bind(noAllot);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": define ", { str: (x) => x.mov(rsi, rbx) }, ": no allotment for number ", { dec: (x) => x.mov(rax, r13) });
    complete(a, CMDCHAN.source.ultravisor, CMDCHAN.refusal.noAllotment);
    a.jmp(exit);
    a.bind(malformed);
    consoleLine(a, "command ", { dec: (x) => x.mov(rax, r12) }, ": not a definition: refused");
    complete(a, CMDCHAN.source.ultravisor, CMDCHAN.refusal.notDefinition);
    a.bind(exit);
    a.add(rsp, 8).pop(r15).pop(r14).pop(r13).pop(rbx);
    a.ret();
  }

  // The boot module's imports, served by this partition's core instance.
  emitBootImports(a, { ctx: "ucore_ctx", args: "ucore_args", result: "ucore_result", submit: "ucore_thunk_db_submit", truncate: "ucore_thunk_db_log_truncate" });
}
