// Numbers of the SVM backend (docs/specs/svm.md): VMCB offsets (AMD APM vol. 2, appendix B), the intercept words the
// monitor sets, the exit codes it dispatches on (appendix C), the MSRs the MSRPM passes through, the VM page's layout
// (the guest's registers and the monitor's per-guest bookkeeping) and the guest's entry point. Shared by the
// generator (monitor-gen/svm/monitor.ts), the guests (partitions/svm-guest.ts) and the tests.

/** VMCB offsets: control area (0x000–0x3FF), then the state-save area from 0x400. Segments: u16 selector, u16
 * attributes, u32 limit, u64 base. */
export const VMCB = {
  interceptCr: 0x000, interceptDr: 0x004, interceptExceptions: 0x008, intercept3: 0x00c, intercept4: 0x010,
  iopm: 0x040, msrpm: 0x048, tscOffset: 0x050, asid: 0x058, tlbControl: 0x05c, vintr: 0x060, interruptShadow: 0x068,
  exitCode: 0x070, exitInfo1: 0x078, exitInfo2: 0x080, exitIntInfo: 0x088, npEnable: 0x090, eventInj: 0x0a8, nCr3: 0x0b0,
  es: 0x400, cs: 0x410, ss: 0x420, ds: 0x430, fs: 0x440, gs: 0x450, gdtr: 0x460, ldtr: 0x470, idtr: 0x480, tr: 0x490,
  cpl: 0x4cb, efer: 0x4d0, cr4: 0x548, cr3: 0x550, cr0: 0x558, dr7: 0x560, dr6: 0x568, rflags: 0x570, rip: 0x578,
  rsp: 0x5d8, rax: 0x5f8, star: 0x600, lstar: 0x608, cstar: 0x610, sfmask: 0x618, kernelGsBase: 0x620, cr2: 0x640,
  gPat: 0x668,
} as const;

/** Intercept vector 3 (offset 0x00C) bits. */
export const I3 = { intr: 0, nmi: 1, smi: 2, init: 3, vintr: 4, cpuid: 18, hlt: 24, invlpga: 26, ioio: 27, msr: 28, shutdown: 31 } as const;
/** Intercept vector 4 (offset 0x010) bits. */
export const I4 = { vmrun: 0, vmmcall: 1, vmload: 2, vmsave: 3, stgi: 4, clgi: 5, skinit: 6, xsetbv: 13 } as const;
const bits = (o: Record<string, number>): number => Object.values(o).reduce((m, b) => (m | (1 << b)) >>> 0, 0);
export const SVM_BYTES = { intercept3: bits(I3) | 0, intercept4: bits(I4) } as const;

/** EXITCODEs the loop dispatches on (everything else is a violation). */
export const EXIT_CODE = {
  excDb: 0x41, excAc: 0x51, intr: 0x60, nmi: 0x61, smi: 0x62, init: 0x63, vintr: 0x64, cpuid: 0x72, hlt: 0x78, invlpga: 0x7a, ioio: 0x7b,
  msr: 0x7c, shutdown: 0x7f, vmrun: 0x80, vmmcall: 0x81, vmload: 0x82, vmsave: 0x83, stgi: 0x84, clgi: 0x85, skinit: 0x86,
  xsetbv: 0x8d, npf: 0x400,
} as const;

/** The exits VM.exitKinds counts, in its order; every other exit code counts as the last, "other". */
export const EXIT_KINDS = ["intr", "vintr", "cpuid", "hlt", "ioio", "msr", "npf", "other"] as const;
export const EXIT_KIND_CODES: Record<Exclude<(typeof EXIT_KINDS)[number], "other">, number> = {
  intr: EXIT_CODE.intr, vintr: EXIT_CODE.vintr, cpuid: EXIT_CODE.cpuid, hlt: EXIT_CODE.hlt, ioio: EXIT_CODE.ioio, msr: EXIT_CODE.msr, npf: EXIT_CODE.npf,
};

/** MSRs the guest reaches directly: the ones VMLOAD/VMSAVE switch (their guest values live in its VMCB). */
export const PASS_THROUGH_MSRS = [0x174, 0x175, 0x176, 0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084, 0xc000_0100, 0xc000_0101, 0xc000_0102];

/** MSRPM bytes and bit masks (read and write bits) to clear for PASS_THROUGH_MSRS: 2 bits per MSR, MSRs 0–0x1FFF
 * from byte 0, 0xC000_0000–0xC000_1FFF from byte 0x800, 0xC001_0000–0xC001_1FFF from byte 0x1000. */
export function vmcbMsrPassThrough(): Array<{ byte: number; mask: number }> {
  return PASS_THROUGH_MSRS.map((msr) => {
    const [base, first] = msr >= 0xc001_0000 ? [0x1000, 0xc001_0000] : msr >= 0xc000_0000 ? [0x800, 0xc000_0000] : [0, 0];
    const bit = (msr - first) * 2;
    return { byte: base + (bit >> 3), mask: 3 << (bit & 7) };
  });
}

/** CPUID 0x4000_0000: ebx, ecx, edx = "UltraVisorUV". */
export const CPUID_SIGNATURE_TEXT = "UltraVisorUV";
export const CPUID_SIGNATURE: [number, number, number] = [0, 4, 8].map((o) => Buffer.from(CPUID_SIGNATURE_TEXT.slice(o, o + 4), "latin1").readUInt32LE(0)) as [number, number, number];

/** Guest-physical start: real mode, CS:IP = 0:0x1000. */
export const GUEST_ENTRY = 0x1000;

/** The VM page: the guest's general registers but rax/rsp (those are in the VMCB), DR0–3, the monitor's bookkeeping. */
const GPR_ORDER = ["rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
export const VM = {
  gpr: (name: string): number => {
    const i = GPR_ORDER.indexOf(name);
    if (i < 0) throw new RangeError(`no guest register ${name} in the VM page`);
    return 8 * i;
  },
  dr: 0x80, vmcb: 0xa0, shadowSvme: 0xa8, absent: 0xb0, lineLen: 0xb8, reqid: 0xc0, exits: 0xc8, lineFull: 0xd0, insnHost: 0xd8, line: 0x100,
  /** The instruction bytes fetched for absent-MMIO decoding (MMIO_FETCH of them). */
  insn: 0x180,
  /** The 16550A model's state (pc.ts UART, docs/specs/linux-pc.md §4). */
  uart: 0x200,
  /** The 8259A pair, the 8254 (pc.ts PIC, PIT), the last PIT time read, and whether the guest has touched them. */
  pic: 0x210, pit: 0x220, pitNow: 0x240, pcOn: 0x248,
  /** The RTC's selected CMOS register (port 0x70; pc.ts CMOS_BYTES). */
  cmos: 0x250,
  /** THR writes held back because the console queue was full (the partition yielded and ran the OUT again). */
  stalls: 0x258,
  /**
   * A Linux partition's 64-bit entry (docs/specs/linux-partition.md §9), written when its files are copied: `long` 1
   * makes svm_prepare start the guest in long mode at `rip` with `rsi`, `rsp`, `cr3` and the GDT at `gdt` instead of
   * real mode at GUEST_ENTRY.
   */
  boot: { long: 0x260, rip: 0x268, rsi: 0x270, rsp: 0x278, cr3: 0x280, gdt: 0x288 },
  /** Exits counted by kind (u64 each, EXIT_KINDS order): the benchmark's exits per second by kind. */
  exitKinds: 0x290,
} as const;

/** Bytes the image builder embeds when the image holds a hardware-virtualized partition; qemu/accel.ts (a lower layer,
 * which imports nothing of ours) keeps the same text to find it (test/svm-marker.test.ts checks they agree). */
export const SVM_IMAGE_MARKER = "ultravisor-image: hardware-virtualized partitions (SVM with nested paging)";

/** Followed by the decimal MiB of machine memory the image needs (Linux partitions' memory on top of the default
 * 256 MiB); `uvt run` without --mem gives that much (qemu/accel.ts imageMemoryMiB keeps the same text). */
export const MEMORY_MARKER = "ultravisor-image: machine memory at least MiB ";

/**
 * Pages the SVM backend takes from the bump allocator while the lead monitor reserves the allotments (monitor.ts
 * svm_reserve): once, at the first virtualized partition, the host-save area, the host VMCB, the 12 KiB IOPM and the
 * 8 KiB MSRPM; then, for each virtualized partition right after its allotment, its VM page and its VMCB. The
 * hardware test derives the allotments' placement with these (test/hw/ultravisor.test.ts derivePlacement).
 */
export const SVM_RESERVE = { setupPages: 1 + 1 + 3 + 2, partitionPages: 2 } as const;
