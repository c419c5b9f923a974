// Data disks for `uvt run --disk` (docs/specs/storage-channel.md): a blank raw image file of whole 512-byte sectors,
// created sparse and atomically (a temporary file in the same folder, fsynced, then renamed), so a failed or
// interrupted create never leaves a half-made file at the path. Bare-metal image layer (a raw disk has no FAT/GPT:
// the ESP is image/efi-image.ts's).
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export const SECTOR = 512;
/** The largest disk `uvt disk create` makes (1 TiB): a typo in the size should not fill a file system's metadata. */
export const MAX_DISK_BYTES = 1n << 40n;

export class DataDiskError extends Error {
  override name = "DataDiskError";
}

/** Creates a zero-filled (sparse) disk of `bytes` at `path`; refuses an existing file unless `force`. */
export function createDataDisk(path: string, bytes: bigint, opts: { force?: boolean } = {}): void {
  if (bytes <= 0n || bytes % BigInt(SECTOR) !== 0n) throw new DataDiskError(`a disk is a positive whole number of ${SECTOR}-byte sectors; ${bytes} bytes is not (try 64M)`);
  if (bytes > MAX_DISK_BYTES) throw new DataDiskError(`${bytes} bytes is more than the ${MAX_DISK_BYTES} bytes (1 TiB) uvt disk create makes`);
  if (existsSync(path) && !opts.force) throw new DataDiskError(`${path} exists: pass --force to replace it with a blank disk`);
  const dir = dirname(path);
  if (!existsSync(dir)) throw new DataDiskError(`the folder ${dir} does not exist: create it first`);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx", 0o644);
    ftruncateSync(fd, Number(bytes));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    const d = openSync(dir, "r");
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if (e instanceof DataDiskError) throw e;
    throw new DataDiskError(`cannot create ${path}: ${(e as Error).message}`);
  }
}
