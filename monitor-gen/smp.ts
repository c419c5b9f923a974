// Bringing up the application processors (generated ring-0 code, lead monitor side; docs/specs/smp.md §1): the
// bootstrap processor copies a trampoline into the page below 1 MiB the loader reserved (g_trampoline), builds an
// identity map of 4 GiB without NX for it, sends INIT and two STARTUP IPIs to every other processor, and counts the
// ones that arrive. Each application processor runs the trampoline from real mode through protected mode into 64-bit
// mode, switches to the monitor's own page tables at ap_entry, takes a ticket, records its local APIC id, loads its
// own GDT, TSS (IST 1) and stacks and the monitor's IDT, the bootstrap processor's control registers and XCR0, and
// becomes a processor of the monitor like the first: its record (PCPU, docs/specs/smp.md §2.2) and its idle context,
// from which the bootstrap processor's quantum IPI makes it dispatch its row of the schedule (smp_bind chooses the
// table and binds each partition to its row's processor; smp_quantum_ipi; smp_report says where everything ran).
//
// The trampoline's 16- and 32-bit instructions are bytes written here, because the encoder (toolchain/x64) encodes
// 64-bit code only; monitor-gen/smp.test.ts disassembles them with GNU objdump in the right modes as the oracle.
import { type Assembler, type Label, addr, ax, byte, cr0, cr3, cr4, r13, r12d, r14, r14d, r15, r8d, ds, dword, eax, ebx, ecx, edi, edx, es, fs, gs, ptr, qword, rax, rbx, rcx, rdi, rdx, rsi, rsp, r8, r9, r9d, r12, ss, word } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { TSS } from "./descriptors.ts";
import { EXIT, FLAG, MAX_NUMBER, MAX_PCPUS, PCPU, SAVED_FRAME, SEL, STATE, STATE_PAGE, TIMER_VECTOR } from "./layout.ts";
import { emitExit } from "./paging.ts";

/** Where the trampoline keeps what the bootstrap processor writes into the page at run time (offsets in the page). */
export const TRAMPOLINE = {
  code16: 0x000, code32: 0x080, gdt: 0x100, gdtr: 0x120, cr3: 0x130, efer: 0x134, far32: 0x140, far64: 0x148, bytes: 0x150,
} as const;
/** Application processors whose APIC ids are recorded (more may come online; they are counted, not listed). */
export const MAX_APS = 32;
/** Spin iterations: after INIT, after each STARTUP, and the longest wait for processors to check in. */
const WAIT = { init: 1_000_000, sipi: 200_000, arrive: 20_000_000, quiet: 2_000_000 } as const;

const le16 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff];
const le32 = (v: number): number[] => [...le16(v & 0xffff), ...le16(v >>> 16)];

/** 16-bit code at offset 0 (CS = page >> 4, IP = 0): esi = the page's address, the GDT, protected mode, far jump. */
export const CODE16 = [
  0xfa, // cli
  0x8c, 0xc8, 0x8e, 0xd8, // mov ax, cs; mov ds, ax
  0x66, 0x31, 0xf6, 0x8c, 0xce, 0x66, 0xc1, 0xe6, 0x04, // xor esi, esi; mov si, cs; shl esi, 4
  0x0f, 0x01, 0x16, ...le16(TRAMPOLINE.gdtr), // lgdt [gdtr]
  0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0, // mov eax, cr0; or al, 1 (PE); mov cr0, eax
  0x66, 0xff, 0x2e, ...le16(TRAMPOLINE.far32), // jmp far dword [far32]: 0x08:page+code32
];

/** 32-bit code at offset 0x80 (esi = the page): PAE, the trampoline's CR3, EFER.LME (and NXE), paging, far jump. */
export const CODE32 = [
  0xb8, ...le32(0x10), 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, // mov eax, 0x10; mov ds/es/ss, ax
  0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, // mov eax, cr4; or eax, 0x20 (PAE); mov cr4, eax
  0x8b, 0x86, ...le32(TRAMPOLINE.cr3), 0x0f, 0x22, 0xd8, // mov eax, [esi+cr3]; mov cr3, eax
  0xb9, ...le32(0xc000_0080), 0x0f, 0x32, 0x0b, 0x86, ...le32(TRAMPOLINE.efer), 0x0f, 0x30, // EFER |= [esi+efer]
  0x0f, 0x20, 0xc0, 0x0d, ...le32(0x8000_0000), 0x0f, 0x22, 0xc0, // mov eax, cr0; or eax, PG; mov cr0, eax
  0xff, 0xae, ...le32(TRAMPOLINE.far64), // jmp far [esi+far64]: 0x18:ap_entry, 64-bit mode
];

/** The trampoline page's fixed bytes: both code parts and the GDT (null, 32-bit code 0x08, data 0x10, 64-bit code 0x18). */
export function trampolineBytes(): Uint8Array {
  const b = new Uint8Array(TRAMPOLINE.bytes);
  if (CODE16.length > TRAMPOLINE.code32 || TRAMPOLINE.code32 + CODE32.length > TRAMPOLINE.gdt) throw new RangeError("trampoline code outgrew its place");
  b.set(CODE16, TRAMPOLINE.code16);
  b.set(CODE32, TRAMPOLINE.code32);
  const d = new DataView(b.buffer);
  [0n, 0x00cf9a000000ffffn, 0x00cf92000000ffffn, 0x00af9a000000ffffn].forEach((v, i) => d.setBigUint64(TRAMPOLINE.gdt + 8 * i, v, true));
  d.setUint16(TRAMPOLINE.gdtr, 31, true);
  return b;
}

/** The schedule table's rows as the monitor reads them (docs/specs/schedule.md): header, row size, entries' offset. */
export const SCHED_ROW = { first: 64, size: 144, entries: 16 } as const;
/** The vector of the bootstrap processor's measuring IPI: the first application processor answers by a store. */
export const AP_PING_VECTOR = 0x22;
/** IPI round trips the bootstrap processor times at bring-up. */
export const PING_ROUNDS = 64;
/**
 * Each application processor's area, five pages from the bump allocator (docs/specs/smp.md §2.2): its GDT (the
 * monitor's, with its own TSS descriptor) and TSS in the first page, whose top is its IST 1 stack until it runs a
 * context; its idle context's state page; two stack pages; and its record (PCPU), whose address is the stack's top.
 */
export const AP_AREA = { gdt: 0x000, gdtr: 0x040, tss: 0x100, ist1Top: 0x1000, idle: 0x1000, stackTop: 0x4000, record: 0x4000, pages: 5 } as const;
/** Bytes of the monitor's GDT the processors copy (five descriptors and the 16-byte TSS descriptor at SEL.tss). */
const GDT_BYTES = SEL.tss + 16;

/** Emits smp_start (called once by the lead monitor after lapic_init), ap_entry, ap_tick and smp_report. */
export function emitSmp(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  // g_sched: the table in effect, g_sched_rows its rows, g_ap_rows the application processors with a row (smp_bind);
  // g_signal_ipis: signal IPIs sent; g_cr0, g_cr4: the bootstrap processor's, which the others load.
  // g_sched_next, g_switch_at: a pending table and the quantum it takes effect at (§2.7).
  for (const n of ["g_trampoline", "g_ap_online", "g_sched", "g_sched_rows", "g_ap_rows", "g_signal_ipis", "g_cr0", "g_cr4", "g_sched_next", "g_switch_at", "g_swap_tsc"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.bind(L("g_ap_ids"));
  a.zero(4 * MAX_APS);
  // Each processor's area (AP_AREA) by ticket, and its timer interrupts counted by ticket.
  a.bind(L("g_ap_areas"));
  a.zero(8 * MAX_APS);
  // Processors that reached their idle loop; the IPI round trip's sequence number, its answer, and the timings.
  for (const n of ["g_ap_ready", "g_ping_seq", "g_ping_ack", "g_ping_min", "g_ping_sum", "g_ping_lost"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".rdata");
  a.bind(L("smp_trampoline"));
  a.db(trampolineBytes());
  a.section(".text");

  // smp_start: nothing without the loader's page; else the trampoline and its tables, INIT and STARTUP ×2 to all
  // others, the wait, one line. Clobbers rax, rcx, rdx, rsi, rdi, r8, r9.
  a.bind(L("smp_start"));
  {
    const none = a.label(), report = a.label(), noPing = a.label();
    // PCPU 0's record (at g_kstack_top): its TSS, row 0, its APIC id; the control registers the others copy.
    a.lea(rcx, ptr(L("g_kstack_top")));
    a.lea(rax, ptr(L("g_tss"))).mov(qword(rcx, PCPU.tss), rax);
    a.mov(qword(rcx, PCPU.row), 0).mov(qword(rcx, PCPU.seen), 0);
    a.mov(rax, qword(L("g_lapic"))).mov(eax, dword(rax, 0x20)).shr(eax, 24).mov(qword(rcx, PCPU.apic), rax);
    a.mov(rax, cr0).mov(qword(L("g_cr0")), rax);
    a.mov(rax, cr4).mov(qword(L("g_cr4")), rax);
    a.mov(rdi, qword(L("g_trampoline"))).test(rdi, rdi).jz(none);
    a.lea(rsi, ptr(L("smp_trampoline"))).mov(ecx, TRAMPOLINE.bytes).push(rdi);
    a.rep().movsb();
    a.pop(rdi);
    a.lea(rax, qword(rdi, TRAMPOLINE.gdt)).mov(dword(rdi, TRAMPOLINE.gdtr + 2), eax);
    a.lea(rax, qword(rdi, TRAMPOLINE.code32)).mov(dword(rdi, TRAMPOLINE.far32), eax).mov(word(rdi, TRAMPOLINE.far32 + 4), 0x08);
    a.lea(rax, ptr(L("ap_entry"))).mov(dword(rdi, TRAMPOLINE.far64), eax).mov(word(rdi, TRAMPOLINE.far64 + 4), 0x18);
    // EFER bits the processor sets: LME, and NXE when the monitor's tables use NX (an entry with NX set and NXE clear
    // is a reserved-bit fault).
    const noNx = a.label();
    a.mov(dword(rdi, TRAMPOLINE.efer), 0x100);
    a.cmp(qword(L("g_nx")), 0).je(noNx);
    a.mov(dword(rdi, TRAMPOLINE.efer), 0x900);
    a.bind(noNx);
    // The trampoline's own tables: 4 GiB identity-mapped with 2 MiB pages, supervisor, executable (the monitor's map
    // makes the low pages NX, and the trampoline runs from one). ap_entry leaves them at once.
    a.mov(r8, rdi); // r8 = the page
    a.call(L("alloc_page")).mov(r9, rax).mov(dword(r8, TRAMPOLINE.cr3), eax); // r9 = PML4
    a.call(L("alloc_page")).or(rax, 3).mov(qword(r9), rax).and(rax, -4096).mov(r9, rax); // r9 = PDPT
    for (let i = 0; i < 4; i++) {
      a.call(L("alloc_page")).mov(rdx, rax).or(rax, 3).mov(qword(r9, 8 * i), rax); // rdx = PD i
      a.xor(ecx, ecx);
      const fill = a.here();
      a.mov(rax, rcx).shl(rax, 21).or(rax, 0x83);
      if (i) a.mov(rsi, BigInt(i) << 30n).add(rax, rsi);
      a.mov(qword({ base: rdx, index: rcx, scale: 8 }), rax);
      a.inc(ecx).cmp(ecx, 512).jb(fill);
    }
    // Every possible processor's area (MAX_APS of them, AP_AREA.pages consecutive pages each).
    {
      a.xor(r9d, r9d);
      const each = a.here();
      a.call(L("alloc_page")).lea(rcx, ptr(L("g_ap_areas"))).mov(qword({ base: rcx, index: r9, scale: 8 }), rax);
      for (let k = 1; k < AP_AREA.pages; k++) a.call(L("alloc_page"));
      a.inc(r9d).cmp(r9d, MAX_APS).jb(each);
    }
    a.push(r8);
    a.mov(edi, AP_PING_VECTOR).lea(rsi, ptr(L("ap_ping"))).mov(edx, 0x8e).call(L("set_gate"));
    a.pop(r8);
    // INIT, then STARTUP twice with the page's vector, to every processor but this one (ICR shorthand 11).
    a.mov(rcx, qword(L("g_lapic"))).mov(dword(rcx, 0x310), 0).mov(dword(rcx, 0x300), 0x000c_4500);
    spinWait(a, WAIT.init);
    for (let k = 0; k < 2; k++) {
      a.mov(rax, r8).shr(rax, 12).or(eax, 0x000c_4600);
      a.mov(rcx, qword(L("g_lapic"))).mov(dword(rcx, 0x310), 0).mov(dword(rcx, 0x300), eax);
      spinWait(a, WAIT.sipi);
    }
    // Wait until some processor arrived and none more came for a while, or the longest wait.
    a.mov(r9d, WAIT.arrive).xor(ecx, ecx).xor(edx, edx); // r9 = budget, rcx = last count, rdx = quiet spins
    const wait = a.here(), changed = a.label(), next = a.label();
    a.mov(rax, qword(L("g_ap_online"))).cmp(rax, rcx).jne(changed);
    a.inc(edx);
    a.test(rcx, rcx).jz(next);
    a.cmp(edx, WAIT.quiet).jae(report);
    a.jmp(next);
    a.bind(changed);
    a.mov(rcx, rax).xor(edx, edx);
    a.bind(next);
    a.pause().dec(r9d).jnz(wait);
    a.bind(report);
    monitorLine(a, "ultravisor: smp: ", { dec: (x) => x.mov(rdi, qword(L("g_ap_online"))) },
      " application processor(s) started through the trampoline at ", { hex: (x) => x.mov(rdi, qword(L("g_trampoline"))) },
      "; each dispatches its row of the schedule (docs/specs/smp.md)");
    a.cmp(qword(L("g_ap_online")), 0).je(noPing);
    a.call(L("smp_ping"));
    a.bind(noPing);
    // One line per recorded processor: its ticket and the local APIC id it read from its own APIC.
    eachRecordedAp(a, () => {
      monitorLine(a, "ultravisor: smp: application processor ", { dec: (x) => x.lea(rdi, qword(rbx, 1)) }, ": local APIC id ",
        { dec: (x) => x.lea(rax, ptr(L("g_ap_ids"))).mov(edi, dword({ base: rax, index: rbx, scale: 4 })) }, ", its own GDT, TSS, stacks and idle context");
    });
    a.ret();
    a.bind(none);
    monitorLine(a, "ultravisor: smp: no page below 1 MiB for the trampoline: the application processors stay halted");
    a.ret();
  }

  // ap_entry (64-bit, on the trampoline's tables): the monitor's own tables, a ticket, the APIC id; then, with an
  // area (ticket < MAX_APS), its own GDT, TSS (IST 1) and stack, the monitor's IDT, its local APIC timer at the
  // bootstrap processor's period on AP_TIMER_VECTOR, and interrupts on while it halts. Without one it parks.
  a.bind(L("ap_entry"));
  {
    const park = a.label();
    a.mov(rax, qword(L("g_kpml4"))).mov(cr3, rax);
    a.mov(ecx, 1).lock().xadd(qword(L("g_ap_online")), rcx); // rcx = this processor's ticket
    a.cmp(rcx, MAX_APS).jae(park);
    a.mov(rax, qword(L("g_lapic"))).mov(eax, dword(rax, 0x20)).shr(eax, 24);
    a.lea(rdx, ptr(L("g_ap_ids"))).mov(dword({ base: rdx, index: rcx, scale: 4 }), eax);
    a.lea(rdx, ptr(L("g_ap_areas"))).mov(rbx, qword({ base: rdx, index: rcx, scale: 8 })); // rbx = the area
    a.lea(rsp, qword(rbx, AP_AREA.stackTop));
    a.mov(r12, rcx); // r12 = the ticket, for ap_tick's counter (kept in r12 while it halts)
    // GDT: the monitor's descriptors, then this processor's TSS descriptor (base = area + tss, limit 103: no I/O
    // bitmap, nothing at CPL 3 runs here), IST 1 at the first page's top.
    a.lea(rsi, ptr(L("g_gdt"))).lea(rdi, qword(rbx, AP_AREA.gdt)).mov(ecx, GDT_BYTES / 8).rep().movsq();
    a.lea(rax, qword(rbx, AP_AREA.tss));
    a.lea(rcx, qword(rbx, AP_AREA.ist1Top)).mov(qword(rax, TSS.ist1), rcx);
    a.mov(word(rax, TSS.iomapBase), 104);
    a.mov(rcx, rax).and(ecx, 0xffffff).shl(rcx, 16).or(rcx, 103);
    a.mov(rdx, 0x89n << 40n).or(rcx, rdx);
    a.mov(rdx, rax).shr(rdx, 24).and(edx, 0xff).shl(rdx, 56).or(rcx, rdx);
    a.mov(qword(rbx, AP_AREA.gdt + SEL.tss), rcx);
    a.shr(rax, 32).mov(qword(rbx, AP_AREA.gdt + SEL.tss + 8), rax);
    a.mov(word(rbx, AP_AREA.gdtr), GDT_BYTES - 1);
    a.lea(rax, qword(rbx, AP_AREA.gdt)).mov(qword(rbx, AP_AREA.gdtr + 2), rax);
    a.lea(rax, qword(rbx, AP_AREA.gdtr)).lgdt(ptr(rax));
    a.mov(eax, SEL.kdata);
    for (const sr of [ds, es, ss, fs, gs]) a.mov(sr, ax);
    const reload = a.label();
    a.push(SEL.kcode);
    a.lea(rax, ptr(reload)).push(rax);
    a.lretq();
    a.bind(reload);
    a.mov(ax, SEL.tss).ltr(ax);
    a.lea(rax, ptr(L("g_idtr"))).lidt(ptr(rax));
    // The bootstrap processor's CR0 and CR4 (extended state, UMIP, ...) and XCR0: partitions run here too.
    a.mov(rax, qword(L("g_cr0"))).mov(cr0, rax);
    a.mov(rax, qword(L("g_cr4"))).mov(cr4, rax);
    const noXsave = a.label();
    a.cmp(qword(L("g_xsave")), 0).je(noXsave);
    a.mov(eax, dword(L("g_xcr0"))).xor(edx, edx).xor(ecx, ecx).xsetbv();
    a.bind(noXsave);
    // Its local APIC: enabled, its timer masked (PCPU 0's quantum IPI is its clock, docs/specs/smp.md §2.3).
    a.mov(rax, qword(L("g_lapic")));
    a.mov(dword(rax, 0xf0), 0x1ff).mov(dword(rax, 0x80), 0).mov(dword(rax, 0x3e0), 0xb);
    a.mov(dword(rax, 0x320), TIMER_VECTOR | 0x10000);
    // Its record (no row until smp_bind gives one) and its idle context: a ring-0 page like PCPU 0's idle partition.
    a.lea(r13, qword(rbx, AP_AREA.record)).lea(r14, qword(rbx, AP_AREA.idle));
    a.mov(qword(r13, PCPU.idle), r14);
    a.lea(rax, qword(rbx, AP_AREA.tss)).mov(qword(r13, PCPU.tss), rax);
    a.mov(rax, -1).mov(qword(r13, PCPU.row), rax).mov(qword(r13, PCPU.seen), rax);
    a.mov(rax, qword(L("g_lapic"))).mov(eax, dword(rax, 0x20)).shr(eax, 24).mov(qword(r13, PCPU.apic), rax);
    a.mov(rdi, r14).call(L("xstate_init"));
    a.mov(rcx, qword(L("g_idle")));
    for (const f of [STATE_PAGE.name, STATE_PAGE.index]) a.mov(rax, qword(rcx, f)).mov(qword(r14, f), rax);
    a.mov(dword(r14, STATE_PAGE.flags), FLAG.idle).mov(dword(r14, STATE_PAGE.state), STATE.ready);
    a.mov(rax, qword(L("g_kpml4"))).mov(qword(r14, STATE_PAGE.cr3), rax);
    a.lea(rax, ptr(L("idle_loop"))).mov(qword(r14, SAVED_FRAME.rip), rax);
    a.mov(qword(r14, SAVED_FRAME.cs), SEL.kcode).mov(qword(r14, SAVED_FRAME.rflags), 0x202);
    a.lea(rax, qword(r14, 0x800)).mov(qword(r14, SAVED_FRAME.rsp), rax);
    a.mov(qword(r14, SAVED_FRAME.ss), SEL.kdata);
    a.mov(qword(r14, STATE_PAGE.pcpu), r13);
    a.lock().inc(qword(L("g_ap_ready")));
    a.mov(rsp, r13).mov(rdi, r14).jmp(L("switch_to"));
    a.bind(park);
    a.cli().hlt().jmp(park);
  }

  // smp_icr_wait(rcx = the local APIC): until the previous IPI left (ICR delivery status), at most a bound. Keeps
  // every register.
  a.bind(L("smp_icr_wait"));
  {
    const out = a.label();
    a.push(rax);
    a.mov(eax, WAIT.sipi);
    const spin = a.here();
    a.test(dword(rcx, 0x300), 0x1000).jz(out);
    a.pause().dec(eax).jnz(spin);
    a.bind(out);
    a.pop(rax).ret();
  }

  // smp_quantum_ipi: PCPU 0's quantum IPI to every other processor (vector TIMER_VECTOR, shorthand all excluding
  // self; docs/specs/smp.md §2.3). Clobbers rcx.
  a.bind(L("smp_quantum_ipi"));
  {
    a.mov(rcx, qword(L("g_lapic")));
    a.call(L("smp_icr_wait"));
    a.mov(dword(rcx, 0x310), 0).mov(dword(rcx, 0x300), 0x000c_0000 | TIMER_VECTOR);
    a.ret();
  }

  emitBind(a);
  emitSwapCheck(a);

  // ap_ping: the measuring IPI (monitor-gen/smp.ts smp_ping): the sequence number stored back, EOI.
  a.bind(L("ap_ping"));
  {
    a.push(rax);
    a.mov(rax, qword(L("g_ping_seq"))).mov(qword(L("g_ping_ack")), rax);
    a.mov(rax, qword(L("g_lapic"))).mov(dword(rax, 0xb0), 0);
    a.pop(rax);
    a.iretq();
  }

  // smp_ping: once the first application processor idles, PING_ROUNDS round trips to it — a fixed IPI on
  // AP_PING_VECTOR, answered by a store the bootstrap processor spins on — timed with the TSC (minimum and mean);
  // a round without an answer within a bound counts as lost. Clobbers rax, rcx, rdx, rsi, rdi, r8, r9.
  a.bind(L("smp_ping"));
  {
    const done = a.label(), round = a.label(), answered = a.label(), next = a.label(), ready = a.label();
    a.mov(ecx, WAIT.arrive);
    const wait = a.here();
    a.cmp(qword(L("g_ap_ready")), 0).jne(ready);
    a.pause().dec(ecx).jnz(wait);
    a.ret();
    a.bind(ready);
    a.mov(rax, -1).mov(qword(L("g_ping_min")), rax);
    a.xor(r9d, r9d); // r9 = rounds done
    a.bind(round);
    a.cmp(r9d, PING_ROUNDS).jae(done);
    a.inc(qword(L("g_ping_seq"))).mov(rsi, qword(L("g_ping_seq")));
    a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(r8, rax); // r8 = start
    a.mov(rcx, qword(L("g_lapic")));
    a.lea(rax, ptr(L("g_ap_ids"))).mov(eax, dword(rax)).shl(eax, 24).mov(dword(rcx, 0x310), eax); // to processor 1
    a.mov(dword(rcx, 0x300), AP_PING_VECTOR); // fixed, physical destination, no shorthand
    a.mov(edi, WAIT.arrive);
    const spin = a.here();
    a.cmp(qword(L("g_ping_ack")), rsi).je(answered);
    a.pause().dec(edi).jnz(spin);
    a.inc(qword(L("g_ping_lost"))).jmp(next);
    a.bind(answered);
    a.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, r8);
    a.add(qword(L("g_ping_sum")), rax);
    a.cmp(rax, qword(L("g_ping_min"))).jae(next);
    a.mov(qword(L("g_ping_min")), rax);
    a.bind(next);
    a.inc(r9d).jmp(round);
    a.bind(done);
    monitorLine(a, "ultravisor: smp: IPI round trip to application processor 1: min ", { dec: (x) => x.mov(rdi, qword(L("g_ping_min"))) },
      " mean ", { dec: (x) => x.mov(rax, qword(L("g_ping_sum"))).mov(ecx, PING_ROUNDS).sub(rcx, qword(L("g_ping_lost"))).mov(r8d, 1).cmp(rcx, 0).cmove(rcx, r8).xor(edx, edx).div(rcx).mov(rdi, rax) },
      ` TSC cycles over ${PING_ROUNDS} rounds, lost `, { dec: (x) => x.mov(rdi, qword(L("g_ping_lost"))) });
    a.ret();
  }

  // smp_report (the run's end, PCPU 0): with more than one row, where each partition ran; each application
  // processor's quantum interrupts, quanta lost and signal IPIs. Clobbers what monitorLine does.
  a.bind(L("smp_report"));
  {
    const single = a.label();
    a.cmp(qword(L("g_sched_rows")), 1).jbe(single);
    a.push(rbx).push(r12).push(r13);
    {
      const each = a.label(), done = a.label(), skip = a.label();
      a.xor(r12d, r12d);
      a.bind(each);
      a.cmp(r12, qword(L("g_partition_count"))).jae(done);
      a.mov(rax, r12).shl(rax, 6).lea(rbx, ptr(L("g_partitions"))).add(rbx, rax);
      a.mov(r13, qword(rbx, 40)); // its state page (PARTITION_RECORD.state)
      a.test(byte(r13, STATE_PAGE.flags), FLAG.idle).jnz(skip);
      monitorLine(a, "ultravisor: smp: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " ran on PCPU ",
        { dec: (x) => x.mov(rax, qword(r13, STATE_PAGE.pcpu)).mov(rdi, qword(rax, PCPU.row)) }, ": quanta ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.quanta)) });
      a.bind(skip);
      a.inc(r12).jmp(each);
      a.bind(done);
    }
    a.pop(r13).pop(r12).pop(rbx);
    a.bind(single);
    eachRecordedAp(a, () => {
      const rec = (f: number) => (x: Assembler): void => {
        x.lea(rax, ptr(L("g_ap_areas"))).mov(rax, qword({ base: rax, index: rbx, scale: 8 })).mov(rdi, qword(rax, AP_AREA.record + f));
      };
      monitorLine(a, "ultravisor: smp: application processor ", { dec: (x) => x.lea(rdi, qword(rbx, 1)) }, " (local APIC id ",
        { dec: (x) => x.lea(rax, ptr(L("g_ap_ids"))).mov(edi, dword({ base: rax, index: rbx, scale: 4 })) }, "): ",
        { dec: rec(PCPU.ticks) }, " quantum interrupts, ", { dec: rec(PCPU.lost) }, " lost, ", { dec: rec(PCPU.ipis) }, " signal IPIs");
    });
    // With a swap: the quantum each processor with a row first dispatched from the new table.
    {
      const noSwap = a.label();
      a.cmp(qword(L("g_sched_next")), 0).je(noSwap);
      monitorLine(a, "ultravisor: smp: PCPU 0 took the new schedule at quantum ", { dec: (x) => x.lea(rax, ptr(L("g_kstack_top"))).mov(rdi, qword(rax, PCPU.swapped)).dec(rdi) },
        " (", { dec: (x) => x.lea(rax, ptr(L("g_kstack_top"))).mov(rdi, qword(rax, PCPU.swapTsc)).sub(rdi, qword(L("g_swap_tsc"))) }, " TSC cycles after the request)");
      eachRecordedAp(a, () => {
        const skip = a.label();
        a.lea(rax, ptr(L("g_ap_areas"))).mov(rax, qword({ base: rax, index: rbx, scale: 8 }));
        a.cmp(qword(rax, AP_AREA.record + PCPU.row), 0).jle(skip);
        monitorLine(a, "ultravisor: smp: PCPU ", { dec: (x) => x.lea(rdi, qword(rbx, 1)) }, " took the new schedule at quantum ",
          { dec: (x) => x.lea(rax, ptr(L("g_ap_areas"))).mov(rax, qword({ base: rax, index: rbx, scale: 8 })).mov(rdi, qword(rax, AP_AREA.record + PCPU.swapped)).dec(rdi) },
          " (", { dec: (x) => x.lea(rax, ptr(L("g_ap_areas"))).mov(rax, qword({ base: rax, index: rbx, scale: 8 })).mov(rdi, qword(rax, AP_AREA.record + PCPU.swapTsc)).sub(rdi, qword(L("g_swap_tsc"))) },
          " TSC cycles after the request)");
        a.bind(skip);
      });
      a.bind(noSwap);
    }
    monitorLine(a, "ultravisor: smp: signal IPIs sent ", { dec: (x) => x.mov(rdi, qword(L("g_signal_ipis"))) }, ", taken by PCPU 0 ",
      { dec: (x) => x.lea(rax, ptr(L("g_kstack_top"))).mov(rdi, qword(rax, PCPU.ipis)) });
    a.ret();
  }
}

/** `body` once per recorded application processor, rbx = its ticket (0 up to min(online, MAX_APS)); rbx and r12 kept. */
function eachRecordedAp(a: Assembler, body: () => void): void {
  const done = a.label();
  a.push(rbx).push(r12);
  a.xor(ebx, ebx);
  a.mov(r12, qword(a.symbol("g_ap_online"))).mov(eax, MAX_APS).cmp(r12, rax).cmova(r12, rax);
  const each = a.here();
  a.cmp(rbx, r12).jae(done);
  body();
  a.inc(rbx).jmp(each);
  a.bind(done);
  a.pop(r12).pop(rbx);
}

function spinWait(a: Assembler, n: number): void {
  a.mov(edx, n);
  const loop = a.here();
  a.pause().dec(edx).jnz(loop);
}

/** A schedule the image embeds for one processor count: core's table bytes and each row's names (docs/specs/smp.md §2.1). */
export interface EmbeddedSchedule { bytes: Uint8Array; rows: string[] }

/**
 * The image's schedule tables (docs/specs/smp.md §2.1): `tables[k − 1]` for k processors (null where core refused),
 * k = 1 … `pcpus`. Lays out g_sched_pcpus, g_sched_tables (MAX_PCPUS addresses, 0 for none) and g_sched_texts (row p
 * of table k − 1 at (k − 1)·MAX_PCPUS + p), then the tables and the texts. The first table is also g_schedule.
 */
export function emitScheduleTables(a: Assembler, tables: ReadonlyArray<EmbeddedSchedule | null>, prefix = "g_sched"): void {
  const L = (n: string): Label => a.symbol(n);
  if (tables.length < 1 || tables.length > MAX_PCPUS) throw new RangeError(`schedules for 1 to ${MAX_PCPUS} processors, not ${tables.length}`);
  const main = prefix === "g_sched";
  const tableLabels = tables.map(() => a.label());
  const textLabels = tables.map((t) => (t ? t.rows.map(() => a.label()) : []));
  a.section(".rdata");
  a.align(8);
  a.bind(L(`${prefix}_pcpus`));
  a.dq(tables.length);
  a.bind(L(`${prefix}_tables`));
  for (let k = 0; k < MAX_PCPUS; k++) a.dq(tables[k] ? addr(tableLabels[k]!) : 0);
  a.bind(L(`${prefix}_texts`));
  for (let k = 0; k < MAX_PCPUS; k++) for (let p = 0; p < MAX_PCPUS; p++) a.dq(textLabels[k]?.[p] ? addr(textLabels[k]![p]!) : 0);
  let first = true;
  tables.forEach((t, k) => {
    if (!t) return;
    a.align(64);
    if (first && main) a.bind(L("g_schedule"));
    first = false;
    a.bind(tableLabels[k]!);
    a.db(t.bytes);
  });
  tables.forEach((t, k) => t?.rows.forEach((text, p) => {
    a.bind(textLabels[k]![p]!);
    a.asciz(text);
  }));
  a.section(".text");
}

/**
 * smp_bind (the lead monitor, once every application processor idles): the table for the largest processor count the
 * machine and the image both have, each processor's row, each partition bound to its row's processor, and one line
 * per row (docs/specs/smp.md §2.1). Without a table for this machine the run stops.
 */
function emitBind(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.bind(L("smp_bind"));
  const found = a.label(), none = a.label();
  for (const r of [rbx, r12, r13, r14, r15]) a.push(r);
  // Every recorded processor has its record and idle context (so the rows written below are not overwritten).
  {
    const ready = a.label();
    a.mov(rcx, qword(L("g_ap_online"))).mov(eax, MAX_APS).cmp(rcx, rax).cmova(rcx, rax);
    a.mov(edx, WAIT.arrive);
    const spin = a.here();
    a.cmp(qword(L("g_ap_ready")), rcx).jae(ready);
    a.pause().dec(edx).jnz(spin);
    a.bind(ready);
  }
  // r15 = processors: the ready ones and this one, at most the image's rows.
  a.mov(r15, qword(L("g_ap_ready"))).inc(r15);
  a.mov(rax, qword(L("g_sched_pcpus"))).cmp(r15, rax).cmova(r15, rax);
  const find = a.here();
  a.lea(rax, ptr(L("g_sched_tables"))).mov(rbx, qword({ base: rax, index: r15, scale: 8, disp: -8 }));
  a.test(rbx, rbx).jnz(found);
  a.dec(r15).jnz(find);
  a.bind(none);
  monitorLine(a, "ultravisor: smp: no schedule for ", { dec: (x) => x.mov(rdi, qword(L("g_ap_ready"))).inc(rdi) }, " processor(s) in this image (host.pcpus ",
    { dec: (x) => x.mov(rdi, qword(L("g_sched_pcpus"))) }, "): stopping");
  a.mov(qword(L("g_direct")), 1).call(L("k_flush"));
  emitExit(a, EXIT.panic);
  a.bind(found);
  a.mov(qword(L("g_sched")), rbx).mov(qword(L("g_sched_rows")), r15);
  // Application processor with ticket t < rows − 1 runs row t + 1.
  {
    const each = a.label(), done = a.label();
    a.xor(ecx, ecx);
    a.lea(rax, qword(r15, -1));
    a.bind(each);
    a.cmp(rcx, rax).jae(done);
    a.lea(rdx, ptr(L("g_ap_areas"))).mov(rdx, qword({ base: rdx, index: rcx, scale: 8 }));
    a.lea(rsi, qword(rcx, 1)).mov(qword(rdx, AP_AREA.record + PCPU.row), rsi);
    a.inc(rcx).jmp(each);
    a.bind(done);
  }
  // Each partition named in row p is bound to processor p (the idle partition's number stays PCPU 0's).
  {
    const rows = a.label(), rowsDone = a.label(), bsp = a.label(), have = a.label();
    a.xor(r12d, r12d);
    a.bind(rows);
    a.cmp(r12, r15).jae(rowsDone);
    a.lea(r13, ptr(L("g_kstack_top")));
    a.test(r12, r12).jz(bsp);
    a.lea(rax, ptr(L("g_ap_areas"))).mov(r13, qword({ base: rax, index: r12, scale: 8, disp: -8 })).add(r13, AP_AREA.record);
    a.bind(bsp);
    a.xor(r14d, r14d);
    const entries = a.here(), next = a.label();
    a.imul(rax, r12, SCHED_ROW.size).add(rax, rbx);
    a.mov(eax, dword({ base: rax, index: r14, scale: 8, disp: SCHED_ROW.first + SCHED_ROW.entries }));
    a.cmp(eax, MAX_NUMBER).jae(next);
    a.lea(rcx, ptr(L("g_by_number"))).mov(rcx, qword({ base: rcx, index: rax, scale: 8 }));
    a.test(rcx, rcx).jz(next);
    a.test(byte(rcx, STATE_PAGE.flags), FLAG.idle).jnz(next);
    a.mov(qword(rcx, STATE_PAGE.pcpu), r13);
    a.bind(next);
    a.inc(r14).cmp(r14, 16).jb(entries);
    a.bind(have);
    a.inc(r12).jmp(rows);
    a.bind(rowsDone);
  }
  a.lea(rax, qword(r15, -1)).mov(qword(L("g_ap_rows")), rax);
  // One line per row, the names as the image builder wrote them.
  {
    const each = a.label(), done = a.label();
    a.xor(r12d, r12d);
    a.bind(each);
    a.cmp(r12, r15).jae(done);
    monitorLine(a, "ultravisor: schedule (PCPU ", { dec: (x) => x.mov(rdi, r12) }, ", quanta 0-15): ", {
      str: (x) => x.lea(rax, qword(r15, -1)).imul(rax, rax, MAX_PCPUS).add(rax, r12).lea(rcx, ptr(L("g_sched_texts"))).mov(rdi, qword({ base: rcx, index: rax, scale: 8 })),
    });
    a.inc(r12).jmp(each);
    a.bind(done);
  }
  monitorLine(a, "ultravisor: smp: schedule for ", { dec: (x) => x.mov(rdi, r15) }, " processor(s) of ", { dec: (x) => x.mov(rdi, qword(L("g_ap_online"))).inc(rdi) }, " online");
  for (const r of [r15, r14, r13, r12, rbx]) a.pop(r);
  a.ret();
}

/**
 * A test build's schedule swap (docs/specs/smp.md §2.7): g_swap_at (0: none) and the second tables, laid out as
 * emitScheduleTables lays out the first under the prefix g_swap. Every build emits the symbols the monitor reads.
 */
export function emitSwapTables(a: Assembler, swap: { at: number; tables: ReadonlyArray<EmbeddedSchedule | null> } | null): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".rdata");
  a.align(8);
  a.bind(L("g_swap_at"));
  a.dq(swap ? swap.at : 0);
  if (swap) emitScheduleTables(a, swap.tables, "g_swap");
  else {
    a.bind(L("g_swap_tables"));
    a.zero(8 * MAX_PCPUS);
    a.bind(L("g_swap_texts"));
    a.zero(8 * MAX_PCPUS * MAX_PCPUS);
  }
  a.section(".text");
}

/**
 * smp_swap_check (PCPU 0's tick, after the count advanced): at quantum g_swap_at, the second table for this many
 * processors becomes pending from the next wrap, `switch_at` written before the table (x86 keeps stores in order, so a
 * processor that sees the table sees its quantum). Clobbers what monitorLine does.
 */
function emitSwapCheck(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.bind(L("smp_swap_check"));
  const out = a.label(), none = a.label();
  a.mov(rax, qword(L("g_swap_at"))).test(rax, rax).jz(out);
  a.cmp(rax, qword(L("g_quantum"))).jne(out);
  a.cmp(qword(L("g_sched_next")), 0).jne(out);
  a.push(r12).push(r13);
  a.mov(rcx, qword(L("g_sched_rows"))).lea(rdx, ptr(L("g_swap_tables"))).mov(rdx, qword({ base: rdx, index: rcx, scale: 8, disp: -8 }));
  a.test(rdx, rdx).jz(none);
  a.mov(rax, qword(L("g_quantum"))).shr(rax, 4).inc(rax).shl(rax, 4).mov(qword(L("g_switch_at")), rax);
  a.mfence();
  a.push(rdx).rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(L("g_swap_tsc")), rax).pop(rdx); // the request's time
  a.mov(qword(L("g_sched_next")), rdx);
  monitorLine(a, "ultravisor: smp: schedule swap requested at quantum ", { dec: (x) => x.mov(rdi, qword(L("g_quantum"))) }, ": the new table for ",
    { dec: (x) => x.mov(rdi, qword(L("g_sched_rows"))) }, " processor(s) takes effect at quantum ", { dec: (x) => x.mov(rdi, qword(L("g_switch_at"))) }, " on every processor");
  {
    const each = a.label(), done = a.label();
    a.xor(r12d, r12d);
    a.bind(each);
    a.cmp(r12, qword(L("g_sched_rows"))).jae(done);
    monitorLine(a, "ultravisor: schedule after the swap (PCPU ", { dec: (x) => x.mov(rdi, r12) }, ", quanta 0-15): ", {
      str: (x) => x.mov(rax, qword(L("g_sched_rows"))).dec(rax).imul(rax, rax, MAX_PCPUS).add(rax, r12).lea(rcx, ptr(L("g_swap_texts"))).mov(rdi, qword({ base: rcx, index: rax, scale: 8 })),
    });
    a.inc(r12).jmp(each);
    a.bind(done);
  }
  a.pop(r13).pop(r12).ret();
  a.bind(none);
  monitorLine(a, "ultravisor: smp: schedule swap requested at quantum ", { dec: (x) => x.mov(rdi, qword(L("g_quantum"))) }, ": no new table for ",
    { dec: (x) => x.mov(rdi, qword(L("g_sched_rows"))) }, " processor(s)");
  a.pop(r13).pop(r12);
  a.bind(out);
  a.ret();
}
