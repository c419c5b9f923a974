// Ring-0 descriptor tables of the ultravisor (generated code): the GDT (ring 0 and ring 3 code/data, the TSS), the
// TSS with IST 1 and the I/O permission bitmap, and the IDT. `uv_install_descriptors` loads them after
// ExitBootServices; `set_gate` fills one IDT entry. Layout: docs/specs/image-layout.md ("Segments").
import { Assembler, type Label, ax, ds, eax, ecx, es, fs, gs, ptr, qword, r8, r8d, rax, rcx, rdi, rdx, rsi, ss, word, al } from "../toolchain/x64/index.ts";
import { COM1, SEL } from "./layout.ts";

export const TSS = { rsp0: 4, ist1: 36, iomapBase: 102, iomap: 104, bytes: 104 + 8192 + 1 } as const;
/** Byte of the I/O bitmap covering COM1's eight ports (0x3F8–0x3FF). */
export const TSS_COM1_BYTE = TSS.iomap + COM1 / 8;

const GDT_ENTRIES = [0n, 0x00af9a000000ffffn, 0x00cf92000000ffffn, 0x00cff2000000ffffn, 0x00affa000000ffffn];

export function emitDescriptors(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".data");
  a.align(16);
  a.bind(L("g_gdt"));
  a.dq(...GDT_ENTRIES, 0n, 0n); // TSS descriptor (16 bytes) written at run time: the image is relocated
  a.align(16);
  a.bind(L("g_gdtr"));
  a.zero(16);
  a.bind(L("g_idtr"));
  a.zero(16);
  a.section(".bss");
  a.align(4096);
  a.bind(L("g_idt"));
  a.zero(4096);
  a.align(16);
  a.bind(L("g_tss"));
  a.zero(TSS.bytes + 7);
  a.section(".text");

  // set_gate(edi = vector, rsi = handler, edx = type/attributes byte): IST 1, selector 0x08.
  a.bind(L("set_gate"));
  a.lea(r8, ptr(L("g_idt")));
  a.shl(rdi, 4).add(r8, rdi);
  a.mov(rax, rsi).and(eax, 0xffff);
  a.mov(rcx, (1n << 32n) | (BigInt(SEL.kcode) << 16n)).or(rax, rcx);
  a.mov(rcx, rdx).shl(rcx, 40).or(rax, rcx);
  a.mov(rcx, rsi).shr(rcx, 16).and(ecx, 0xffff).shl(rcx, 48).or(rax, rcx);
  a.mov(qword(r8), rax);
  a.mov(rcx, rsi).shr(rcx, 32).mov(qword(r8, 8), rcx);
  a.ret();

  // uv_install_descriptors: TSS (bitmap all denied), GDT with the TSS descriptor, segment reload, ltr, lidt.
  a.bind(L("uv_install_descriptors"));
  {
    a.lea(rdi, ptr(L("g_tss")));
    a.mov(word(rdi, TSS.iomapBase), TSS.iomap);
    a.add(rdi, TSS.iomap).mov(ecx, 8193).mov(al, 0xff);
    a.rep().stosb();
    a.lea(rax, ptr(L("g_tss")));
    a.mov(rcx, rax).and(ecx, 0xffffff).shl(rcx, 16).or(rcx, TSS.bytes - 1);
    a.mov(r8, 0x89n << 40n).or(rcx, r8);
    a.mov(r8, rax).shr(r8, 24).and(r8d, 0xff).shl(r8, 56).or(rcx, r8);
    a.lea(rdx, ptr(L("g_gdt")));
    a.mov(qword(rdx, SEL.tss), rcx);
    a.shr(rax, 32).mov(qword(rdx, SEL.tss + 8), rax);
    a.lea(rax, ptr(L("g_gdtr")));
    a.mov(word(rax), GDT_ENTRIES.length * 8 + 16 - 1);
    a.mov(qword(rax, 2), rdx);
    a.lgdt(ptr(rax));
    a.mov(ax, SEL.kdata);
    for (const s of [ds, es, ss, fs, gs]) a.mov(s, ax);
    const reload = a.label();
    a.pop(rdx); // our return address: the far return below reloads CS, then we jump back
    a.push(SEL.kcode);
    a.lea(rax, ptr(reload)).push(rax);
    a.lretq();
    a.bind(reload);
    a.push(rdx);
    a.mov(ax, SEL.tss).ltr(ax);
    a.lea(rax, ptr(L("g_idtr")));
    a.mov(word(rax), 4095);
    a.lea(rdx, ptr(L("g_idt")));
    a.mov(qword(rax, 2), rdx);
    a.lidt(ptr(rax));
    a.ret();
  }
}
