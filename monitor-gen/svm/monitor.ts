// The SVM backend of the monitor (generated ring-0 code; normative text docs/specs/svm.md, choice in ADR 0006): the
// per-processor set-up (EFER.SVME, VM_HSAVE_PA, the host VMCB for VMLOAD/VMSAVE, the shared IOPM and MSRPM), a
// virtualized partition's VMCB and nested page tables built from its allotment (the pages start_partition checked
// with GetMemOwner), and the VMRUN loop — a ring-0 context the ordinary scheduler dispatches like the idle partition —
// with its #VMEXIT dispatch: COM1 emulated into the console channel, CPUID, the EFER shadow, HLT and VMMCALL, the
// "absent" answers and the "violation" stops. monitor-gen/lead.ts calls svm_reserve and svm_prepare; nothing else
// of the monitor knows a partition is virtualized.
import { Assembler, type Label, al, byte, cx, dword, eax, ebp, ebx, ecx, edi, edx, ptr, qword, r8, r8d, r9, r9d, r10, r10d, r11, r12, r13, r14, r14d, r15, r15d, esi, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp, word } from "../../toolchain/x64/index.ts";
import { monitorLine } from "../console.ts";
import { emitLinuxLoad, type LinuxLoad } from "./linux.ts";
import { CHAN, HC_ERR, HYPERCALL, SAVED_FRAME, SEL, STATE, STATE_PAGE } from "../layout.ts";
import { SIGNAL_FLAGS } from "../../core/channel-layout.ts";
import { PTE } from "../paging.ts";
import { CMOS_BYTES, PIC, PIC_CHIP, UART, UART_OUT, emitSvmPc, emitSvmPicPit } from "./pc.ts";
import { MMIO_ABSENT_END, MMIO_DESC, MMIO_FETCH, MMIO_MAX_LENGTH, emitSvmMmio } from "./mmio.ts";
import { CPUID_SIGNATURE, EXIT_CODE, EXIT_KIND_CODES, EXIT_KINDS, GUEST_ENTRY, SVM_BYTES, VM, VMCB, vmcbMsrPassThrough } from "./layout.ts";

const GREGS = { rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15 } as const;
const NPT_PAGE = Number(PTE.P | PTE.W | PTE.U);
/** Log lines per partition for the "absent" class before it goes quiet (docs/specs/svm.md §4). */
export const ABSENT_BUDGET = 16;
const EFER = 0xc000_0080;
const PAT_MSR = 0x277;
const INT_PENDING_MSR = 0xc001_0055;
const EFER_SVME = 1 << 12;
const EFER_LME = 1 << 8;
const EFER_LMA = 1 << 10;
/**
 * CPUID leaf 1 and 0x8000_0001 EDX bits the guest never sees: MCE (7), MTRR (12), MCA (14). The machine-check and MTRR
 * MSRs are not the guest's (absent: #GP), and Linux treats a #GP from the machine-check banks as fatal.
 */
const HIDDEN_EDX = (1 << 7) | (1 << 12) | (1 << 14);
const EFER_GUEST = 1 | (1 << 8) | (1 << 10) | (1 << 11); // SCE LME LMA NXE
const SIGNATURE = 0x4c4e4345; // console channel header (partitions/runtime.ts chan_insert)
const Q0 = 128;

export function emitSvm(a: Assembler, linux: readonly LinuxLoad[] = []): void {
  emitLinuxLoad(a, linux);
  const g = svmGen(a);
  emitSvmSetup(g);
  emitSvmLoop(g);
  emitSvmCpuid(g);
  emitSvmIoio(g);
  emitSvmConsole(g);
  emitSvmMsr(g);
  emitSvmHaltAndYield(g);
  emitSvmSmallExits(g);
  emitSvmNpf(g);
  emitSvmMmio(a);
  emitSvmPc(a);
  emitSvmPicPit(a);
  emitSvmPcGlue(g);
  emitSvmEnds(g);
}

/** What every piece of the SVM monitor's generator shares: the assembler, labels, raw bytes, and the exit handlers'
 * idioms (advance rip, account the partition's time, inject an exception, report an absent access). */
interface SvmGen {
  a: Assembler;
  L: (n: string) => Label;
  raw: (bytes: number[]) => void;
  advance: (n: number) => void;
  account: () => void;
  inject: (vector: number, withError: boolean, error?: (x: Assembler) => void) => void;
  absent: (...parts: Parameters<typeof monitorLine>[1][]) => void;
}

function svmGen(a: Assembler): SvmGen {
  const L = (n: string): Label => a.symbol(n);
  const raw = (bytes: number[]): void => {
    a.db(new Uint8Array(bytes));
  };
  const advance = (n: number): void => {
    a.add(qword(r13, VMCB.rip), n);
  };
  const account = (): void => {
    a.rdtsc().shl(rdx, 32).or(rax, rdx);
    a.sub(rax, qword(rbx, STATE_PAGE.tscDispatch));
    a.add(qword(rbx, STATE_PAGE.tscUsed), rax);
  };
  const inject = (vector: number, withError: boolean, error: (x: Assembler) => void = (x) => x.xor(eax, eax)): void => {
    error(a);
    a.shl(rax, 32).or(rax, vector | (3 << 8) | (withError ? 1 << 11 : 0)).bts(rax, 31);
    a.mov(qword(r13, VMCB.eventInj), rax);
  };
  const absent = (...parts: Parameters<typeof monitorLine>[1][]): void => {
    const quiet = a.label();
    a.cmp(qword(r12, VM.absent), ABSENT_BUDGET).jae(quiet);
    a.inc(qword(r12, VM.absent));
    monitorLine(a, "ultravisor: svm: partition ", { str: (x) => x.mov(rdi, qword(rbx, STATE_PAGE.name)) }, ": absent: ", ...parts,
      " rip ", { hex: (x) => x.mov(rdi, qword(r13, VMCB.rip)) });
    a.bind(quiet);
  };
  return { a, L, raw, advance, account, inject, absent };
}

/** Variables, svm_cpu_setup (once per processor), svm_reserve and svm_prepare (per partition: VM page, VMCB, NPT, start state). */
function emitSvmSetup(g: SvmGen): void {
  const { a, L, raw } = g;
  a.section(".bss");
  a.align(8);
  // g_svm: 0 not set up yet, 1 running, −1 the processor has no SVM with nested paging.
  for (const n of ["g_svm", "g_svm_host", "g_svm_iopm", "g_svm_msrpm", "g_svm_last"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".text");

  // svm_cpu_setup: once, at the first virtualized partition. CPUID 0x8000_0001 ecx bit 2 (SVM), 0x8000_000A edx bit 0
  // (nested paging), VM_CR.SVMDIS (bit 4) clear; then EFER.SVME, the host-save area, the host VMCB (VMSAVE of the
  // monitor's own FS/GS/TR/LDTR/syscall MSRs), the IOPM (every port intercepted) and the MSRPM.
  a.bind(L("svm_cpu_setup"));
  {
    const no = a.label();
    const done = a.label();
    a.push(rbx);
    a.mov(eax, 0x8000_0000).cpuid().cmp(eax, 0x8000_000a).jb(no);
    a.mov(eax, 0x8000_0001).cpuid().test(ecx, 4).jz(no);
    a.mov(eax, 0x8000_000a).cpuid().test(edx, 1).jz(no);
    a.mov(ecx, 0xc001_0114).rdmsr().test(eax, 16).jnz(no);
    a.mov(ecx, EFER).rdmsr().or(eax, EFER_SVME).wrmsr();
    a.call(L("alloc_page")).mov(rdx, rax).shr(rdx, 32).mov(ecx, 0xc001_0117).wrmsr(); // VM_HSAVE_PA
    a.call(L("alloc_page")).mov(qword(L("g_svm_host")), rax);
    raw([0x0f, 0x01, 0xdb]); // vmsave rax: the monitor's hidden segment state and syscall MSRs
    a.call(L("alloc_page")).mov(qword(L("g_svm_iopm")), rax).mov(rbx, rax);
    a.call(L("alloc_page")).call(L("alloc_page")); // consecutive: the IOPM is 12 KiB
    a.mov(rdi, rbx).mov(ecx, 3 * 4096 / 8).mov(rax, -1).rep().stosq();
    a.call(L("alloc_page")).mov(qword(L("g_svm_msrpm")), rax).mov(rbx, rax);
    a.call(L("alloc_page"));
    a.mov(rdi, rbx).mov(ecx, 2 * 4096 / 8).mov(rax, -1).rep().stosq();
    for (const { byte: off, mask } of vmcbMsrPassThrough()) a.and(byte(rbx, off), ~mask & 0xff);
    a.mov(qword(L("g_svm")), 1);
    monitorLine(a, "ultravisor: svm: EFER.SVME on, host-save area, host VMCB, IOPM (every port intercepted) and MSRPM (all but the VMLOAD-switched MSRs intercepted) ready");
    a.jmp(done);
    a.bind(no);
    a.mov(qword(L("g_svm")), -1);
    monitorLine(a, "ultravisor: svm: this processor has no SVM with nested paging (or it is disabled): virtualized partitions will not start");
    a.bind(done);
    a.pop(rbx).ret();
  }

  // svm_reserve(r13 = state page): from reserve_partitions, for a FLAG.vm record after its allotment. The VM page (guest
  // registers, line buffer, counters) and the VMCB; the saved frame becomes the VMRUN loop's ring-0 context.
  // Preserves rbx, rbp, r12–r15.
  a.bind(L("svm_reserve"));
  {
    const have = a.label();
    a.cmp(qword(L("g_svm")), 0).jne(have);
    a.call(L("svm_cpu_setup"));
    a.bind(have);
    a.call(L("alloc_page")).mov(qword(r13, STATE_PAGE.svmPage), rax);
    a.call(L("alloc_page")).mov(qword(r13, STATE_PAGE.svmVmcb), rax);
    a.mov(rcx, qword(r13, STATE_PAGE.svmPage)).mov(qword(rcx, VM.vmcb), rax);
    // Both 8259As masked until the guest programs them (linux-pc.md §2).
    a.mov(byte(rcx, VM.pic + PIC.master + PIC_CHIP.imr), 0xff).mov(byte(rcx, VM.pic + PIC.slave + PIC_CHIP.imr), 0xff);
    a.lea(rax, ptr(L("svm_loop"))).mov(qword(r13, SAVED_FRAME.rip), rax);
    a.mov(qword(r13, SAVED_FRAME.cs), SEL.kcode).mov(qword(r13, SAVED_FRAME.rflags), 2); // IF = 0: the loop opens its own window
    a.lea(rax, ptr(L("g_kstack_top"))).mov(qword(r13, SAVED_FRAME.rsp), rax);
    a.mov(qword(r13, SAVED_FRAME.ss), SEL.kdata);
    a.ret();
  }

  // svm_prepare(r13 = state page) → rax = 0 or HC_ERR.refused: from start_partition once every allotment page is the
  // partition's in the database. The NPT maps guest-physical page n to allotment page n, n < allotPages (window, then
  // channel pages) and nothing else; the VMCB gets the intercept policy and the real-mode start state. The ring-3
  // tables start_partition built stay unused at CPL 3 (the loop runs at CPL 0 on them).
  a.bind(L("svm_prepare"));
  {
    const refuse = a.label();
    for (const r of [rbx, rbp, r12]) a.push(r);
    a.cmp(qword(L("g_svm")), 1).jne(refuse);
    a.call(L("alloc_page")).mov(r12, rax); // r12 = NPT PML4
    a.xor(ebp, ebp);
    const map = a.here();
    a.mov(rdi, r12).mov(rsi, rbp).shl(rsi, 12);
    a.mov(rdx, rsi).add(rdx, qword(r13, STATE_PAGE.window)).or(rdx, NPT_PAGE);
    a.call(L("map_page"));
    a.inc(rbp).cmp(rbp, qword(r13, STATE_PAGE.allotPages)).jb(map);
    a.mov(rbx, qword(r13, STATE_PAGE.svmVmcb));
    a.mov(dword(rbx, VMCB.interceptExceptions), (1 << 1) | (1 << 17)); // #DB, #AC
    a.mov(dword(rbx, VMCB.intercept3), SVM_BYTES.intercept3);
    a.mov(dword(rbx, VMCB.intercept4), SVM_BYTES.intercept4);
    a.mov(rax, qword(L("g_svm_iopm"))).mov(qword(rbx, VMCB.iopm), rax);
    a.mov(rax, qword(L("g_svm_msrpm"))).mov(qword(rbx, VMCB.msrpm), rax);
    a.mov(rax, qword(r13, STATE_PAGE.descriptor)); // ASID: the database number; without a database the record's index + 1
    const asid = a.label();
    a.cmp(rax, 0).jg(asid);
    a.mov(rax, qword(r13, STATE_PAGE.index)).inc(rax);
    a.bind(asid);
    a.mov(dword(rbx, VMCB.asid), eax);
    a.mov(dword(rbx, VMCB.vintr), 1 << 24); // V_INTR_MASKING
    a.mov(qword(rbx, VMCB.npEnable), 1);
    a.mov(qword(rbx, VMCB.nCr3), r12);
    // Real mode: CS:IP = 0:GUEST_ENTRY, flat 64 KiB segments.
    for (const [seg, attr] of [[VMCB.es, 0x93], [VMCB.cs, 0x9b], [VMCB.ss, 0x93], [VMCB.ds, 0x93], [VMCB.fs, 0x93], [VMCB.gs, 0x93], [VMCB.ldtr, 0x82], [VMCB.tr, 0x8b]] as const) {
      a.mov(word(rbx, seg), 0).mov(word(rbx, seg + 2), attr).mov(dword(rbx, seg + 4), 0xffff).mov(qword(rbx, seg + 8), 0);
    }
    for (const t of [VMCB.gdtr, VMCB.idtr]) a.mov(dword(rbx, t + 4), 0xffff);
    a.mov(qword(rbx, VMCB.efer), EFER_SVME);
    a.mov(qword(rbx, VMCB.cr0), 0x10);
    a.mov(eax, 0xffff0ff0).mov(qword(rbx, VMCB.dr6), rax).mov(qword(rbx, VMCB.dr7), 0x400);
    a.mov(qword(rbx, VMCB.rflags), 2).mov(qword(rbx, VMCB.rip), GUEST_ENTRY);
    a.mov(rax, 0x0007_0406_0007_0406n).mov(qword(rbx, VMCB.gPat), rax);
    // A Linux partition enters at startup_64 in long mode instead (docs/specs/linux-partition.md §9): flat 64-bit code
    // 0x10 and data 0x18 of the GDT its low pages hold, paging on through the identity tables at cr3, interrupts off,
    // rsi = the zero page. VMRUN's checks want EFER.LME with CR0.PG, CR4.PAE and CS.L without CS.D: all set here.
    const real = a.label();
    a.mov(rcx, qword(r13, STATE_PAGE.svmPage)); // rcx = the VM page
    a.cmp(qword(rcx, VM.boot.long), 0).je(real);
    for (const [seg, sel, attr] of [[VMCB.cs, 0x10, 0xa9b], [VMCB.ds, 0x18, 0xc93], [VMCB.es, 0x18, 0xc93], [VMCB.ss, 0x18, 0xc93]] as const) {
      a.mov(word(rbx, seg), sel).mov(word(rbx, seg + 2), attr).mov(dword(rbx, seg + 4), 0xffff_ffff).mov(qword(rbx, seg + 8), 0);
    }
    a.mov(rax, qword(rcx, VM.boot.gdt)).mov(qword(rbx, VMCB.gdtr + 8), rax).mov(dword(rbx, VMCB.gdtr + 4), 31);
    a.mov(dword(rbx, VMCB.idtr + 4), 0);
    a.mov(qword(rbx, VMCB.efer), EFER_SVME | EFER_LME | EFER_LMA);
    a.mov(eax, 0x8000_0011).mov(qword(rbx, VMCB.cr0), rax).mov(qword(rbx, VMCB.cr4), 0x20);
    a.mov(rax, qword(rcx, VM.boot.cr3)).mov(qword(rbx, VMCB.cr3), rax);
    a.mov(rax, qword(rcx, VM.boot.rip)).mov(qword(rbx, VMCB.rip), rax);
    a.mov(rax, qword(rcx, VM.boot.rsp)).mov(qword(rbx, VMCB.rsp), rax);
    a.mov(rax, qword(rcx, VM.boot.rsi)).mov(qword(rcx, VM.gpr("rsi")), rax);
    a.bind(real);
    monitorLine(a, "ultravisor: svm: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " virtualized: VMCB ", { hex: (x) => x.mov(rdi, rbx) },
      " ASID ", { dec: (x) => x.mov(edi, dword(rbx, VMCB.asid)) }, " NPT ", { hex: (x) => x.mov(rdi, r12) }, ": guest-physical 0-",
      { hex: (x) => x.mov(rdi, qword(r13, STATE_PAGE.allotPages)).shl(rdi, 12) }, " = its ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.allotPages)) },
      " allotment pages from ", { hex: (x) => x.mov(rdi, qword(r13, STATE_PAGE.window)) }, ", nothing else");
    a.xor(eax, eax);
    const out = a.label();
    a.jmp(out);
    a.bind(refuse);
    monitorLine(a, "ultravisor: svm: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " not started: no SVM with nested paging");
    a.mov(rax, HC_ERR.refused);
    a.bind(out);
    for (const r of [r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

/** The VMRUN loop and its exit dispatch (svm.md §7), and the interrupt window. */
function emitSvmLoop(g: SvmGen): void {
  const { a, L, raw } = g;
  // ---- the VMRUN loop (docs/specs/svm.md §7): rbx = state page, r12 = VM page, r13 = VMCB while handling an exit ----
  a.bind(L("svm_loop"));
  {
    a.lea(rsp, ptr(L("g_kstack_top")));
    a.mov(rbx, qword(L("g_current"))).mov(r12, qword(rbx, STATE_PAGE.svmPage)).mov(r13, qword(rbx, STATE_PAGE.svmVmcb));
    // TLB_CONTROL (§8): flush every ASID when this VMCB is not the one that ran last, nothing otherwise.
    const same = a.label();
    a.mov(byte(r13, VMCB.tlbControl), 0);
    a.cmp(qword(L("g_svm_last")), r13).je(same);
    a.mov(byte(r13, VMCB.tlbControl), 1).mov(qword(L("g_svm_last")), r13);
    a.bind(same);
    a.call(L("svm_pc_tick"));
    a.cli();
    raw([0x0f, 0x01, 0xdd]); // clgi
    a.mov(rax, r13);
    raw([0x0f, 0x01, 0xda]); // vmload rax: the guest's FS/GS/TR/LDTR/KernelGsBase/syscall MSRs
    for (let i = 0; i < 4; i++) {
      a.mov(rax, qword(r12, VM.dr + 8 * i));
      raw([0x0f, 0x23, 0xc0 | (i << 3)]); // mov drN, rax
    }
    a.mov(rax, r12);
    for (const [n, r] of Object.entries(GREGS)) a.mov(r, qword(rax, VM.gpr(n)));
    a.mov(rax, qword(rax, VM.vmcb));
    // IF = 1 under GIF = 0: nothing is delivered here, but with V_INTR_MASKING the host IF that VMRUN saves is what
    // lets a physical interrupt (our timer) reach the guest's INTR intercept; with IF = 0 a guest that never exits
    // would keep the processor (the cli-spin test caught exactly that).
    a.sti();
    raw([0x0f, 0x01, 0xd8]); // vmrun rax
    // #VMEXIT: rax = the VMCB again (host state), every other register the guest's; GIF = 0, IF = 1 (as saved): IF
    // is cleared before GIF is set again, so the pending timer waits for the window.
    a.cli();
    a.mov(rax, qword(L("g_current"))).mov(rax, qword(rax, STATE_PAGE.svmPage));
    for (const [n, r] of Object.entries(GREGS)) a.mov(qword(rax, VM.gpr(n)), r);
    a.mov(rbx, qword(L("g_current"))).mov(r12, qword(rbx, STATE_PAGE.svmPage)).mov(r13, qword(rbx, STATE_PAGE.svmVmcb));
    for (let i = 0; i < 4; i++) {
      raw([0x0f, 0x21, 0xc0 | (i << 3)]); // mov rax, drN
      a.mov(qword(r12, VM.dr + 8 * i), rax);
    }
    a.mov(rax, r13);
    raw([0x0f, 0x01, 0xdb]); // vmsave rax (guest)
    a.mov(rax, qword(L("g_svm_host")));
    raw([0x0f, 0x01, 0xda]); // vmload rax (host: our TR with IST 1 is back before any interrupt)
    raw([0x0f, 0x01, 0xdc]); // stgi: IF is still 0
    a.inc(qword(r12, VM.exits));
    // An event the exit interrupted (EXITINTINFO valid, bit 31: an injected #GP or a reflected #DB cut short by the
    // timer's INTR exit) is injected again, or the guest would lose it.
    const noEvent = a.label();
    a.mov(rax, qword(r13, VMCB.exitIntInfo)).bt(eax, 31).jnc(noEvent);
    a.mov(qword(r13, VMCB.eventInj), rax);
    a.bind(noEvent);
    a.mov(rax, qword(r13, VMCB.exitCode));
    {
      // Counted by kind (VM.exitKinds): the benchmark reads them over QMP.
      const counted = a.label();
      EXIT_KINDS.forEach((k, i) => {
        if (k === "other") {
          a.inc(qword(r12, VM.exitKinds + 8 * i));
          return;
        }
        const next = a.label();
        a.cmp(rax, EXIT_KIND_CODES[k]).jne(next);
        a.inc(qword(r12, VM.exitKinds + 8 * i)).jmp(counted);
        a.bind(next);
      });
      a.bind(counted);
    }
    const cases: Array<[number, string]> = [
      [EXIT_CODE.intr, "svm_window"], [EXIT_CODE.vintr, "svm_window"], [EXIT_CODE.nmi, "svm_window"], [EXIT_CODE.smi, "svm_window"], [EXIT_CODE.init, "svm_window"],
      [EXIT_CODE.cpuid, "svm_cpuid"], [EXIT_CODE.ioio, "svm_ioio"], [EXIT_CODE.msr, "svm_msr"], [EXIT_CODE.hlt, "svm_hlt"],
      [EXIT_CODE.vmmcall, "svm_vmmcall"], [EXIT_CODE.npf, "svm_npf"], [EXIT_CODE.excDb, "svm_reflect"], [EXIT_CODE.excAc, "svm_reflect"], [EXIT_CODE.xsetbv, "svm_xsetbv"],
    ];
    for (const [code, to] of cases) a.cmp(rax, code).je(L(to));
    a.jmp(L("svm_violation"));
  }

  // The interrupt window: a pending timer interrupt is taken here (on IST 1, the frame the loop's own), then the loop.
  a.bind(L("svm_window"));
  a.sti().nop().cli();
  a.jmp(L("svm_loop"));
}

/** CPUID exits: the host's answer, filtered (svm.md §4, linux-pc.md §1). */
function emitSvmCpuid(g: SvmGen): void {
  const { a, L, advance } = g;
  // CPUID: the host's answer, with the hypervisor bit and without SVM/VMX, and the project's two leaves (§4).
  a.bind(L("svm_cpuid"));
  {
    const sig = a.label(), chans = a.label(), store = a.label(), leaf1 = a.label(), ext = a.label(), leaf7 = a.label();
    a.mov(eax, dword(r13, VMCB.rax)).mov(ecx, dword(r12, VM.gpr("rcx")));
    a.cmp(eax, 0x4000_0000).je(sig);
    a.cmp(eax, 0x4000_0001).je(chans);
    a.mov(r8d, eax);
    a.cpuid();
    a.cmp(r8d, 1).je(leaf1);
    a.cmp(r8d, 0x8000_0001).je(ext);
    a.cmp(r8d, 7).je(leaf7);
    a.jmp(store);
    a.bind(leaf1);
    // VMX off, hypervisor on; no local APIC and no x2APIC: the guest's interrupt controller is the 8259A pair
    // (docs/specs/linux-pc.md §2), and an APIC page would only be absent MMIO.
    a.and(ecx, ~((1 << 5) | (1 << 21))).or(ecx, 1 << 31).and(edx, ~((1 << 9) | HIDDEN_EDX));
    a.jmp(store);
    a.bind(ext);
    a.and(ecx, ~4).and(edx, ~(HIDDEN_EDX | (1 << 27))); // no SVM; no RDTSCP (its TSC_AUX MSR is not the guest's)
    a.jmp(store);
    a.bind(leaf7);
    a.cmp(dword(r12, VM.gpr("rcx")), 0).jne(store); // subleaf 0 only
    // No RDPID (TSC_AUX again); no LA57: the monitor walks the guest's tables as 4-level ones (mmio.ts), and a
    // partition of at most 4 GiB has no use for 5-level paging.
    a.and(ecx, ~((1 << 22) | (1 << 16)));
    a.jmp(store);
    a.bind(sig);
    a.mov(eax, 0x4000_0001).mov(ebx, CPUID_SIGNATURE[0]).mov(ecx, CPUID_SIGNATURE[1]).mov(edx, CPUID_SIGNATURE[2]);
    a.jmp(store);
    a.bind(chans);
    // eax = channel pages, ebx = their guest-physical start (right above the partition's memory), ecx = its number.
    a.mov(rax, qword(rbx, STATE_PAGE.allotPages)).sub(rax, qword(rbx, STATE_PAGE.memPages));
    a.mov(ecx, dword(rbx, STATE_PAGE.descriptor)).mov(rbx, qword(rbx, STATE_PAGE.memPages)).shl(rbx, 12).xor(edx, edx);
    a.bind(store);
    a.mov(qword(r13, VMCB.rax), rax); // cpuid zero-extends into the 64-bit registers
    a.mov(qword(r12, VM.gpr("rcx")), rcx).mov(qword(r12, VM.gpr("rdx")), rdx);
    a.mov(ebx, ebx).mov(qword(r12, VM.gpr("rbx")), rbx);
    a.mov(rbx, qword(L("g_current")));
    advance(2);
    a.jmp(L("svm_window"));
  }
}

/** IOIO exits: the keyboard-controller reset, the PC's chips, COM1 with backpressure, absent ports. */
function emitSvmIoio(g: SvmGen): void {
  const { a, L, absent } = g;
  // IOIO: EXITINFO1 = port (31:16), size (SZ8/16/32 bits 4–6), STR (2), IN (0); EXITINFO2 = the next rip.
  a.bind(L("svm_ioio"));
  {
    const done = a.label(), notCom = a.label(), merge = a.label(), com = a.label();
    a.mov(r14, qword(r13, VMCB.exitInfo1)).mov(r15, r14).shr(r15, 16).and(r15, 0xffff); // r14 = info, r15 = port
    a.test(r14, 4).jnz(notCom); // string forms: absent
    {
      // 0xFE to the keyboard controller's command port: the partition's reset, its stop (docs/specs/linux-pc.md §6).
      const notReset = a.label();
      a.cmp(r15, 0x64).jne(notReset);
      a.test(r14, 1).jnz(notCom);
      a.cmp(byte(r13, VMCB.rax), 0xfe).jne(notCom);
      a.lea(r14, ptr(L("svm_s_reset"))).jmp(L("svm_stop"));
      a.bind(notReset);
    }
    {
      // The 8259A pair, the 8254, port 0x61 and the ELCR (linux-pc.md §2–§3).
      const notPc = a.label(), pic = a.label(), pit = a.label(), fixed = a.label(), call = a.label();
      const cmosIndex = a.label(), cmosSelect = a.label(), cmosData = a.label();
      a.mov(esi, r15d).and(esi, ~0x81);
      a.cmp(esi, 0x20).je(pic); // 0x20, 0x21, 0xA0, 0xA1
      a.mov(esi, r15d).and(esi, ~3);
      a.cmp(esi, 0x40).je(pit);
      a.cmp(r15, 0x61).je(fixed);
      a.cmp(r15, 0x70).je(cmosIndex);
      a.cmp(r15, 0x71).je(cmosData);
      a.cmp(r15, 0x4d0).je(fixed);
      a.cmp(r15, 0x4d1).je(fixed);
      a.jmp(notPc);
      // The RTC's CMOS (linux-pc.md §7): 0x70 selects a register (bit 7, the NMI mask, ignored) and reads all ones;
      // 0x71 reads the selected byte of the fixed table (pc.ts CMOS_BYTES) and drops writes.
      a.bind(cmosIndex);
      a.test(r14, 1).jz(cmosSelect);
      a.mov(eax, 0xff).jmp(merge);
      a.bind(cmosSelect);
      a.movzx(eax, byte(r13, VMCB.rax)).and(eax, 0x7f).mov(byte(r12, VM.cmos), al).jmp(done);
      a.bind(cmosData);
      a.test(r14, 1).jz(done);
      a.movzx(ecx, byte(r12, VM.cmos)).and(ecx, 0x7f).lea(rax, ptr(L("svm_cmos"))).movzx(eax, byte({ base: rax, index: rcx }));
      a.jmp(merge);
      a.bind(fixed); // 0x61 reads OUT2 high, the ELCR all edge; writes dropped
      a.test(r14, 1).jz(done);
      a.xor(eax, eax).cmp(r15, 0x61).jne(merge);
      a.mov(eax, 0x20).jmp(merge);
      a.bind(pic);
      a.lea(rdi, qword(r12, VM.pic)).mov(esi, r15d).and(esi, 1).mov(eax, r15d).shr(eax, 6).and(eax, 2).or(esi, eax);
      a.lea(rax, ptr(L("svm_pic_io"))).jmp(call);
      a.bind(pit);
      a.call(L("svm_pit_now")).mov(r8, rax);
      a.lea(rdi, qword(r12, VM.pit)).mov(esi, r15d).and(esi, 3);
      a.lea(rax, ptr(L("svm_pit_io")));
      a.bind(call);
      a.mov(byte(r12, VM.pcOn), 1);
      a.movzx(edx, byte(r13, VMCB.rax)).mov(ecx, r14d).and(ecx, 1).xor(ecx, 1);
      a.call(rax);
      a.test(r14, 1).jz(done);
      a.and(eax, 0xff).jmp(merge);
      a.bind(notPc);
    }
    a.cmp(r15, 0x3f8).jb(notCom);
    a.cmp(r15, 0x3ff).ja(notCom);
    a.jmp(com);
    // COM1: the 16550A model (pc.ts); a THR write it reports joins the line buffer.
    a.bind(com);
    {
      // Backpressure: a THR write that would send the line while the console queue is full is not executed now; the
      // partition yields and runs the same OUT again at its next dispatch (nothing of its output is dropped, and only
      // the partition whose server is slow waits).
      const accept = a.label();
      a.test(r14, 1).jnz(accept);
      a.cmp(r15, 0x3f8).jne(accept);
      a.test(byte(r12, VM.uart + UART.lcr), 0x80).jnz(accept);
      const sends = a.label();
      a.mov(al, byte(r13, VMCB.rax));
      a.cmp(al, 10).je(sends);
      a.cmp(al, 13).je(accept);
      a.cmp(qword(r12, VM.lineLen), CHAN.maxText - 1).jb(accept);
      a.bind(sends);
      a.call(L("svm_con_room"));
      a.test(eax, eax).jnz(accept);
      a.inc(qword(r12, VM.stalls));
      a.jmp(L("svm_yield_server"));
      a.bind(accept);
    }
    {
      const read = a.label();
      a.lea(rdi, qword(r12, VM.uart)).mov(esi, r15d).sub(esi, 0x3f8).movzx(edx, byte(r13, VMCB.rax));
      a.mov(ecx, r14d).and(ecx, 1).xor(ecx, 1); // IN is bit 0: 1 = write for svm_uart
      a.call(L("svm_uart"));
      a.test(r14, 1).jnz(read);
      a.test(eax, UART_OUT.transmit).jz(done);
      a.movzx(eax, byte(r13, VMCB.rax));
      a.call(L("svm_com1_byte"));
      a.jmp(done);
      a.bind(read);
      a.and(eax, 0xff);
    }
    {
      a.bind(merge);
      // rax keeps its bits above the access size (a 32-bit access zero-extends, as IN does).
      const s16 = a.label(), s32 = a.label(), stored = a.label();
      a.mov(rcx, qword(r13, VMCB.rax));
      a.test(r14, 1 << 5).jnz(s16);
      a.test(r14, 1 << 6).jnz(s32);
      a.and(rcx, -0x100).and(eax, 0xff).or(rcx, rax).jmp(stored);
      a.bind(s16);
      a.and(rcx, -0x10000).and(eax, 0xffff).or(rcx, rax).jmp(stored);
      a.bind(s32);
      a.mov(ecx, eax);
      a.bind(stored);
      a.mov(qword(r13, VMCB.rax), rcx);
      a.jmp(done);
    }
    a.bind(notCom);
    absent({ str: (x) => x.lea(rdi, ptr(L("svm_s_port"))) }, { hex: (x) => x.mov(rdi, r15) }, " info ", { hex: (x) => x.mov(rdi, r14) });
    const wasOut = a.label();
    a.test(r14, 4).jnz(done);
    a.test(r14, 1).jz(wasOut);
    a.mov(eax, -1).jmp(merge);
    a.bind(wasOut);
    a.bind(done);
    a.mov(rax, qword(r13, VMCB.exitInfo2)).mov(qword(r13, VMCB.rip), rax);
    a.jmp(L("svm_window"));
  }
  a.section(".rdata");
  a.bind(L("svm_cmos"));
  a.db(CMOS_BYTES);
  a.bind(L("svm_s_port"));
  a.asciz("port ");
  a.bind(L("svm_s_reset"));
  a.asciz("reset through the keyboard controller (0xFE to port 0x64)");
  a.bind(L("svm_s_halt"));
  a.asciz("halted with interrupts off");
  a.section(".text");
}

/** The console: COM1's bytes into lines, the queue's room, one TEXT request per line or part of one. */
function emitSvmConsole(g: SvmGen): void {
  const { a, L, absent } = g;
  // svm_com1_byte(al): the byte joins the partition's line; '\n' or a full buffer sends it to the console channel. A
  // full buffer goes as a TEXT request with flag MORE (the I/O partition joins it with what follows into one line);
  // the '\n' then sends the rest, possibly empty, without it.
  a.bind(L("svm_com1_byte"));
  {
    const newline = a.label(), done = a.label();
    a.cmp(al, 10).je(newline);
    a.cmp(al, 13).je(done);
    a.mov(rcx, qword(r12, VM.lineLen));
    a.mov(byte({ base: r12, index: rcx, disp: VM.line }), al);
    a.inc(rcx).mov(qword(r12, VM.lineLen), rcx);
    a.cmp(rcx, CHAN.maxText).jb(done);
    a.mov(qword(r12, VM.lineFull), 1); // svm_con_line: flag MORE
    a.call(L("svm_con_line"));
    a.mov(qword(r12, VM.lineLen), 0).mov(qword(r12, VM.lineFull), 0);
    a.jmp(done);
    a.bind(newline);
    a.call(L("svm_con_line"));
    a.mov(qword(r12, VM.lineLen), 0);
    a.bind(done);
    a.ret();
  }

  // svm_con_room → eax = 0 when queue 0 of the console channel is full, else 1 (a header that fails the checks
  // counts as room: svm_con_line then drops the line with its absent report rather than stall the guest for ever).
  // Clobbers rcx, rdi, r8.
  a.bind(L("svm_con_room"));
  {
    const room = a.label(), wrapped = a.label();
    a.mov(rdi, qword(rbx, STATE_PAGE.memPages)).shl(rdi, 12).add(rdi, qword(rbx, STATE_PAGE.window));
    a.lea(r8, qword(rdi, Q0));
    a.mov(eax, dword(r8, 60)).cmp(eax, CHAN.maxSlots).jae(room);
    a.mov(ecx, dword(r8, 72)).cmp(ecx, CHAN.maxSlots).jae(room);
    a.inc(eax).cmp(eax, CHAN.maxSlots).jb(wrapped);
    a.xor(eax, eax);
    a.bind(wrapped);
    a.cmp(eax, ecx).jne(room);
    a.xor(eax, eax).ret();
    a.bind(room);
    a.mov(eax, 1).ret();
  }

  // svm_con_line: the VM page's line as one TEXT request on queue 0 of the console channel in allotment slot 0 —
  // what a ring-3 guest's con_line sends (partitions/runtime.ts chan_insert), with the same checks of every header
  // field the guest could have rewritten (its channel page is in its NPT), and the SIGNAL on empty → non-empty.
  a.bind(L("svm_con_line"));
  {
    const bad = a.label(), room = a.label(), wrapped = a.label(), done = a.label(), quiet = a.label();
    a.mov(rdi, qword(rbx, STATE_PAGE.memPages)).shl(rdi, 12).add(rdi, qword(rbx, STATE_PAGE.window)); // the client page of slot 0
    a.lea(r8, qword(rdi, Q0));
    a.cmp(qword(rdi, 0), SIGNATURE).jne(bad);
    a.cmp(dword(rdi, 12), 128).jne(bad);
    a.cmp(qword(rdi, 64), Q0).jne(bad);
    a.cmp(qword(r8, 8), CHAN.maxSlots * CHAN.signalSize).jne(bad);
    a.cmp(qword(r8, 16), 128).jne(bad);
    a.cmp(dword(r8, 48), CHAN.signalSize).jne(bad);
    a.cmp(dword(r8, 52), CHAN.maxSlots).jne(bad);
    a.cmp(dword(r8, 56), CHAN.maxSlots - 1).jne(bad);
    a.mov(eax, dword(r8, 60)).cmp(eax, CHAN.maxSlots).jae(bad);
    a.mov(r10d, dword(r8, 72));
    a.cmp(r10d, CHAN.maxSlots).jae(bad);
    a.lea(r9, qword(rax, 1));
    a.cmp(r9, CHAN.maxSlots).jb(wrapped);
    a.xor(r9, r9);
    a.bind(wrapped);
    a.cmp(r9, r10).jne(room);
    a.inc(qword(r8, 40));
    a.jmp(done);
    a.bind(room);
    a.xor(r11, r11);
    a.cmp(rax, r10).jne(quiet);
    a.mov(r11, 1);
    a.bind(quiet);
    a.imul(eax, r9d, CHAN.signalSize);
    a.lea(rdi, qword({ base: r8, index: rax, disp: 128 }));
    a.push(rdi);
    a.xor(eax, eax).mov(ecx, (64 + CHAN.maxText) / 8).rep().stosq();
    a.pop(rdi);
    a.mov(dword(rdi, 0), CHAN.opText).mov(eax, dword(r12, VM.lineFull)).shl(eax, 3).or(eax, SIGNAL_FLAGS.toServer).mov(dword(rdi, 4), eax); // MORE = bit 3
    a.inc(qword(r12, VM.reqid)).mov(rax, qword(r12, VM.reqid)).mov(qword(rdi, 8), rax);
    a.mov(rcx, qword(r12, VM.lineLen)).mov(word(rdi, 20), cx);
    a.lea(rsi, qword(r12, VM.line)).add(rdi, 64).rep().movsb();
    a.lock().or(dword(rsp), 0); // the channel barrier (ADR 0003)
    a.inc(qword(r8, 32)).mov(dword(r8, 60), r9d);
    a.test(r11, r11).jz(done);
    a.push(rbp).mov(rbp, rbx).xor(ecx, ecx).call(L("do_signal")).pop(rbp);
    a.jmp(done);
    a.bind(bad);
    absent("console channel page fails the checks: line dropped");
    a.bind(done);
    a.ret();
  }
}

/** MSR exits: EFER's shadow, the PAT, the read-as-zero MSR, absent (#GP) for the rest. */
function emitSvmMsr(g: SvmGen): void {
  const { a, L, advance, inject, absent } = g;
  // MSR: EFER shadowed (§5), the PAT the guest's own (VMCB G_PAT, each entry a defined memory type); every other
  // intercepted MSR is absent: #GP(0).
  a.bind(L("svm_msr"));
  {
    const notEfer = a.label(), write = a.label(), gp = a.label(), pat = a.label(), patWrite = a.label();
    a.cmp(dword(r12, VM.gpr("rcx")), PAT_MSR).je(pat);
    {
      // Read as zero: AMD's interrupt-pending-message MSR (C1E not in use), which Linux's E400 idle routine reads.
      const notZero = a.label();
      a.cmp(dword(r12, VM.gpr("rcx")), INT_PENDING_MSR).jne(notZero);
      a.cmp(qword(r13, VMCB.exitInfo1), 0).jne(notZero);
      a.mov(qword(r13, VMCB.rax), 0).mov(qword(r12, VM.gpr("rdx")), 0);
      advance(2);
      a.jmp(L("svm_window"));
      a.bind(notZero);
    }
    a.cmp(dword(r12, VM.gpr("rcx")), EFER).jne(notEfer);
    a.cmp(qword(r13, VMCB.exitInfo1), 0).jne(write);
    a.mov(rax, qword(r13, VMCB.efer)).and(eax, ~EFER_SVME).or(rax, qword(r12, VM.shadowSvme));
    a.mov(ecx, eax).mov(qword(r13, VMCB.rax), rcx).shr(rax, 32).mov(qword(r12, VM.gpr("rdx")), rax);
    advance(2);
    a.jmp(L("svm_window"));
    a.bind(write);
    a.mov(eax, dword(r13, VMCB.rax)).mov(rdx, qword(r12, VM.gpr("rdx"))).shl(rdx, 32).or(rax, rdx);
    a.mov(rcx, rax).and(rcx, ~(EFER_GUEST | EFER_SVME)).jnz(gp);
    a.mov(rcx, rax).and(ecx, EFER_SVME).mov(qword(r12, VM.shadowSvme), rcx);
    a.and(eax, EFER_GUEST & ~(1 << 10)); // LMA is the processor's: kept from the VMCB
    a.mov(rcx, qword(r13, VMCB.efer)).and(ecx, 1 << 10).or(rax, rcx).or(eax, EFER_SVME);
    a.mov(qword(r13, VMCB.efer), rax);
    advance(2);
    a.jmp(L("svm_window"));
    a.bind(pat);
    a.cmp(qword(r13, VMCB.exitInfo1), 0).jne(patWrite);
    a.mov(rax, qword(r13, VMCB.gPat));
    a.mov(ecx, eax).mov(qword(r13, VMCB.rax), rcx).shr(rax, 32).mov(qword(r12, VM.gpr("rdx")), rax);
    advance(2);
    a.jmp(L("svm_window"));
    a.bind(patWrite);
    a.mov(eax, dword(r13, VMCB.rax)).mov(rdx, qword(r12, VM.gpr("rdx"))).shl(rdx, 32).or(rax, rdx);
    a.mov(r8, rax);
    for (let i = 0; i < 8; i++) {
      // Types 2 and 3 and anything above 7 are reserved: VMRUN would refuse the VMCB, so the write is refused here.
      a.mov(ecx, r8d).and(ecx, 0xff).shr(r8, 8);
      a.cmp(ecx, 7).ja(gp);
      a.cmp(ecx, 2).je(gp);
      a.cmp(ecx, 3).je(gp);
    }
    a.mov(qword(r13, VMCB.gPat), rax);
    advance(2);
    a.jmp(L("svm_window"));
    a.bind(notEfer);
    absent("msr ", { hex: (x) => x.mov(edi, dword(r12, VM.gpr("rcx"))) }, " (#GP injected)");
    a.bind(gp);
    inject(13, true);
    a.jmp(L("svm_window"));
  }
}

/** HLT exits, and giving the rest of the quantum away (to the idle partition or to the console's server). */
function emitSvmHaltAndYield(g: SvmGen): void {
  const { a, L, advance, account } = g;
  // HLT: the guest gives the rest of its quantum away (as YIELD): the loop's frame resumes it at its next dispatch.
  a.bind(L("svm_hlt"));
  {
    const wakes = a.label();
    a.test(dword(r13, VMCB.rflags), 1 << 9).jnz(wakes);
    a.lea(r14, ptr(L("svm_s_halt"))).jmp(L("svm_stop"));
    a.bind(wakes);
    // An interrupt already pending wakes it at once: the loop injects it (linux-pc.md §5).
    const sleep = a.label();
    a.cmp(byte(r12, VM.pcOn), 0).je(sleep);
    a.call(L("svm_pc_sources")); // a timer due right now wakes it too
    a.lea(rdi, qword(r12, VM.pic)).xor(esi, esi).call(L("svm_pic_next"));
    a.test(rax, rax).js(sleep);
    advance(1);
    a.jmp(L("svm_window"));
    a.bind(sleep);
  }
  advance(1);
  a.bind(L("svm_yield"));
  const common = a.label(), none = a.label(), switched = a.label();
  a.jmp(none); // the rest of the quantum goes to the idle partition
  // The guest waits for its console server (a full queue): the rest of its quantum goes to that server — slot 0's
  // peer, the I/O partition — when it is ready, else to the idle partition. Its own time, donated to the partition
  // it waits for; the schedule is back at the next quantum.
  a.bind(L("svm_yield_server"));
  a.mov(r14, qword(rbx, STATE_PAGE.slots));
  a.test(r14, r14).jz(none);
  a.cmp(dword(r14, STATE_PAGE.state), STATE.ready).je(common);
  a.bind(none);
  a.xor(r14d, r14d);
  a.bind(common);
  account();
  a.lea(rax, ptr(L("svm_loop"))).mov(qword(rbx, SAVED_FRAME.rip), rax);
  a.mov(qword(rbx, SAVED_FRAME.cs), SEL.kcode).mov(qword(rbx, SAVED_FRAME.rflags), 2);
  a.lea(rax, ptr(L("g_kstack_top"))).mov(qword(rbx, SAVED_FRAME.rsp), rax).mov(qword(rbx, SAVED_FRAME.ss), SEL.kdata);
  a.mov(rdi, r14).test(rdi, rdi).jnz(switched);
  a.mov(rdi, qword(L("g_idle")));
  a.bind(switched);
  a.jmp(L("switch_to"));
}

/** #DB/#AC reflection, XSETBV and VMMCALL. */
function emitSvmSmallExits(g: SvmGen): void {
  const { a, L, advance, inject } = g;
  // #DB, #AC: reflected into the guest, one exit each (the CVE-2015-5307/8104 loops never keep the processor).
  a.bind(L("svm_reflect"));
  {
    const db = a.label();
    a.cmp(qword(r13, VMCB.exitCode), EXIT_CODE.excDb).je(db);
    inject(17, true, (x) => x.mov(eax, dword(r13, VMCB.exitInfo1)));
    a.jmp(L("svm_window"));
    a.bind(db);
    inject(1, false);
    a.jmp(L("svm_window"));
  }

  // XSETBV: only a no-op write of the host's XCR0 is accepted (the guest never changes XCR0), else #GP(0).
  a.bind(L("svm_xsetbv"));
  {
    const gp = a.label();
    a.cmp(dword(r12, VM.gpr("rcx")), 0).jne(gp);
    a.xor(ecx, ecx).xgetbv();
    a.cmp(eax, dword(r13, VMCB.rax)).jne(gp);
    a.cmp(edx, dword(r12, VM.gpr("rdx"))).jne(gp);
    advance(3);
    a.jmp(L("svm_window"));
    a.bind(gp);
    inject(13, true);
    a.jmp(L("svm_window"));
  }

  // VMMCALL: the int 0x80 operations a guest has (§9); rip + 3.
  a.bind(L("svm_vmmcall"));
  {
    const time = a.label(), signal = a.label(), poll = a.label(), denied = a.label(), yieldL = a.label(), back = a.label();
    advance(3);
    a.inc(qword(rbx, STATE_PAGE.hypercalls));
    a.mov(rax, qword(r13, VMCB.rax));
    a.cmp(rax, HYPERCALL.time).je(time);
    a.cmp(rax, HYPERCALL.yield).je(yieldL);
    a.cmp(rax, HYPERCALL.signal).je(signal);
    a.cmp(rax, HYPERCALL.poll).je(poll);
    a.cmp(rax, HYPERCALL.command).je(denied);
    a.cmp(rax, HYPERCALL.start).je(denied);
    a.mov(qword(r13, VMCB.rax), HC_ERR.unknown);
    a.jmp(back);
    a.bind(denied);
    a.mov(qword(r13, VMCB.rax), HC_ERR.denied);
    a.jmp(back);
    a.bind(time);
    a.mov(rax, qword(L("g_quantum"))).mov(qword(r13, VMCB.rax), rax);
    a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(r12, VM.gpr("rdx")), rax);
    a.jmp(back);
    a.bind(signal);
    a.push(rbp).mov(rbp, rbx).mov(rcx, qword(r12, VM.gpr("rcx"))).call(L("do_signal")).pop(rbp);
    a.mov(qword(r13, VMCB.rax), rax);
    a.jmp(back);
    a.bind(poll);
    a.xor(eax, eax).xchg(rax, qword(rbx, STATE_PAGE.pending)).mov(qword(r13, VMCB.rax), rax);
    a.jmp(back);
    a.bind(yieldL);
    a.mov(qword(r13, VMCB.rax), 0);
    a.jmp(L("svm_yield"));
    a.bind(back);
    a.jmp(L("svm_window"));
  }
}

/** Nested page faults: absent MMIO below 4 GiB for the MOV forms, violations otherwise (svm.md §4.1). */
function emitSvmNpf(g: SvmGen): void {
  const { a, L, absent } = g;
  // NPF (§4.1): an access to guest-physical memory the partition does not have. Below MMIO_ABSENT_END it is the
  // absent class when the faulting instruction is one the monitor emulates: its bytes are fetched through the guest's
  // own page tables (64-bit mode only), decoded, a read gets all ones, a write is dropped, rip moves past it. Anything
  // else — at or above MMIO_ABSENT_END, a fault during the guest's page walk or an instruction fetch, a guest not in
  // 64-bit mode, an instruction not fetched or not decoded, a direction that disagrees with the fault — is a violation.
  a.bind(L("svm_npf"));
  {
    const viol = L("svm_violation");
    const fetched = a.label(), write = a.label(), rest = a.label(), reg = a.label();
    a.mov(r14, qword(r13, VMCB.exitInfo1)).mov(r15, qword(r13, VMCB.exitInfo2)); // r14 = error code, r15 = gpa
    a.bt(r14, 33).jc(viol); // during the guest's own page walk
    a.test(r14d, 0x10).jnz(viol); // an instruction fetch
    a.mov(rax, MMIO_ABSENT_END - 8).cmp(r15, rax).ja(viol);
    a.test(dword(r13, VMCB.efer), 1 << 10).jz(viol); // EFER.LMA
    a.test(word(r13, VMCB.cs + 2), 1 << 9).jz(viol); // CS.L
    a.lea(rdi, qword(r12, VM.insn)).xor(eax, eax).mov(ecx, MMIO_FETCH / 8).rep().stosq();
    a.xor(ebp, ebp); // rbp = bytes fetched; one walk per page the instruction touches
    const fetch = a.here(), walk = a.label(), have = a.label();
    a.mov(rdi, qword(r13, VMCB.rip)).add(rdi, rbp);
    a.test(ebp, ebp).jz(walk);
    a.test(edi, 0xfff).jnz(have);
    a.bind(walk);
    a.mov(rsi, qword(r13, VMCB.cr3)).mov(rdx, qword(rbx, STATE_PAGE.window)).mov(rcx, qword(rbx, STATE_PAGE.allotPages)).shl(rcx, 12);
    a.call(L("svm_gva_to_hpa"));
    a.cmp(rax, -1).je(fetched);
    a.sub(rax, rbp).mov(qword(r12, VM.insnHost), rax); // the host address of byte 0 as if the pages were contiguous
    a.bind(have);
    a.mov(rax, qword(r12, VM.insnHost));
    a.movzx(eax, byte({ base: rax, index: rbp })).mov(byte({ base: r12, index: rbp, disp: VM.insn }), al);
    a.inc(rbp).cmp(rbp, MMIO_MAX_LENGTH).jb(fetch);
    a.bind(fetched);
    a.lea(rdi, qword(r12, VM.insn)).call(L("svm_mmio_decode"));
    a.cmp(rax, -1).je(viol);
    a.mov(ecx, eax).and(ecx, MMIO_DESC.lengthMask).cmp(rcx, rbp).ja(viol); // longer than what could be fetched
    a.mov(rbp, rax); // rbp = the descriptor
    a.test(eax, MMIO_DESC.read).jz(write);
    a.test(r14d, 2).jnz(viol); // the fault was a write: not this instruction
    a.mov(ecx, eax).shr(ecx, MMIO_DESC.regShift).and(ecx, 15);
    a.lea(r8, qword(r13, VMCB.rax)).test(ecx, ecx).jz(reg);
    a.lea(r8, qword(r13, VMCB.rsp)).cmp(ecx, 4).je(reg);
    a.lea(r8, ptr(L("svm_gpr_offsets"))).mov(r8d, dword({ base: r8, index: rcx, scale: 4 })).add(r8, r12);
    a.bind(reg);
    a.push(r8);
    a.mov(rdi, rbp).mov(rsi, qword(r8)).call(L("svm_mmio_merge"));
    a.pop(r8).mov(qword(r8), rax);
    absent("mmio read ", { hex: (x) => x.mov(rdi, r15) });
    a.jmp(rest);
    a.bind(write);
    a.test(r14d, 2).jz(viol);
    absent("mmio write ", { hex: (x) => x.mov(rdi, r15) }, " dropped");
    a.bind(rest);
    a.and(ebp, MMIO_DESC.lengthMask).add(qword(r13, VMCB.rip), rbp);
    a.jmp(L("svm_window"));
  }
  a.section(".rdata");
  a.align(4);
  a.bind(L("svm_gpr_offsets"));
  for (const n of ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]) {
    a.dd(n === "rax" || n === "rsp" ? 0 : VM.gpr(n)); // rax and rsp live in the VMCB
  }
  a.section(".text");
}

/** The PC's time base and interrupt sources, and the injection before each VMRUN (linux-pc.md §3, §5). */
function emitSvmPcGlue(g: SvmGen): void {
  const { a, L } = g;

  // svm_pit_now → rax = the time in PIT ticks (1 193 182 Hz) from the ultravisor's own clock: quanta of the local
  // APIC timer (initial count 0x380) plus the current count (0x390), counted as nanoseconds as everywhere in the
  // ultravisor (QEMU's APIC timer runs at 1 GHz); never less than the last value read. Clobbers rcx, rdx.
  a.bind(L("svm_pit_now"));
  {
    const ok = a.label();
    a.mov(rcx, qword(L("g_lapic")));
    a.mov(eax, dword(rcx, 0x380)).mov(edx, eax).sub(edx, dword(rcx, 0x390)); // ticks into this quantum
    a.imul(rax, qword(L("g_quantum"))).add(rax, rdx);
    a.mov(ecx, 1_193_182).mul(rcx).mov(ecx, 1_000_000_000).div(rcx);
    a.cmp(rax, qword(r12, VM.pitNow)).jae(ok);
    a.mov(rax, qword(r12, VM.pitNow));
    a.bind(ok);
    a.mov(qword(r12, VM.pitNow), rax);
    a.ret();
  }

  // svm_pc_sources (r12 = VM page): the PC's interrupt sources into the 8259A — the PIT's IRQ 0 when due, the UART's
  // IRQ 4 while its line is high. Clobbers rax, rcx, rdx, rsi, rdi, r9.
  a.bind(L("svm_pc_sources"));
  {
    const noTimer = a.label(), noUart = a.label();
    a.call(L("svm_pit_now"));
    a.lea(rdi, qword(r12, VM.pit)).mov(rsi, rax).call(L("svm_pit_due"));
    a.test(eax, eax).jz(noTimer);
    a.lea(rdi, qword(r12, VM.pic)).xor(esi, esi).call(L("svm_pic_raise"));
    a.bind(noTimer);
    a.test(byte(r12, VM.uart + UART.ier), 2).jz(noUart);
    a.cmp(byte(r12, VM.uart + UART.thri), 0).je(noUart);
    a.lea(rdi, qword(r12, VM.pic)).mov(esi, 4).call(L("svm_pic_raise"));
    a.bind(noUart);
    a.ret();
  }

  // svm_pc_tick (rbx, r12, r13 as in the loop): before each VMRUN of a guest that programmed its PC — the PIT's IRQ
  // 0, the UART's IRQ 4 level, then one interrupt injected through EVENTINJ when the guest can take it, or V_IRQ set
  // so that the VINTR intercept brings it back as soon as it can (linux-pc.md §5).
  a.bind(L("svm_pc_tick"));
  {
    const done = a.label(), window = a.label();
    a.cmp(byte(r12, VM.pcOn), 0).je(done);
    a.mov(dword(r13, VMCB.vintr), 1 << 24); // V_INTR_MASKING, no V_IRQ
    a.call(L("svm_pc_sources"));
    a.bt(dword(r13, VMCB.eventInj), 31).jc(done); // an exception goes first
    a.lea(rdi, qword(r12, VM.pic)).xor(esi, esi).call(L("svm_pic_next"));
    a.test(rax, rax).js(done);
    a.test(dword(r13, VMCB.rflags), 1 << 9).jz(window);
    a.test(byte(r13, VMCB.interruptShadow), 1).jnz(window);
    a.lea(rdi, qword(r12, VM.pic)).mov(esi, 1).call(L("svm_pic_next"));
    a.bts(eax, 31).mov(qword(r13, VMCB.eventInj), rax); // type 0: an external interrupt
    a.ret();
    a.bind(window);
    a.mov(dword(r13, VMCB.vintr), (1 << 24) | (1 << 20) | (0xf << 16) | (1 << 8)); // V_IRQ, top priority, TPR ignored
    a.bind(done);
    a.ret();
  }
}

/** The two ends of a virtualized partition: its own stop, and a violation. */
function emitSvmEnds(g: SvmGen): void {
  const { a, L, account } = g;
  // svm_stop(r14 = the reason): the guest stopped itself (linux-pc.md §6): state stopped, one line, the idle
  // partition runs the rest of the quantum. Not a violation.
  a.bind(L("svm_stop"));
  {
    a.mov(dword(rbx, STATE_PAGE.state), STATE.stopped);
    monitorLine(a, "ultravisor: svm: partition ", { str: (x) => x.mov(rdi, qword(rbx, STATE_PAGE.name)) }, ": ", { str: (x) => x.mov(rdi, r14) },
      ": stopped (rip ", { hex: (x) => x.mov(rdi, qword(r13, VMCB.rip)) }, ")");
    account();
    a.mov(rdi, qword(L("g_idle"))).jmp(L("switch_to"));
  }

  // A violation (§4): the partition alone stops; the line names the exit, the guest-physical address (NPF), rip and
  // the error code.
  a.bind(L("svm_violation"));
  {
    a.mov(dword(rbx, STATE_PAGE.state), STATE.failed);
    monitorLine(a, "ultravisor: svm: partition ", { str: (x) => x.mov(rdi, qword(rbx, STATE_PAGE.name)) }, " stopped: violation: exit ",
      { hex: (x) => x.mov(rdi, qword(r13, VMCB.exitCode)) }, " gpa ", { hex: (x) => x.mov(rdi, qword(r13, VMCB.exitInfo2)) },
      " rip ", { hex: (x) => x.mov(rdi, qword(r13, VMCB.rip)) }, " error ", { hex: (x) => x.mov(rdi, qword(r13, VMCB.exitInfo1)) });
    account();
    a.mov(rdi, qword(L("g_idle"))).jmp(L("switch_to"));
  }
}


