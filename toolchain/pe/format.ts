// PE32+ constants shared by the writer (write.ts), the layout helper (layout.ts) and the reader (read.ts): header
// sizes, offsets and flag values from the Microsoft PE/COFF specification, restricted to what an x86-64 EFI
// application needs. Keeping them in one file means the writer and the reader cannot drift apart.
import type { SectionKind } from "../x64/object.ts";

/** Where the DOS header says the PE signature is; the DOS stub sits between 0x40 and here. */
export const PE_OFFSET = 0x80;
export const DOS_HEADER_SIZE = 0x40;
export const COFF_HEADER_SIZE = 20;
/** PE32+ optional header with all 16 data directories. */
export const OPTIONAL_HEADER_SIZE = 240;
export const SECTION_HEADER_SIZE = 40;
export const DATA_DIRECTORY_COUNT = 16;

export const OPTIONAL_HEADER_OFFSET = PE_OFFSET + 4 + COFF_HEADER_SIZE;
export const SECTION_TABLE_OFFSET = OPTIONAL_HEADER_OFFSET + OPTIONAL_HEADER_SIZE;
/** File offset of the CheckSum field (optional header + 64), excluded from its own sum. */
export const CHECKSUM_OFFSET = OPTIONAL_HEADER_OFFSET + 64;
/** File offset of data directory 0; directory n is 8 bytes further per index. */
export const DATA_DIRECTORIES_OFFSET = OPTIONAL_HEADER_OFFSET + 112;

export const SECTION_ALIGNMENT = 0x1000;
export const FILE_ALIGNMENT = 0x200;
/** Image bases must be 64 KiB multiples (PE/COFF spec, ImageBase). */
export const IMAGE_BASE_ALIGNMENT = 0x10000;
/** MSVC's default for 64-bit images: above 4 GiB, so an image the firmware failed to relocate faults visibly. */
export const DEFAULT_IMAGE_BASE = 0x1_4000_0000n;

export const MACHINE_AMD64 = 0x8664;
export const PE32PLUS_MAGIC = 0x20b;
export const SUBSYSTEM_EFI_APPLICATION = 10;

export const FILE_EXECUTABLE_IMAGE = 0x0002;
export const FILE_LINE_NUMS_STRIPPED = 0x0004;
export const FILE_LARGE_ADDRESS_AWARE = 0x0020;
export const FILE_DEBUG_STRIPPED = 0x0200;

export const DLL_HIGH_ENTROPY_VA = 0x0020;
export const DLL_DYNAMIC_BASE = 0x0040;
export const DLL_NX_COMPAT = 0x0100;

export const SCN_CNT_CODE = 0x00000020;
export const SCN_CNT_INITIALIZED_DATA = 0x00000040;
export const SCN_CNT_UNINITIALIZED_DATA = 0x00000080;
export const SCN_MEM_DISCARDABLE = 0x02000000;
export const SCN_MEM_EXECUTE = 0x20000000;
export const SCN_MEM_READ = 0x40000000;
export const SCN_MEM_WRITE = 0x80000000;

export const DIR_BASE_RELOCATION = 5;
export const REL_BASED_ABSOLUTE = 0;
export const REL_BASED_DIR64 = 10;

/** Section flags by the assembler's section kind. */
export const KIND_CHARACTERISTICS: Record<SectionKind, number> = {
  text: SCN_CNT_CODE | SCN_MEM_EXECUTE | SCN_MEM_READ,
  rdata: SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ,
  data: SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE,
  bss: SCN_CNT_UNINITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE,
};
export const RELOC_CHARACTERISTICS = SCN_CNT_INITIALIZED_DATA | SCN_MEM_DISCARDABLE | SCN_MEM_READ;
export const RELOC_SECTION_NAME = ".reloc";

/** Image order of section kinds: code first, then read-only data, writable data, and zero-fill last. */
export const KIND_ORDER: Record<SectionKind, number> = { text: 0, rdata: 1, data: 2, bss: 3 };

/** Size of everything before the first section's raw data: headers plus the section table, file aligned. */
export function headersSize(sectionCount: number): number {
  return alignUp(SECTION_TABLE_OFFSET + SECTION_HEADER_SIZE * sectionCount, FILE_ALIGNMENT);
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The raw 8-byte section name field: ASCII, at most 8 bytes, zero padded. */
export function encodeSectionName(name: string): Uint8Array {
  const bytes = new TextEncoder().encode(name);
  if (name.length === 0) throw new Error("PE section name is empty: give each section a name such as .text");
  if (bytes.length > 8)
    throw new Error(`PE section name "${name}" is ${bytes.length} bytes; PE images allow at most 8 (shorten it)`);
  if (!/^[\x21-\x7e]+$/.test(name)) throw new Error(`PE section name "${name}" must be printable ASCII without spaces`);
  const out = new Uint8Array(8);
  out.set(bytes);
  return out;
}
