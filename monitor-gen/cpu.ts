// Processor state the monitor isolates beyond the general registers (generated ring-0 code; docs/specs/partition-state.md):
// `cpu_setup` at boot turns on what the isolation needs — SSE through CR0/CR4, XSAVE with the XCR0 policy below (or
// FXSAVE without it), refusing to boot if the save area CPUID leaf 0xD reports does not fit a state page; FS/GS bases
// zero with CR4.FSGSBASE and CR4.PCE clear, DR7 reset; EFER.NXE (g_nx, which paging ORs into non-code pages) and
// CR4.UMIP when the CPU offers them —; `xstate_init` gives a state page the defined initial x87/SSE state and null
// selectors; `emitXstateSwitch` is the eager save/restore inlined in the monitor's switch_to (monitor-gen/entry.ts).
// Nothing is lazy: CR0.TS stays clear, because lazy FPU switching leaves the previous partition's registers live
// until a #NM, which is the LazyFP leak.
import { Assembler, type Label, eax, ebx, ecx, edx, ptr, qword, r12, r12d, rax, rbx, rcx, rdi, word, dword, cr0, cr4, dr7, ds, es, fs, gs } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { EXIT, STATE_PAGE, XSAVE_SPACE } from "./layout.ts";
import { emitExit } from "./paging.ts";

/**
 * XCR0 components the monitor enables when the CPU offers them: x87 (0), SSE (1), AVX (2) and AVX-512's three (5–7,
 * only all together and with AVX, as XSETBV demands). Left out: MPX (3–4, deprecated, and BNDCFGU needs its own
 * handling), PKRU (9: ring 3 reaches it only with CR4.PKE, which stays clear) and AMX (17–18: 8 KiB of tile data do
 * not fit a state page, and the tiles need their own permission model).
 */
export const XCR0_POLICY = 0xe7;
/** The initial x87 control word (FNINIT) and MXCSR (reset value: every exception masked, round to nearest). */
export const INITIAL_FCW = 0x037f;
export const INITIAL_MXCSR = 0x1f80;

/** `space`: the bytes a state page has for the save area; tests pass less to see the boot refuse. */
export function emitCpu(a: Assembler, space: number = XSAVE_SPACE): void {
  if (space > XSAVE_SPACE) throw new RangeError(`extended-state space ${space} is more than a state page has (${XSAVE_SPACE})`);
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  // g_xsave: 1 when switches use XSAVE/XRSTOR, 0 for FXSAVE/FXRSTOR.
  // g_nx: the NX bit (1 << 63) the monitor ORs into every user leaf that is not code, 0 when the CPU has no NX.
  // g_umip: 1 when CR4.UMIP is on.
  for (const n of ["g_xsave", "g_xcr0", "g_xcr0_offered", "g_xsave_size", "g_nx", "g_umip"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".text");

  // cpu_setup: at boot, before any partition has a state page. Clobbers the System V scratch registers.
  a.bind(L("cpu_setup"));
  {
    a.push(rbx).push(r12);
    // CR0: MP=1 and NE=1 (x87 errors as #MF, WAIT honours TS), EM=0 (x87/SSE not emulated), TS=0 (no lazy switching).
    a.mov(rax, cr0).and(rax, ~(4 | 8)).or(rax, 2 | 0x20).mov(cr0, rax);
    // CR4: OSFXSR (SSE and FXSAVE/FXRSTOR's full format) and OSXMMEXCPT (SIMD exceptions as #XM, not #UD).
    a.mov(rax, cr4).or(rax, 0x600).mov(cr4, rax);
    // FS and GS bases: zero for everybody, and CR4.FSGSBASE clear so that ring 3 cannot set them (WRFSBASE #UD);
    // loading a selector from the GDT gives base 0 as well, so no base carries anything from one partition to the next.
    a.mov(rax, cr4).btr(rax, 16).mov(cr4, rax);
    a.mov(rax, cr4).btr(rax, 8).mov(cr4, rax); // PCE clear: RDPMC faults at ring 3 (counters are shared, not switched)
    // DR7 to its reset value: no breakpoint the firmware may have left armed fires in a partition (ring 3 cannot
    // reach the debug registers; the monitor never arms one).
    a.mov(eax, 0x400).mov(dr7, rax);
    for (const msr of [0xc000_0100, 0xc000_0101, 0xc000_0102]) a.mov(ecx, msr).xor(eax, eax).xor(edx, edx).wrmsr();
    const noXsave = a.label();
    const check = a.label();
    a.mov(eax, 1).cpuid();
    a.bt(ecx, 26).jnc(noXsave); // CPUID.1:ECX.XSAVE
    a.mov(rax, cr4).bts(rax, 18).mov(cr4, rax); // OSXSAVE: XGETBV/XSETBV and XSAVE usable, OSXSAVE visible in CPUID
    a.mov(eax, 0xd).xor(ecx, ecx).cpuid();
    a.mov(dword(L("g_xcr0_offered")), eax).mov(dword({ label: L("g_xcr0_offered"), disp: 4 }), edx);
    a.mov(r12d, eax).and(r12d, XCR0_POLICY);
    const keep = a.label();
    a.mov(ecx, r12d).and(ecx, 0xe4).cmp(ecx, 0xe4).je(keep);
    a.and(r12d, 0x07); // AVX-512 only complete and with AVX
    a.bind(keep);
    a.or(r12d, 3); // x87 must be set; SSE is architectural in long mode
    a.mov(eax, r12d).xor(edx, edx).xor(ecx, ecx).xsetbv();
    a.mov(qword(L("g_xcr0")), r12);
    a.mov(eax, 0xd).xor(ecx, ecx).cpuid(); // EBX: the save area's size for the components XCR0 now enables
    a.mov(eax, ebx).mov(qword(L("g_xsave_size")), rax);
    a.mov(qword(L("g_xsave")), 1);
    a.jmp(check);
    a.bind(noXsave);
    a.mov(qword(L("g_xsave_size")), 512);
    a.bind(check);
    const fits = a.label();
    a.cmp(qword(L("g_xsave_size")), space).jbe(fits);
    a.mov(qword(L("g_direct")), 1);
    monitorLine(a, "ultravisor: refusing to boot: the extended-state save area is ", { dec: (x) => x.mov(rdi, qword(L("g_xsave_size"))) },
      ` bytes for XCR0 `, { hex: (x) => x.mov(rdi, qword(L("g_xcr0"))) }, `; a partition's state page holds ${space}`);
    emitExit(a, EXIT.panic);
    a.bind(fits);
    const fx = a.label();
    const done = a.label();
    a.cmp(qword(L("g_xsave")), 0).je(fx);
    monitorLine(a, "ultravisor: extended state: XSAVE, XCR0 ", { hex: (x) => x.mov(rdi, qword(L("g_xcr0"))) }, " of ", { hex: (x) => x.mov(rdi, qword(L("g_xcr0_offered"))) },
      " offered, save area ", { dec: (x) => x.mov(rdi, qword(L("g_xsave_size"))) }, ` of ${space} bytes in the state page, saved and restored on every switch`);
    a.jmp(done);
    a.bind(fx);
    monitorLine(a, "ultravisor: extended state: FXSAVE (no XSAVE), save area ", { dec: (x) => x.mov(rdi, qword(L("g_xsave_size"))) },
      ` of ${space} bytes in the state page, saved and restored on every switch`);
    a.bind(done);

    // NX: EFER.NXE when CPUID.80000001h:EDX bit 20 offers it, so that pages other than code are no-execute.
    const noNx = a.label();
    const nxDone = a.label();
    a.mov(eax, 0x8000_0000).cpuid().cmp(eax, 0x8000_0001).jb(noNx);
    a.mov(eax, 0x8000_0001).cpuid().bt(edx, 20).jnc(noNx);
    a.mov(ecx, 0xc000_0080).rdmsr().bts(eax, 11).wrmsr();
    a.mov(rax, 1n << 63n).mov(qword(L("g_nx")), rax);
    monitorLine(a, "ultravisor: NX on (EFER.NXE): pages other than code are no-execute, user and supervisor");
    a.jmp(nxDone);
    a.bind(noNx);
    monitorLine(a, "ultravisor: NX off: the CPU does not offer it, data pages stay executable");
    a.bind(nxDone);

    // UMIP: CR4 bit 11 when CPUID.(EAX=7,ECX=0):ECX bit 2 offers it: sgdt, sidt, sldt, smsw and str fault at CPL 3
    // instead of revealing where the descriptor tables are.
    const noUmip = a.label();
    const umipDone = a.label();
    a.xor(eax, eax).cpuid().cmp(eax, 7).jb(noUmip);
    a.mov(eax, 7).xor(ecx, ecx).cpuid().bt(ecx, 2).jnc(noUmip);
    a.mov(rax, cr4).bts(rax, 11).mov(cr4, rax);
    a.mov(qword(L("g_umip")), 1);
    monitorLine(a, "ultravisor: UMIP on: sgdt, sidt, sldt, smsw and str fault at CPL 3");
    a.jmp(umipDone);
    a.bind(noUmip);
    monitorLine(a, "ultravisor: UMIP off: the CPU does not offer it, sgdt and sidt reveal the descriptor tables' addresses at CPL 3");
    a.bind(umipDone);
    a.pop(r12).pop(rbx).ret();
  }

  // xstate_init(rdi = state page): the save area of a new partition — FNINIT's x87 state (control word 0x37F, status
  // 0, every register empty and zero), xmm/ymm/zmm zero, MXCSR 0x1F80; in XSAVE format the header's XSTATE_BV is 0,
  // so XRSTOR puts every component in its initial state (MXCSR is still read from the legacy area). Clobbers rax, rcx, rdi.
  a.bind(L("xstate_init"));
  {
    a.add(rdi, STATE_PAGE.xsave).mov(ecx, XSAVE_SPACE / 8).xor(eax, eax);
    a.rep().stosq();
    a.mov(word(rdi, -XSAVE_SPACE), INITIAL_FCW);
    a.mov(dword(rdi, -XSAVE_SPACE + 24), INITIAL_MXCSR);
    a.mov(qword(rdi, -XSAVE_SPACE - STATE_PAGE.xsave + STATE_PAGE.sregs), 0); // ds, es, fs, gs: null
    a.ret();
  }
}

/**
 * Inline in switch_to (rdi = the incoming partition's state page), before `current` (this processor's record's field,
 * docs/specs/smp.md §2.2) changes: unless the partition keeps the processor, the outgoing one's data-segment selectors and extended state go to its state page and the
 * incoming one's come from its own (ring 0 may load any selector ring 3 could: a null one or a DPL-3 segment).
 * Clobbers rax, rcx, rdx.
 */
export function emitXstateSwitch(a: Assembler, current: ReturnType<typeof qword>): void {
  const L = (n: string): Label => a.symbol(n);
  const done = a.label();
  const fx = a.label();
  const restoreX = a.label();
  const restoreFx = a.label();
  const sregs = [ds, es, fs, gs];
  a.mov(rcx, current);
  a.cmp(rcx, rdi).je(done);
  const loadSregs = a.label();
  a.test(rcx, rcx).jz(loadSregs);
  sregs.forEach((r, i) => a.mov(word(rcx, STATE_PAGE.sregs + 2 * i), r));
  a.bind(loadSregs);
  sregs.forEach((r, i) => a.mov(r, word(rdi, STATE_PAGE.sregs + 2 * i)));
  a.mov(eax, -1).mov(edx, eax); // the requested-feature bitmap: every component XCR0 enables
  a.cmp(qword(L("g_xsave")), 0).je(fx);
  a.test(rcx, rcx).jz(restoreX); // the first dispatch has nobody to save
  a.xsave64(ptr(rcx, STATE_PAGE.xsave));
  a.bind(restoreX);
  a.xrstor64(ptr(rdi, STATE_PAGE.xsave));
  a.jmp(done);
  a.bind(fx);
  a.test(rcx, rcx).jz(restoreFx);
  a.fxsave64(ptr(rcx, STATE_PAGE.xsave));
  a.bind(restoreFx);
  a.fxrstor64(ptr(rdi, STATE_PAGE.xsave));
  a.bind(done);
}
