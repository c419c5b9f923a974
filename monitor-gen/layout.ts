// Numbers shared by the ring-0 code generators (monitor-gen/), the loader (loader-efi/ultravisor.ts), the partition
// programs (partitions/) and the image builder: selectors, the monitor state page, the saved frame, the partition
// window and the hypercall numbers. Normative text: docs/specs/image-layout.md and docs/specs/hypercall-abi.md.
// The database's own sizes (PAGE, 4 MiB) are core's (core/database.ts), re-exported here for the generators.
import { FOUR_MIB, PAGE } from "../core/database.ts";

export { PAGE };

// ---- per-processor record (docs/specs/smp.md §2.2); its address is also the processor's kernel stack top ----------
export const PCPU = { current: 0x00, idle: 0x08, tss: 0x10, row: 0x18, seen: 0x20, lost: 0x28, ticks: 0x30, apic: 0x38, ipis: 0x40, swapped: 0x48, swapTsc: 0x50, size: 0x58 } as const;
/** Rows of the schedule the bare-metal image computes at most (host.pcpus). */
export const MAX_PCPUS = 8;

// ---- GDT selectors ------------------------------------------------------------------------------------------------
export const SEL = { kcode: 0x08, kdata: 0x10, udata: 0x18 | 3, ucode: 0x20 | 3, tss: 0x28 } as const;

// ---- monitor state page -------------------------------------------------------------------------------------------
export const STATE_PAGE = {
  cr3: 0x00,
  state: 0x08,
  flags: 0x0c,
  pending: 0x10,
  quanta: 0x18,
  tscUsed: 0x20,
  tscDispatch: 0x28,
  hypercalls: 0x30,
  name: 0x38,
  index: 0x40,
  window: 0x48,
  /** Pages of the partition's allotment (window + its client channel pages), from STATE_PAGE.window on. */
  allotPages: 0x50,
  /** Quantum at which the partition was started (its page tables built from the database view). */
  started: 0x58,
  /** The partition's number in the resource database (its descriptor page); 0 before it is created. */
  descriptor: 0x60,
  /** Audit rate limit (docs/specs/hypercall-abi.md, Audit records): the window (quantum / AUDIT.windowQuanta) counted. */
  auditWindow: 0x68,
  /** Refusals recorded as lines in that window. */
  auditLines: 0x70,
  /** Refusals counted but not printed since the last "suppressed" line. */
  auditSuppressed: 0x78,
  /** Slot k: u64 peer state page (0 = empty), u64 peer slot. */
  slots: 0x80,
  /** The partition's data-segment selectors ds, es, fs, gs (u16 each), saved and restored on every switch. */
  sregs: 0x180,
  /** Virtualized partitions (FLAG.vm, docs/specs/svm.md): the VM page (guest registers, line) and the VMCB. */
  svmPage: 0x188,
  svmVmcb: 0x190,
  /**
   * Pages of the allotment that are the partition's memory; its client channel pages follow (allotPages − memPages of
   * them). WINDOW_LAYOUT.pages for every partition but a Linux one, whose memory is its definition's `memory`
   * (docs/specs/linux-partition.md §9).
   */
  memPages: 0x198,
  /** The record (PCPU) of the processor the partition is bound to: its row of the schedule (docs/specs/smp.md §2.1). */
  pcpu: 0x1a0,
  /**
   * The partition's x87/SSE/AVX state (XSAVE standard format, or FXSAVE's 512 bytes without XSAVE), saved and restored
   * on every switch (monitor-gen/cpu.ts); 64-byte aligned as XSAVE requires. It ends where the saved frame begins.
   */
  xsave: 0x200,
  frame: 0xf50,
} as const;
/** Bytes of the state page from STATE_PAGE.xsave to the saved frame: the largest save area the monitor accepts at boot. */
export const XSAVE_SPACE = STATE_PAGE.frame - STATE_PAGE.xsave;
/** waiting: defined in the image, not started yet (no page tables; never dispatched). */
/** stopped: a virtualized guest stopped itself (reset through the keyboard controller, HLT with interrupts off). */
export const STATE = { ready: 0, waiting: 1, failed: 2, stopped: 3 } as const;
/** defined: created by a definition from the command partition, so it waits for START instead of starting at boot. */
/** vm: a hardware-virtualized partition (docs/specs/svm.md): its context is the VMRUN loop at CPL 0. */
export const FLAG = { com1: 1, command: 2, idle: 4, ultra: 8, defined: 16, vm: 32, pairIo: 64 } as const;
/**
 * The ultravisor partition's view of the resource database: physical address p at DBWIN + p (PML4 slot 2), for the
 * pages the database gives the ultravisor: its own 4 MiB page [0,1,*] (DB_PAGES) and core's private 4 MiB page,
 * wherever the loader carved it (g_core_private, PRIVATE_PAGE_BYTES).
 */
export const DBWIN = 0x0000_0100_0000_0000n;

export const DB_PAGES = { lo: FOUR_MIB, hi: 2 * FOUR_MIB } as const;
/**
 * The command partition's read-only view of the database ([0090], [0106]; docs/specs/command-channel.md): the
 * database's own 4 MiB page (DB_PAGES) mapped for CPL 3 without write at WINDOW + p, so that in its linear memory
 * (whose base is the window) wasm address p is physical page p, as core's and the line reader's code expect. Its
 * AssemblyScript memory spans up to DB_PAGES.hi; the window and slots lie below DB_PAGES.lo.
 */
export const COMMAND_VIEW = { lo: DB_PAGES.lo, hi: DB_PAGES.hi } as const;
export const PRIVATE_PAGE_BYTES = FOUR_MIB;

/** Offsets inside the saved frame (from STATE_PAGE.frame): 15 registers pushed by the stub, then vector, error, CPU frame. */
export const FRAME_REGS = ["r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8", "rbp", "rdi", "rsi", "rdx", "rcx", "rbx", "rax"] as const;
export const SAVED_FRAME = {
  reg: (name: (typeof FRAME_REGS)[number]): number => STATE_PAGE.frame + 8 * FRAME_REGS.indexOf(name),
  vector: STATE_PAGE.frame + 15 * 8,
  error: STATE_PAGE.frame + 16 * 8,
  rip: STATE_PAGE.frame + 17 * 8,
  cs: STATE_PAGE.frame + 18 * 8,
  rflags: STATE_PAGE.frame + 19 * 8,
  rsp: STATE_PAGE.frame + 20 * 8,
  ss: STATE_PAGE.frame + 21 * 8,
} as const;

// ---- partition window (virtual, CPL 3) ---------------------------------------------------------------------------
export const WINDOW = 0x0000_0080_0000_0000n;
export const WINDOW_LAYOUT = {
  info: 0x0000,
  image: 0x1000,
  imageMax: 0x2f000,
  stackTop: 0x34000,
  /** Pages of the window the partition owns: info page + image + stack. */
  pages: 0x34000 / PAGE,
  slot: (k: number): number => 0x40000 + k * PAGE,
  maxSlots: 16,
} as const;
export const INFO = {
  number: 0, slots: 8, name: 16, ownedBytes: 32, slot: (k: number): number => 64 + 32 * k, slotSize: 32,
  /** The ultravisor partition's info page only: 1 when the monitor mapped the database view (0: no database). */
  database: 40,
  /**
   * Window offset where the image's code pages end (page-aligned, written by partitions/pack.ts): only window pages
   * [WINDOW_LAYOUT.image, codeEnd) are mapped executable, every other user page NX (docs/specs/partition-state.md).
   */
  codeEnd: 48,
  /**
   * The ultravisor partition's info page only, written by that partition: 1 once its end-of-run summary is sent and
   * taken by the I/O partition. A finite run ends only then (or at twice its length, whichever comes first).
   */
  summaryDone: 56,
  /** The ultravisor partition's info page only: partition number n's allotment (u64 physical base, u64 pages). */
  allotment: (n: number): number => 0x800 + 16 * n,
} as const;
/** Partition numbers the allotment table of the ultravisor partition's info page covers (0x800 + 16·64 = 0xC00). */
export const MAX_NUMBER = 64;

// ---- hypercalls ---------------------------------------------------------------------------------------------------
export const HYPERCALL_VECTOR = 0x80;
export const HYPERCALL = { yield: 0, signal: 1, time: 2, command: 3, poll: 4, start: 5, dmaAddr: 6, clientWrite: 7, pairEpoch: 8, dmaDone: 9 } as const;
/** Audit records of refused hypercalls: at most `lines` lines per partition per window of `windowQuanta` quanta. */
export const AUDIT = { windowQuanta: 64, lines: 4 } as const;
export const HC_ERR = { denied: -1, badArgument: -2, unknown: -3, refused: -4 } as const;

// ---- interrupts ---------------------------------------------------------------------------------------------------
export const TIMER_VECTOR = 0x20;
/** The signal IPI (docs/specs/smp.md §2.4): a channel signal to a partition running on another processor. */
export const SIGNAL_VECTOR = 0x23;
export const SPURIOUS_VECTOR = 0xff;
/** Exceptions for which the CPU pushes an error code. */
export const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

// ---- ports --------------------------------------------------------------------------------------------------------
export const COM1 = 0x3f8;
export const DEBUG_EXIT_PORT = 0xf4;
/** isa-debug-exit codes of the ultravisor. */
export const EXIT = { done: 0x21, panic: 126, loaderFailed: 125 } as const;

// ---- channels (console and command) -------------------------------------------------------------------------------
export const CHAN = { signalSize: 128, maxSlots: 16, maxText: 64, opText: 1, opDefine: 2 } as const;
/**
 * The command channel (docs/specs/image-layout.md, "The bare-metal command channel and its completions"): 2 queues of
 * 128-byte signals, as many slots each as fit one page (core's chan_format_bytes(2, 128, 14) = 3968; the image build
 * checks this against core); queue 0 requests, queue 1 completions. The ultravisor partition's code is specialised on
 * it and checks every geometry field of the page against it.
 */
export const CMDCHAN = {
  queues: 2, signalSize: 128, maxSlots: 14, requests: 0, completions: 1,
  /** Completion flags: FROM_SERVER | COMPLETION (docs/specs/command-channel.md). */
  completionFlags: 6,
  /** Sources of a completion's status (CDB bytes 0–3). */
  source: { applied: 0, core: 1, start: 2, ultravisor: 3 },
  /** The ultravisor partition's own refusals (source 3). */
  refusal: { notDefinition: -1, noAllotment: -2, noDatabase: -3, trapped: -4 },
} as const;
/** Offset of queue q's slot 0 from its queue header, as chan_format lays the command channel out. */
export const cmdSigBase = (q: number): number => (CMDCHAN.queues - q) * 128 + q * CMDCHAN.maxSlots * CMDCHAN.signalSize;
