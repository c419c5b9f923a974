// The cpio "newc" encoder (toolchain/initramfs/, bottom layer): the archive format the Linux kernel unpacks into its
// initial root file system (Documentation/driver-api/early-userspace/buffer-format.rst). Only this module writes
// cpio bytes; initramfs.ts builds the entry list and compresses it. Every header is "070701" and thirteen 8-digit
// ASCII-hex fields; the name (NUL-terminated) and the data are each padded to a multiple of 4 bytes; the archive
// ends with the entry "TRAILER!!!". Entries are refused, not repaired: a bad path or value throws before any byte.

export type CpioKind = "dir" | "file" | "symlink" | "char" | "block";

export interface CpioEntry {
  /** Path inside the archive, relative ("bin/busybox"): no leading "/", no "." or ".." components. */
  path: string;
  kind: CpioKind;
  /** Permission bits (0o7777 at most); the file-type bits come from `kind`. */
  mode: number;
  /** Regular files: the contents. */
  data?: Uint8Array;
  /** Symlinks: the target, stored as the entry's data. */
  target?: string;
  /** Device nodes: the device numbers. */
  major?: number;
  minor?: number;
}

/** The st_mode file-type bits (POSIX, as cpio stores them). */
export const S_IF: Record<CpioKind, number> = { dir: 0o040000, file: 0o100000, symlink: 0o120000, char: 0o020000, block: 0o060000 };

const MAGIC = "070701";
const TRAILER = "TRAILER!!!";
const U32 = 0xffff_ffff;

/** Why `path` cannot be an archive path, or undefined when it can. */
export function badPath(path: string): string | undefined {
  if (path.length === 0) return "is empty";
  if (path.startsWith("/")) return "starts with '/' (archive paths are relative: the kernel unpacks them under /)";
  if (path.includes("\0")) return "contains a NUL byte";
  if (path === TRAILER) return `is the end-of-archive name ${TRAILER}`;
  for (const part of path.split("/")) {
    if (part === "" || part === "." || part === "..") return `has an empty, '.' or '..' component`;
  }
  return undefined;
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > U32) throw new RangeError(`${what} ${v} is not a 32-bit unsigned integer`);
  return v;
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, "0");
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** One entry's header + name + data, as bytes. */
function record(fields: { ino: number; mode: number; nlink: number; size: number; rmaj: number; rmin: number }, name: Uint8Array, data: Uint8Array): Uint8Array {
  const f = fields;
  // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  const head = MAGIC + [f.ino, f.mode, 0, 0, f.nlink, 0, f.size, 0, 0, f.rmaj, f.rmin, name.length + 1, 0].map(hex8).join("");
  const namePad = pad4(head.length + name.length + 1);
  const out = new Uint8Array(head.length + name.length + 1 + namePad + data.length + pad4(data.length));
  out.set(new TextEncoder().encode(head), 0);
  out.set(name, head.length);
  out.set(data, head.length + name.length + 1 + namePad);
  return out;
}

/** The newc archive of `entries`, in the order given (parents must come before their children: the kernel does not create them). */
export function writeNewc(entries: readonly CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const seen = new Set<string>();
  const parts: Uint8Array[] = [];
  entries.forEach((e, i) => {
    const why = badPath(e.path);
    if (why) throw new Error(`cpio entry ${i}: path '${e.path}' ${why}`);
    if (seen.has(e.path)) throw new Error(`cpio entry ${i}: '${e.path}' is already in the archive (one entry per path)`);
    seen.add(e.path);
    if (!(e.kind in S_IF)) throw new Error(`cpio entry '${e.path}': unknown kind ${String(e.kind)}`);
    if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) throw new RangeError(`cpio entry '${e.path}': mode ${e.mode} is not permission bits (0..0o7777)`);
    const device = e.kind === "char" || e.kind === "block";
    if (device !== (e.major !== undefined && e.minor !== undefined)) {
      throw new Error(`cpio entry '${e.path}': ${device ? "a device node needs major and minor" : "only device nodes have major and minor"}`);
    }
    if ((e.kind === "file") !== (e.data !== undefined)) throw new Error(`cpio entry '${e.path}': ${e.kind === "file" ? "a file needs data" : "only files have data"}`);
    if ((e.kind === "symlink") !== (e.target !== undefined)) throw new Error(`cpio entry '${e.path}': ${e.kind === "symlink" ? "a symlink needs a target" : "only symlinks have a target"}`);
    if (e.target !== undefined && (e.target.length === 0 || e.target.includes("\0"))) throw new Error(`cpio entry '${e.path}': symlink target must be non-empty without NUL`);
    const data = e.data ?? (e.target !== undefined ? enc.encode(e.target) : new Uint8Array(0));
    u32(data.length, `cpio entry '${e.path}': size`);
    parts.push(record({
      ino: i + 1, mode: S_IF[e.kind] | e.mode, nlink: e.kind === "dir" ? 2 : 1, size: data.length,
      rmaj: u32(e.major ?? 0, `cpio entry '${e.path}': major`), rmin: u32(e.minor ?? 0, `cpio entry '${e.path}': minor`),
    }, enc.encode(e.path), data));
  });
  parts.push(record({ ino: 0, mode: 0, nlink: 1, size: 0, rmaj: 0, rmin: 0 }, enc.encode(TRAILER), new Uint8Array(0)));
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
