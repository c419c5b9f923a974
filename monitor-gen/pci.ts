// PCI devices in the ultravisor (generated ring-0 code, docs/specs/pci-devices.md): enumeration of bus 0 through
// configuration mechanism #1 (ports 0xCF8/0xCFC, which no partition gets) into the device list page, the host
// definition's assignments matched against it, the owner's BAR pages mapped uncached at DEVWIN + physical address
// when it starts, and its I/O BAR ports opened in the TSS bitmap only while it runs. The lead monitor calls
// pci_enumerate, pci_assign and pci_map (monitor-gen/lead.ts), switch_to calls pci_switch (monitor-gen/entry.ts); the
// table of assignments is emitted here from the image's configuration, so this file owns every layout it reads.
import { Assembler, type Gpr, type Label, al, ax, byte, dl, dword, dx, eax, ebp, ecx, edi, edx, esi, ptr, qword, r8, r8d, r9, r9d, r10, r10d, r11, rsp, r12, r12d, r13, r13d, r14, r14d, r15, r15d, rax, rbp, rbx, rcx, rdi, rdx, rsi, word } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { TSS } from "./descriptors.ts";
import { CHANNEL_RECORD, PARTITION_RECORD } from "./lead.ts";
import { FLAG, HC_ERR, SAVED_FRAME, STATE_PAGE } from "./layout.ts";
import { PTE } from "./paging.ts";

/** The device list (docs/specs/pci-devices.md §4): two pages, a 64-byte header and up to 31 entries of 256 bytes. */
export const PCI_LIST = {
  magic: 0x43505655, // "UVPC"
  pages: 2, header: 64, entrySize: 256, maxEntries: 31,
  /** Header offsets. */
  count: 4, entrySizeField: 8,
  /** Entry offsets. */
  bdf: 0, vendor: 2, device: 4, headerType: 6, class: 8, owner: 12,
  /** A virtio function's notify_off_multiplier (the notify capability's dword at +16, virtio 1.x §4.1.4.4); else 0. */
  notifyMultiplier: 16,
  /** 1 when the ultravisor turned bus mastering on (the owner may start DMA: the I/O partition's devices), else 0. */
  dma: 20,
  barAddress: (i: number): number => 32 + 16 * i,
  barSize: (i: number): number => 40 + 16 * i,
  barKind: (i: number): number => 128 + i,
  caps: 134,
  cap: (k: number): number => 136 + 12 * k,
  maxCaps: 5,
} as const;
/** Emits `into` = the address of entry `index` of the device list at `list` (header, then PCI_LIST.entrySize each). */
export function pciEntryAt(a: Assembler, into: Gpr, list: Gpr, index: Gpr): void {
  if (into !== index) a.mov(into, index);
  a.shl(into, Math.log2(PCI_LIST.entrySize)).lea(into, qword({ base: list, index: into, disp: PCI_LIST.header }));
}
/** BAR kinds of the list's kind bytes; PREFETCH is or-ed in. */
export const BAR_KIND = { none: 0, io: 1, mem32: 2, mem64: 3, prefetch: 0x10 } as const;
/** Where partitions see the list (read-only) and the owner its BARs (DEVWIN + physical address). */
export const DEVLIST = 0x3fff_ffff_e000n;
export const DEVWIN = 0x4000_0000_0000n;
/** The highest physical address + 1 that DEVWIN + address keeps canonical, and the largest BAR mapped. */
export const DEVWIN_LIMIT = 1n << 46n;
export const BAR_MAP_MAX = 256 * 1024 * 1024;
/** Ports of the configuration mechanism. */
export const CONFIG_ADDRESS = 0xcf8;
export const CONFIG_DATA = 0xcfc;
/** Modern (virtio 1.x, non-transitional) virtio-blk: what `uvt run --disk` attaches (qemu/args.ts). */
/** The configuration space's command register (offset 4) and its bits (PCI 3.0 §6.2.2). */
export const PCI_COMMAND = { offset: 4, io: 1, memory: 2, busMaster: 4 } as const;

/**
 * Turns bus mastering off for the device-list entry at `entry` (its command register read, the bit cleared, written
 * back): the device starts no new DMA. Clobbers the caller-saved registers. Used by the IOMMU's refusals and the
 * storage pair's fence.
 */
export function busMasterOff(a: Assembler, L: (n: string) => Label, entry: Gpr): void {
  a.movzx(edi, word(entry, PCI_LIST.bdf)).shl(edi, 8).or(edi, PCI_COMMAND.offset).call(L("pci_read"));
  a.movzx(esi, ax).and(esi, ~PCI_COMMAND.busMaster);
  a.movzx(edi, word(entry, PCI_LIST.bdf)).shl(edi, 8).or(edi, PCI_COMMAND.offset).call(L("pci_write16"));
}

export const VIRTIO_VENDOR = 0x1af4;
export const VIRTIO_BLK_MODERN = 0x1042;
/** cfg_type of the notification structure, whose capability carries notify_off_multiplier (virtio 1.x §4.1.4.4). */
const VIRTIO_NOTIFY_CAP = 2;
/** The configuration address mechanism #1 writes to 0xCF8 (PCI Local Bus 3.0 §3.2.2.3.2). */
export function configAddress(bus: number, dev: number, fn: number, offset: number): number {
  return (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | (offset & 0xfc)) >>> 0;
}

/**
 * An assignment as the image holds it: 16 bytes, `u32 kind (1 address, 2 disk), u32 value, u32 owner index, u32 dma`
 * (1: bus mastering on — a device of the I/O partition, which drives it; 0: off).
 */
export const ASSIGN = { kindAddress: 1, kindDisk: 2, size: 16 } as const;
export interface PciAssignment { match: { disk: number } | { bdf: number }; owner: number; dma?: boolean }

const UNCACHED_USER = Number(PTE.P | PTE.W | PTE.U | PTE.PCD | PTE.PWT);
const READONLY_USER = Number(PTE.P | PTE.U);

/**
 * The routines and tables of this file. `assignments` are the host definition's (partitions/config.ts DeviceSpec);
 * with none, pci_assign, pci_map and pci_switch are still emitted but find nothing to do (the lead and the monitor
 * call them only when the host gives devices).
 */
export function emitPci(a: Assembler, assignments: readonly PciAssignment[], withCore = true, iommu = false): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(4096);
  a.bind(L("g_pci_list"));
  a.zero(PCI_LIST.pages * 4096);
  a.align(8);
  a.bind(L("g_pci_io_for"));
  a.zero(8);
  a.bind(L("g_pci_text"));
  a.zero(16);
  a.section(".data");
  a.align(8);
  a.bind(L("g_pci_assign_count"));
  a.dq(assignments.length);
  a.bind(L("g_pci_assign"));
  for (const s of assignments) {
    if ("disk" in s.match) a.dd(ASSIGN.kindDisk, s.match.disk, s.owner, s.dma ? 1 : 0);
    else a.dd(ASSIGN.kindAddress, s.match.bdf, s.owner, s.dma ? 1 : 0);
  }
  a.section(".text");

  // pci_read(rdi = bdf << 8 | offset) → eax: the configuration dword. Clobbers rax, rdx.
  a.bind(L("pci_read"));
  a.mov(eax, edi).and(eax, 0xfffffc).or(eax, 0x8000_0000).mov(dx, CONFIG_ADDRESS).out(dx, eax);
  a.mov(dx, CONFIG_DATA).in(eax, dx).ret();
  // pci_write(rdi = bdf << 8 | offset, esi = value). Clobbers rax, rdx.
  a.bind(L("pci_write"));
  a.mov(eax, edi).and(eax, 0xfffffc).or(eax, 0x8000_0000).mov(dx, CONFIG_ADDRESS).out(dx, eax);
  a.mov(dx, CONFIG_DATA).mov(eax, esi).out(dx, eax).ret();
  // pci_write16(rdi = bdf << 8 | offset (even), si = value): a word at 0xCFC + (offset & 2). Clobbers rax, rdx.
  a.bind(L("pci_write16"));
  a.mov(eax, edi).and(eax, 0xfffffc).or(eax, 0x8000_0000).mov(dx, CONFIG_ADDRESS).out(dx, eax);
  a.mov(edx, edi).and(edx, 2).add(edx, CONFIG_DATA).mov(eax, esi).out(dx, ax).ret();

  // pci_text(rdi = bdf) → rdi: "bb:dd.f" in g_pci_text (NUL-terminated), for a monitor line's {str}. Clobbers rax, rcx.
  a.bind(L("pci_text"));
  {
    const digit = (shift: number, mask: number, at: number): void => {
      a.mov(eax, edi).shr(eax, shift).and(eax, mask).lea(rcx, ptr(L("k_hexdigits"))).mov(al, byte({ base: rcx, index: rax })).mov(byte({ label: L("g_pci_text"), disp: at }), al);
    };
    digit(12, 15, 0);
    digit(8, 15, 1);
    a.mov(byte({ label: L("g_pci_text"), disp: 2 }), ":".charCodeAt(0));
    digit(7, 1, 3);
    digit(3, 15, 4);
    a.mov(byte({ label: L("g_pci_text"), disp: 5 }), ".".charCodeAt(0));
    digit(0, 7, 6);
    a.mov(byte({ label: L("g_pci_text"), disp: 7 }), 0);
    a.lea(rdi, ptr(L("g_pci_text"))).ret();
  }

  emitEnumerate(a, L);
  emitAssign(a, L, iommu);
  emitMap(a, L);
  emitStorageSlot(a, L);
  emitDmaAddr(a, L, withCore, iommu);
  emitClientWrite(a, L, withCore);
  emitSwitch(a, L);
}

/** BAR field `disp` (of BAR 0) of the entry in r13 for the BAR whose index · 2 is in r9. */
const at = (disp: number): { base: typeof r13; index: typeof r9; scale: 8; disp: number } => ({ base: r13, index: r9, scale: 8, disp });

/** rdi := bdf (r12) << 8 | offset. */
function cfg(a: Assembler, offset: number | { bar: typeof r14; extra: number }): void {
  a.mov(rdi, r12).shl(rdi, 8);
  if (typeof offset === "number") a.or(rdi, offset);
  else a.lea(rdi, qword({ base: rdi, index: offset.bar, scale: 4, disp: 0x10 + offset.extra }));
}

function emitEnumerate(a: Assembler, L: (n: string) => Label): void {
  // pci_enumerate: bus 0, devices 0–31, functions 1–7 only behind a multi-function function 0; each present function
  // into the list (IDs, class, header type, BARs sized with decoding off, virtio capabilities) and onto the console.
  // Registers: rbx = the list, r12 = bdf, r13 = the entry, r14 = BAR index, r15 = BAR count, rbp = saved command.
  a.bind(L("pci_enumerate"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.lea(rbx, ptr(L("g_pci_list")));
    a.mov(dword(rbx, 0), PCI_LIST.magic).mov(dword(rbx, PCI_LIST.entrySizeField), PCI_LIST.entrySize);
    a.xor(r12d, r12d);
    const fnLoop = a.here();
    const done = a.label();
    const nextFn = a.label();
    const nextDev = a.label();
    a.cmp(r12d, 256).jae(done);
    cfg(a, 0);
    a.call(L("pci_read"));
    a.cmp(ax, 0xffff).je(nextFn); // absent (function 0 absent: the device's other functions are skipped below)
    const room = a.label();
    a.cmp(dword(rbx, PCI_LIST.count), PCI_LIST.maxEntries).jb(room);
    monitorLine(a, "ultravisor: pci ", { str: (x) => x.mov(rdi, r12).call(L("pci_text")) }, " not recorded: the device list holds ", String(PCI_LIST.maxEntries), " functions");
    a.jmp(nextFn);
    a.bind(room);
    a.mov(r13d, dword(rbx, PCI_LIST.count));
    pciEntryAt(a, r13, rbx, r13);
    a.inc(dword(rbx, PCI_LIST.count));
    a.mov(eax, r12d).mov(word(r13, PCI_LIST.bdf), ax);
    cfg(a, 0);
    a.call(L("pci_read"));
    a.mov(dword(r13, PCI_LIST.vendor), eax); // vendor and device
    cfg(a, 8);
    a.call(L("pci_read"));
    a.shr(eax, 8).mov(dword(r13, PCI_LIST.class), eax);
    cfg(a, 0x0c);
    a.call(L("pci_read"));
    a.shr(eax, 16).and(eax, 0x7f).mov(byte(r13, PCI_LIST.headerType), al);
    monitorLine(a, "ultravisor: pci ", { str: (x) => x.mov(rdi, r12).call(L("pci_text")) },
      " vendor ", { hex: (x) => x.movzx(edi, word(r13, PCI_LIST.vendor)) }, " device ", { hex: (x) => x.movzx(edi, word(r13, PCI_LIST.device)) },
      " class ", { hex: (x) => x.mov(edi, dword(r13, PCI_LIST.class)) }, " header ", { hex: (x) => x.movzx(edi, byte(r13, PCI_LIST.headerType)) });
    // BARs: six for a type-0 header, two for a bridge, none otherwise.
    const barsDone = a.label();
    a.xor(r15d, r15d);
    const notBridge = a.label();
    a.cmp(byte(r13, PCI_LIST.headerType), 1).jne(notBridge);
    a.mov(r15d, 2);
    a.bind(notBridge);
    const notPlain = a.label();
    a.cmp(byte(r13, PCI_LIST.headerType), 0).jne(notPlain);
    a.mov(r15d, 6);
    a.bind(notPlain);
    // Decoding off while BARs hold all ones (the low word of the command register; the status word is not written).
    cfg(a, 4);
    a.call(L("pci_read"));
    a.movzx(ebp, ax);
    cfg(a, 4);
    a.mov(esi, ebp).and(esi, ~3).call(L("pci_write16"));
    a.xor(r14d, r14d);
    const barLoop = a.here();
    const nextBar = a.label();
    a.cmp(r14d, r15d).jae(barsDone);
    // BAR i's fields are at 32 + 16·i: r9 = 2·i indexes them with scale 8. The original value goes to the address
    // field and the read-back to the size field first; both are then replaced by what they mean.
    a.lea(r9, qword({ base: r14, index: r14 }));
    cfg(a, { bar: r14, extra: 0 });
    a.call(L("pci_read"));
    a.mov(dword(at(PCI_LIST.barAddress(0))), eax);
    cfg(a, { bar: r14, extra: 0 });
    a.mov(esi, -1).call(L("pci_write"));
    cfg(a, { bar: r14, extra: 0 });
    a.call(L("pci_read"));
    a.mov(dword(at(PCI_LIST.barSize(0))), eax);
    cfg(a, { bar: r14, extra: 0 });
    a.mov(esi, dword(at(PCI_LIST.barAddress(0)))).call(L("pci_write"));
    const io = a.label();
    const mem64 = a.label();
    const store = a.label();
    const none = a.label();
    a.test(byte(at(PCI_LIST.barAddress(0))), 1).jnz(io);
    a.mov(eax, dword(at(PCI_LIST.barAddress(0)))).and(eax, 6).cmp(eax, 4).je(mem64);
    // 32-bit memory: size = −(read-back & ~0xF) in 32 bits.
    a.mov(eax, dword(at(PCI_LIST.barSize(0)))).and(eax, -16).jz(none);
    a.neg(eax).mov(qword(at(PCI_LIST.barSize(0))), rax); // 32-bit ops zero the upper half
    a.mov(eax, dword(at(PCI_LIST.barAddress(0)))).and(eax, -16).mov(qword(at(PCI_LIST.barAddress(0))), rax);
    a.mov(ecx, BAR_KIND.mem32);
    a.jmp(store);
    a.bind(io);
    a.mov(eax, dword(at(PCI_LIST.barSize(0)))).and(eax, 0xfffc).jz(none);
    a.or(eax, 0xffff_0000).neg(eax).mov(qword(at(PCI_LIST.barSize(0))), rax);
    a.mov(eax, dword(at(PCI_LIST.barAddress(0)))).and(eax, 0xfffc).mov(qword(at(PCI_LIST.barAddress(0))), rax);
    a.mov(ecx, BAR_KIND.io);
    a.jmp(store);
    a.bind(mem64);
    // The upper dword is the next BAR: saved and read back into the upper halves of this BAR's fields, then combined.
    a.lea(rax, qword(r14, 1)).cmp(eax, r15d).jae(none); // a 64-bit BAR in the last slot is malformed
    cfg(a, { bar: r14, extra: 4 });
    a.call(L("pci_read"));
    a.mov(dword(at(PCI_LIST.barAddress(0) + 4)), eax);
    cfg(a, { bar: r14, extra: 4 });
    a.mov(esi, -1).call(L("pci_write"));
    cfg(a, { bar: r14, extra: 4 });
    a.call(L("pci_read"));
    a.mov(dword(at(PCI_LIST.barSize(0) + 4)), eax);
    cfg(a, { bar: r14, extra: 4 });
    a.mov(esi, dword(at(PCI_LIST.barAddress(0) + 4))).call(L("pci_write"));
    a.mov(rax, qword(at(PCI_LIST.barSize(0)))).and(rax, -16).jz(none);
    a.neg(rax).mov(qword(at(PCI_LIST.barSize(0))), rax);
    a.and(qword(at(PCI_LIST.barAddress(0))), -16);
    a.mov(ecx, BAR_KIND.mem64);
    a.bind(store);
    const noPrefetch = a.label();
    a.cmp(ecx, BAR_KIND.io).je(noPrefetch); // bit 3 of an I/O BAR is an address bit
    // Prefetchable: bit 3 of the memory BAR as the device holds it (the address field is masked by now).
    cfg(a, { bar: r14, extra: 0 });
    a.push(rcx).call(L("pci_read")).pop(rcx);
    a.test(eax, 8).jz(noPrefetch);
    a.or(ecx, BAR_KIND.prefetch);
    a.bind(noPrefetch);
    a.mov(rax, rcx).mov(byte({ base: r13, index: r14, disp: PCI_LIST.barKind(0) }), al);
    const kindText = (k: number, text: string): void => {
      const no = a.label();
      a.movzx(eax, byte({ base: r13, index: r14, disp: PCI_LIST.barKind(0) })).and(eax, 15).cmp(eax, k).jne(no);
      monitorLine(a, "ultravisor: pci ", { str: (x) => x.mov(rdi, r12).call(L("pci_text")) }, " bar ", { dec: (x) => x.mov(rdi, r14) }, ` ${text} `,
        { hex: (x) => x.lea(r9, qword({ base: r14, index: r14 })).mov(rdi, qword(at(PCI_LIST.barAddress(0)))) },
        " size ", { hex: (x) => x.lea(r9, qword({ base: r14, index: r14 })).mov(rdi, qword(at(PCI_LIST.barSize(0)))) });
      a.bind(no);
    };
    kindText(BAR_KIND.io, "io");
    kindText(BAR_KIND.mem32, "mem32");
    kindText(BAR_KIND.mem64, "mem64");
    const notPf = a.label();
    a.test(byte({ base: r13, index: r14, disp: PCI_LIST.barKind(0) }), BAR_KIND.prefetch).jz(notPf);
    monitorLine(a, "ultravisor: pci ", { str: (x) => x.mov(rdi, r12).call(L("pci_text")) }, " bar ", { dec: (x) => x.mov(rdi, r14) }, " prefetchable");
    a.bind(notPf);
    a.movzx(eax, byte({ base: r13, index: r14, disp: PCI_LIST.barKind(0) })).and(eax, 15).cmp(eax, BAR_KIND.mem64).jne(nextBar);
    a.inc(r14d); // the upper half's slot stays kind none, size 0
    a.lea(r9, qword({ base: r14, index: r14 }));
    a.mov(qword(at(PCI_LIST.barAddress(0))), 0).mov(qword(at(PCI_LIST.barSize(0))), 0);
    a.jmp(nextBar);
    a.bind(none);
    a.lea(r9, qword({ base: r14, index: r14 }));
    a.mov(qword(at(PCI_LIST.barAddress(0))), 0).mov(qword(at(PCI_LIST.barSize(0))), 0);
    a.bind(nextBar);
    a.inc(r14d).jmp(barLoop);
    a.bind(barsDone);
    cfg(a, 4);
    a.mov(esi, ebp).call(L("pci_write16")); // the command register as the firmware left it
    emitVirtioCaps(a, L);
    a.bind(nextFn);
    // After function 0: the device's other functions only if function 0 is present and multi-function (header type
    // bit 7); else the next device.
    const inc = a.label();
    a.test(r12d, 7).jnz(inc);
    cfg(a, 0);
    a.call(L("pci_read"));
    a.cmp(ax, 0xffff).je(nextDev);
    cfg(a, 0x0c);
    a.call(L("pci_read"));
    a.test(eax, 0x80_0000).jnz(inc);
    a.bind(nextDev);
    a.or(r12d, 7);
    a.bind(inc);
    a.inc(r12d).jmp(fnLoop);
    a.bind(done);
    monitorLine(a, "ultravisor: pci: ", { dec: (x) => x.mov(edi, dword(rbx, PCI_LIST.count)) }, " functions on bus 0");
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

function emitVirtioCaps(a: Assembler, L: (n: string) => Label): void {
  // A virtio function's vendor-specific capabilities (ID 9, virtio 1.x §4.1.4): cfg_type, BAR, offset, length, at
  // most five, and at most 48 steps along the list (a malformed list cannot loop the boot).
  const skip = a.label();
  a.cmp(word(r13, PCI_LIST.vendor), VIRTIO_VENDOR).jne(skip);
  cfg(a, 4);
  a.call(L("pci_read"));
  a.test(eax, 0x10_0000).jz(skip); // status bit 4: a capability list
  cfg(a, 0x34);
  a.call(L("pci_read"));
  a.and(eax, 0xfc).mov(r14d, eax); // r14 = capability pointer
  a.mov(r15d, 48);
  const step = a.here();
  a.test(r14d, r14d).jz(skip);
  a.dec(r15d).jz(skip);
  a.mov(rdi, r12).shl(rdi, 8).or(rdi, r14);
  a.call(L("pci_read"));
  a.mov(ebp, eax); // id, next, len, cfg_type
  const next = a.label();
  a.cmp(al, 9).jne(next);
  a.movzx(ecx, word(r13, PCI_LIST.caps)).cmp(ecx, PCI_LIST.maxCaps).jae(next);
  a.imul(ecx, ecx, 12).lea(r9, qword({ base: r13, index: rcx, disp: PCI_LIST.cap(0) }));
  a.mov(eax, ebp).shr(eax, 24).mov(byte(r9, 0), al);
  a.mov(rdi, r12).shl(rdi, 8).or(rdi, r14).add(edi, 4);
  a.push(r9).call(L("pci_read")).pop(r9);
  a.mov(byte(r9, 1), al);
  a.mov(rdi, r12).shl(rdi, 8).or(rdi, r14).add(edi, 8);
  a.push(r9).call(L("pci_read")).pop(r9);
  a.mov(dword(r9, 4), eax);
  a.mov(rdi, r12).shl(rdi, 8).or(rdi, r14).add(edi, 12);
  a.push(r9).call(L("pci_read")).pop(r9);
  a.mov(dword(r9, 8), eax);
  const notNotify = a.label();
  a.cmp(byte(r9, 0), VIRTIO_NOTIFY_CAP).jne(notNotify);
  a.mov(rdi, r12).shl(rdi, 8).or(rdi, r14).add(edi, 16);
  a.push(r9).call(L("pci_read")).pop(r9);
  a.mov(dword(r13, PCI_LIST.notifyMultiplier), eax);
  a.bind(notNotify);
  a.inc(word(r13, PCI_LIST.caps));
  a.push(r9);
  monitorLine(a, "ultravisor: pci ", { str: (x) => x.mov(rdi, r12).call(L("pci_text")) }, " virtio cap type ", { dec: (x) => x.mov(rax, qword(rsp)).movzx(edi, byte(rax, 0)) },
    " bar ", { dec: (x) => x.mov(rax, qword(rsp)).movzx(edi, byte(rax, 1)) }, " offset ", { hex: (x) => x.mov(rax, qword(rsp)).mov(edi, dword(rax, 4)) },
    " length ", { hex: (x) => x.mov(rax, qword(rsp)).mov(edi, dword(rax, 8)) });
  a.pop(r9);
  a.bind(next);
  a.mov(r14d, ebp).shr(r14d, 8).and(r14d, 0xfc);
  a.jmp(step);
  a.bind(skip);
}

/** rdi := the name of the partition whose g_partitions index is the dword at `idx` (clobbers rax, rcx). */
function ownerName(a: Assembler, L: (n: string) => Label, idx: ReturnType<typeof dword>): void {
  a.mov(eax, idx).shl(rax, 6).lea(rcx, ptr(L("g_partitions"))).mov(rdi, qword({ base: rcx, index: rax, disp: PARTITION_RECORD.name }));
}

function emitAssign(a: Assembler, L: (n: string) => Label, iommu: boolean): void {
  // pci_assign: each assignment of the image matched against the list (a PCI address, or the N-th modern virtio-blk
  // in address order); a match not owned yet gets the owner's partition number, memory and I/O decoding on and bus
  // mastering off (no DMA before the IOMMU). A miss or a second claim is reported and changes nothing.
  a.bind(L("pci_assign"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.lea(rbx, ptr(L("g_pci_list")));
    a.xor(r12d, r12d);
    const loop = a.here();
    const done = a.label();
    const next = a.label();
    a.cmp(r12, qword(L("g_pci_assign_count"))).jae(done);
    a.mov(r14, r12).shl(r14, 4).lea(rax, ptr(L("g_pci_assign"))).add(r14, rax);
    a.xor(ebp, ebp).xor(r15d, r15d);
    const search = a.here();
    const notFound = a.label();
    const found = a.label();
    const nextK = a.label();
    const disk = a.label();
    a.cmp(r15d, dword(rbx, PCI_LIST.count)).jae(notFound);
    pciEntryAt(a, r13, rbx, r15);
    a.cmp(dword(r14, 0), ASSIGN.kindAddress).jne(disk);
    a.movzx(eax, word(r13, PCI_LIST.bdf)).cmp(eax, dword(r14, 4)).je(found);
    a.jmp(nextK);
    a.bind(disk);
    a.cmp(word(r13, PCI_LIST.vendor), VIRTIO_VENDOR).jne(nextK);
    a.cmp(word(r13, PCI_LIST.device), VIRTIO_BLK_MODERN).jne(nextK);
    a.cmp(ebp, dword(r14, 4)).je(found);
    a.inc(ebp);
    a.bind(nextK);
    a.inc(r15d).jmp(search);
    a.bind(notFound);
    {
      const byAddress = a.label();
      a.cmp(dword(r14, 0), ASSIGN.kindAddress).je(byAddress);
      monitorLine(a, "ultravisor: pci: disk ", { dec: (x) => x.mov(edi, dword(r14, 4)) }, " for partition ", { str: (x) => ownerName(x, L, dword(r14, 8)) },
        " not found (no such modern virtio-blk on bus 0); not given");
      a.jmp(next);
      a.bind(byAddress);
      monitorLine(a, "ultravisor: pci: device ", { str: (x) => x.mov(edi, dword(r14, 4)).call(L("pci_text")) }, " for partition ", { str: (x) => ownerName(x, L, dword(r14, 8)) },
        " not found on bus 0; not given");
      a.jmp(next);
    }
    a.bind(found);
    const free = a.label();
    a.cmp(dword(r13, PCI_LIST.owner), 0).je(free);
    monitorLine(a, "ultravisor: pci ", { str: (x) => x.movzx(edi, word(r13, PCI_LIST.bdf)).call(L("pci_text")) }, " for partition ", { str: (x) => ownerName(x, L, dword(r14, 8)) },
      ": already owned by partition number ", { dec: (x) => x.mov(edi, dword(r13, PCI_LIST.owner)) }, "; not given again");
    a.jmp(next);
    a.bind(free);
    a.mov(eax, dword(r14, 8)).inc(eax).mov(dword(r13, PCI_LIST.owner), eax);
    a.movzx(edi, word(r13, PCI_LIST.bdf)).shl(edi, 8).or(edi, 4);
    a.call(L("pci_read"));
    a.movzx(esi, ax).or(esi, 3).and(esi, ~4);
    const noDma = a.label();
    const commandSet = a.label();
    a.cmp(dword(r14, 12), 0).je(noDma);
    a.or(esi, 4).mov(dword(r13, PCI_LIST.dma), 1); // bus mastering: the I/O partition drives this device (DMA_ADDR)
    a.bind(noDma);
    a.movzx(edi, word(r13, PCI_LIST.bdf)).shl(edi, 8).or(edi, 4);
    a.call(L("pci_write16"));
    a.cmp(dword(r13, PCI_LIST.dma), 0).jne(commandSet);
    monitorLine(a, "ultravisor: pci ", { str: (x) => x.movzx(edi, word(r13, PCI_LIST.bdf)).call(L("pci_text")) }, " given to partition ", { str: (x) => ownerName(x, L, dword(r14, 8)) },
      " (number ", { dec: (x) => x.mov(edi, dword(r13, PCI_LIST.owner)) }, "): memory and I/O decoding on, bus mastering off");
    a.jmp(next);
    a.bind(commandSet);
    monitorLine(a, "ultravisor: pci ", { str: (x) => x.movzx(edi, word(r13, PCI_LIST.bdf)).call(L("pci_text")) }, " given to partition ", { str: (x) => ownerName(x, L, dword(r14, 8)) },
      " (number ", { dec: (x) => x.mov(edi, dword(r13, PCI_LIST.owner)) }, iommu ? "): memory and I/O decoding on, bus mastering on (DMA through the IOMMU)" : "): memory and I/O decoding on, bus mastering on (no IOMMU yet)");
    a.bind(next);
    a.inc(r12).jmp(loop);
    a.bind(done);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

function emitMap(a: Assembler, L: (n: string) => Label): void {
  // pci_map(rdi = state page, rsi = its PML4): the device list read-only at DEVLIST, then every memory BAR of the
  // partition's devices mapped uncached at DEVWIN + its physical address — page-aligned BARs of 4 KiB to 256 MiB
  // below 2^46 only (a smaller BAR shares its page with other devices' registers). Virtualized partitions get nothing.
  a.section(".bss");
  a.align(8);
  a.bind(L("g_pci_cur"));
  a.zero(8);
  a.bind(L("g_pci_end"));
  a.zero(8);
  a.section(".text");
  a.bind(L("pci_map"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.mov(r13, rdi).mov(r14, rsi);
    const out = a.label();
    a.test(byte(r13, STATE_PAGE.flags), FLAG.vm).jnz(out);
    for (let p = 0; p < PCI_LIST.pages; p++) {
      a.mov(rdi, r14).mov(rsi, DEVLIST + BigInt(p * 4096)).lea(rdx, ptr(L("g_pci_list"))).add(rdx, p * 4096).or(rdx, READONLY_USER).or(rdx, qword(L("g_nx")));
      a.call(L("map_page"));
    }
    a.mov(r12, qword(r13, STATE_PAGE.index)).inc(r12);
    a.lea(rbx, ptr(L("g_pci_list")));
    a.xor(r15d, r15d);
    const entries = a.here();
    const nextE = a.label();
    a.cmp(r15d, dword(rbx, PCI_LIST.count)).jae(out);
    pciEntryAt(a, rbp, rbx, r15);
    a.cmp(dword(rbp, PCI_LIST.owner), r12d).jne(nextE);
    for (let i = 0; i < 6; i++) {
      const skip = a.label();
      const refuse = a.label();
      a.movzx(eax, byte(rbp, PCI_LIST.barKind(i))).and(eax, 15).cmp(eax, BAR_KIND.mem32).jb(skip);
      a.mov(rax, qword(rbp, PCI_LIST.barAddress(i))).test(eax, 0xfff).jnz(refuse);
      a.mov(rcx, qword(rbp, PCI_LIST.barSize(i))).cmp(rcx, 0x1000).jb(refuse);
      a.cmp(rcx, BAR_MAP_MAX).ja(refuse);
      a.lea(rdx, qword({ base: rax, index: rcx })).mov(r8, DEVWIN_LIMIT).cmp(rdx, r8).ja(refuse);
      a.mov(qword(L("g_pci_cur")), rax).mov(qword(L("g_pci_end")), rdx);
      const page = a.here();
      a.mov(rdi, r14).mov(rsi, DEVWIN).add(rsi, qword(L("g_pci_cur")));
      a.mov(rdx, qword(L("g_pci_cur"))).or(rdx, UNCACHED_USER).or(rdx, qword(L("g_nx")));
      a.call(L("map_page"));
      a.add(qword(L("g_pci_cur")), 4096);
      a.mov(rax, qword(L("g_pci_cur"))).cmp(rax, qword(L("g_pci_end"))).jb(page);
      monitorLine(a, "ultravisor: pci ", { str: (x) => x.movzx(edi, word(rbp, PCI_LIST.bdf)).call(L("pci_text")) }, ` bar ${i} mapped uncached at `,
        { hex: (x) => x.mov(rdi, DEVWIN).add(rdi, qword(rbp, PCI_LIST.barAddress(i))) }, " for partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) });
      a.jmp(skip);
      a.bind(refuse);
      monitorLine(a, "ultravisor: pci ", { str: (x) => x.movzx(edi, word(rbp, PCI_LIST.bdf)).call(L("pci_text")) }, ` bar ${i} not mapped for partition `,
        { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, ": not whole pages of 4 KiB to 256 MiB below 2^46");
      a.bind(skip);
    }
    a.bind(nextE);
    a.inc(r15d).jmp(entries);
    a.bind(out);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

function emitSwitch(a: Assembler, L: (n: string) => Label): void {
  // pci_switch(rdi = the state page about to run): when the partition changes, every I/O BAR port in [0x1000, 0x10000)
  // of the list is opened in the TSS bitmap if this partition owns its device and closed otherwise. Keeps rdi;
  // clobbers rax, rcx, rdx.
  a.bind(L("pci_switch"));
  {
    const same = a.label();
    a.cmp(rdi, qword(L("g_pci_io_for"))).je(same);
    a.mov(qword(L("g_pci_io_for")), rdi);
    for (const r of [rbx, rsi, r8, r9, r10]) a.push(r);
    a.mov(r8, qword(rdi, STATE_PAGE.index)).inc(r8);
    a.lea(rbx, ptr(L("g_pci_list")));
    a.lea(r10, ptr(L("g_tss"))).add(r10, TSS.iomap);
    a.xor(r9d, r9d);
    const ent = a.here();
    const out = a.label();
    a.cmp(r9d, dword(rbx, PCI_LIST.count)).jae(out);
    pciEntryAt(a, rsi, rbx, r9);
    for (let i = 0; i < 6; i++) {
      const skip = a.label();
      const open = a.label();
      a.cmp(byte(rsi, PCI_LIST.barKind(i)), BAR_KIND.io).jne(skip);
      a.mov(rax, qword(rsi, PCI_LIST.barAddress(i))).cmp(rax, 0x1000).jb(skip);
      a.mov(rdx, rax).add(rdx, qword(rsi, PCI_LIST.barSize(i))).cmp(rdx, 0x10000).ja(skip);
      a.cmp(dword(rsi, PCI_LIST.owner), r8d).je(open);
      const close = a.here();
      a.bts(qword(r10), rax).inc(rax).cmp(rax, rdx).jb(close);
      a.jmp(skip);
      a.bind(open);
      const opening = a.here();
      a.btr(qword(r10), rax).inc(rax).cmp(rax, rdx).jb(opening);
      a.bind(skip);
    }
    a.inc(r9d).jmp(ent);
    a.bind(out);
    for (const r of [r10, r9, r8, rsi, rbx]) a.pop(r);
    a.bind(same);
    a.ret();
  }
}

function emitStorageSlot(a: Assembler, L: (n: string) => Label): void {
  // pci_storage_slot(rbp = the caller's state page, rcx = slot k < 16) → eax = 1 when the image's channel table has a
  // storage channel (its template is the storage template) whose server is the caller at slot k, else 0. DMA_ADDR and
  // CLIENT_WRITE reach only such a peer: a console or command peer of the I/O partition never granted its memory to a
  // device or to the I/O partition (without this, CLIENT_WRITE on the command partition's console slot wrote into its
  // code). The table is the ultravisor's own, not the partition's info page (which the partition can write). Keeps
  // every register but rax and the flags.
  a.bind(L("pci_storage_slot"));
  {
    const next = a.label();
    const no = a.label();
    const out = a.label();
    a.push(rbx).push(rsi);
    a.xor(esi, esi);
    const scan = a.here();
    a.cmp(rsi, qword(L("g_channel_count"))).jae(no);
    a.mov(rbx, rsi).shl(rbx, Math.log2(CHANNEL_RECORD.size)).lea(rax, ptr(L("g_channels"))).add(rbx, rax);
    a.mov(eax, dword(rbx, CHANNEL_RECORD.server)).cmp(rax, qword(rbp, STATE_PAGE.index)).jne(next);
    a.mov(eax, dword(rbx, CHANNEL_RECORD.serverSlot)).cmp(rax, rcx).jne(next);
    a.lea(rax, ptr(L("g_stor_template"))).cmp(qword(rbx, CHANNEL_RECORD.template), rax).jne(next);
    a.mov(eax, 1).jmp(out);
    a.bind(next);
    a.inc(rsi).jmp(scan);
    a.bind(no);
    a.xor(eax, eax);
    a.bind(out);
    a.pop(rsi).pop(rbx);
    a.ret();
  }
}

/** The exits DMA_ADDR and CLIENT_WRITE share: each refusal's code in rax, then rbx restored and return. */
interface HypercallExits { denied: Label; bad: Label; refused: Label; out: Label }

function hypercallExits(a: Assembler): HypercallExits {
  return { denied: a.label(), bad: a.label(), refused: a.label(), out: a.label() };
}

function emitHypercallExits(a: Assembler, x: HypercallExits): void {
  a.bind(x.denied);
  a.mov(rax, HC_ERR.denied).jmp(x.out);
  a.bind(x.bad);
  a.mov(rax, HC_ERR.badArgument).jmp(x.out);
  a.bind(x.refused);
  a.mov(rax, HC_ERR.refused);
  a.bind(x.out);
  a.pop(rbx);
  a.ret();
}

/**
 * rcx = a channel slot of the caller (rbp) → rdi = the state page of that slot's peer, when the slot is below 16, holds
 * a storage channel the caller serves (pci_storage_slot, from the image's own table) and is connected; else to `bad`.
 * Clobbers rax and rcx.
 */
function storagePeer(a: Assembler, L: (n: string) => Label, bad: Label): void {
  a.cmp(rcx, 16).jae(bad);
  a.call(L("pci_storage_slot")).test(eax, eax).jz(bad); // only the peer of a storage channel it serves
  a.shl(rcx, 4).mov(rdi, qword({ base: rbp, index: rcx, disp: STATE_PAGE.slots }));
  a.test(rdi, rdi).jz(bad);
}

/**
 * With a database (g_db_ok): the partition whose state page is in rdi must own, in the database now, the page whose
 * address `addressToRdi` leaves in rdi (core's GetMemOwner against its descriptor), else to `refused`. `keep` (rdi
 * among them) are saved around the lookup.
 */
function ownedNow(a: Assembler, L: (n: string) => Label, keep: Gpr[], addressToRdi: () => void, refused: Label): void {
  const unchecked = a.label();
  a.cmp(qword(L("g_db_ok")), 0).je(unchecked);
  for (const r of keep) a.push(r);
  addressToRdi();
  a.call(L("db_owner"));
  for (const r of [...keep].reverse()) a.pop(r);
  a.cmp(rax, qword(rdi, STATE_PAGE.descriptor)).jne(refused);
  a.bind(unchecked);
}

function emitDmaAddr(a: Assembler, L: (n: string) => Label, withCore: boolean, iommu: boolean): void {
  // pci_dma_addr(rbp = the caller's state page; its saved rcx = a, rdx = b) → rax: the DMA_ADDR hypercall
  // (docs/specs/hypercall-abi.md). The bus address of byte b of a partition's memory — the caller's own (a = −1) or
  // that of the peer of its channel slot a (a storage client) — for the caller's device to DMA to. Only the I/O
  // partition, and only while it owns a device whose bus mastering the ultravisor turned on (DENIED otherwise); b
  // must lie in the partition's memory pages [0, memPages·4096) (BAD_ARGUMENT: not its channel pages, not beyond);
  // with a database, that page must be the partition's in it (core's GetMemOwner against the partition's descriptor)
  // at the time of the call (REFUSED otherwise). Without an IOMMU a bus address is the physical address; the result
  // holds to the end of b's page. Runs on the ultravisor's stack (the caller set rsp).
  a.bind(L("pci_dma_addr"));
  {
    const x = hypercallExits(a);
    const { denied, bad, refused, out } = x;
    const owns = a.label();
    const target = a.label();
    a.push(rbx);
    a.test(byte(rbp, STATE_PAGE.flags), FLAG.com1 | FLAG.pairIo).jz(denied); // the console I/O partition or a member of the storage pair
    a.mov(r8, qword(rbp, STATE_PAGE.index)).inc(r8);
    a.lea(rbx, ptr(L("g_pci_list")));
    a.xor(r9d, r9d);
    const scan = a.here();
    const nextE = a.label();
    a.cmp(r9d, dword(rbx, PCI_LIST.count)).jae(denied);
    pciEntryAt(a, r10, rbx, r9);
    a.cmp(dword(r10, PCI_LIST.owner), r8d).jne(nextE);
    a.cmp(dword(r10, PCI_LIST.dma), 0).jne(owns);
    a.bind(nextE);
    a.inc(r9d).jmp(scan);
    a.bind(owns);
    a.mov(rcx, qword(rbp, SAVED_FRAME.reg("rcx"))).mov(rdx, qword(rbp, SAVED_FRAME.reg("rdx")));
    a.mov(rdi, rbp);
    a.cmp(rcx, -1).je(target);
    storagePeer(a, L, bad);
    a.bind(target);
    a.mov(rax, qword(rdi, STATE_PAGE.memPages)).shl(rax, 12).cmp(rdx, rax).jae(bad);
    a.mov(rsi, qword(rdi, STATE_PAGE.window)).add(rsi, rdx);
    if (withCore) ownedNow(a, L, [rsi, rdi], () => a.mov(rdi, rsi).and(rdi, -4096), refused);
    if (iommu) {
      // The page is mapped for the caller's devices before its address is given (monitor-gen/iommu.ts,
      // storage-channel.md §9): IOVA = physical address, so the answer is the same.
      // A peer's page (a ≠ −1) is recorded for DMA_DONE; the caller's own pages stay mapped.
      a.push(rsi);
      a.xor(edx, edx).cmp(qword(rbp, SAVED_FRAME.reg("rcx")), -1).setne(dl);
      a.mov(rdi, qword(rbp, STATE_PAGE.index)).inc(rdi).call(L("iommu_map"));
      a.pop(rsi);
      a.test(rax, rax).jnz(refused);
    }
    a.mov(rax, rsi).jmp(out);
    emitHypercallExits(a, x);
  }
}

/** CLIENT_WRITE's descriptor in the I/O partition's memory: u64 client offset, u32 length (at most 64), u32 0, the bytes. */
export const CLIENT_WRITE = { offset: 0, length: 8, data: 16, maxBytes: 64, size: 80 } as const;

function emitClientWrite(a: Assembler, L: (n: string) => Label, withCore: boolean): void {
  // pci_client_write(rbp = the caller's state page; saved rcx = slot k, rdx = b) → rax: the CLIENT_WRITE hypercall
  // (docs/specs/hypercall-abi.md). Copies the descriptor's bytes (at most 64) from the caller's memory at b into the
  // memory of the peer of its channel slot k at the descriptor's offset. Only the I/O partition (DENIED otherwise);
  // the descriptor must lie in the caller's memory pages, the length be at most 64, and the destination lie in the
  // peer's memory pages within one page (BAD_ARGUMENT); with a database, that page must be the peer's in it now
  // (REFUSED). Returns the bytes copied. Both are reached through the ultravisor's identity map (allotments lie below
  // 4 GiB). Runs on the ultravisor's stack.
  a.bind(L("pci_client_write"));
  {
    const x = hypercallExits(a);
    const { denied, bad, refused, out } = x;
    a.push(rbx);
    a.test(byte(rbp, STATE_PAGE.flags), FLAG.com1).jz(denied);
    a.mov(rcx, qword(rbp, SAVED_FRAME.reg("rcx"))).mov(rdx, qword(rbp, SAVED_FRAME.reg("rdx")));
    storagePeer(a, L, bad);
    a.mov(rax, qword(rbp, STATE_PAGE.memPages)).shl(rax, 12);
    a.cmp(rdx, rax).jae(bad);
    a.lea(r8, qword(rdx, CLIENT_WRITE.size)).cmp(r8, rax).ja(bad);
    a.mov(rsi, qword(rbp, STATE_PAGE.window)).add(rsi, rdx); // the descriptor, physical
    a.mov(r9, qword(rsi, CLIENT_WRITE.offset)).mov(r10d, dword(rsi, CLIENT_WRITE.length));
    a.cmp(r10, CLIENT_WRITE.maxBytes).ja(bad);
    a.mov(rax, qword(rdi, STATE_PAGE.memPages)).shl(rax, 12);
    a.cmp(r9, rax).jae(bad);
    a.mov(r11, r9).and(r11, 0xfff).add(r11, r10).cmp(r11, 4096).ja(bad);
    if (withCore) ownedNow(a, L, [rsi, rdi, r9, r10], () => a.mov(rax, qword(rdi, STATE_PAGE.window)).add(rax, r9).and(rax, -4096).mov(rdi, rax), refused);
    a.add(rsi, CLIENT_WRITE.data);
    a.mov(rdi, qword(rdi, STATE_PAGE.window)).add(rdi, r9);
    a.mov(rcx, r10).rep().movsb();
    a.mov(rax, r10).jmp(out);
    emitHypercallExits(a, x);
  }
}
