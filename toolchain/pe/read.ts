// A small PE32+ reader: headers, section table and base relocations. Used by the tests as a second view on what
// write.ts produced and by `uvt inspect`. Reads only what EFI applications use and says clearly what it refuses.
import { peChecksum } from "./checksum.ts";
import { COFF_HEADER_SIZE, DIR_BASE_RELOCATION, DOS_HEADER_SIZE, PE32PLUS_MAGIC, SECTION_HEADER_SIZE } from "./format.ts";
import { type BaseRelocation, decodeBaseRelocations } from "./relocs.ts";

export interface PeSectionInfo {
  name: string;
  virtualSize: number;
  rva: number;
  rawSize: number;
  fileOffset: number;
  characteristics: number;
}

export interface PeImage {
  machine: number;
  /** COFF characteristics. */
  characteristics: number;
  timestamp: number;
  imageBase: bigint;
  entryRva: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  sizeOfCode: number;
  sizeOfInitializedData: number;
  sizeOfUninitializedData: number;
  checksum: number;
  /** The checksum recomputed over the file; equal to `checksum` for a consistent image. */
  computedChecksum: number;
  subsystem: number;
  dllCharacteristics: number;
  dataDirectories: { rva: number; size: number }[];
  sections: PeSectionInfo[];
  baseRelocations: BaseRelocation[];
}

export function readPe(file: Uint8Array): PeImage {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const need = (end: number, what: string) => {
    if (end > file.length) throw new Error(`not a complete PE file: ${what} ends at byte ${end}, file has ${file.length}`);
  };
  need(DOS_HEADER_SIZE, "DOS header");
  if (file[0] !== 0x4d || file[1] !== 0x5a) throw new Error("not a PE file: no MZ signature at offset 0");
  const pe = view.getUint32(0x3c, true);
  need(pe + 4 + COFF_HEADER_SIZE, "COFF header");
  if (view.getUint32(pe, true) !== 0x00004550) throw new Error(`not a PE file: no "PE\\0\\0" at offset 0x${pe.toString(16)}`);
  const coff = pe + 4;
  const sectionCount = view.getUint16(coff + 2, true);
  const optSize = view.getUint16(coff + 16, true);
  const o = coff + COFF_HEADER_SIZE;
  need(o + optSize, "optional header");
  const magic = view.getUint16(o, true);
  if (magic !== PE32PLUS_MAGIC)
    throw new Error(`optional header magic 0x${magic.toString(16)} is not PE32+ (0x20b); only 64-bit images are read`);
  const dirCount = view.getUint32(o + 108, true);
  if (112 + dirCount * 8 > optSize) throw new Error(`${dirCount} data directories do not fit the optional header`);
  const dataDirectories = Array.from({ length: dirCount }, (_, i) => ({
    rva: view.getUint32(o + 112 + 8 * i, true),
    size: view.getUint32(o + 116 + 8 * i, true),
  }));
  const table = o + optSize;
  need(table + sectionCount * SECTION_HEADER_SIZE, "section table");
  const sections: PeSectionInfo[] = Array.from({ length: sectionCount }, (_, i) => {
    const h = table + i * SECTION_HEADER_SIZE;
    const nameBytes = file.subarray(h, h + 8);
    const end = nameBytes.indexOf(0);
    const s = {
      name: new TextDecoder().decode(end >= 0 ? nameBytes.subarray(0, end) : nameBytes),
      virtualSize: view.getUint32(h + 8, true),
      rva: view.getUint32(h + 12, true),
      rawSize: view.getUint32(h + 16, true),
      fileOffset: view.getUint32(h + 20, true),
      characteristics: view.getUint32(h + 36, true),
    };
    need(s.fileOffset + s.rawSize, `section ${s.name} data`);
    return s;
  });
  const image: Omit<PeImage, "baseRelocations"> = {
    machine: view.getUint16(coff, true),
    characteristics: view.getUint16(coff + 18, true),
    timestamp: view.getUint32(coff + 4, true),
    imageBase: view.getBigUint64(o + 24, true),
    entryRva: view.getUint32(o + 16, true),
    sectionAlignment: view.getUint32(o + 32, true),
    fileAlignment: view.getUint32(o + 36, true),
    sizeOfImage: view.getUint32(o + 56, true),
    sizeOfHeaders: view.getUint32(o + 60, true),
    sizeOfCode: view.getUint32(o + 4, true),
    sizeOfInitializedData: view.getUint32(o + 8, true),
    sizeOfUninitializedData: view.getUint32(o + 12, true),
    checksum: view.getUint32(o + 64, true),
    computedChecksum: peChecksum(file, o + 64),
    subsystem: view.getUint16(o + 68, true),
    dllCharacteristics: view.getUint16(o + 70, true),
    dataDirectories,
    sections,
  };
  const relocDir = dataDirectories[DIR_BASE_RELOCATION];
  const baseRelocations =
    relocDir && relocDir.size > 0 ? decodeBaseRelocations(bytesAtRva(image, file, relocDir.rva, relocDir.size)) : [];
  return { ...image, baseRelocations };
}

/** The file bytes backing [rva, rva + length): throws if they are not all inside one section's raw data. */
export function bytesAtRva(
  image: Pick<PeImage, "sections">,
  file: Uint8Array,
  rva: number,
  length: number,
): Uint8Array {
  const s = image.sections.find((x) => rva >= x.rva && rva + length <= x.rva + Math.max(x.virtualSize, x.rawSize));
  if (!s) throw new Error(`RVA range 0x${rva.toString(16)}+${length} is not inside one section`);
  const start = rva - s.rva;
  if (start + length > s.rawSize)
    throw new Error(`RVA range 0x${rva.toString(16)}+${length} lies in the zero-fill part of ${s.name}, not in the file`);
  return file.subarray(s.fileOffset + start, s.fileOffset + start + length);
}
