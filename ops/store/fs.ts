// The small filesystem the store writes through (layer: ops/store/): whole-file writes of new files, appends, fsync
// of a file, fsync of a directory, rename, unlink, mkdir, reads. Two implementations: NodeFs (the real disk, node:fs
// synchronous calls) and PowerCutFs (power-cut.ts, the crash test's model that loses whatever fsync did not make
// durable). Paths are relative to the store's root and use "/".
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync,
} from "node:fs";
import { join } from "node:path";

export interface Fs {
  read(path: string): Uint8Array | undefined;
  /** Creates or truncates `path` and writes `data` (not durable until fsync). */
  write(path: string, data: Uint8Array): void;
  /** Appends to `path`, creating it (not durable until fsync). */
  append(path: string, data: Uint8Array): void;
  /** Makes the file's data durable. */
  fsync(path: string): void;
  /** Makes a directory's entries (creations, renames, removals) durable. "" is the root. */
  fsyncDir(dir: string): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  mkdir(path: string): void;
  list(dir: string): string[];
  isDir(path: string): boolean;
}

export class NodeFs implements Fs {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  private p(path: string): string {
    return join(this.root, path);
  }

  read(path: string): Uint8Array | undefined {
    try {
      return readFileSync(this.p(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  private writeWith(path: string, data: Uint8Array, flags: string): void {
    const fd = openSync(this.p(path), flags, 0o644);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    } finally {
      closeSync(fd);
    }
  }

  write(path: string, data: Uint8Array): void {
    this.writeWith(path, data, "w");
  }

  append(path: string, data: Uint8Array): void {
    this.writeWith(path, data, "a");
  }

  fsync(path: string): void {
    const fd = openSync(this.p(path), "r+");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  fsyncDir(dir: string): void {
    // A directory opened read-only can be fsynced on Linux: that makes its entries durable.
    const fd = openSync(this.p(dir || "."), "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  rename(from: string, to: string): void {
    renameSync(this.p(from), this.p(to));
  }

  unlink(path: string): void {
    unlinkSync(this.p(path));
  }

  mkdir(path: string): void {
    if (!existsSync(this.p(path))) mkdirSync(this.p(path));
  }

  list(dir: string): string[] {
    try {
      return readdirSync(this.p(dir || ".")).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  isDir(path: string): boolean {
    try {
      return readdirSync(this.p(path)) !== undefined;
    } catch {
      return false;
    }
  }
}
