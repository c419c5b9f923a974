// Data disks for `uvt run --disk` (docs/specs/storage-channel.md): a blank raw image file of whole 512-byte sectors,
// created sparse and atomically (a temporary file in the same folder, fsynced, then renamed), so a failed or
// interrupted create never leaves a half-made file at the path. Bare-metal image layer (a raw disk has no FAT/GPT:
// the ESP is image/efi-image.ts's).
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, ftruncateSync, linkSync, lstatSync, openSync, renameSync, rmSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export const SECTOR = 512;
/** The largest disk `uvt disk create` makes (1 TiB): a typo in the size should not fill a file system's metadata. */
export const MAX_DISK_BYTES = 1n << 40n;

export class DataDiskError extends Error {
  override name = "DataDiskError";
  /** True when the system failed (no space, I/O error), not the request. */
  constructor(message: string, readonly system = false) {
    super(message);
  }
}

/**
 * Creates a zero-filled (sparse) disk of `bytes` at `path`; refuses an existing file (even one that appears while the
 * disk is made: the new file is linked in, which fails on an existing name) unless `force`, which replaces it.
 */
export function createDataDisk(path: string, bytes: bigint, opts: { force?: boolean } = {}): void {
  if (bytes <= 0n || bytes % BigInt(SECTOR) !== 0n) throw new DataDiskError(`a disk is a positive whole number of ${SECTOR}-byte sectors; ${bytes} bytes is not (try 64M)`);
  if (bytes > MAX_DISK_BYTES) throw new DataDiskError(`${bytes} bytes is more than the ${MAX_DISK_BYTES} bytes (1 TiB) uvt disk create makes`);
  if (!opts.force && lexists(path)) throw new DataDiskError(`${path} exists: pass --force to replace it with a blank disk`);
  const dir = dirname(path);
  if (!existsSync(dir)) throw new DataDiskError(`the folder ${dir} does not exist: create it first`);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  let fd: number | undefined;
  let made = false;
  try {
    fd = openSync(tmp, "wx", 0o644);
    made = true;
    ftruncateSync(fd, Number(bytes));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (opts.force) renameSync(tmp, path);
    else {
      linkSync(tmp, path); // fails with EEXIST if the name was taken meanwhile
      unlinkSync(tmp);
    }
    made = false;
    const d = openSync(dir, "r");
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    if (made) rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EEXIST") throw new DataDiskError(`${path} appeared while the disk was being made: pass --force to replace it`);
    throw new DataDiskError(`cannot create ${path}: ${err.message}`, true);
  }
}

/** Whether anything, a dangling symbolic link included, has the name `path`. */
function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
