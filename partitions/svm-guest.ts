// The hardware-virtualized guests (docs/specs/svm.md): a flat guest-physical image loaded at 0 that starts in 16-bit
// real mode at 0:0x1000, prints through COM1 port I/O (emulated by the monitor into its console channel), switches
// itself to protected mode and then long mode with its own GDT, page tables and IDT, takes its own #UD through its
// own IDT, and then runs a checksum workload paced by the VMMCALL TIME hypercall, like the ring-3 guests' lines.
// The test-only kinds (definition/host.ts VM_KINDS) add one probe once in long mode: absent devices, a violation,
// reaching other partitions' pages, clearing EFER.SVME in the shadow, spinning with interrupts off. The 16- and 32-bit
// start is hand-encoded (the typed assembler emits 64-bit code only); everything from long mode on is assembled.
import { Assembler, type Label, al, ax, bh, byte, cr0, cr3, dl, dword, dx, eax, ebx, edi, ecx, edx, esi, ptr, qword, r12, r12d, r13, r13d, r14, r14d, r15, r15d, rax, rbx, rcx, rdi, rdx, rsi, rsp, word } from "../toolchain/x64/index.ts";
import { flatten } from "../toolchain/x64/flat.ts";
import type { VmKind } from "../definition/host.ts";
import { HYPERCALL } from "../monitor-gen/layout.ts";
import { GUEST_ENTRY } from "../monitor-gen/svm/layout.ts";
import { emitMinTscFrame } from "./programs.ts";
import { literal } from "../monitor-gen/console.ts";

/** Rounds of each frame of the "bench" kind (the minimum is kept). */
export const BENCH_EXITS = 60;

/** Guest-physical layout of the image (all inside the partition's window pages). */
export const SVM_GUEST = {
  gdt: 0x800, gdtr: 0x820, msg16: 0x840, msg32: 0x8c0, pml4: 0x3000, pdpt: 0x4000, pd: 0x5000, idt: 0x6000, stackTop: 0x30000, long: 0x8000,
  /** The page directory of [3 GiB, 4 GiB) (the APIC/IOAPIC/HPET hole the "mmio" probes touch). */
  pdHigh: 0x7000,
  /** The "ac-loop" kind's GDT with CPL-3 segments and a TSS (its ring-0 stack for the #AC handler), and its stacks. */
  gdt3: 0xa00, gdtr3: 0xa40, tss: 0xa80, ring0Stack: 0x2c000, userStack: 0x2d000,
} as const;
/** GDT selectors of the "ac-loop" kind's CPL-3 segments and its TSS. */
const SEL3 = { udata: 0x20 | 3, ucode: 0x28 | 3, tss: 0x30 } as const;
/** The APIC page's guest-physical address: absent in every partition (docs/specs/svm.md §4.1). */
export const MMIO_PROBE = 0xfee0_0000;
/** What the "mmio" probe loads before each 8-bit and 64-bit read, to show which bits the read replaced. */
export const MMIO_BEFORE = 0x1122_3344_5566_7788n;
/** The "pc-irq" kind: the PIT's count (1 kHz), the timer interrupts it waits for, the message its IRQ 4 handler sends. */
export const PC_IRQ = { pitCount: 1193, halted: 5, ticks: 20, message: "irq4: this line went out one byte per THRE interrupt\n" } as const;
const vmmcallTime = (a: Assembler): void => {
  a.mov(eax, HYPERCALL.time).vmmcall();
};
/** The "sweep" kind: [from, to) in steps, and the quadword it writes (the test looks for it in all of RAM). */
export const SWEEP = { from: 0x10_0000, to: 0x1000_0000, step: 0x2_0000, pattern: 0x5357_4545_505f_5356n } as const;
/** The guest-physical address the "reach" probe writes and reads: the database's own 4 MiB page (DB_PAGES.lo), and
 * equal to host-physical pages of the ultravisor region on every boot so far. */
export const REACH_ADDRESS = 0x400000;

const MSG16 = "real mode: CS:IP 0000:1000, out to COM1 from 16-bit code\n";
const MSG32 = "protected mode: own GDT; PAE, EFER.LME, paging on\n";

export interface SvmGuestOptions {
  kind: VmKind;
  /** Quanta between two lines. */
  period: number;
}

/** The nops of the bench's calibration frame: what they cost beyond their count is the frame's own instructions. */
export const BENCH_SVM_NOPS = 50;
type Op = (a: Assembler) => void;
/** The timed sequences of the bench guest, one instruction each entry, the exiting instruction last. */
const CPUID_SEQUENCE: readonly Op[] = [(a) => a.mov(eax, 0x4000_0000), (a) => a.cpuid()];
const COM1_SEQUENCE: readonly Op[] = [(a) => a.mov(al, 0x2e), (a) => a.mov(dx, 0x3f8), (a) => a.out(dx, al)];
/**
 * The guest's own instructions before the exiting one in each timed sequence, counted from the sequences the guest
 * is built from (never by hand): bench/svm.bench.ts subtracts them from the measured round trips.
 */
export const BENCH_SVM_SETUP = { cpuid: CPUID_SEQUENCE.length - 1, com1: COM1_SEQUENCE.length - 1 } as const;

export function assembleSvmGuest(o: SvmGuestOptions): Uint8Array {
  const long = assembleLong(o);
  const image = new Uint8Array(SVM_GUEST.long + long.length);
  const d = new DataView(image.buffer);
  // GDT: null, 32-bit code (0x08), data (0x10), 64-bit code (0x18); the pseudo-descriptor after it.
  [0n, 0x00cf9a000000ffffn, 0x00cf92000000ffffn, 0x00af9a000000ffffn].forEach((v, i) => d.setBigUint64(SVM_GUEST.gdt + 8 * i, v, true));
  d.setUint16(SVM_GUEST.gdtr, 31, true);
  d.setUint32(SVM_GUEST.gdtr + 2, SVM_GUEST.gdt, true);
  image.set(new TextEncoder().encode(MSG16), SVM_GUEST.msg16);
  image.set(new TextEncoder().encode(MSG32), SVM_GUEST.msg32);
  // Page tables: the first GiB identity-mapped with 2 MiB pages (the guest's view; the NPT decides what exists).
  d.setBigUint64(SVM_GUEST.pml4, BigInt(SVM_GUEST.pdpt | 3), true);
  d.setBigUint64(SVM_GUEST.pdpt, BigInt(SVM_GUEST.pd | 3), true);
  for (let i = 0; i < 512; i++) d.setBigUint64(SVM_GUEST.pd + 8 * i, (BigInt(i) << 21n) | 0x83n, true);
  // And [3 GiB, 4 GiB), where a PC has its APIC, IOAPIC and HPET: the guest's view again; its NPT has nothing there.
  d.setBigUint64(SVM_GUEST.pdpt + 3 * 8, BigInt(SVM_GUEST.pdHigh | 3), true);
  for (let i = 0; i < 512; i++) d.setBigUint64(SVM_GUEST.pdHigh + 8 * i, ((3n << 30n) + (BigInt(i) << 21n)) | 0x83n, true);
  // The "ac-loop" GDT: the first four entries again, CPL-3 data (0x20) and 64-bit code (0x28), a 64-bit TSS (0x30).
  [0n, 0x00cf9a000000ffffn, 0x00cf92000000ffffn, 0x00af9a000000ffffn, 0x00cff2000000ffffn, 0x00affa000000ffffn].forEach((v, i) => d.setBigUint64(SVM_GUEST.gdt3 + 8 * i, v, true));
  const tss = BigInt(SVM_GUEST.tss);
  d.setBigUint64(SVM_GUEST.gdt3 + 0x30, 103n | ((tss & 0xffffffn) << 16n) | (0x89n << 40n) | ((tss >> 24n) << 56n), true);
  d.setBigUint64(SVM_GUEST.gdt3 + 0x38, 0n, true);
  d.setUint16(SVM_GUEST.gdtr3, 0x40 - 1, true);
  d.setBigUint64(SVM_GUEST.gdtr3 + 2, BigInt(SVM_GUEST.gdt3), true);
  d.setBigUint64(SVM_GUEST.tss + 4, BigInt(SVM_GUEST.ring0Stack), true); // RSP0
  d.setUint16(SVM_GUEST.tss + 102, 104, true); // no I/O permission bitmap
  const code = [...realMode(), ...protectedMode()];
  if (GUEST_ENTRY + code.length > SVM_GUEST.pml4) throw new RangeError("svm guest: the 16/32-bit start outgrew its page");
  image.set(code, GUEST_ENTRY);
  image.set(long, SVM_GUEST.long);
  return image;
}

const le16 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff];
const le32 = (v: number): number[] => [...le16(v & 0xffff), ...le16(v >>> 16)];
/** lodsb; test al, al; jz +3; out dx, al; jmp back to lodsb — the string loop of both hand-encoded modes. */
const printLoop = [0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8];

function realMode(): number[] {
  const pm32 = GUEST_ENTRY + 0; // patched below: the far jump's target is where protectedMode() starts
  const bytes = [
    0xfa, // cli
    0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, // xor ax, ax; mov ds/es/ss, ax
    0xbc, ...le16(0x7000), // mov sp, 0x7000
    0xbe, ...le16(SVM_GUEST.msg16), // mov si, msg16
    0xba, ...le16(0x3f8), // mov dx, 0x3f8
    ...printLoop,
    0x0f, 0x01, 0x16, ...le16(SVM_GUEST.gdtr), // lgdt [gdtr]
    0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0, // mov eax, cr0; or al, 1 (PE); mov cr0, eax
    0x66, 0xea, ...le32(pm32), ...le16(0x08), // jmp dword 0x08:pm32
  ];
  const target = GUEST_ENTRY + bytes.length;
  bytes.splice(bytes.length - 6, 4, ...le32(target));
  return bytes;
}

function protectedMode(): number[] {
  return [
    0xb8, ...le32(0x10), 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, // mov eax, 0x10; mov ds/es/ss, ax
    0xbc, ...le32(0x7000), // mov esp, 0x7000
    0xbe, ...le32(SVM_GUEST.msg32), 0xba, ...le32(0x3f8), // mov esi, msg32; mov edx, 0x3f8
    ...printLoop,
    0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, // cr4.PAE
    0xb8, ...le32(SVM_GUEST.pml4), 0x0f, 0x22, 0xd8, // cr3 = pml4
    0xb9, ...le32(0xc000_0080), 0x0f, 0x32, 0x0d, ...le32(0x100), 0x0f, 0x30, // EFER.LME (an intercepted, shadowed MSR)
    0x0f, 0x20, 0xc0, 0x0d, ...le32(0x8000_0000), 0x0f, 0x22, 0xc0, // cr0.PG: long mode active
    0xea, ...le32(SVM_GUEST.long), ...le16(0x18), // jmp 0x18:long
  ];
}

function assembleLong(o: SvmGuestOptions): Uint8Array {
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  const raw = (bytes: number[]): void => {
    a.db(new Uint8Array(bytes));
  };
  const vmmcall = (nr: number): void => {
    a.mov(eax, nr).vmmcall();
  };
  const text = (s: string): Label => literal(a, s);
  type Part = string | { dec: () => void } | { hex: () => void } | { hex64: () => void } | { str: () => void };
  // line(...): the parts through COM1, then '\n' (one emulated OUT per byte).
  const line = (...parts: Part[]): void => {
    for (const p of parts) {
      if (typeof p === "string") a.lea(rsi, ptr(text(p))).call(L("g_puts"));
      else if ("dec" in p) { p.dec(); a.call(L("g_putdec")); }
      else if ("hex" in p) { p.hex(); a.call(L("g_puthex")); }
      else if ("hex64" in p) { p.hex64(); a.call(L("g_puthex16")); }
      else { p.str(); a.call(L("g_puts")); }
    }
    a.mov(al, 10).call(L("g_putc"));
  };

  a.section(".text");
  a.bind(L("g_long"));
  a.bind(L("g_image_start"));
  a.mov(rax, SVM_GUEST.stackTop).mov(rsp, rax);
  // Its own IDT: 32 interrupt gates (64-bit code selector 0x18) to stubs that push the vector.
  for (let v = 0; v < 32; v++) {
    const at = SVM_GUEST.idt + 16 * v;
    a.lea(rax, ptr(L(`g_stub_${v}`)));
    a.mov(word({ disp: at }), ax).mov(word({ disp: at + 2 }), 0x18).mov(word({ disp: at + 4 }), 0x8e00);
    a.shr(rax, 16).mov(word({ disp: at + 6 }), ax).shr(rax, 16).mov(dword({ disp: at + 8 }), eax).mov(dword({ disp: at + 12 }), 0);
  }
  a.lidt(ptr(L("g_idtr")));
  line("long mode: own GDT 0x800, page tables 0x3000, IDT 0x6000");
  a.mov(eax, 0x4000_0000).cpuid();
  a.mov(dword(L("g_sig")), ebx).mov(dword({ label: L("g_sig"), disp: 4 }), ecx).mov(dword({ label: L("g_sig"), disp: 8 }), edx);
  a.mov(eax, 0x4000_0001).cpuid().mov(r12d, ebx);
  line("cpuid 0x40000000: ", { str: () => a.lea(rsi, ptr(L("g_sig"))) }, "; channel at gpa ", { hex: () => a.mov(rax, r12) });
  a.ud2(); // taken by its own IDT (the handler steps over it)
  probe(a, o.kind, line, raw);

  // The workload: FNV-1a over its own long-mode code and constants, one line every `period` quanta.
  a.xor(r12d, r12d).xor(r14d, r14d);
  vmmcall(HYPERCALL.time);
  a.mov(r13, rax);
  const loop = a.here();
  a.inc(r14);
  vmmcall(HYPERCALL.time);
  a.mov(rbx, rax).sub(rax, r13).cmp(rax, o.period).jb(loop);
  a.mov(r13, rbx).inc(r12);
  a.call(L("g_checksum")).mov(r15, rax);
  line("tick ", { dec: () => a.mov(rax, r12) }, " quantum ", { dec: () => a.mov(rax, r13) }, " work ", { dec: () => a.mov(rax, r14) },
    " checksum ", { hex: () => a.mov(rax, r15) });
  if (o.kind === "cli-spin") {
    const spin = a.label();
    a.cmp(r12, 2).jb(loop);
    line("cli; jmp $ (interrupts off, spinning)");
    a.cli();
    a.bind(spin);
    a.jmp(spin);
  }
  a.jmp(loop);

  // Exception stubs → g_exc: prints the vector and rip; steps over ud2 (#UD) and rdmsr/wrmsr (#GP), halts otherwise.
  const withError = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
  for (let v = 0; v < 32; v++) {
    a.bind(L(`g_stub_${v}`));
    if (!withError.has(v)) a.push(0);
    a.push(v);
    a.jmp(L("g_exc"));
  }
  a.bind(L("g_db_iret"));
  a.iretq();
  a.bind(L("g_ac_iret"));
  a.add(rsp, 8).iretq();
  a.bind(L("g_exc"));
  {
    const regs = [rax, rcx, rdx, rsi, rdi, rbx];
    for (const r of regs) a.push(r);
    const F = 8 * regs.length; // [rsp+F] vector, +8 error, +16 rip
    line("own IDT: vector ", { dec: () => a.mov(rax, qword(rsp, F)) }, " error ", { hex: () => a.mov(rax, qword(rsp, F + 8)) },
      " rip ", { hex: () => a.mov(rax, qword(rsp, F + 16)) });
    const step = a.label(), stop = a.label();
    a.cmp(qword(rsp, F), 6).je(step);
    a.cmp(qword(rsp, F), 13).je(step);
    a.bind(stop);
    a.hlt().jmp(stop);
    a.bind(step);
    a.add(qword(rsp, F + 16), 2);
    for (const r of [...regs].reverse()) a.pop(r);
    a.add(rsp, 16).iretq();
  }

  // g_putc(al), g_puts(rsi), g_putdec(rax), g_puthex(rax): COM1 by port I/O; clobber rax, rcx, rdx, rsi, rdi.
  a.bind(L("g_putc"));
  a.mov(dx, 0x3f8).out(dx, al).ret();
  a.bind(L("g_puts"));
  {
    const next = a.here(), done = a.label();
    a.mov(al, byte(rsi)).test(al, al).jz(done);
    a.call(L("g_putc")).inc(rsi).jmp(next);
    a.bind(done).ret();
  }
  a.bind(L("g_putdec"));
  {
    a.lea(rdi, ptr(L("g_num_end"))).mov(byte(rdi), 0).mov(ecx, 10);
    const d = a.here();
    a.xor(edx, edx).div(rcx).add(dl, 0x30).dec(rdi).mov(byte(rdi), dl);
    a.test(rax, rax).jnz(d);
    a.mov(rsi, rdi).jmp(L("g_puts"));
  }
  a.bind(L("g_puthex16"));
  a.lea(rdi, ptr(L("g_num_end"))).mov(byte(rdi), 0).mov(ecx, 16);
  const hexDigits = a.label();
  a.jmp(hexDigits);
  a.bind(L("g_puthex"));
  {
    a.lea(rdi, ptr(L("g_num_end"))).mov(byte(rdi), 0).mov(ecx, 8);
    a.bind(hexDigits);
    const d = a.here();
    a.mov(edx, eax).and(edx, 15).lea(rsi, ptr(L("g_hex"))).mov(dl, byte({ base: rsi, index: rdx })).dec(rdi).mov(byte(rdi), dl);
    a.shr(rax, 4).dec(ecx).jnz(d);
    a.dec(rdi).mov(byte(rdi), 0x78).dec(rdi).mov(byte(rdi), 0x30);
    a.mov(rsi, rdi).jmp(L("g_puts"));
  }
  // g_checksum → rax: FNV-1a (32-bit) over g_image_start … g_ro_end.
  a.bind(L("g_checksum"));
  {
    a.lea(rsi, ptr(L("g_image_start"))).lea(rcx, ptr(L("g_ro_end"))).mov(eax, 0x811c9dc5);
    const next = a.here(), done = a.label();
    a.cmp(rsi, rcx).jae(done);
    a.movzx(edx, byte(rsi)).xor(eax, edx).imul(eax, eax, 0x01000193);
    a.inc(rsi).jmp(next);
    a.bind(done).ret();
  }
  a.section(".rdata");
  a.bind(L("g_idtr"));
  a.dw(256 * 16 - 1); // 32 exception gates filled in; the "pc-irq" kind adds 0x20 and 0x24
  a.dq(SVM_GUEST.idt);
  a.bind(L("g_hex"));
  a.ascii("0123456789abcdef");
  a.bind(L("g_ro_end"));
  a.section(".data");
  a.bind(L("g_sig"));
  a.zero(16);
  a.zero(24);
  a.bind(L("g_num_end"));
  a.zero(8);
  const flat = flatten(a.finish(), BigInt(SVM_GUEST.long));
  return flat.bytes;
}

/** The kind's probe, once, right after the #UD: absent devices, a violation, a reach, the EFER shadow. */
function probe(a: Assembler, kind: VmKind, line: (...p: Array<string | { dec: () => void } | { hex: () => void } | { hex64: () => void }>) => void, raw: (b: number[]) => void): void {
  switch (kind) {
    case "realmode-demo":
    case "cli-spin":
      return;
    case "db-loop": {
      // Gate 1 → a bare iretq: the restored RFLAGS keep TF, so every instruction from here on raises #DB, for ever.
      const at = SVM_GUEST.idt + 16;
      a.lea(rax, ptr(a.symbol("g_db_iret")));
      a.mov(word({ disp: at }), ax).shr(rax, 16).mov(word({ disp: at + 6 }), ax).shr(rax, 16).mov(dword({ disp: at + 8 }), eax);
      line("db-loop: TF on, #DB handler returns with TF set");
      a.pushfq().or(qword(rsp), 0x100).popfq();
      return;
    }
    case "bench": {
      // Minimum time-stamp delta over BENCH_EXITS rounds of: 50 nops, CPUID (the hypervisor leaf), one COM1 byte. Under
      // QEMU -icount shift=0 the TSC counts executed instructions, the monitor's included (bench/svm.bench.ts).
      const frame = (into: typeof r12, body: () => void): void => emitMinTscFrame(a, { min: into, count: r15, start: r14 }, BENCH_EXITS, body);
      frame(r12, () => { for (let i = 0; i < BENCH_SVM_NOPS; i++) a.nop(); });
      frame(r13, () => { for (const op of CPUID_SEQUENCE) op(a); });
      a.push(r12).push(r13);
      frame(rbx, () => { for (const op of COM1_SEQUENCE) op(a); });
      a.pop(r13).pop(r12);
      a.mov(al, 10).call(a.symbol("g_putc"));
      line(`bench: ${BENCH_SVM_NOPS} nops `, { dec: () => a.mov(rax, r12) }, " cpuid ", { dec: () => a.mov(rax, r13) }, " com1 ", { dec: () => a.mov(rax, rbx) });
      return;
    }
    case "absent": {
      a.in(al, 0x80).movzx(r12d, al);
      a.mov(dx, 0x1234).in(eax, dx).mov(r13, rax);
      a.mov(al, 0x55).out(0x80, al);
      line("absent: in 0x80 = ", { hex: () => a.mov(rax, r12) }, ", in 0x1234 = ", { hex: () => a.mov(rax, r13) });
      a.mov(ecx, 0x1234_5678).rdmsr(); // #GP through its own IDT
      line("absent: rdmsr 0x12345678 came back through #GP; still running");
      // PCI configuration space is the ultravisor's (docs/specs/pci-devices.md §5): the address port takes nothing and
      // the data port reads all ones, where the host bridge would answer its vendor and device IDs.
      a.mov(dx, 0xcf8).mov(eax, 0x8000_0000).out(dx, eax);
      a.mov(dx, 0xcfc).in(eax, dx).mov(r13, rax);
      line("absent: out 0xcf8, in 0xcfc = ", { hex: () => a.mov(rax, r13) });
      return;
    }
    case "vmrun": case "vmsave": case "clgi": case "stgi": {
      const bytes = { vmrun: 0xd8, vmsave: 0xdb, clgi: 0xdd, stgi: 0xdc }[kind];
      line(`about to ${kind}`);
      a.xor(eax, eax);
      raw([0x0f, 0x01, bytes]);
      line(`still running after ${kind}: containment failed`);
      return;
    }
    case "triple-fault": {
      line("about to triple-fault (empty IDT, int3)");
      a.lidt(ptr(a.symbol("g_null_idtr")));
      a.int3();
      line("still running after the triple fault: containment failed");
      a.section(".rdata");
      a.bind(a.symbol("g_null_idtr"));
      a.dw(0);
      a.dq(0);
      a.section(".text");
      return;
    }
    case "reach": {
      // The database's page at its host-physical address: absent for the guest (svm.md §4.1), so the write is dropped
      // and the read returns all ones.
      line(`about to write and read guest-physical ${"0x" + REACH_ADDRESS.toString(16)}`);
      a.mov(rax, 0x5741_4b45_5245_4143n).mov(qword({ disp: REACH_ADDRESS }), rax);
      a.mov(rax, qword({ disp: REACH_ADDRESS })).mov(r12, rax);
      line("reach read back ", { hex64: () => a.mov(rax, r12) }, "; still running");
      return;
    }
    case "mmio": {
      // Every emulated form once against the APIC page, each result printed whole (64 bits); line() clobbers rdi, so
      // each access sets it again.
      const show = (what: string, r: typeof r12): void => line(`mmio: ${what} `, { hex64: () => a.mov(rax, r) });
      const apic = (): void => {
        a.mov(edi, MMIO_PROBE);
      };
      apic();
      a.mov(rax, MMIO_BEFORE).mov(eax, dword(rdi, 0x30)).mov(r12, rax);
      show("mov eax, [apic+0x30] =", r12);
      apic();
      a.mov(rax, MMIO_BEFORE).mov(al, byte(rdi, 0x20)).mov(r12, rax);
      show("mov al (rax 0x1122334455667788) =", r12);
      apic();
      a.mov(rbx, MMIO_BEFORE).mov(bh, byte(rdi, 0x21)).mov(r12, rbx);
      show("mov bh (rbx 0x1122334455667788) =", r12);
      apic();
      a.mov(r14, MMIO_BEFORE).movzx(r14d, word(rdi, 0x22)).mov(r12, r14);
      show("movzx r14d, word =", r12);
      apic();
      a.mov(r13, MMIO_BEFORE).mov(rbx, 0x80).mov(r13, qword({ base: rdi, index: rbx, scale: 1 })).mov(r12, r13);
      show("mov r13, [rdi+rbx] =", r12);
      apic();
      a.mov(dword(rdi, 0x80), 0x1234_5678).mov(rax, MMIO_BEFORE).mov(qword(rdi, 0x88), rax);
      a.mov(esi, 0xfec0_0000).mov(byte(rsi), 0x5a); // the IOAPIC
      a.mov(r12, MMIO_BEFORE).mov(r12, qword(rdi, 0x88));
      show("after writes, mov r12, [apic+0x88] =", r12);
      return;
    }
    case "mmio-rmw": {
      line("mmio-rmw: add dword [apic+0x30], 1 (not an emulated form)");
      a.mov(rdi, MMIO_PROBE).add(dword(rdi, 0x30), 1);
      line("mmio-rmw: still running after add: containment failed");
      return;
    }
    case "sweep": {
      // One quadword read, written and read again every SWEEP.step of [from, to): r12 counts reads that were not
      // all ones (bytes of someone else), r13 the pages touched.
      const ok1 = a.label(), ok2 = a.label();
      a.xor(r12d, r12d).xor(r13d, r13d).mov(rdi, SWEEP.from).mov(rsi, SWEEP.to).mov(rdx, SWEEP.pattern);
      const next = a.here();
      a.mov(rax, qword(rdi)).cmp(rax, -1).je(ok1).inc(r12);
      a.bind(ok1);
      a.mov(qword(rdi, 8), rdx);
      a.mov(rax, qword(rdi, 8)).cmp(rax, -1).je(ok2).inc(r12);
      a.bind(ok2);
      a.inc(r13).add(rdi, SWEEP.step).cmp(rdi, rsi).jb(next);
      line("sweep: pages ", { dec: () => a.mov(rax, r13) }, ", reads not all ones ", { dec: () => a.mov(rax, r12) });
      return;
    }
    case "uart-reset": {
      // Linux's 8250 autoconfig probes (IER read-back, loopback MSR, FIFO bits in IIR), then its reset (reboot=k).
      const io = (port: number, v: number | null, into?: typeof r12d): void => {
        a.mov(dx, port);
        if (v !== null) a.mov(al, v).out(dx, al);
        if (into) a.in(al, dx).movzx(into, al);
      };
      io(0x3f9, 0, r12d);
      io(0x3f9, 0x0f, r13d);
      io(0x3f9, 0);
      io(0x3fc, 0x1a);
      io(0x3fe, null, r14d);
      io(0x3fc, 0);
      io(0x3fa, 0x07, r15d);
      line("uart: ier ", { hex: () => a.mov(eax, r12d) }, " ", { hex: () => a.mov(eax, r13d) }, " msr ", { hex: () => a.mov(eax, r14d) },
        " iir ", { hex: () => a.mov(eax, r15d) });
      line("uart: 0xFE to port 0x64 (reset)");
      a.mov(al, 0xfe).out(0x64, al);
      line("uart: still running after the reset: containment failed");
      return;
    }
    case "pc-irq": {
      // The PC of docs/specs/linux-pc.md as Linux programs it: the 8259A pair at vectors 0x20/0x28 with IRQ 0 and 4
      // unmasked, the 8254's channel 0 periodic at 1 kHz, the UART's THRE interrupt driving a message out byte by byte
      // from the IRQ 4 handler. Interrupts on, it waits for 20 timer interrupts (the first 5 halted, the rest exiting
      // with VMMCALL TIME) and the message, then interrupts off, one line with the counts.
      const gate = (vector: number, handler: string): void => {
        const at = SVM_GUEST.idt + 16 * vector;
        a.lea(rax, ptr(a.symbol(handler)));
        a.mov(word({ disp: at }), ax).mov(word({ disp: at + 2 }), 0x18).mov(word({ disp: at + 4 }), 0x8e00);
        a.shr(rax, 16).mov(word({ disp: at + 6 }), ax).shr(rax, 16).mov(dword({ disp: at + 8 }), eax).mov(dword({ disp: at + 12 }), 0);
      };
      gate(0x20, "g_irq0");
      gate(0x24, "g_irq4");
      for (const [port, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 0x04], [0x21, 0x01], [0xa0, 0x11], [0xa1, 0x28], [0xa1, 0x02], [0xa1, 0x01], [0x21, 0xee], [0xa1, 0xff],
        [0x43, 0x34], [0x40, PC_IRQ.pitCount & 0xff], [0x40, PC_IRQ.pitCount >> 8]] as const) a.mov(al, v).out(port, al);
      line("pc-irq: PIC at 0x20/0x28, PIT 1 kHz, UART THRE interrupts");
      a.xor(r12d, r12d).xor(r13d, r13d).xor(r14d, r14d).mov(byte(a.symbol("g_pc_done")), 0);
      a.mov(dx, 0x3f9).mov(al, 2).out(dx, al); // IER: ETBEI
      a.sti();
      // The first interrupts while halted (HLT with IF = 1 waits for them), the rest while exiting with VMMCALL TIME.
      const halted = a.here();
      a.hlt();
      a.cmp(r12, PC_IRQ.halted).jb(halted);
      const wait = a.here();
      vmmcallTime(a);
      a.cmp(r12, PC_IRQ.ticks).jb(wait);
      a.cmp(byte(a.symbol("g_pc_done")), 0).je(wait);
      a.cli();
      line("pc-irq: timer interrupts ", { dec: () => a.mov(rax, r12) }, ", uart interrupts ", { dec: () => a.mov(rax, r13) });
      // IRQ 0: count, EOI. IRQ 4: on THRE send the next byte of the message, or switch ETBEI off at its end; EOI.
      const after = a.label();
      a.jmp(after);
      a.bind(a.symbol("g_irq0"));
      a.inc(r12).push(rax).mov(al, 0x20).out(0x20, al).pop(rax).iretq();
      a.bind(a.symbol("g_irq4"));
      {
        const eoi = a.label(), end = a.label();
        for (const r of [rax, rdx, rsi]) a.push(r);
        a.mov(dx, 0x3fa).in(al, dx).and(al, 0x0f).cmp(al, 2).jne(eoi);
        a.inc(r13);
        a.lea(rsi, ptr(literal(a, PC_IRQ.message))).movzx(eax, byte({ base: rsi, index: r14 })).test(al, al).jz(end);
        a.mov(dx, 0x3f8).out(dx, al).inc(r14).jmp(eoi);
        a.bind(end);
        a.mov(dx, 0x3f9).xor(eax, eax).out(dx, al).mov(byte(a.symbol("g_pc_done")), 1);
        a.bind(eoi);
        a.mov(al, 0x20).out(0x20, al);
        for (const r of [rsi, rdx, rax]) a.pop(r);
        a.iretq();
      }
      a.section(".data");
      a.bind(a.symbol("g_pc_done"));
      a.zero(8);
      a.section(".text");
      a.bind(after);
      return;
    }
    case "halt": {
      line("halt: hlt with interrupts off");
      a.cli().hlt();
      line("halt: still running after hlt: containment failed");
      return;
    }
    case "ac-loop": {
      // CPL 3 with CR0.AM and RFLAGS.AC; a misaligned load raises #AC, whose handler (gate 17) returns to the same load.
      const at = SVM_GUEST.idt + 16 * 17;
      a.lea(rax, ptr(a.symbol("g_ac_iret")));
      a.mov(word({ disp: at }), ax).shr(rax, 16).mov(word({ disp: at + 6 }), ax).shr(rax, 16).mov(dword({ disp: at + 8 }), eax);
      a.lgdt(ptr(a.symbol("g_gdtr3_ptr")));
      a.mov(eax, SEL3.tss).ltr(ax);
      for (const t of [SVM_GUEST.pml4, SVM_GUEST.pdpt, SVM_GUEST.pd]) a.or(qword({ disp: t }), 4); // U on the first 2 MiB
      a.mov(rax, cr3).mov(cr3, rax);
      a.mov(rax, cr0).bts(rax, 18).mov(cr0, rax); // AM
      line("ac-loop: CPL 3, AM and AC on, #AC returns to the access");
      const user = a.label();
      a.push(SEL3.udata).push(SVM_GUEST.userStack).push(0x4_0002).push(SEL3.ucode);
      a.lea(rax, ptr(user)).push(rax).iretq();
      a.bind(user);
      a.mov(eax, dword(rsp, 1));
      a.jmp(user);
      a.section(".rdata");
      a.bind(a.symbol("g_gdtr3_ptr"));
      a.dw(0x40 - 1);
      a.dq(SVM_GUEST.gdt3);
      a.section(".text");
      return;
    }
    case "svme-clear": {
      // Its own view: SVME set, read back, then cleared, read back; the real EFER.SVME never moves.
      a.mov(ecx, 0xc000_0080).rdmsr().bts(eax, 12).wrmsr();
      a.mov(ecx, 0xc000_0080).rdmsr().mov(r12d, eax);
      a.btr(eax, 12).wrmsr();
      a.mov(ecx, 0xc000_0080).rdmsr().mov(r13, rax);
      line("EFER with SVME set ", { hex: () => a.mov(rax, r12) }, ", cleared ", { hex: () => a.mov(rax, r13) }, "; still running");
      return;
    }
  }
}

