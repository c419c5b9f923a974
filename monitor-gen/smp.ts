// Bringing up the application processors (generated ring-0 code, lead monitor side; docs/specs/smp.md §1): the
// bootstrap processor copies a trampoline into the page below 1 MiB the loader reserved (g_trampoline), builds an
// identity map of 4 GiB without NX for it, sends INIT and two STARTUP IPIs to every other processor, and counts the
// ones that arrive. Each application processor runs the trampoline from real mode through protected mode into 64-bit
// mode, switches to the monitor's own page tables at ap_entry, takes a ticket, records its local APIC id, loads its
// own GDT, TSS (IST 1) and stack and the monitor's IDT, starts its local APIC timer at the bootstrap processor's
// period, and halts between timer interrupts, which it counts: this version schedules partitions on the bootstrap
// processor only (issue 18 continues from here).
//
// The trampoline's 16- and 32-bit instructions are bytes written here, because the encoder (toolchain/x64) encodes
// 64-bit code only; monitor-gen/smp.test.ts disassembles them with GNU objdump in the right modes as the oracle.
import { type Assembler, type Label, ax, cr3, r8d, ds, dword, eax, ebx, ecx, edi, edx, es, fs, gs, ptr, qword, rax, rbx, rcx, rdi, rdx, rsi, rsp, r8, r9, r9d, r12, ss, word } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { TSS } from "./descriptors.ts";
import { SEL } from "./layout.ts";

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

/** The application processors' own timer vector (their local APIC timers; the bootstrap processor's is TIMER_VECTOR). */
export const AP_TIMER_VECTOR = 0x21;
/** The vector of the bootstrap processor's measuring IPI: the first application processor answers by a store. */
export const AP_PING_VECTOR = 0x22;
/** IPI round trips the bootstrap processor times at bring-up. */
export const PING_ROUNDS = 64;
/**
 * Each application processor's area, two pages from the bump allocator: its GDT (the monitor's, with its own TSS
 * descriptor) and TSS in the first page, whose top is its IST 1 stack; the second page is its stack.
 */
export const AP_AREA = { gdt: 0x000, gdtr: 0x040, tss: 0x100, ist1Top: 0x1000, stackTop: 0x2000, pages: 2 } as const;
/** Bytes of the monitor's GDT the processors copy (five descriptors and the 16-byte TSS descriptor at SEL.tss). */
const GDT_BYTES = SEL.tss + 16;

/** Emits smp_start (called once by the lead monitor after lapic_init), ap_entry, ap_tick and smp_report. */
export function emitSmp(a: Assembler, o: { quantumTicks: number }): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_trampoline", "g_ap_online"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.bind(L("g_ap_ids"));
  a.zero(4 * MAX_APS);
  // Each processor's area (AP_AREA) by ticket, and its timer interrupts counted by ticket.
  a.bind(L("g_ap_areas"));
  a.zero(8 * MAX_APS);
  a.bind(L("g_ap_ticks"));
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
    // Every possible processor's area (MAX_APS of them, two pages each), and the gate of their timer vector.
    {
      a.xor(r9d, r9d);
      const each = a.here();
      a.call(L("alloc_page")).lea(rcx, ptr(L("g_ap_areas"))).mov(qword({ base: rcx, index: r9, scale: 8 }), rax);
      a.call(L("alloc_page"));
      a.inc(r9d).cmp(r9d, MAX_APS).jb(each);
    }
    a.push(r8);
    a.mov(edi, AP_TIMER_VECTOR).lea(rsi, ptr(L("ap_tick"))).mov(edx, 0x8e).call(L("set_gate"));
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
      "; partitions run on the bootstrap processor in this version (docs/specs/smp.md)");
    a.cmp(qword(L("g_ap_online")), 0).je(noPing);
    a.call(L("smp_ping"));
    a.bind(noPing);
    // One line per recorded processor: its ticket and the local APIC id it read from its own APIC.
    eachRecordedAp(a, () => {
      monitorLine(a, "ultravisor: smp: application processor ", { dec: (x) => x.lea(rdi, qword(rbx, 1)) }, ": local APIC id ",
        { dec: (x) => x.lea(rax, ptr(L("g_ap_ids"))).mov(edi, dword({ base: rax, index: rbx, scale: 4 })) }, ", its own GDT, TSS, stack and timer, halted between interrupts");
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
    // Its local APIC: enabled, the timer periodic at the bootstrap processor's period.
    a.mov(rax, qword(L("g_lapic")));
    a.mov(dword(rax, 0xf0), 0x1ff).mov(dword(rax, 0x80), 0).mov(dword(rax, 0x3e0), 0xb);
    a.mov(dword(rax, 0x320), AP_TIMER_VECTOR | 0x20000).mov(dword(rax, 0x380), o.quantumTicks);
    a.lock().inc(qword(L("g_ap_ready")));
    const idle = a.here();
    a.sti().hlt().jmp(idle);
    a.bind(park);
    a.cli().hlt().jmp(park);
  }

  // ap_tick: an application processor's timer interrupt (IST 1 of its own TSS): counted by its ticket (r12 while it
  // halts in ap_entry), EOI.
  a.bind(L("ap_tick"));
  {
    a.push(rax).push(rcx);
    a.lea(rax, ptr(L("g_ap_ticks"))).lock().inc(qword({ base: rax, index: r12, scale: 8 }));
    a.mov(rcx, qword(L("g_lapic"))).mov(dword(rcx, 0xb0), 0);
    a.pop(rcx).pop(rax);
    a.iretq();
  }

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

  // smp_report (the run's end): each application processor's timer interrupts. Clobbers what monitorLine does.
  a.bind(L("smp_report"));
  {
    eachRecordedAp(a, () => {
      monitorLine(a, "ultravisor: smp: application processor ", { dec: (x) => x.lea(rdi, qword(rbx, 1)) }, " (local APIC id ",
        { dec: (x) => x.lea(rax, ptr(L("g_ap_ids"))).mov(edi, dword({ base: rax, index: rbx, scale: 4 })) }, "): ",
        { dec: (x) => x.lea(rax, ptr(L("g_ap_ticks"))).mov(rdi, qword({ base: rax, index: rbx, scale: 8 })) }, " timer interrupts");
    });
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
