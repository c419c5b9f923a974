// The PE32+ writer: the only code in the project that produces PE files. Takes placed, already-linked sections (see
// layout.ts for how an ObjectFile gets there), the entry point and the RVAs of every absolute 64-bit fixup, and
// returns an x86-64 EFI application: DOS header and stub, PE signature, COFF header, PE32+ optional header
// (subsystem 10), section table, section data, a .reloc section of DIR64 base relocations, and the image checksum.
// Every input is validated first, so a malformed request fails with a message instead of a broken image.
import type { SectionKind } from "../x64/object.ts";
import { peChecksum } from "./checksum.ts";
import {
  DOS_HEADER_SIZE,
  alignUp,
  CHECKSUM_OFFSET,
  DATA_DIRECTORIES_OFFSET,
  DATA_DIRECTORY_COUNT,
  DEFAULT_IMAGE_BASE,
  DIR_BASE_RELOCATION,
  DLL_DYNAMIC_BASE,
  DLL_HIGH_ENTROPY_VA,
  DLL_NX_COMPAT,
  encodeSectionName,
  FILE_ALIGNMENT,
  FILE_DEBUG_STRIPPED,
  FILE_EXECUTABLE_IMAGE,
  FILE_LARGE_ADDRESS_AWARE,
  FILE_LINE_NUMS_STRIPPED,
  headersSize,
  KIND_CHARACTERISTICS,
  MACHINE_AMD64,
  OPTIONAL_HEADER_OFFSET,
  OPTIONAL_HEADER_SIZE,
  PE32PLUS_MAGIC,
  PE_OFFSET,
  RELOC_CHARACTERISTICS,
  RELOC_SECTION_NAME,
  SECTION_ALIGNMENT,
  SECTION_HEADER_SIZE,
  SECTION_TABLE_OFFSET,
  SUBSYSTEM_EFI_APPLICATION,
} from "./format.ts";
import { checkImageBase } from "./layout.ts";
import { encodeBaseRelocations } from "./relocs.ts";

export interface PeSectionInput {
  name: string;
  kind: SectionKind;
  /** Where the section starts in the image: a 4 KiB multiple after the headers and the previous section. */
  rva: number;
  /** Final (relocated) contents; for bss only the length matters (zero-fill, no file data). */
  bytes: Uint8Array;
}

export interface PeWriteInput {
  /** Preferred load address; default 0x140000000. Must match what the linker used for absolute addresses. */
  imageBase?: bigint;
  sections: readonly PeSectionInput[];
  /** RVA of the first instruction; must lie inside a text section. */
  entryRva: number;
  /** RVA of every 8-byte absolute address in the image (each becomes a DIR64 base relocation). */
  abs64Rvas: readonly number[];
  /** COFF TimeDateStamp; 0 by default so that builds are reproducible. */
  timestamp?: number;
  /** Set IMAGE_DLLCHARACTERISTICS_NX_COMPAT (default true: our sections are never both writable and executable). */
  nxCompat?: boolean;
}

/** A 16-bit real-mode program that prints the message after it and exits with status 1, for whoever runs us on DOS. */
const DOS_STUB_CODE = [0x0e, 0x1f, 0xba, 0x0e, 0x00, 0xb4, 0x09, 0xcd, 0x21, 0xb8, 0x01, 0x4c, 0xcd, 0x21];
const DOS_STUB_MESSAGE = "This is a UEFI application, not a DOS program.\r\n$";

interface Placed {
  name: string;
  kind: SectionKind | "reloc";
  rva: number;
  virtualSize: number;
  data: Uint8Array | null;
  rawSize: number;
  fileOffset: number;
  characteristics: number;
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

export function writePe(input: PeWriteInput): Uint8Array {
  const imageBase = input.imageBase ?? DEFAULT_IMAGE_BASE;
  checkImageBase(imageBase);

  // Empty sections take no room and carry nothing; a PE section of size 0 only confuses loaders.
  const sections = input.sections.filter((s) => s.bytes.length > 0).slice().sort((a, b) => a.rva - b.rva);
  for (const s of input.sections) {
    encodeSectionName(s.name);
    if (s.name === RELOC_SECTION_NAME)
      throw new Error(`section name ${RELOC_SECTION_NAME} is reserved: the writer builds it from abs64Rvas`);
    if (!(s.kind in KIND_CHARACTERISTICS)) throw new Error(`section ${s.name} has unknown kind "${String(s.kind)}"`);
  }
  const sectionCount = sections.length + (input.abs64Rvas.length > 0 ? 1 : 0);
  if (sectionCount > 0xffff) throw new Error(`${sectionCount} sections: PE allows at most 65535`);
  const sizeOfHeaders = headersSize(sectionCount);

  let minRva = alignUp(sizeOfHeaders, SECTION_ALIGNMENT);
  let prev = "the headers";
  for (const s of sections) {
    if (!Number.isInteger(s.rva) || s.rva % SECTION_ALIGNMENT !== 0)
      throw new Error(`section ${s.name} RVA ${hex(s.rva)} is not a multiple of ${hex(SECTION_ALIGNMENT)}`);
    if (s.rva < minRva)
      throw new Error(`section ${s.name} at RVA ${hex(s.rva)} overlaps ${prev} (first free RVA ${hex(minRva)})`);
    minRva = alignUp(s.rva + s.bytes.length, SECTION_ALIGNMENT);
    prev = `section ${s.name}`;
  }
  checkEntry(input.entryRva, sections);
  const relocTable = encodeBaseRelocations(checkSites(input.abs64Rvas, sections));

  const placed: Placed[] = [];
  let fileOffset = sizeOfHeaders;
  for (const s of sections) {
    const isBss = s.kind === "bss";
    const rawSize = isBss ? 0 : alignUp(s.bytes.length, FILE_ALIGNMENT);
    placed.push({
      name: s.name,
      kind: s.kind,
      rva: s.rva,
      virtualSize: s.bytes.length,
      data: isBss ? null : s.bytes,
      rawSize,
      fileOffset: isBss ? 0 : fileOffset,
      characteristics: KIND_CHARACTERISTICS[s.kind],
    });
    fileOffset += rawSize;
  }
  const relocRva = minRva;
  if (relocTable.length > 0) {
    const rawSize = alignUp(relocTable.length, FILE_ALIGNMENT);
    placed.push({
      name: RELOC_SECTION_NAME,
      kind: "reloc",
      rva: relocRva,
      virtualSize: relocTable.length,
      data: relocTable,
      rawSize,
      fileOffset,
      characteristics: RELOC_CHARACTERISTICS,
    });
    fileOffset += rawSize;
  }
  const last = placed[placed.length - 1];
  const sizeOfImage = last ? alignUp(last.rva + last.virtualSize, SECTION_ALIGNMENT) : minRva;
  if (imageBase + BigInt(sizeOfImage) > 1n << 64n)
    throw new Error(`image base ${hex(imageBase)} + image size ${hex(sizeOfImage)} passes the end of the address space`);

  const file = new Uint8Array(fileOffset);
  const view = new DataView(file.buffer);
  writeDosHeader(file, view);

  // PE signature and COFF file header.
  file.set([0x50, 0x45, 0, 0], PE_OFFSET);
  const coff = PE_OFFSET + 4;
  view.setUint16(coff, MACHINE_AMD64, true);
  view.setUint16(coff + 2, sectionCount, true);
  view.setUint32(coff + 4, input.timestamp ?? 0, true);
  view.setUint16(coff + 16, OPTIONAL_HEADER_SIZE, true);
  const fileFlags = FILE_EXECUTABLE_IMAGE | FILE_LINE_NUMS_STRIPPED | FILE_LARGE_ADDRESS_AWARE | FILE_DEBUG_STRIPPED;
  view.setUint16(coff + 18, fileFlags, true);

  // PE32+ optional header.
  const o = OPTIONAL_HEADER_OFFSET;
  const sum = (pred: (p: Placed) => boolean, size: (p: Placed) => number) =>
    placed.filter(pred).reduce((a, p) => a + size(p), 0);
  const firstCode = placed.find((p) => p.kind === "text");
  view.setUint16(o, PE32PLUS_MAGIC, true);
  view.setUint32(o + 4, sum((p) => p.kind === "text", (p) => p.rawSize), true); // SizeOfCode
  view.setUint32(o + 8, sum((p) => p.kind !== "text" && p.kind !== "bss", (p) => p.rawSize), true);
  view.setUint32(o + 12, sum((p) => p.kind === "bss", (p) => alignUp(p.virtualSize, FILE_ALIGNMENT)), true);
  view.setUint32(o + 16, input.entryRva, true);
  view.setUint32(o + 20, firstCode ? firstCode.rva : 0, true); // BaseOfCode
  view.setBigUint64(o + 24, imageBase, true);
  view.setUint32(o + 32, SECTION_ALIGNMENT, true);
  view.setUint32(o + 36, FILE_ALIGNMENT, true);
  view.setUint32(o + 56, sizeOfImage, true);
  view.setUint32(o + 60, sizeOfHeaders, true);
  view.setUint16(o + 68, SUBSYSTEM_EFI_APPLICATION, true);
  const dll = DLL_HIGH_ENTROPY_VA | DLL_DYNAMIC_BASE | (input.nxCompat === false ? 0 : DLL_NX_COMPAT);
  view.setUint16(o + 70, dll, true);
  view.setUint32(o + 108, DATA_DIRECTORY_COUNT, true);
  if (relocTable.length > 0) {
    view.setUint32(DATA_DIRECTORIES_OFFSET + 8 * DIR_BASE_RELOCATION, relocRva, true);
    view.setUint32(DATA_DIRECTORIES_OFFSET + 8 * DIR_BASE_RELOCATION + 4, relocTable.length, true);
  }

  // Section table, then the section data.
  placed.forEach((p, i) => {
    const h = SECTION_TABLE_OFFSET + i * SECTION_HEADER_SIZE;
    file.set(encodeSectionName(p.name), h);
    view.setUint32(h + 8, p.virtualSize, true);
    view.setUint32(h + 12, p.rva, true);
    view.setUint32(h + 16, p.rawSize, true);
    view.setUint32(h + 20, p.fileOffset, true);
    view.setUint32(h + 36, p.characteristics >>> 0, true);
    if (p.data) file.set(p.data, p.fileOffset);
  });

  view.setUint32(CHECKSUM_OFFSET, peChecksum(file, CHECKSUM_OFFSET), true);
  return file;
}

function writeDosHeader(file: Uint8Array, view: DataView): void {
  file.set([0x4d, 0x5a], 0); // "MZ"
  view.setUint16(0x02, PE_OFFSET % 512, true); // bytes in the last 512-byte page of the DOS program
  view.setUint16(0x04, Math.ceil(PE_OFFSET / 512), true); // pages
  view.setUint16(0x08, DOS_HEADER_SIZE / 16, true); // header size in 16-byte paragraphs: the stub code follows it
  view.setUint16(0x0c, 0xffff, true); // maximum extra paragraphs
  view.setUint16(0x10, 0xb8, true); // initial SP
  view.setUint16(0x18, DOS_HEADER_SIZE, true); // relocation table offset (empty)
  view.setUint32(0x3c, PE_OFFSET, true); // e_lfanew
  file.set(DOS_STUB_CODE, DOS_HEADER_SIZE);
  // The stub's `mov dx, 0x0e` points just past its 14 code bytes.
  file.set(new TextEncoder().encode(DOS_STUB_MESSAGE), DOS_HEADER_SIZE + DOS_STUB_CODE.length);
}

function findSection(rva: number, sections: readonly PeSectionInput[]): PeSectionInput | undefined {
  return sections.find((s) => rva >= s.rva && rva < s.rva + s.bytes.length);
}

function checkEntry(entryRva: number, sections: readonly PeSectionInput[]): void {
  if (!Number.isInteger(entryRva) || entryRva < 0) throw new Error(`entry point RVA ${entryRva} is not a valid RVA`);
  const s = findSection(entryRva, sections);
  if (!s) throw new Error(`entry point RVA ${hex(entryRva)} is outside every section; point it into .text`);
  if (s.kind !== "text")
    throw new Error(`entry point RVA ${hex(entryRva)} is in ${s.kind} section ${s.name}, not in executable code`);
}

/** Validates the abs64 sites and returns them sorted. */
function checkSites(rvas: readonly number[], sections: readonly PeSectionInput[]): number[] {
  const sorted = [...rvas].sort((a, b) => a - b);
  sorted.forEach((rva, i) => {
    if (!Number.isInteger(rva) || rva < 0) throw new Error(`abs64 site RVA ${rva} is not a valid RVA`);
    const s = findSection(rva, sections);
    if (!s) throw new Error(`abs64 site at RVA ${hex(rva)} is outside every section`);
    if (s.kind === "bss")
      throw new Error(`abs64 site at RVA ${hex(rva)} is in zero-fill section ${s.name}, which has no bytes to patch`);
    if (rva + 8 > s.rva + s.bytes.length)
      throw new Error(`abs64 site at RVA ${hex(rva)} runs past the end of section ${s.name} (8-byte field)`);
    const before = sorted[i - 1];
    if (before !== undefined && rva - before < 8)
      throw new Error(
        before === rva
          ? `abs64 site at RVA ${hex(rva)} is listed twice`
          : `abs64 sites at RVA ${hex(before)} and ${hex(rva)} overlap (8-byte fields ${rva - before} bytes apart)`,
      );
  });
  return sorted;
}
