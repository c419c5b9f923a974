// The zero page (struct boot_params) and the low pages of a Linux partition (toolchain/linux/, build side;
// docs/specs/linux-partition.md §6): a pure function of the bzImage, the layout and the command line. The low pages
// are guest-physical 0x1000–0x9FFF as one blob the loader copies into the partition's allotment: the GDT the 64-bit
// boot protocol asks for, the zero page with the setup header copied from the file and the loader's fields written,
// the command line, and page tables identity-mapping the first 4 GiB with 2 MiB pages. Offsets are the documented
// layout's, checked against gcc's offsetof in boot-params.test.ts (abi/bootparam_oracle.c).
import { type BzImage, HDR } from "./bzimage.ts";
import { LOW, type LinuxLayout, PAGE } from "./layout.ts";

/** Zero-page fields outside the setup header, by offset (Documentation/arch/x86/zero-page.rst). */
export const BP = {
  extRamdiskImage: 0x0c0,
  extRamdiskSize: 0x0c4,
  extCmdLinePtr: 0x0c8,
  e820Entries: 0x1e8,
  sentinel: 0x1ef,
  e820Table: 0x2d0,
  e820EntrySize: 20,
  e820Max: 128,
  size: 4096,
} as const;

export const E820_RAM = 1;
export const E820_RESERVED = 2;
/** The PC's legacy hole: 640 KiB to 1 MiB. */
export const LEGACY_HOLE = { start: 0xa0000, end: 0x100000 } as const;
/** type_of_loader 0xFF: a loader with no assigned ID. */
export const LOADER_UNDEFINED = 0xff;
const CAN_USE_HEAP = 0x80;
const KEEP_SEGMENTS = 0x40;

export interface E820Entry { addr: number; size: number; type: number }

/**
 * The e820 map of a partition of `memory` bytes: every byte of [0, memory) once, partition-relative. Three entries
 * (RAM below 640 KiB, the legacy hole reserved, RAM from 1 MiB): the kernel ignores a map of fewer than two.
 */
export function e820Map(memory: number): E820Entry[] {
  if (memory <= LEGACY_HOLE.end) throw new RangeError(`a Linux partition has more than 1 MiB of memory (got ${memory} bytes)`);
  return [
    { addr: 0, size: LEGACY_HOLE.start, type: E820_RAM },
    { addr: LEGACY_HOLE.start, size: LEGACY_HOLE.end - LEGACY_HOLE.start, type: E820_RESERVED },
    { addr: LEGACY_HOLE.end, size: memory - LEGACY_HOLE.end, type: E820_RAM },
  ];
}

/** The 4096-byte zero page for `k` placed by `layout`. */
export function buildZeroPage(k: BzImage, layout: LinuxLayout): Uint8Array {
  const zp = new Uint8Array(BP.size);
  const v = new DataView(zp.buffer);
  // The setup header as the file has it, up to its self-declared end; then the loader's fields over it.
  zp.set(k.file.subarray(HDR.setupSects, k.headerEnd), HDR.setupSects);
  v.setUint8(HDR.typeOfLoader, LOADER_UNDEFINED);
  // No real-mode heap and no kept segments: the 16-bit setup code never runs on the 64-bit entry.
  v.setUint8(HDR.loadflags, k.loadflags & ~(CAN_USE_HEAP | KEEP_SEGMENTS));
  v.setUint32(HDR.ramdiskImage, layout.initrdAddr, true);
  v.setUint32(HDR.ramdiskSize, layout.initrdSize, true);
  v.setUint32(HDR.cmdLinePtr, LOW.cmdline, true);
  // Everything is below 4 GiB: the ext_ (high 32 bits) fields stay 0, as the zero page started.
  const map = e820Map(layout.memory);
  v.setUint8(BP.e820Entries, map.length);
  map.forEach((e, i) => {
    const at = BP.e820Table + i * BP.e820EntrySize;
    v.setBigUint64(at, BigInt(e.addr), true);
    v.setBigUint64(at + 8, BigInt(e.size), true);
    v.setUint32(at + 16, e.type, true);
  });
  return zp;
}

/** Flat descriptors: 0x10 = 64-bit code (L=1), 0x18 = data; the boot protocol's __BOOT_CS and __BOOT_DS. */
export const GDT = [0n, 0n, 0x00af9b000000ffffn, 0x00cf93000000ffffn] as const;
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
const PTE_P_W = 0x3n;
const PDE_2M = 0x83n; // present, writable, page size

/** Guest-physical LOW.gdt … LOW.end: GDT, zero page, command line (NUL-terminated), PML4, PDPT, four PDs. */
export function buildLowPages(k: BzImage, layout: LinuxLayout, cmdline: string): Uint8Array {
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.length !== layout.cmdlineLength) throw new Error(`command line of ${bytes.length} bytes, the layout was made for ${layout.cmdlineLength}`);
  if (bytes.includes(0)) throw new Error("the command line contains a NUL byte");
  const low = new Uint8Array(LOW.end - LOW.gdt);
  const v = new DataView(low.buffer);
  const at = (gpa: number): number => gpa - LOW.gdt;
  GDT.forEach((d, i) => v.setBigUint64(at(LOW.gdt) + i * 8, d, true));
  low.set(buildZeroPage(k, layout), at(LOW.zeroPage));
  low.set(bytes, at(LOW.cmdline)); // the NUL is the page's next byte, already 0
  v.setBigUint64(at(LOW.pml4), BigInt(LOW.pdpt) | PTE_P_W, true);
  for (let i = 0; i < 4; i++) {
    v.setBigUint64(at(LOW.pdpt) + i * 8, BigInt(LOW.pd + i * PAGE) | PTE_P_W, true);
    for (let j = 0; j < 512; j++) v.setBigUint64(at(LOW.pd + i * PAGE) + j * 8, (BigInt(i * 512 + j) << 21n) | PDE_2M, true);
  }
  return low;
}
