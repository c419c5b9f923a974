// The partition table of the ESP image: protective MBR at LBA 0, primary GPT header at LBA 1 with its 128-entry array
// at LBA 2–33, and the backup array and header in the last 33 sectors, with their CRC32s. Layout and field list:
// docs/specs/esp-disk.md. Called by esp.ts after the FAT writer has filled the partition.
import { crc32 } from "./crc32.ts";
import { encodeGuid } from "./guid.ts";
import type { SparseImage } from "./sparse.ts";

export const SECTOR = 512;
const ENTRY_COUNT = 128;
const ENTRY_SIZE = 128;
const ARRAY_SECTORS = (ENTRY_COUNT * ENTRY_SIZE) / SECTOR; // 32
const HEADER_SIZE = 92;

export interface GptPartition {
  typeGuid: string;
  uniqueGuid: string;
  firstLba: number;
  /** Inclusive. */
  lastLba: number;
  name: string;
  attributes?: bigint;
}

/** First and last LBA a partition may use on a disk of `totalSectors`. */
export function usableRange(totalSectors: number): { first: number; last: number } {
  return { first: 2 + ARRAY_SECTORS, last: totalSectors - 2 - ARRAY_SECTORS };
}

export function writeGpt(image: SparseImage, diskGuid: string, partitions: readonly GptPartition[]): void {
  if (image.size % SECTOR !== 0) throw new Error(`disk size ${image.size} is not a whole number of sectors`);
  const total = image.size / SECTOR;
  const { first, last } = usableRange(total);
  if (partitions.length > ENTRY_COUNT) throw new Error(`${partitions.length} partitions: GPT holds ${ENTRY_COUNT}`);

  const array = new Uint8Array(ENTRY_COUNT * ENTRY_SIZE);
  const av = new DataView(array.buffer);
  partitions.forEach((p, i) => {
    if (p.firstLba < first || p.lastLba > last || p.lastLba < p.firstLba)
      throw new Error(`partition ${i} LBAs ${p.firstLba}–${p.lastLba} are outside the usable ${first}–${last}`);
    const e = i * ENTRY_SIZE;
    array.set(encodeGuid(p.typeGuid), e);
    array.set(encodeGuid(p.uniqueGuid), e + 16);
    av.setBigUint64(e + 32, BigInt(p.firstLba), true);
    av.setBigUint64(e + 40, BigInt(p.lastLba), true);
    av.setBigUint64(e + 48, p.attributes ?? 0n, true);
    if (p.name.length > 36) throw new Error(`partition name "${p.name}" is over 36 UTF-16 units`);
    for (let c = 0; c < p.name.length; c++) av.setUint16(e + 56 + 2 * c, p.name.charCodeAt(c), true);
  });
  const arrayCrc = crc32(array);

  const header = (myLba: number, altLba: number, arrayLba: number): Uint8Array => {
    const h = new Uint8Array(SECTOR);
    const v = new DataView(h.buffer);
    h.set(new TextEncoder().encode("EFI PART"), 0);
    v.setUint32(8, 0x00010000, true);
    v.setUint32(12, HEADER_SIZE, true);
    v.setBigUint64(24, BigInt(myLba), true);
    v.setBigUint64(32, BigInt(altLba), true);
    v.setBigUint64(40, BigInt(first), true);
    v.setBigUint64(48, BigInt(last), true);
    h.set(encodeGuid(diskGuid), 56);
    v.setBigUint64(72, BigInt(arrayLba), true);
    v.setUint32(80, ENTRY_COUNT, true);
    v.setUint32(84, ENTRY_SIZE, true);
    v.setUint32(88, arrayCrc, true);
    v.setUint32(16, crc32(h.subarray(0, HEADER_SIZE)), true);
    return h;
  };

  image.add(0, protectiveMbr(total));
  image.add(SECTOR, header(1, total - 1, 2));
  image.add(2 * SECTOR, array);
  image.add((total - 1 - ARRAY_SECTORS) * SECTOR, array);
  image.add((total - 1) * SECTOR, header(total - 1, 1, total - 1 - ARRAY_SECTORS));
}

function protectiveMbr(totalSectors: number): Uint8Array {
  const mbr = new Uint8Array(SECTOR);
  const v = new DataView(mbr.buffer);
  const p = 446;
  // Status 0, CHS of LBA 1 (cylinder 0, head 0, sector 2), type 0xEE, end CHS saturated.
  mbr.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], p);
  v.setUint32(p + 8, 1, true);
  v.setUint32(p + 12, Math.min(totalSectors - 1, 0xffffffff), true);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}
