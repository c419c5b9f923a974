// The monitor (generated ring-0 code): interrupt stubs, the common entry that finds the running partition's monitor
// state page from the IST stack, the quantum timer following the schedule table, hypercalls, fault containment,
// the context switch, the idle loop and the end-of-run summary. One copy of this code serves every partition; each
// partition has its own state page (docs/specs/image-layout.md), which is what [0063]–[0070] call its monitor. The same
// code runs on every processor: the state page names the record of the processor the partition is bound to (kernel
// stack, current partition, idle context, TSS, schedule row; docs/specs/smp.md §2), and only PCPU 0 advances the
// quantum count, drains the log and ends the run.
import { Assembler, type Label, al, byte, cr2, cr3, dword, dx, eax, ecx, edi, edx, ptr, qword, r8, r9, r10, r11, r12, r12d, r13, r14, r15, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { TSS, TSS_COM1_BYTE } from "./descriptors.ts";
import { AUDIT, COM1, EXIT, FLAG, INFO, SAVED_FRAME, FRAME_REGS, HAS_ERROR_CODE, HYPERCALL, HC_ERR, HYPERCALL_VECTOR, MAX_NUMBER, PCPU, STATE_PAGE, SIGNAL_VECTOR, SPURIOUS_VECTOR, STATE, TIMER_VECTOR, WINDOW_LAYOUT } from "./layout.ts";
import { logLock, logUnlock } from "./console.ts";
import { SCHED_ROW } from "./smp.ts";
import { emitExit } from "./paging.ts";
import { emitCpu, emitXstateSwitch } from "./cpu.ts";

export interface MonitorConfig {
  /** Local APIC timer initial count per quantum (divide-by-1). */
  quantumTicks: number;
  /** Stop after this many quanta, print the summary and exit QEMU; 0 runs for ever. */
  runQuanta: number;
  exitCode: number;
  /** Window addresses [lo, hi) of the I/O partition's line writer: the monitor's log waits while it is in there. */
  ioEmit: { lo: bigint; hi: bigint } | null;
  /**
   * Time-stamp probes on the timer → switch path (bench builds only: they add instructions to the hot path). Under
   * QEMU `-icount shift=0` the TSC advances one per instruction, so the summary's probe figure is an instruction
   * count (bench/README-ultravisor.md).
   */
  probes?: boolean;
  /** Test builds: the extended-state space cpu_setup checks CPUID 0xD's size against (default XSAVE_SPACE). */
  xstateSpace?: number;
  /**
   * A finite run waits, past runQuanta and up to twice it, for the ultravisor partition to report its summary sent
   * (its info page's INFO.summaryDone): the summary's ~40 lines need a number of quanta no constant fits on a loaded
   * TCG host.
   */
  awaitSummary?: boolean;
  /** The host gives PCI devices: switch_to opens the running owner's device ports (pci_switch, monitor-gen/pci.ts). */
  pci?: boolean;
  /** The host asks for the IOMMU: processor 0 logs recorded DMA faults every quantum (iommu_poll, monitor-gen/iommu.ts). */
  iommu?: boolean;
  /**
   * The host has a storage pair (docs/specs/storage-failover.md §7): the record indices of its members. The primary's
   * fault runs the failover (monitor-gen/storage-pair.ts pair_on_fault), PAIR_EPOCH answers, SIGNAL times the end.
   */
  pair?: { primary: number; secondary: number };
}

/** Instructions of the timer → switch path outside the probes: stub (push 0, push 32, jmp), 15 pushes, cld and the
 * six dispatch instructions of k_entry before on_timer; after the closing probe, jmp resume, lea, 15 pops, add, iretq. */
export const SWITCH_PATH_OUTSIDE_PROBES = 3 + 15 + 1 + 6 + 1 + 1 + 15 + 1 + 1;
/** Instructions the probes themselves contribute to a measured delta: shl, or, mov after the first rdtsc; the second rdtsc. */
export const PROBE_OVERHEAD = 4;

/** The ultravisor's own stack; the AOT-compiled core runs on it at boot with a 48 KiB budget. */
const KSTACK = 64 * 1024;

export const VECTORS = [...Array.from({ length: 32 }, (_, v) => v), TIMER_VECTOR, SIGNAL_VECTOR, HYPERCALL_VECTOR, SPURIOUS_VECTOR];
const PUSH_ORDER = [...FRAME_REGS].reverse(); // rax first … r15 last, so r15 sits lowest (STATE_PAGE.frame)
const REGS = { rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15 };

export function emitMonitor(a: Assembler, cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_io", "g_ultra", "g_quantum", "g_lapic", "g_tsc_entry", "g_ebs_tries", "g_probe_t0", "g_probe_min", "g_probe_sum", "g_probe_n", "g_io_held"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.bind(L("g_by_number"));
  a.zero(8 * MAX_NUMBER);
  a.align(16);
  a.zero(KSTACK);
  // The bootstrap processor's record (PCPU, docs/specs/smp.md §2.2) sits at its stack's top; its first two fields are
  // g_current and g_idle, which the SVM backend (bound to PCPU 0) reads by name.
  if (PCPU.current !== 0 || PCPU.idle !== 8) throw new Error("PCPU: current and idle must be its first two fields");
  a.bind(L("g_kstack_top"));
  a.bind(L("g_current"));
  a.zero(8);
  a.bind(L("g_idle"));
  a.zero(8);
  a.zero(PCPU.size - 16 + 8);
  a.section(".text");

  // ---- stubs: make every vector's frame the same shape (error code slot, vector) ----------------------------------
  for (const v of VECTORS) {
    a.bind(L(`stub_${v}`));
    if (!HAS_ERROR_CODE.has(v)) a.push(0);
    a.push(v);
    a.jmp(L("k_entry"));
  }

  a.bind(L("k_entry"));
  for (const r of PUSH_ORDER) a.push(REGS[r]);
  a.cld(); // a partition may enter with DF=1; the monitor's string instructions (page zeroing, copies) need DF=0
  a.mov(rbp, rsp).and(rbp, -4096); // the IST stack is the top of the running partition's state page
  a.mov(rsp, qword(rbp, STATE_PAGE.pcpu)); // the kernel stack of the processor it is bound to (its record's address)
  a.mov(rax, qword(rbp, SAVED_FRAME.vector));
  a.cmp(eax, TIMER_VECTOR).je(L("on_timer"));
  a.cmp(eax, SIGNAL_VECTOR).je(L("on_signal_ipi"));
  a.cmp(eax, HYPERCALL_VECTOR).je(L("on_hypercall"));
  a.cmp(eax, SPURIOUS_VECTOR).je(L("resume_current"));
  a.cmp(eax, 2).je(L("resume_current")); // an NMI is nobody's fault: nothing raises one here, so it is dropped
  a.test(byte(rbp, SAVED_FRAME.cs), 3).jz(L("on_panic"));
  a.jmp(L("on_fault"));

  // A signal IPI (docs/specs/smp.md §2.4): the bit is set already; counted, acknowledged, and whatever ran resumes.
  a.bind(L("on_signal_ipi"));
  a.mov(rax, qword(L("g_lapic"))).mov(dword(rax, 0xb0), 0);
  a.mov(rax, qword(rbp, STATE_PAGE.pcpu)).inc(qword(rax, PCPU.ipis));
  a.bind(L("resume_current"));
  a.mov(rdi, rbp);
  // resume(rdi = state page): reload the saved frame and return to the partition.
  a.bind(L("resume"));
  a.lea(rsp, qword(rdi, STATE_PAGE.frame));
  for (const r of FRAME_REGS) a.pop(REGS[r]);
  a.add(rsp, 16).iretq();

  // switch_to(rdi = state page), on the processor the page is bound to (its record, STATE_PAGE.pcpu): extended state
  // (eagerly, when the partition changes on this processor), IST 1 of this processor's TSS, on PCPU 0 the COM1 bitmap
  // byte and device ports, CR3 (only when it changes), dispatch time, then resume.
  a.bind(L("switch_to"));
  {
    a.mov(rsi, qword(rdi, STATE_PAGE.pcpu));
    emitXstateSwitch(a, qword(rsi, PCPU.current));
    a.mov(qword(rsi, PCPU.current), rdi);
    a.lea(rax, qword(rdi, 4096));
    a.mov(rcx, qword(rsi, PCPU.tss));
    a.mov(qword(rcx, TSS.ist1), rax);
    const ap = a.label();
    a.lea(rax, ptr(L("g_kstack_top"))).cmp(rsi, rax).jne(ap); // the I/O bitmap is PCPU 0's TSS's alone
    a.mov(al, 0xff);
    const deny = a.label();
    a.test(byte(rdi, STATE_PAGE.flags), FLAG.com1).jz(deny);
    a.xor(eax, eax);
    a.bind(deny);
    a.mov(byte(rcx, TSS_COM1_BYTE), al);
    if (cfg.pci) a.call(L("pci_switch")); // the owner's device ports open only while it runs (monitor-gen/pci.ts)
    a.bind(ap);
    a.mov(rax, qword(rdi, STATE_PAGE.cr3)).mov(rcx, cr3);
    const same = a.label();
    a.cmp(rax, rcx).je(same);
    a.mov(cr3, rax);
    a.bind(same);
    a.rdtsc().shl(rdx, 32).or(rax, rdx);
    a.mov(qword(rdi, STATE_PAGE.tscDispatch), rax);
    a.inc(qword(rdi, STATE_PAGE.quanta));
    if (cfg.probes) {
      const skip = a.label();
      const notMin = a.label();
      a.cmp(qword(L("g_probe_t0")), 0).je(skip);
      a.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, qword(L("g_probe_t0")));
      a.cmp(rax, qword(L("g_probe_min"))).jae(notMin);
      a.mov(qword(L("g_probe_min")), rax);
      a.bind(notMin);
      a.add(qword(L("g_probe_sum")), rax).inc(qword(L("g_probe_n")));
      a.mov(qword(L("g_probe_t0")), 0);
      a.bind(skip);
    }
    a.jmp(L("resume"));
  }

  emitTimer(a, cfg);
  emitHypercalls(a, cfg);
  emitFaultStop(a, cfg);
  emitPanic(a, cfg);
  emitFinish(a, cfg);
  emitIdle(a, cfg);
}

function emitTimer(a: Assembler, cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  // ---- timer: end of a quantum ------------------------------------------------------------------------------------
  a.bind(L("on_timer"));
  {
    if (cfg.probes) a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(L("g_probe_t0")), rax);
    a.mov(rax, qword(L("g_lapic"))).mov(dword(rax, 0xb0), 0); // EOI
    // An application processor's quantum interrupt is PCPU 0's IPI (docs/specs/smp.md §2.3): the shared count read
    // once; the quantum it dispatched already (an IPI that came after the count it had read) changes nothing, quanta
    // it never saw are counted as lost.
    const bsp = a.label();
    a.mov(rsi, qword(rbp, STATE_PAGE.pcpu));
    a.lea(rax, ptr(L("g_kstack_top"))).cmp(rsi, rax).je(bsp);
    {
      const first = a.label();
      a.mov(rax, qword(L("g_quantum"))).mov(rcx, qword(rsi, PCPU.seen));
      a.cmp(rax, rcx).je(L("resume_current"));
      a.inc(qword(rsi, PCPU.ticks));
      a.cmp(rcx, -1).je(first);
      a.lea(rdx, qword(rcx, 1)).cmp(rax, rdx).jbe(first);
      a.mov(rdx, rax).sub(rdx, rcx).dec(rdx).add(qword(rsi, PCPU.lost), rdx);
      a.bind(first);
      a.mov(qword(rsi, PCPU.seen), rax);
      emitAccount(a);
      a.mov(rsi, qword(rbp, STATE_PAGE.pcpu));
      a.jmp(L("dispatch"));
    }
    a.bind(bsp);
    emitAccount(a);
    a.inc(qword(L("g_quantum")));
    const inWindow = a.label();
    a.test(qword(L("g_quantum")), AUDIT.windowQuanta - 1).jnz(inWindow);
    a.call(L("audit_report"));
    a.bind(inWindow);
    a.call(L("maybe_flush"));
    if (cfg.iommu) a.call(L("iommu_poll"));
    if (cfg.runQuanta > 0 && cfg.awaitSummary) {
      const running = a.label();
      a.cmp(qword(L("g_quantum")), cfg.runQuanta).jb(running);
      a.cmp(qword(L("g_quantum")), 2 * cfg.runQuanta).jae(L("on_finish"));
      a.mov(rax, qword(L("g_ultra"))).test(rax, rax).jz(L("on_finish"));
      a.mov(rax, qword(rax, STATE_PAGE.window)).cmp(qword(rax, INFO.summaryDone), 0).jne(L("on_finish"));
      a.bind(running);
    } else if (cfg.runQuanta > 0) {
      a.cmp(qword(L("g_quantum")), cfg.runQuanta).jae(L("on_finish"));
    }
    // PCPU 0: its record sees the new quantum, and the other processors with a row get the quantum IPI.
    a.call(L("smp_swap_check")); // a test build's schedule swap (monitor-gen/smp.ts)
    a.mov(rsi, qword(rbp, STATE_PAGE.pcpu));
    a.mov(rax, qword(L("g_quantum"))).mov(qword(rsi, PCPU.seen), rax);
    const alone = a.label();
    a.cmp(qword(L("g_ap_rows")), 0).je(alone);
    a.call(L("smp_quantum_ipi"));
    a.mov(rsi, qword(rbp, STATE_PAGE.pcpu));
    a.bind(alone);
    // dispatch(rsi = this processor's record, rbp = the page that ran): entry `seen mod 16` of its row.
    a.bind(L("dispatch"));
    const idle = a.label();
    a.mov(rdx, qword(rsi, PCPU.row)).test(rdx, rdx).js(idle);
    // The table in effect at this quantum: the pending one from its quantum on (smp.md §2.7), a pure function of the
    // two words and `seen`, so every processor agrees; the first quantum this processor takes it is recorded.
    {
      const old = a.label();
      a.mov(rcx, qword(L("g_sched")));
      a.mov(rax, qword(L("g_sched_next"))).test(rax, rax).jz(old);
      a.mov(rdi, qword(rsi, PCPU.seen)).cmp(rdi, qword(L("g_switch_at"))).jb(old);
      a.mov(rcx, rax);
      a.cmp(qword(rsi, PCPU.swapped), 0).jne(old);
      a.lea(rax, qword(rdi, 1)).mov(qword(rsi, PCPU.swapped), rax);
      a.push(rdx).rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(rsi, PCPU.swapTsc), rax).pop(rdx);
      a.bind(old);
    }
    a.test(rcx, rcx).jz(idle);
    a.imul(rdx, rdx, SCHED_ROW.size).add(rcx, rdx);
    a.mov(rax, qword(rsi, PCPU.seen)).and(eax, 15);
    a.mov(eax, dword({ base: rcx, index: rax, scale: 8, disp: SCHED_ROW.first + SCHED_ROW.entries })); // u32 partition
    a.cmp(eax, MAX_NUMBER).jae(idle);
    a.lea(rcx, ptr(L("g_by_number")));
    a.mov(rdi, qword({ base: rcx, index: rax, scale: 8 }));
    a.test(rdi, rdi).jz(idle);
    a.cmp(qword(rdi, STATE_PAGE.pcpu), rsi).jne(idle); // bound to another processor (the idle partition's number)
    a.cmp(dword(rdi, STATE_PAGE.state), STATE.ready).jne(idle); // failed, or waiting for its definition
    // The UART was busy in the middle of one of the monitor's lines (k_drain): the I/O partition, which writes COM1
    // itself, waits until that line is out, so the two never interleave.
    const go = a.label();
    a.cmp(rdi, qword(L("g_io"))).jne(go);
    a.mov(rax, qword(L("g_logread"))).test(rax, rax).jz(go);
    a.lea(rcx, ptr(L("g_logbuf")));
    const held = a.label();
    a.cmp(byte({ base: rcx, index: rax, scale: 1, disp: -1 }), 10).jne(held);
    a.bind(go);
    a.jmp(L("switch_to"));
    a.bind(held);
    a.inc(qword(L("g_io_held")));
    a.bind(idle);
    a.mov(rdi, qword(rsi, PCPU.idle)).jmp(L("switch_to"));
  }

  // maybe_flush: the ultravisor's own log reaches COM1 only between the I/O partition's lines.
  a.bind(L("maybe_flush"));
  {
    const flush = a.label();
    const done = a.label();
    a.cmp(qword(L("g_loglen")), 0).je(done);
    // The log is shared by every processor's monitor: drained under its lock (docs/specs/smp.md §2.4).
    if (cfg.ioEmit) {
      a.mov(rax, qword(L("g_io")));
      a.test(rax, rax).jz(flush);
      a.cmp(dword(rax, STATE_PAGE.state), STATE.failed).je(flush);
      a.mov(rcx, qword(rax, SAVED_FRAME.rip));
      a.mov(rdx, cfg.ioEmit.lo).cmp(rcx, rdx).jb(flush);
      a.mov(rdx, cfg.ioEmit.hi).cmp(rcx, rdx).jae(flush);
      a.ret();
    }
    a.bind(flush);
    logLock(a);
    a.call(L("k_drain"));
    logUnlock(a);
    a.bind(done).ret();
  }
}

function emitHypercalls(a: Assembler, _cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  // ---- hypercalls (docs/specs/hypercall-abi.md) -------------------------------------------------------------------
  a.bind(L("on_hypercall"));
  {
    const ret = (value: number): void => {
      a.mov(qword(rbp, SAVED_FRAME.reg("rax")), value);
    };
    const back = a.label();
    const yieldL = a.label(), signal = a.label(), time = a.label(), command = a.label(), poll = a.label(), start = a.label(), unknown = a.label();
    a.inc(qword(rbp, STATE_PAGE.hypercalls));
    a.mov(rax, qword(rbp, SAVED_FRAME.reg("rax")));
    a.cmp(rax, HYPERCALL.time).je(time);
    a.cmp(rax, HYPERCALL.yield).je(yieldL);
    a.cmp(rax, HYPERCALL.signal).je(signal);
    a.cmp(rax, HYPERCALL.poll).je(poll);
    a.cmp(rax, HYPERCALL.command).je(command);
    a.cmp(rax, HYPERCALL.start).je(start);
    const dma = a.label();
    const clientWrite = a.label();
    a.cmp(rax, HYPERCALL.dmaAddr).je(dma);
    a.cmp(rax, HYPERCALL.clientWrite).je(clientWrite);
    const pairEpoch = a.label();
    if (_cfg.pair) a.cmp(rax, HYPERCALL.pairEpoch).je(pairEpoch);
    const dmaDone = a.label();
    if (_cfg.iommu) a.cmp(rax, HYPERCALL.dmaDone).je(dmaDone);
    a.bind(unknown);
    ret(HC_ERR.unknown);
    a.jmp(back);

    a.bind(time);
    a.mov(rax, qword(L("g_quantum"))).mov(qword(rbp, SAVED_FRAME.reg("rax")), rax);
    a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(rbp, SAVED_FRAME.reg("rdx")), rax);
    a.bind(back);
    a.mov(rdi, rbp).jmp(L("resume"));

    a.bind(yieldL);
    ret(0);
    emitAccount(a);
    a.mov(rax, qword(rbp, STATE_PAGE.pcpu)).mov(rdi, qword(rax, PCPU.idle)).jmp(L("switch_to"));

    a.bind(signal);
    if (_cfg.pair) a.call(L("pair_signal_note"));
    a.mov(rcx, qword(rbp, SAVED_FRAME.reg("rcx"))).call(L("do_signal"));
    a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax).jmp(back);

    a.bind(poll);
    a.xor(eax, eax).xchg(rax, qword(rbp, STATE_PAGE.pending));
    a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax).jmp(back);

    a.bind(command);
    const denied = a.label();
    a.test(byte(rbp, STATE_PAGE.flags), FLAG.command).jz(denied);
    a.mov(rcx, qword(rbp, SAVED_FRAME.reg("rcx"))).call(L("do_signal"));
    a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax);
    monitorLine(a, "ultravisor: command channel submitted by partition ", { str: (x) => x.mov(rdi, qword(rbp, STATE_PAGE.name)) });
    a.jmp(back);
    a.bind(denied);
    ret(HC_ERR.denied);
    a.call(L("audit_admit")).test(eax, eax).jz(back);
    monitorLine(a, "ultravisor: audit: partition ", { str: (x) => x.mov(rdi, qword(rbp, STATE_PAGE.name)) }, ": command channel submission refused");
    a.jmp(back);

    // START(rcx = partition number, rdx = its descriptor page in the database): the ultravisor partition alone, after
    // the transaction that created the partition and gave it its allotment. The monitor builds the address space from
    // the database view (monitor-gen/lead.ts start_partition) on the ultravisor's own stack: core's owner lookups
    // need more than the state page's IST stack holds.
    a.bind(start);
    {
      const startDenied = a.label();
      const bad = a.label();
      a.test(byte(rbp, STATE_PAGE.flags), FLAG.ultra).jz(startDenied);
      a.mov(rcx, qword(rbp, SAVED_FRAME.reg("rcx")));
      a.cmp(rcx, MAX_NUMBER).jae(bad);
      a.lea(rax, ptr(L("g_by_number"))).mov(rdi, qword({ base: rax, index: rcx, scale: 8 }));
      a.test(rdi, rdi).jz(bad);
      a.cmp(dword(rdi, STATE_PAGE.state), STATE.waiting).jne(bad);
      a.mov(rsi, qword(rbp, SAVED_FRAME.reg("rdx")));
      a.mov(rsp, qword(rbp, STATE_PAGE.pcpu)); // PCPU 0's stack: the ultravisor partition is bound there
      a.call(L("start_checked"));
      a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax);
      a.jmp(back);
      a.bind(bad);
      ret(HC_ERR.badArgument);
      a.jmp(back);
      a.bind(startDenied);
      ret(HC_ERR.denied);
      a.call(L("audit_admit")).test(eax, eax).jz(back);
      monitorLine(a, "ultravisor: audit: partition ", { str: (x) => x.mov(rdi, qword(rbp, STATE_PAGE.name)) }, ": start refused (only the ultravisor partition starts partitions)");
      a.jmp(back);
    }

    // DMA_ADDR(rcx = −1 or a channel slot, rdx = offset): the bus address for the I/O partition's device
    // (monitor-gen/pci.ts pci_dma_addr), on the ultravisor's stack since core's owner lookup needs more than the IST's.
    // CLIENT_WRITE(rcx = channel slot, rdx = offset of a descriptor): up to 64 bytes into a storage client's page
    // (pci_client_write), for the data of INQUIRY and READ CAPACITY.
    for (const [l, routine] of [[dma, "pci_dma_addr"], [clientWrite, "pci_client_write"]] as const) {
      a.bind(l);
      if (_cfg.pci) {
        // The caller's processor's stack (its record, as k_entry set it): any partition may ask, from any processor.
        // It was PCPU 0's (g_kstack_top): a guest on PCPU 1 asking in a loop wrote over the frames of PCPU 0's monitor.
        a.mov(rsp, qword(rbp, STATE_PAGE.pcpu));
        a.call(L(routine));
        a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax);
      } else {
        ret(HC_ERR.denied);
      }
      a.jmp(back);
    }

    // DMA_DONE (hosts with the IOMMU only): the client pages DMA_ADDR mapped for the caller's devices since its last
    // DMA_DONE are unmapped, with an IOTLB invalidation (monitor-gen/iommu.ts iommu_done, storage-channel.md §9).
    if (_cfg.iommu) {
      a.bind(dmaDone);
      a.mov(rsp, qword(rbp, STATE_PAGE.pcpu)); // the caller's processor's stack, as for DMA_ADDR (any partition may ask)
      a.mov(rdi, qword(rbp, STATE_PAGE.index)).inc(rdi).call(L("iommu_done"));
      a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax);
      a.jmp(back);
    }

    // PAIR_EPOCH: the storage pair's epoch for its clients (monitor-gen/storage-pair.ts), core on the ultravisor's stack.
    if (_cfg.pair) {
      a.bind(pairEpoch);
      a.call(L("pair_epoch_call"));
      a.mov(qword(rbp, SAVED_FRAME.reg("rax")), rax);
      a.jmp(back);
    }
  }

  // ---- audit records of refused hypercalls (docs/specs/hypercall-abi.md, Audit records) ---------------------------
  // A partition that loops a refused hypercall must not flood the log nor, through it, the other partitions' time:
  // each partition gets AUDIT.lines lines per window of AUDIT.windowQuanta quanta; further refusals in the window are
  // counted in its state page and reported as one line when the window ends (on_timer) or at the summary.
  // audit_admit(rbp = the refused partition's state page) → eax = 1: print the record, 0: counted instead.
  a.bind(L("audit_admit"));
  {
    const same = a.label();
    const suppress = a.label();
    a.mov(rax, qword(L("g_quantum"))).shr(rax, Math.log2(AUDIT.windowQuanta));
    a.cmp(rax, qword(rbp, STATE_PAGE.auditWindow)).je(same);
    a.mov(qword(rbp, STATE_PAGE.auditWindow), rax);
    a.mov(qword(rbp, STATE_PAGE.auditLines), 0);
    a.bind(same);
    a.cmp(qword(rbp, STATE_PAGE.auditLines), AUDIT.lines).jae(suppress);
    a.inc(qword(rbp, STATE_PAGE.auditLines));
    a.mov(eax, 1).ret();
    a.bind(suppress);
    a.inc(qword(rbp, STATE_PAGE.auditSuppressed));
    a.xor(eax, eax).ret();
  }

  // audit_report: one "suppressed" line for every partition with refusals counted but not printed; the counts restart.
  a.bind(L("audit_report"));
  {
    a.push(rbx).push(r12).push(r13);
    a.xor(r12d, r12d);
    const next = a.here();
    const done = a.label();
    const quiet = a.label();
    a.cmp(r12, qword(L("g_partition_count"))).jae(done);
    a.mov(rax, r12).shl(rax, 6).lea(rbx, ptr(L("g_partitions"))).add(rbx, rax);
    a.mov(r13, qword(rbx, 40));
    a.mov(rax, qword(r13, STATE_PAGE.auditSuppressed)).test(rax, rax).jz(quiet);
    monitorLine(a, "ultravisor: audit: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, ": ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.auditSuppressed)) },
      " more refused hypercalls suppressed");
    a.mov(qword(r13, STATE_PAGE.auditSuppressed), 0);
    a.bind(quiet);
    a.inc(r12).jmp(next);
    a.bind(done);
    a.pop(r13).pop(r12).pop(rbx).ret();
  }

  // do_signal(rbp = caller's state page, rcx = slot) → rax: sets the peer's pending bit for its slot of the channel.
  a.bind(L("do_signal"));
  {
    const bad = a.label();
    a.cmp(rcx, WINDOW_LAYOUT.maxSlots).jae(bad);
    a.shl(rcx, 4);
    a.mov(rax, qword({ base: rbp, index: rcx, scale: 1, disp: STATE_PAGE.slots }));
    a.test(rax, rax).jz(bad);
    a.mov(rcx, qword({ base: rbp, index: rcx, scale: 1, disp: STATE_PAGE.slots + 8 }));
    // The peer's bit, atomically: it may run on another processor (smp.md §2.4). A bit already set (the peer has not
    // polled since) sends no IPI, so a partition signalling in a loop costs the peer's processor at most one
    // interrupt per POLL of the peer.
    const local = a.label();
    a.and(ecx, 63);
    a.lock().bts(qword(rax, STATE_PAGE.pending), rcx);
    a.jc(local);
    // Running there now: a signal IPI to its processor.
    a.mov(rcx, qword(rax, STATE_PAGE.pcpu));
    a.cmp(rcx, qword(rbp, STATE_PAGE.pcpu)).je(local);
    a.cmp(qword(rcx, PCPU.current), rax).jne(local);
    a.mov(edx, dword(rcx, PCPU.apic)).shl(edx, 24);
    a.mov(rcx, qword(L("g_lapic")));
    a.call(L("smp_icr_wait"));
    a.mov(dword(rcx, 0x310), edx).mov(dword(rcx, 0x300), SIGNAL_VECTOR);
    a.lock().inc(qword(L("g_signal_ipis")));
    a.bind(local);
    a.xor(eax, eax).ret();
    a.bind(bad);
    a.mov(rax, HC_ERR.badArgument).ret();
  }
}

function emitFaultStop(a: Assembler, cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  // ---- an exception at CPL 3 stops that partition alone ------------------------------------------------------------
  a.bind(L("on_fault"));
  {
    a.mov(dword(rbp, STATE_PAGE.state), STATE.failed);
    a.mov(r12, qword(rbp, SAVED_FRAME.vector));
    a.mov(r13, qword(rbp, SAVED_FRAME.rip));
    a.mov(r14, r13);
    const notPf = a.label();
    a.cmp(r12, 14).jne(notPf);
    a.mov(r14, cr2);
    a.bind(notPf);
    monitorLine(a, "partition ", { str: (x) => x.mov(rdi, qword(rbp, STATE_PAGE.name)) }, ": fault vector ", { dec: (x) => x.mov(rdi, r12) },
      " at ", { hex: (x) => x.mov(rdi, r14) }, " rip ", { hex: (x) => x.mov(rdi, r13) }, " error ", { hex: (x) => x.mov(rdi, qword(rbp, SAVED_FRAME.error)) });
    if (cfg.pair) {
      // The storage pair's primary: fence its device and name the secondary before anything else runs.
      const notPrimary = a.label();
      a.cmp(qword(rbp, STATE_PAGE.index), cfg.pair.primary).jne(notPrimary);
      a.call(L("pair_on_fault"));
      a.bind(notPrimary);
    }
    emitAccount(a);
    a.mov(rax, qword(rbp, STATE_PAGE.pcpu)).mov(rdi, qword(rax, PCPU.idle)).jmp(L("switch_to"));
  }
}

function emitPanic(a: Assembler, _cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  // ---- an exception at CPL 0 is an ultravisor bug ------------------------------------------------------------------
  a.bind(L("on_panic"));
  {
    a.mov(qword(L("g_loglock")), 0); // the run ends here: a line held by this processor is not waited for
    a.mov(qword(L("g_direct")), 1);
    a.call(L("k_flush"));
    a.mov(r12, cr2);
    monitorLine(a, "ultravisor: panic: vector ", { dec: (x) => x.mov(rdi, qword(rbp, SAVED_FRAME.vector)) }, " rip ", { hex: (x) => x.mov(rdi, qword(rbp, SAVED_FRAME.rip)) },
      " cr2 ", { hex: (x) => x.mov(rdi, r12) }, " error ", { hex: (x) => x.mov(rdi, qword(rbp, SAVED_FRAME.error)) });
    emitExit(a, EXIT.panic);
  }
}

function emitFinish(a: Assembler, cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  // ---- end of a finite run: summary, then isa-debug-exit -----------------------------------------------------------
  a.bind(L("on_finish"));
  {
    if (cfg.ioEmit) {
      // The I/O partition may have been stopped in the middle of a line: end it before the summary.
      const clean = a.label();
      a.mov(rax, qword(L("g_io"))).test(rax, rax).jz(clean);
      a.mov(rcx, qword(rax, SAVED_FRAME.rip));
      a.mov(rdx, cfg.ioEmit.lo).cmp(rcx, rdx).jb(clean);
      a.mov(rdx, cfg.ioEmit.hi).cmp(rcx, rdx).jae(clean);
      for (const ch of [13, 10]) {
        a.mov(dx, COM1).mov(al, ch).out(dx, al);
      }
      a.bind(clean);
    }
    logLock(a);
    a.mov(qword(L("g_direct")), 1);
    a.call(L("k_flush"));
    logUnlock(a);
    a.call(L("audit_report"));
    const whole = a.label();
    a.cmp(qword(L("g_logdropped")), 0).je(whole);
    monitorLine(a, "ultravisor: log: ", { dec: (x) => x.mov(rdi, qword(L("g_logdropped"))) }, " lines dropped whole (the log buffer was full)");
    a.bind(whole);
    const neverHeld = a.label();
    a.cmp(qword(L("g_io_held")), 0).je(neverHeld);
    monitorLine(a, "ultravisor: log: the I/O partition waited ", { dec: (x) => x.mov(rdi, qword(L("g_io_held"))) }, " quanta for a line the UART had not taken");
    a.bind(neverHeld);
    if (cfg.probes) {
      monitorLine(a, "ultravisor: probe: timer switch between probes min ", { dec: (x) => x.mov(rdi, qword(L("g_probe_min"))) }, " sum ", { dec: (x) => x.mov(rdi, qword(L("g_probe_sum"))) },
        " count ", { dec: (x) => x.mov(rdi, qword(L("g_probe_n"))) });
    }
    monitorLine(a, "ultravisor: summary after ", { dec: (x) => x.mov(rdi, qword(L("g_quantum"))) }, " quanta of ", String(cfg.quantumTicks), " APIC timer ticks");
    a.xor(r12d, r12d);
    const next = a.here();
    const done = a.label();
    a.cmp(r12, qword(L("g_partition_count"))).jae(done);
    a.mov(rax, r12).shl(rax, 6).lea(rbx, ptr(L("g_partitions"))).add(rbx, rax);
    a.mov(r13, qword(rbx, 40));
    const stated = a.label();
    a.lea(r14, ptr(L("s_ready")));
    a.cmp(dword(r13, STATE_PAGE.state), STATE.ready).je(stated);
    a.lea(r14, ptr(L("s_waiting")));
    a.cmp(dword(r13, STATE_PAGE.state), STATE.waiting).je(stated);
    a.lea(r14, ptr(L("s_stopped")));
    a.cmp(dword(r13, STATE_PAGE.state), STATE.stopped).je(stated);
    a.lea(r14, ptr(L("s_failed")));
    a.bind(stated);
    monitorLine(a, "ultravisor: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " number ", { dec: (x) => x.mov(edi, dword(rbx, 32)) },
      " state ", { str: (x) => x.mov(rdi, r14) }, " quanta ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.quanta)) },
      " tsc ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.tscUsed)) }, " hypercalls ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.hypercalls)) });
    a.inc(r12).jmp(next);
    a.bind(done);
    a.call(L("smp_report")); // where the partitions ran, and the application processors' quanta (monitor-gen/smp.ts)
    monitorLine(a, `ultravisor: stopping: isa-debug-exit code ${cfg.exitCode}`);
    emitExit(a, cfg.exitCode);
  }
  a.section(".rdata");
  a.bind(L("s_ready"));
  a.asciz("ready");
  a.bind(L("s_failed"));
  a.asciz("failed");
  a.bind(L("s_waiting"));
  a.asciz("waiting");
  a.bind(L("s_stopped"));
  a.asciz("stopped");
  a.section(".text");
}

function emitIdle(a: Assembler, cfg: MonitorConfig): void {
  const L = (n: string): Label => a.symbol(n);
  // ---- the idle partition's only code: halt until the next quantum -------------------------------------------------
  a.bind(L("idle_loop"));
  a.sti().hlt().jmp(L("idle_loop"));

  emitCpu(a, cfg.xstateSpace);
}

/** Adds the time since dispatch to the partition's tscUsed (rbp = its state page); clobbers rax, rdx. */
function emitAccount(a: Assembler): void {
  a.rdtsc().shl(rdx, 32).or(rax, rdx);
  a.sub(rax, qword(rbp, STATE_PAGE.tscDispatch));
  a.add(qword(rbp, STATE_PAGE.tscUsed), rax);
}
