// Ring-0 page-table code of the ultravisor (generated code): a bump allocator over the ultravisor region the loader
// allocated, the supervisor-only identity map of [0, 4 GiB) shared by every address space (PML4 slot 0), and
// `map_page` that builds a partition's user mappings one 4 KiB page at a time. Layout: docs/specs/image-layout.md.
import { Assembler, type Label, eax, ecx, ptr, qword, r8, r9, r11, r12, r12d, rax, rbx, rcx, rdi, rdx, rsi, dx } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { DEBUG_EXIT_PORT, EXIT } from "./layout.ts";

export const PTE = { P: 1n, W: 2n, U: 4n, PWT: 8n, PCD: 16n, PS: 0x80n } as const;

/**
 * The image's code, page-aligned: the image builder binds TEXT.start before and TEXT.end after every text section
 * (image/ultravisor.ts), and build_kernel_map leaves only [start, end) executable in the supervisor map.
 */
export const TEXT = { start: "k_text_start", end: "k_text_end" } as const;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** Leaves QEMU through isa-debug-exit with `code`; on hardware without the device, halts for good. */
export function emitExit(a: Assembler, code: number): void {
  a.mov(eax, code).mov(dx, DEBUG_EXIT_PORT).out(dx, eax);
  const stop = a.here();
  a.cli().hlt().jmp(stop);
}

export function emitPaging(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_next", "g_end", "g_kpml4", "g_kpdpt"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".text");

  // alloc_page → rax: a zeroed 4 KiB page from the ultravisor region. Clobbers rcx, rdi. Out of pages is fatal.
  a.bind(L("alloc_page"));
  {
    const oom = a.label();
    a.mov(rax, qword(L("g_next")));
    a.lea(rcx, qword({ base: rax, disp: 4096 }));
    a.cmp(rcx, qword(L("g_end"))).ja(oom);
    a.mov(qword(L("g_next")), rcx);
    a.push(rax);
    a.mov(rdi, rax).mov(ecx, 512).xor(eax, eax);
    a.rep().stosq();
    a.pop(rax).ret();
    a.bind(oom);
    a.mov(qword(L("g_direct")), 1);
    monitorLine(a, "ultravisor: panic: ultravisor region exhausted while building page tables or partitions");
    emitExit(a, EXIT.panic);
  }

  // map_page(rdi = PML4, rsi = virtual address, rdx = physical address | leaf flags). Intermediate tables are
  // created user+writable (the leaf decides). Clobbers rax, rcx, rdi, r8, r9, r11.
  a.bind(L("map_page"));
  {
    a.mov(r8, rdi).mov(r11, ADDR_MASK);
    for (const shift of [39, 30, 21]) {
      const have = a.label();
      a.mov(rax, rsi).shr(rax, shift).and(eax, 511);
      a.lea(r9, qword({ base: r8, index: rax, scale: 8 }));
      a.mov(rax, qword(r9)).test(eax, 1).jnz(have);
      for (const r of [rdx, rsi, r8, r9, r11]) a.push(r);
      a.call(L("alloc_page"));
      for (const r of [r11, r9, r8, rsi, rdx]) a.pop(r);
      a.or(rax, Number(PTE.P | PTE.W | PTE.U)).mov(qword(r9), rax);
      a.bind(have);
      a.and(rax, r11).mov(r8, rax);
    }
    a.mov(rax, rsi).shr(rax, 12).and(eax, 511);
    a.mov(qword({ base: r8, index: rax, scale: 8 }), rdx);
    a.ret();
  }

  // build_kernel_map: PDPT + 4 PDs of 2 MiB supervisor pages for [0, 4 GiB), every one no-execute when cpu_setup
  // turned NX on (g_nx), the top GiB also uncached (local APIC, PCI MMIO); then the 2 MiB pages that hold the image's
  // code are split into 4 KiB pages of which only the code pages [TEXT.start, TEXT.end) are executable
  // (docs/specs/partition-state.md, "No-execute"); and the ultravisor's own PML4 with only slot 0.
  a.bind(L("build_kernel_map"));
  {
    a.push(rbx).push(r12);
    a.call(L("alloc_page")).mov(qword(L("g_kpdpt")), rax).mov(rbx, rax);
    a.xor(r12d, r12d); // r12 = GiB index
    const gib = a.here();
    a.call(L("alloc_page"));
    a.mov(rcx, rax).or(rcx, Number(PTE.P | PTE.W)).mov(qword({ base: rbx, index: r12, scale: 8 }), rcx);
    a.mov(rdx, r12).shl(rdx, 30).or(rdx, Number(PTE.P | PTE.W | PTE.PS)).or(rdx, qword(L("g_nx")));
    const cached = a.label();
    a.cmp(r12, 3).jne(cached);
    a.or(rdx, Number(PTE.PCD | PTE.PWT));
    a.bind(cached);
    a.xor(ecx, ecx);
    const entry = a.here();
    a.mov(qword({ base: rax, index: rcx, scale: 8 }), rdx);
    a.add(rdx, 0x200000).inc(ecx).cmp(ecx, 512).jb(entry);
    a.inc(r12).cmp(r12, 4).jb(gib);

    // The code's 2 MiB pages: r12 walks them from the one holding TEXT.start; each gets a page table of 4 KiB pages
    // (rax), executable exactly where [rdx, rdx + 4 KiB) lies inside [TEXT.start, TEXT.end).
    a.lea(r12, ptr(L(TEXT.start))).and(r12, -0x200000);
    const big = a.here();
    const bigDone = a.label();
    a.lea(rcx, ptr(L(TEXT.end))).cmp(r12, rcx).jae(bigDone);
    a.call(L("alloc_page"));
    a.xor(ecx, ecx);
    const small = a.here();
    const exec = a.label();
    const store = a.label();
    a.mov(rdx, rcx).shl(rdx, 12).add(rdx, r12);
    a.lea(rdi, ptr(L(TEXT.start))).cmp(rdx, rdi).jb(store); // below the code: no-execute
    a.lea(rdi, ptr(L(TEXT.end))).cmp(rdx, rdi).jb(exec);
    a.bind(store);
    a.or(rdx, qword(L("g_nx")));
    a.bind(exec);
    a.or(rdx, Number(PTE.P | PTE.W)).mov(qword({ base: rax, index: rcx, scale: 8 }), rdx);
    a.inc(ecx).cmp(ecx, 512).jb(small);
    // The PD entry of this 2 MiB page now points at the table: PDPT[r12 >> 30] → PD, index (r12 >> 21) & 511.
    a.mov(rdx, r12).shr(rdx, 30).mov(rdx, qword({ base: rbx, index: rdx, scale: 8 })).and(rdx, -0x1000);
    a.mov(rcx, r12).shr(rcx, 21).and(ecx, 511);
    a.or(rax, Number(PTE.P | PTE.W)).mov(qword({ base: rdx, index: rcx, scale: 8 }), rax);
    a.add(r12, 0x200000).jmp(big);
    a.bind(bigDone);

    a.call(L("alloc_page")).mov(qword(L("g_kpml4")), rax);
    a.mov(rcx, rbx).or(rcx, Number(PTE.P | PTE.W)).mov(qword(rax), rcx);
    a.pop(r12).pop(rbx).ret();
  }
}
