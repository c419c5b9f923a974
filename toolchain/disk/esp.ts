// The ESP disk image: a GPT disk with one EFI System Partition formatted FAT32/FAT16 holding the given files, built
// reproducibly from a seed and a fixed timestamp. The entry point of toolchain/disk for `uvt build`, the first-image
// builder and the QEMU tests. Layout: docs/specs/esp-disk.md.
import { writeFat, type FatFile, type FatType } from "./fat.ts";
import { SECTOR, writeGpt } from "./gpt.ts";
import { ESP_TYPE_GUID, seededGuid, seededU32 } from "./guid.ts";
import { SparseImage } from "./sparse.ts";

export interface EspImageOptions {
  /** Files to store, e.g. { path: "/EFI/BOOT/BOOTX64.EFI", data }. Directories are created as needed. */
  files: readonly FatFile[];
  /** Empty directories to create as well. */
  directories?: readonly string[];
  /** Whole image size in MiB (default 64; at least 7). */
  sizeMiB?: number;
  /** Seed for the disk GUID, partition GUID and volume ID (default "ultravisor"). */
  seed?: string;
  /** Timestamp of every directory entry (default 2020-01-01T00:00:00Z). */
  time?: Date;
  /** FAT volume label (default "ESP"; "NO NAME" for none). */
  label?: string;
}

export interface EspImageInfo {
  sizeBytes: number;
  /** Byte offset of the ESP in the image (for mtools' img@@OFFSET and dd). */
  partitionOffset: number;
  partitionFirstLba: number;
  partitionSectors: number;
  fatType: FatType;
  clusterBytes: number;
  freeClusters: number;
  diskGuid: string;
  partitionGuid: string;
  volumeId: number;
}

export const DEFAULT_SIZE_MIB = 64;
export const MIN_SIZE_MIB = 7;
export const DEFAULT_TIME = new Date(Date.UTC(2020, 0, 1));
const MIB_SECTORS = 2048;

/** Builds the image in memory as sparse regions (nothing written yet). */
export function buildEspImage(options: EspImageOptions): { image: SparseImage; info: EspImageInfo } {
  const sizeMiB = options.sizeMiB ?? DEFAULT_SIZE_MIB;
  if (!Number.isInteger(sizeMiB) || sizeMiB < MIN_SIZE_MIB)
    throw new Error(`image size ${sizeMiB} MiB: give a whole number of MiB, at least ${MIN_SIZE_MIB}`);
  if (sizeMiB > 2 * 1024 * 1024) throw new Error(`image size ${sizeMiB} MiB is over the 2 TiB this writer supports`);
  const seed = options.seed ?? "ultravisor";
  const total = sizeMiB * MIB_SECTORS;
  // The ESP runs from the first MiB boundary to the last one; the last MiB holds the backup GPT.
  const first = MIB_SECTORS;
  const sectors = total - 2 * MIB_SECTORS;
  const image = new SparseImage(total * SECTOR);
  const diskGuid = seededGuid(seed, "disk");
  const partitionGuid = seededGuid(seed, "esp");
  const volumeId = seededU32(seed, "volume");
  const fat = writeFat(image, first * SECTOR, sectors, options.files, {
    label: options.label ?? "ESP",
    volumeId,
    time: options.time ?? DEFAULT_TIME,
    hiddenSectors: first,
    directories: options.directories ?? [],
  });
  writeGpt(image, diskGuid, [
    { typeGuid: ESP_TYPE_GUID, uniqueGuid: partitionGuid, firstLba: first, lastLba: first + sectors - 1, name: "EFI System Partition" },
  ]);
  return {
    image,
    info: {
      sizeBytes: image.size,
      partitionOffset: first * SECTOR,
      partitionFirstLba: first,
      partitionSectors: sectors,
      fatType: fat.geometry.type,
      clusterBytes: fat.clusterBytes,
      freeClusters: fat.freeClusters,
      diskGuid,
      partitionGuid,
      volumeId,
    },
  };
}

/** Builds the image and writes it to `path` (sparse, via a temporary file and rename). */
export async function writeEspImage(path: string, options: EspImageOptions): Promise<EspImageInfo> {
  const { image, info } = buildEspImage(options);
  await image.writeTo(path);
  return info;
}
