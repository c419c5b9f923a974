// The Intel IOMMU (VT-d) in the ultravisor (generated ring-0 code, docs/specs/storage-channel.md §9, ADR 0021): only
// in images whose host asks for it (`host: { iommu: true }`). iommu_init (the lead, after pci_assign) checks the unit
// at QEMU's fixed q35 base, gives a context entry to each device the I/O partition drives (bus mastering on) with its
// own empty second-level tables, and turns translation on; iommu_map (from pci_dma_addr, monitor-gen/pci.ts) maps a
// page DMA_ADDR validated into the tables of the caller's devices, and iommu_done (the DMA_DONE hypercall,
// monitor-gen/entry.ts) unmaps the client pages among them at the end of a request; iommu_poll (processor 0's timer,
// monitor-gen/entry.ts) logs and clears recorded faults. This file owns the register and table layouts it uses.
import { Assembler, type Label, byte, cl, dword, eax, ecx, edi, edx, esi, ptr, qword, r10, r10d, r11d, r12, r12d, r13, r13d, r14, r15, r15d, rax, rbp, rbx, rcx, rdi, rdx, rsi, r8, r8d, r9, word } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { PCI_LIST, busMasterOff, pciEntryAt } from "./pci.ts";

/** Bytes the image builder embeds when the host asks for the IOMMU; qemu/accel.ts keeps the same text (uvt run adds
 * the intel-iommu device and iommu_platform=on; test/svm-marker.test.ts holds the two equal). */
export const IOMMU_IMAGE_MARKER = "ultravisor-image: DMA confined by the Intel IOMMU (VT-d)";

/** QEMU q35's remapping unit (Q35_HOST_BRIDGE_IOMMU_ADDR) and its registers (VT-d 3.x §11.4). */
export const VTD = {
  base: 0xfed9_0000,
  ver: 0x00, cap: 0x08, ecap: 0x10, gcmd: 0x18, gsts: 0x1c, rtaddr: 0x20, ccmd: 0x28, fsts: 0x34, fectl: 0x38,
  /** GCMD/GSTS bits: translation enable, set root table pointer. */
  te: 1 << 31, srtp: 1 << 30,
  /** GCMD bits that are one-shot commands, not states: cleared from GSTS before a GCMD write (VT-d §11.4.4.1). */
  gstsKeep: 0x96ff_ffff,
  /** CCMD: invalidate context cache, global. IOTLB register: invalidate, global. */
  ccmdGlobal: (1n << 63n) | (1n << 61n),
  iotlbGlobal: (1n << 63n) | (1n << 60n),
  /** FSTS bits: primary fault overflow, primary pending fault. FECTL: interrupt mask. */
  pfo: 1, ppf: 2, fectlMask: 1 << 31,
  /** Fault recording register (16 bytes): the high dword's F (fault) and T (1: a read request) bits. */
  frcdF: 0x8000_0000, frcdT: 0x4000_0000,
} as const;

/** Client pages mapped by DMA_ADDR and not yet unmapped by DMA_DONE, over all devices (page | device index each). */
export const IOMMU_REQ_MAX = 1024;
/** Pages the second-level tables may use (domain roots and every lower table), from the ultravisor's memory. */
export const IOMMU_POOL_PAGES = 64;
/** A second-level entry: read and write (VT-d §9.8); non-leaf entries carry both too. */
const SL_RW = 3;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
/** Spins for a command the unit completes (QEMU completes them at once; a real unit within microseconds). */
const SPIN_LIMIT = 1_000_000;

export function emitIommu(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(4096);
  a.bind(L("g_iommu_root"));
  a.zero(4096);
  a.bind(L("g_iommu_ctx"));
  a.zero(4096);
  a.bind(L("g_iommu_pool"));
  a.zero(IOMMU_POOL_PAGES * 4096);
  a.align(8);
  for (const n of ["g_iommu_base", "g_iommu_dmar", "g_iommu_drhd", "g_iommu_on", "g_iommu_levels", "g_iommu_fro", "g_iommu_nfr", "g_iommu_iotlb", "g_iommu_used", "g_iommu_lock", "g_iommu_devices"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.bind(L("g_iommu_dom"));
  a.zero(8 * PCI_LIST.maxEntries);
  a.bind(L("g_iommu_req_n"));
  a.zero(8);
  a.bind(L("g_iommu_req"));
  a.zero(8 * IOMMU_REQ_MAX);
  a.section(".text");

  // iommu_alloc → rax: a zeroed pool page (pool pages are never freed, so still zero), or 0 when the pool is empty.
  a.bind(L("iommu_alloc"));
  {
    const empty = a.label();
    a.mov(rax, qword(L("g_iommu_used"))).cmp(rax, IOMMU_POOL_PAGES).jae(empty);
    a.inc(qword(L("g_iommu_used")));
    a.shl(rax, 12).lea(rcx, ptr(L("g_iommu_pool"))).add(rax, rcx).ret();
    a.bind(empty);
    a.xor(eax, eax).ret();
  }

  // iommu_wait(rdi = offset of a 32-bit register, esi = bits, edx = 1: until all set, 0: until all clear) → rax 0,
  // or −1 after SPIN_LIMIT reads. Clobbers rcx.
  a.bind(L("iommu_wait"));
  {
    const ok = a.label();
    const clear = a.label();
    const next = a.label();
    a.mov(ecx, SPIN_LIMIT);
    const again = a.here();
    a.mov(rax, qword(L("g_iommu_base"))).mov(eax, dword({ base: rax, index: rdi }));
    a.test(edx, edx).jz(clear);
    a.and(eax, esi).cmp(eax, esi).je(ok);
    a.jmp(next);
    a.bind(clear);
    a.test(eax, esi).jz(ok);
    a.bind(next);
    a.pause().dec(ecx).jnz(again);
    a.mov(rax, -1).ret();
    a.bind(ok);
    a.xor(eax, eax).ret();
  }

  emitFind(a, L);
  emitCovers(a, L);
  emitInit(a, L);
  emitMap(a, L);
  emitPoll(a, L);
}

/** Bus mastering off for every device the ultravisor turned it on for (the unit failed its check): no DMA at all. */
function masterOff(a: Assembler, L: (n: string) => Label): void {
  a.lea(rbx, ptr(L("g_pci_list"))).xor(r12d, r12d);
  const loop = a.here();
  const done = a.label();
  const next = a.label();
  a.cmp(r12d, dword(rbx, PCI_LIST.count)).jae(done);
  pciEntryAt(a, r13, rbx, r12);
  a.cmp(dword(r13, PCI_LIST.dma), 0).je(next);
  a.mov(dword(r13, PCI_LIST.dma), 0);
  busMasterOff(a, L, r13);
  a.bind(next);
  a.inc(r12d).jmp(loop);
  a.bind(done);
}

/** The EFI system table's NumberOfTableEntries and ConfigurationTable (UEFI 2.x §4.3, x64), each entry a GUID and a
 * pointer; the ACPI 2.0 table's GUID 8868E871-E4F1-11D3-BC22-0080C73C8881 as two little-endian qwords. */
export const EFI_ST = { entries: 104, table: 112, entrySize: 24 } as const;
export const ACPI20_GUID = [0x11d3_e4f1_8868_e871n, 0x8188_3cc7_8000_22bcn] as const;
/** ACPI: "RSD PTR " (RSDP, revision 2 has the XSDT at 24), "XSDT", "DMAR" (VT-d §8: structures from 48, DRHD type 0
 * with flags at 4 (bit 0 INCLUDE_PCI_ALL), segment at 6, register base at 8). */
export const RSDP_SIG = 0x2052_5450_2044_5352n;
export const XSDT_SIG = 0x5444_5358;
export const DMAR_SIG = 0x5241_4d44;

function emitFind(a: Assembler, L: (n: string) => Label): void {
  // iommu_find → rax: the register base of the DMAR table's first remapping unit of segment 0 (DRHD), found from the
  // EFI system table the loader kept (g_systab) through the ACPI 2.0 RSDP and the XSDT; 0 when any step is missing or
  // malformed (tables above 4 GiB, lengths out of [header, 64 KiB], a structure shorter than 16 bytes). The table's
  // address goes to g_iommu_dmar, the DRHD's to g_iommu_drhd (QEMU 7.2 lists every bus-0 device in its scope instead
  // of setting INCLUDE_PCI_ALL). Clobbers rax, rcx, rdx, rsi, rdi, r8–r10.
  a.bind(L("iommu_find"));
  {
    const none = a.label();
    const below4g = (r: typeof rsi): void => {
      a.mov(rax, r).shr(rax, 32).jnz(none);
    };
    a.mov(rsi, qword(L("g_systab"))).test(rsi, rsi).jz(none);
    below4g(rsi);
    a.mov(rcx, qword(rsi, EFI_ST.entries)).mov(rdi, qword(rsi, EFI_ST.table));
    a.test(rdi, rdi).jz(none);
    below4g(rdi);
    a.cmp(rcx, 1024).ja(none);
    a.mov(r8, ACPI20_GUID[0]).mov(r9, ACPI20_GUID[1]);
    const guid = a.here();
    const nextGuid = a.label();
    const rsdp = a.label();
    a.test(rcx, rcx).jz(none);
    a.cmp(qword(rdi, 0), r8).jne(nextGuid);
    a.cmp(qword(rdi, 8), r9).jne(nextGuid);
    a.mov(rsi, qword(rdi, 16)).jmp(rsdp);
    a.bind(nextGuid);
    a.add(rdi, EFI_ST.entrySize).dec(rcx).jmp(guid);
    a.bind(rsdp);
    a.test(rsi, rsi).jz(none);
    below4g(rsi);
    a.mov(rax, RSDP_SIG).cmp(qword(rsi, 0), rax).jne(none);
    a.cmp(byte(rsi, 15), 2).jb(none);
    a.mov(rsi, qword(rsi, 24)).test(rsi, rsi).jz(none);
    below4g(rsi);
    a.cmp(dword(rsi, 0), XSDT_SIG).jne(none);
    a.mov(ecx, dword(rsi, 4)).cmp(ecx, 36).jb(none);
    a.cmp(ecx, 0x10000).ja(none);
    a.lea(r10, qword({ base: rsi, index: rcx })).lea(rdi, qword(rsi, 36));
    const xsdt = a.here();
    const nextTable = a.label();
    const dmar = a.label();
    a.lea(rax, qword(rdi, 8)).cmp(rax, r10).ja(none);
    a.mov(rdx, qword(rdi, 0));
    a.mov(rax, rdx).shr(rax, 32).jnz(nextTable);
    a.test(rdx, rdx).jz(nextTable);
    a.cmp(dword(rdx, 0), DMAR_SIG).je(dmar);
    a.bind(nextTable);
    a.add(rdi, 8).jmp(xsdt);
    a.bind(dmar);
    a.mov(qword(L("g_iommu_dmar")), rdx);
    a.mov(ecx, dword(rdx, 4)).cmp(ecx, 48).jb(none);
    a.cmp(ecx, 0x10000).ja(none);
    a.lea(r10, qword({ base: rdx, index: rcx })).lea(rdi, qword(rdx, 48));
    const structure = a.here();
    const nextStructure = a.label();
    a.lea(rax, qword(rdi, 16)).cmp(rax, r10).ja(none);
    a.movzx(ecx, word(rdi, 2)).cmp(ecx, 16).jb(none);
    a.cmp(word(rdi, 0), 0).jne(nextStructure); // DRHD
    a.cmp(word(rdi, 6), 0).jne(nextStructure); // segment 0 (the ultravisor's configuration mechanism reaches no other)
    a.mov(qword(L("g_iommu_drhd")), rdi); // its device scope decides which devices it translates (iommu_covers)
    a.mov(rax, qword(rdi, 8)).ret();
    a.bind(nextStructure);
    a.add(rdi, rcx).jmp(structure);
    a.bind(none);
    a.xor(eax, eax).ret();
  }
}

function emitCovers(a: Assembler, L: (n: string) => Label): void {
  // iommu_covers(edi = a bus-0 bdf) → eax: 1 when the DRHD found (g_iommu_drhd) translates that function — it has
  // INCLUDE_PCI_ALL, or its device scope lists it as a PCI endpoint (type 1) on bus 0 with a one-step path (VT-d
  // §8.3.1) — or when no DRHD was found (QEMU's fixed base: every device of its q35 bus is behind it); else 0.
  // Clobbers rax, rcx, rdx, rsi, r8.
  a.bind(L("iommu_covers"));
  {
    const yes = a.label();
    const no = a.label();
    a.mov(rsi, qword(L("g_iommu_drhd"))).test(rsi, rsi).jz(yes);
    a.test(byte(rsi, 4), 1).jnz(yes);
    a.movzx(edx, word(rsi, 2)).add(rdx, rsi); // the structure's end (its length was checked ≥ 16 by iommu_find)
    a.add(rsi, 16);
    const scope = a.here();
    const nextScope = a.label();
    a.lea(rax, qword(rsi, 6)).cmp(rax, rdx).ja(no);
    a.movzx(ecx, byte(rsi, 1)).cmp(ecx, 6).jb(no); // a scope of under 6 bytes: malformed
    a.lea(rax, qword({ base: rsi, index: rcx })).cmp(rax, rdx).ja(no);
    a.cmp(byte(rsi, 0), 1).jne(nextScope); // PCI endpoint
    a.cmp(ecx, 8).jne(nextScope); // one path entry
    a.cmp(byte(rsi, 5), 0).jne(nextScope); // start bus 0
    a.movzx(eax, byte(rsi, 6)).shl(eax, 3).movzx(r8d, byte(rsi, 7)).or(eax, r8d); // device << 3 | function
    a.cmp(eax, edi).je(yes);
    a.bind(nextScope);
    a.add(rsi, rcx).jmp(scope);
    a.bind(yes);
    a.mov(eax, 1).ret();
    a.bind(no);
    a.xor(eax, eax).ret();
  }
}

function emitInit(a: Assembler, L: (n: string) => Label): void {
  // iommu_init: the unit the DMAR table names (iommu_find), or else QEMU's q35 base VTD.base, checked (version 1.x, caching mode off, 3- or 4-level tables, fault recording and
  // IOTLB registers inside its page); a context entry for each device with bus mastering on (PCI_LIST.dma), domain id
  // its list index + 1, its own empty tables; then root table, SRTP, global context-cache and IOTLB invalidations,
  // fault events masked, TE. A failed check turns bus mastering off instead.
  a.bind(L("iommu_init"));
  for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
  const fail = a.label();
  const out = a.label();
  {
    const found = a.label();
    const based = a.label();
    a.call(L("iommu_find")).test(rax, rax).jnz(found);
    monitorLine(a, `ultravisor: iommu: no DMAR table with a remapping unit of segment 0; trying QEMU's q35 base 0x${VTD.base.toString(16)}, with every bus-0 device in its scope`);
    a.mov(eax, VTD.base).jmp(based);
    a.bind(found);
    a.mov(r15, rax);
    monitorLine(a, "ultravisor: iommu: DMAR table at ", { hex: (x) => x.mov(rdi, qword(L("g_iommu_dmar"))) }, ": remapping unit of segment 0 at ", { hex: (x) => x.mov(rdi, r15) });
    a.mov(rax, r15);
    a.bind(based);
    a.mov(qword(L("g_iommu_base")), rax).mov(rbp, rax);
    // Below 4 GiB (the ultravisor's identity map, uncached at the top GiB) and page-aligned, or not used at all.
    a.test(eax, 0xfff).jnz(fail);
    a.shr(rax, 32).jnz(fail);
  }
  a.mov(eax, dword(rbp, VTD.ver)).and(eax, 0xf0).cmp(eax, 0x10).jne(fail);
  a.mov(r14, qword(rbp, VTD.cap));
  a.test(r14, 0x80).jnz(fail); // caching mode: not-present entries could be cached (mapping would need invalidations)
  {
    const four = a.label();
    const have = a.label();
    a.mov(rax, r14).shr(rax, 8).and(eax, 0x1f);
    a.test(eax, 2).jz(four);
    a.mov(qword(L("g_iommu_levels")), 3).jmp(have);
    a.bind(four);
    a.test(eax, 4).jz(fail);
    a.mov(qword(L("g_iommu_levels")), 4);
    a.bind(have);
  }
  // Fault recording registers: FRO (bits 33:24) · 16, NFR (bits 47:40) + 1 of them, all inside the unit's page.
  a.mov(rax, r14).shr(rax, 24).and(eax, 0x3ff).shl(eax, 4).mov(qword(L("g_iommu_fro")), rax);
  a.mov(rcx, r14).shr(rcx, 40).and(ecx, 0xff).inc(ecx).mov(qword(L("g_iommu_nfr")), rcx);
  a.shl(ecx, 4).add(rax, rcx).cmp(rax, 4096).ja(fail);
  // IOTLB registers: IRO (ECAP bits 17:8) · 16; the invalidate register is its second qword.
  a.mov(rax, qword(rbp, VTD.ecap)).shr(rax, 8).and(eax, 0x3ff).shl(eax, 4).add(eax, 8).cmp(eax, 4096 - 8).ja(fail);
  a.mov(qword(L("g_iommu_iotlb")), rax);
  // Root entry of bus 0 → the context table (the list holds bus 0 only).
  a.lea(rax, ptr(L("g_iommu_ctx"))).or(rax, 1).mov(qword(L("g_iommu_root")), rax);
  a.lea(rbx, ptr(L("g_pci_list"))).xor(r12d, r12d);
  {
    const loop = a.here();
    const done = a.label();
    const next = a.label();
    a.cmp(r12d, dword(rbx, PCI_LIST.count)).jae(done);
    pciEntryAt(a, r13, rbx, r12);
    a.cmp(dword(r13, PCI_LIST.dma), 0).je(next);
    {
      // A device outside the unit's scope would not be translated: its bus mastering goes off instead.
      const covered = a.label();
      a.movzx(edi, word(r13, PCI_LIST.bdf)).call(L("iommu_covers")).test(eax, eax).jnz(covered);
      monitorLine(a, "ultravisor: iommu: pci ", { str: (x) => x.movzx(edi, word(r13, PCI_LIST.bdf)).call(L("pci_text")) }, " is not in the remapping unit's device scope: bus mastering turned off");
      a.mov(dword(r13, PCI_LIST.dma), 0);
      busMasterOff(a, L, r13);
      a.jmp(next);
      a.bind(covered);
    }
    a.call(L("iommu_alloc")).test(rax, rax).jz(fail);
    a.lea(rcx, ptr(L("g_iommu_dom"))).mov(qword({ base: rcx, index: r12, scale: 8 }), rax);
    a.movzx(ecx, word(r13, PCI_LIST.bdf)).and(ecx, 0xff).shl(ecx, 4).lea(rdx, ptr(L("g_iommu_ctx"))).add(rdx, rcx);
    a.or(rax, 1).mov(qword(rdx, 0), rax); // present, FPD 0, translation type 0, second-level table pointer
    a.mov(rax, qword(L("g_iommu_levels"))).sub(eax, 2); // AW: 1 = 39 bits (3 levels), 2 = 48 bits (4 levels)
    a.lea(rcx, qword(r12, 1)).shl(rcx, 8).or(rax, rcx).mov(qword(rdx, 8), rax); // domain id = index + 1
    a.inc(qword(L("g_iommu_devices")));
    a.bind(next);
    a.inc(r12d).jmp(loop);
    a.bind(done);
  }
  a.lea(rax, ptr(L("g_iommu_root"))).mov(qword(rbp, VTD.rtaddr), rax);
  a.mov(dword(rbp, VTD.gcmd), VTD.srtp);
  a.mov(edi, VTD.gsts).mov(esi, VTD.srtp).mov(edx, 1).call(L("iommu_wait")).test(rax, rax).jnz(fail);
  a.mov(rax, VTD.ccmdGlobal).mov(qword(rbp, VTD.ccmd), rax);
  a.mov(edi, VTD.ccmd + 4).mov(esi, 0x8000_0000).xor(edx, edx).call(L("iommu_wait")).test(rax, rax).jnz(fail);
  a.mov(rdi, qword(L("g_iommu_iotlb"))).mov(rax, VTD.iotlbGlobal).mov(qword({ base: rbp, index: rdi }), rax);
  a.add(edi, 4).mov(esi, 0x8000_0000).xor(edx, edx).call(L("iommu_wait")).test(rax, rax).jnz(fail);
  a.mov(dword(rbp, VTD.fectl), VTD.fectlMask);
  a.mov(eax, dword(rbp, VTD.gsts)).and(eax, VTD.gstsKeep).or(eax, VTD.te).mov(dword(rbp, VTD.gcmd), eax);
  a.mov(edi, VTD.gsts).mov(esi, VTD.te).mov(edx, 1).call(L("iommu_wait")).test(rax, rax).jnz(fail);
  a.mov(qword(L("g_iommu_on")), 1);
  monitorLine(a, "ultravisor: iommu: VT-d version ", { dec: (x) => x.mov(edi, dword(rbp, VTD.ver)).shr(edi, 4).and(edi, 15) }, ".",
    { dec: (x) => x.mov(edi, dword(rbp, VTD.ver)).and(edi, 15) }, " at ", { hex: (x) => x.mov(rdi, rbp) }, ", ", { dec: (x) => x.mov(rdi, qword(L("g_iommu_levels"))) },
    "-level tables, translation on; ", { dec: (x) => x.mov(rdi, qword(L("g_iommu_devices"))) }, " device(s) with a context entry");
  a.jmp(out);
  a.bind(fail);
  {
    // The registers are read for the line only when the base passed its own check (else they are not shown).
    const unusable = a.label();
    const shown = a.label();
    a.mov(rax, qword(L("g_iommu_base"))).test(eax, 0xfff).jnz(unusable);
    a.shr(rax, 32).jnz(unusable);
    monitorLine(a, "ultravisor: iommu: no VT-d unit at ", { hex: (x) => x.mov(rdi, qword(L("g_iommu_base"))) }, " (version ", { hex: (x) => x.mov(rax, qword(L("g_iommu_base"))).mov(edi, dword(rax, VTD.ver)) },
      ", capability ", { hex: (x) => x.mov(rax, qword(L("g_iommu_base"))).mov(rdi, qword(rax, VTD.cap)) }, "): bus mastering turned off");
    a.jmp(shown);
    a.bind(unusable);
    monitorLine(a, "ultravisor: iommu: remapping unit at ", { hex: (x) => x.mov(rdi, qword(L("g_iommu_base"))) }, " not usable (not a page below 4 GiB): bus mastering turned off");
    a.bind(shown);
  }
  masterOff(a, L);
  a.bind(out);
  for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
  a.ret();
}

function emitMap(a: Assembler, L: (n: string) => Label): void {
  const lock = (): void => {
    const spin = a.here();
    const got = a.label();
    a.mov(eax, 1).xchg(rax, qword(L("g_iommu_lock")));
    a.test(rax, rax).jz(got);
    a.pause().jmp(spin);
    a.bind(got);
  };
  const unlock = (): void => {
    a.mov(qword(L("g_iommu_lock")), 0);
  };

  // iommu_leaf(r9 = a domain's top table, r14 = a page, r10 = 1: make missing tables) → rax: the address of the
  // page's last-level entry, or 0 (a table missing and not made, or the pool empty). Clobbers rax, rcx, rdx, rdi, r9.
  a.bind(L("iommu_leaf"));
  {
    const none = a.label();
    const leaf = a.label();
    // Walk from the top level: shift = 12 + 9·(levels − 1).
    a.mov(rax, qword(L("g_iommu_levels"))).dec(eax).lea(ecx, dword({ base: rax, index: rax, scale: 8 })).lea(edi, dword(rcx, 12));
    const level = a.here();
    a.cmp(edi, 12).je(leaf);
    a.mov(rdx, r14).mov(ecx, edi).shr(rdx, cl).and(edx, 511);
    const present = a.label();
    a.mov(rax, qword({ base: r9, index: rdx, scale: 8 })).test(eax, 1).jnz(present);
    a.test(r10, r10).jz(none);
    a.push(rdx).push(rdi).call(L("iommu_alloc")).pop(rdi).pop(rdx);
    a.test(rax, rax).jz(none);
    a.or(rax, SL_RW).mov(qword({ base: r9, index: rdx, scale: 8 }), rax);
    a.bind(present);
    a.mov(rcx, ADDR_MASK).and(rax, rcx).mov(r9, rax);
    a.sub(edi, 9).jmp(level);
    a.bind(leaf);
    a.mov(rdx, r14).shr(rdx, 12).and(edx, 511);
    a.lea(rax, qword({ base: r9, index: rdx, scale: 8 })).ret();
    a.bind(none);
    a.xor(eax, eax).ret();
  }

  // iommu_map(rdi = the caller's partition number (state index + 1), rsi = a physical address, edx = 1: record the
  // page for DMA_DONE) → rax: 0, or −1 (the pool or the record list full). Maps rsi's page read-write at IOVA = its
  // physical address in the second-level tables of every device of the list that partition owns with bus mastering
  // on. Adding an entry where none was needs no invalidation (caching mode off: the unit caches no not-present
  // entry). A recorded page newly mapped goes on g_iommu_req as page | device index. Under g_iommu_lock. Clobbers
  // rax, rcx, rdx, rdi, rsi, r8–r11.
  a.bind(L("iommu_map"));
  {
    a.push(rbx).push(r12).push(r13).push(r14);
    lock();
    a.mov(r14, rsi).and(r14, -4096);
    a.mov(r8, rdi).mov(r11d, edx);
    a.lea(rbx, ptr(L("g_pci_list"))).xor(r12d, r12d);
    const loop = a.here();
    const done = a.label();
    const next = a.label();
    const full = a.label();
    a.cmp(r12d, dword(rbx, PCI_LIST.count)).jae(done);
    pciEntryAt(a, r13, rbx, r12);
    a.cmp(dword(r13, PCI_LIST.owner), r8d).jne(next);
    a.cmp(dword(r13, PCI_LIST.dma), 0).je(next);
    a.lea(rcx, ptr(L("g_iommu_dom"))).mov(r9, qword({ base: rcx, index: r12, scale: 8 }));
    a.test(r9, r9).jz(next);
    a.mov(r10d, 1).call(L("iommu_leaf"));
    a.test(rax, rax).jz(full);
    const noRecord = a.label();
    a.test(qword(rax), 1).jnz(noRecord); // mapped already (and recorded then, if it was to be)
    a.test(r11d, r11d).jz(noRecord);
    a.mov(rcx, qword(L("g_iommu_req_n"))).cmp(rcx, IOMMU_REQ_MAX).jae(full);
    a.mov(rdx, r14).or(rdx, r12).lea(rdi, ptr(L("g_iommu_req"))).mov(qword({ base: rdi, index: rcx, scale: 8 }), rdx);
    a.inc(qword(L("g_iommu_req_n")));
    a.bind(noRecord);
    a.mov(rdx, r14).or(rdx, SL_RW).mov(qword(rax), rdx);
    a.bind(next);
    a.inc(r12d).jmp(loop);
    a.bind(full);
    unlock();
    a.mov(rax, -1).jmp(L("iommu_map_out"));
    a.bind(done);
    unlock();
    a.xor(eax, eax);
    a.bind(L("iommu_map_out"));
    a.pop(r14).pop(r13).pop(r12).pop(rbx);
    a.ret();
  }

  // iommu_done(rdi = the caller's partition number) → rax: pages unmapped. Every recorded page of a device the caller
  // owns is unmapped (its last-level entry cleared) and taken off the list; then, when any was, a global IOTLB
  // invalidation, waited for, so no translation of them survives (VT-d §6.5). Under g_iommu_lock. Clobbers rax,
  // rcx, rdx, rdi, rsi, r8–r11.
  a.bind(L("iommu_done"));
  {
    a.push(rbx).push(r12).push(r13).push(r14).push(r15);
    lock();
    a.mov(r8, rdi).xor(r15d, r15d).xor(r12d, r12d);
    a.lea(rbx, ptr(L("g_iommu_req")));
    const loop = a.here();
    const done = a.label();
    const keep = a.label();
    a.cmp(r12, qword(L("g_iommu_req_n"))).jae(done);
    a.mov(rax, qword({ base: rbx, index: r12, scale: 8 })).mov(r13d, eax).and(r13d, 0xfff); // the device's index
    a.lea(rcx, ptr(L("g_pci_list"))).mov(rdx, r13);
    pciEntryAt(a, rsi, rcx, rdx);
    a.cmp(dword(rsi, PCI_LIST.owner), r8d).jne(keep);
    a.mov(r14, rax).and(r14, -4096);
    a.lea(rcx, ptr(L("g_iommu_dom"))).mov(r9, qword({ base: rcx, index: r13, scale: 8 }));
    a.xor(r10d, r10d).call(L("iommu_leaf"));
    const gone = a.label();
    a.test(rax, rax).jz(gone);
    a.mov(qword(rax), 0);
    a.inc(r15);
    a.bind(gone);
    // Off the list: the last entry takes its place (and is looked at next).
    a.dec(qword(L("g_iommu_req_n")));
    a.mov(rcx, qword(L("g_iommu_req_n"))).mov(rax, qword({ base: rbx, index: rcx, scale: 8 })).mov(qword({ base: rbx, index: r12, scale: 8 }), rax);
    a.jmp(loop);
    a.bind(keep);
    a.inc(r12).jmp(loop);
    a.bind(done);
    const quiet = a.label();
    a.test(r15, r15).jz(quiet);
    a.mov(rdi, qword(L("g_iommu_iotlb"))).mov(rax, VTD.iotlbGlobal).mov(rcx, qword(L("g_iommu_base"))).mov(qword({ base: rcx, index: rdi }), rax);
    a.add(edi, 4).mov(esi, 0x8000_0000).xor(edx, edx).call(L("iommu_wait"));
    a.bind(quiet);
    unlock();
    a.mov(rax, r15);
    a.pop(r15).pop(r14).pop(r13).pop(r12).pop(rbx);
    a.ret();
  }
}

function emitPoll(a: Assembler, L: (n: string) => Label): void {
  // iommu_poll: processor 0, every quantum. Each fault recording register with F set is logged (source id, page
  // address, reason, read or write) and cleared (F is write-1-to-clear), then an overflow bit. Keeps every register.
  // Every access to the unit's registers is 4 or 8 bytes (narrower ones are not valid: QEMU reads them as 0).
  a.bind(L("iommu_poll"));
  {
    const out = a.label();
    a.cmp(qword(L("g_iommu_on")), 0).je(out);
    for (const r of [rax, rcx, rdx, rsi, rdi, r8, r9, rbx, r12]) a.push(r);
    a.mov(rbx, qword(L("g_iommu_base")));
    const noFault = a.label();
    a.test(dword(rbx, VTD.fsts), VTD.ppf | VTD.pfo).jz(noFault);
    a.xor(r12d, r12d);
    const rec = a.here();
    const recDone = a.label();
    const nextRec = a.label();
    a.cmp(r12, qword(L("g_iommu_nfr"))).jae(recDone);
    // rsi = the record: base + FRO + 16·k.
    const recAt = (x: Assembler): void => {
      x.mov(rsi, r12).shl(rsi, 4).add(rsi, qword(L("g_iommu_fro"))).add(rsi, rbx);
    };
    recAt(a);
    a.test(dword(rsi, 12), VTD.frcdF).jz(nextRec);
    const write = a.label();
    const logged = a.label();
    a.test(dword(rsi, 12), VTD.frcdT).jz(write);
    monitorLine(a, "ultravisor: iommu: fault device ", { str: (x) => { recAt(x); x.mov(edi, dword(rsi, 8)).and(edi, 0xffff).call(L("pci_text")); } },
      " address ", { hex: (x) => { recAt(x); x.mov(rdi, qword(rsi, 0)).and(rdi, -4096); } }, " reason ", { hex: (x) => { recAt(x); x.mov(edi, dword(rsi, 12)).and(edi, 0xff); } }, " (read)");
    a.jmp(logged);
    a.bind(write);
    monitorLine(a, "ultravisor: iommu: fault device ", { str: (x) => { recAt(x); x.mov(edi, dword(rsi, 8)).and(edi, 0xffff).call(L("pci_text")); } },
      " address ", { hex: (x) => { recAt(x); x.mov(rdi, qword(rsi, 0)).and(rdi, -4096); } }, " reason ", { hex: (x) => { recAt(x); x.mov(edi, dword(rsi, 12)).and(edi, 0xff); } }, " (write)");
    a.bind(logged);
    recAt(a);
    a.mov(dword(rsi, 12), VTD.frcdF);
    a.bind(nextRec);
    a.inc(r12).jmp(rec);
    a.bind(recDone);
    a.mov(dword(rbx, VTD.fsts), VTD.pfo);
    a.bind(noFault);
    for (const r of [r12, rbx, r9, r8, rdi, rsi, rdx, rcx, rax]) a.pop(r);
    a.bind(out);
    a.ret();
  }
}
