// Whole-or-nothing file writes for the build outputs (BOOTX64.EFI, symbol maps, `uvt asm` binaries and listings):
// the data goes to a temporary file beside the target and is renamed over it, so a reader never sees half a file
// and a failed write leaves nothing behind. Disk images have their own sparse variant (toolchain/disk/sparse.ts).
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = writeFileTemp(path, data);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw failure(path, e);
  }
}

/**
 * The first half of writeFileAtomic: writes `data` to a temporary file beside `path` and returns its name, for
 * callers that rename several files into place only once all of them are written (image/efi-image.ts). On failure
 * nothing is left behind.
 */
export function writeFileTemp(path: string, data: Uint8Array | string): string {
  // Same directory, so the rename never crosses file systems; pid-qualified, so parallel builds do not collide.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    return tmp;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw failure(path, e);
  }
}

/** Names the target, not the temporary file, and keeps the errno code for callers that branch on it. */
export function failure(path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === undefined ? (e as Error).message : (REASONS[code] ?? code);
  return Object.assign(new Error(`cannot write ${path}: ${why}`), { code });
}

const REASONS: Record<string, string> = {
  ENOENT: "its directory does not exist",
  ENOTDIR: "a file is in the way of its directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
  ENOSPC: "no space left on the device",
  EROFS: "read-only file system",
};
