// An initramfs under construction (toolchain/initramfs/, bottom layer): directories, files, symlinks and device
// nodes by absolute path, parents created on demand (the kernel's unpacker does not create missing parents), written
// as one cpio newc archive (cpio.ts, the only encoder) and gzip-compressed with node:zlib (CONFIG_RD_GZIP). The
// archive is reproducible: uid/gid and mtime are 0, inode numbers follow the order of entries, and gzip's header
// carries no time. docs/specs/linux-partition.md §3.
import { gzipSync } from "node:zlib";
import { badPath, type CpioEntry, writeNewc } from "./cpio.ts";

export class Initramfs {
  private readonly entries = new Map<string, CpioEntry>();

  /** "/bin/sh" → "bin/sh"; refuses paths the archive cannot hold. */
  private key(path: string): string {
    if (!path.startsWith("/")) throw new Error(`initramfs path '${path}' is not absolute (write '/${path}')`);
    const rel = path.replace(/^\/+/, "").replace(/\/+$/, "");
    const why = badPath(rel);
    if (why) throw new Error(`initramfs path '${path}' ${why}`);
    return rel;
  }

  private add(e: CpioEntry): this {
    const parts = e.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      const p = this.entries.get(parent);
      if (p === undefined) this.entries.set(parent, { path: parent, kind: "dir", mode: 0o755 });
      else if (p.kind !== "dir") throw new Error(`initramfs: '/${e.path}' needs '/${parent}' to be a directory, it is a ${p.kind}`);
    }
    const old = this.entries.get(e.path);
    if (old !== undefined && !(old.kind === "dir" && e.kind === "dir")) throw new Error(`initramfs: '/${e.path}' is already in the archive`);
    this.entries.set(e.path, e);
    return this;
  }

  dir(path: string, mode = 0o755): this {
    return this.add({ path: this.key(path), kind: "dir", mode });
  }

  file(path: string, data: Uint8Array | string, mode = 0o644): this {
    return this.add({ path: this.key(path), kind: "file", mode, data: typeof data === "string" ? new TextEncoder().encode(data) : data });
  }

  symlink(path: string, target: string): this {
    return this.add({ path: this.key(path), kind: "symlink", mode: 0o777, target });
  }

  device(path: string, kind: "char" | "block", major: number, minor: number, mode = 0o600): this {
    return this.add({ path: this.key(path), kind, mode, major, minor });
  }

  /** The uncompressed newc archive; parents precede children because a parent is added before its first child. */
  cpio(): Uint8Array {
    return writeNewc([...this.entries.values()]);
  }

  /** The archive compressed as the kernel reads it (gzip, level 9). */
  gzip(): Uint8Array {
    return new Uint8Array(gzipSync(this.cpio(), { level: 9 }));
  }
}
