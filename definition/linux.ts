// The files of a Linux partition (docs/specs/linux-partition.md §1, §4, §5), checked when a definition is read for a
// build: the kernel is a bzImage of boot protocol 2.12 or later with a 64-bit entry, the initrd is there and is an
// archive the kernel can unpack, the command line fits the kernel's cmdline_size, and pref_address + init_size + the
// initrd fit in the partition's memory. Every refusal is a positioned problem at the key it is about (errors.ts), so
// a bad file is reported before anything is built or booted. Paths are relative to the definition file's folder
// (the working directory for a definition given as a value). Defaults come from toolchain/linux/.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { type BzImage, BzImageError, parseBzImage } from "../toolchain/linux/bzimage.ts";
import { findLinuxCache, LinuxCacheError } from "../toolchain/linux/cache.ts";
import { DEFAULT_CMDLINE, defaultInitramfs } from "../toolchain/linux/default-initramfs.ts";
import { appendsTscArg, LayoutError, type LinuxLayout, linuxLayout, TSC_ARG_ROOM } from "../toolchain/linux/layout.ts";
import type { Problem } from "./errors.ts";
import type { LoadedDefinition } from "./load.ts";

export interface LinuxInputs {
  /** The kernel file as resolved (the cached Debian kernel when the definition names none). */
  kernelPath: string;
  kernel: BzImage;
  /** The initrd file as resolved; undefined for the default initramfs. */
  initrdPath?: string;
  initrd: Uint8Array;
  cmdline: string;
  layout: LinuxLayout;
}

/** Magic numbers of what the Debian kernel unpacks as an initramfs: cpio newc/crc, and its compressors. */
const INITRD_MAGIC: ReadonlyArray<readonly [string, number[]]> = [
  ["cpio", [0x30, 0x37, 0x30, 0x37, 0x30]], ["gzip", [0x1f, 0x8b]], ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]], ["bzip2", [0x42, 0x5a, 0x68]], ["lzma", [0x5d, 0x00, 0x00]], ["lz4", [0x02, 0x21, 0x4c, 0x18]],
];

export function initrdFormat(data: Uint8Array): string | undefined {
  return INITRD_MAGIC.find(([, m]) => m.every((b, i) => data[i] === b))?.[0];
}

let defaultInitrd: { busybox: string; data: Uint8Array } | undefined;
/** The default initramfs, built once per process (it depends only on the cached busybox). */
function defaultInitrdBytes(): Uint8Array {
  const busybox = findLinuxCache().busybox;
  if (defaultInitrd?.busybox !== busybox) defaultInitrd = { busybox, data: defaultInitramfs({ busybox }).gzip() };
  return defaultInitrd.data;
}

function baseDir(d: LoadedDefinition): string {
  try {
    if (existsSync(d.file) && statSync(d.file).isFile()) return dirname(resolve(d.file));
  } catch {
    // a label, not a file: fall through
  }
  return process.cwd();
}

function readInput(path: string): Uint8Array | string {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${path}: no such file` : code === "EISDIR" ? `${path} is a directory` : `${path} cannot be read (${code ?? (e as Error).message})`;
  }
}

/**
 * The checked inputs of every Linux partition of `d` (by partition index), or the problems that refuse them. A
 * partition whose kind, behaviour or memory check.ts already refused is skipped here.
 */
export function linuxInputs(d: LoadedDefinition): { inputs: Map<number, LinuxInputs>; problems: Problem[] } {
  const inputs = new Map<number, LinuxInputs>();
  const problems: Problem[] = [];
  const base = baseDir(d);
  (d.def.partitions ?? []).forEach((p, i) => {
    const l = p.linux;
    if (!l || p.kind !== "guest" || p.memory === undefined) return;
    const at = ["partitions", i, "linux"];
    const bad = (path: ReadonlyArray<PropertyKey>, message: string, key = false): void => {
      problems.push(d.problem(path, message, key));
    };
    const before = problems.length;
    let kernelPath: string;
    try {
      kernelPath = l.kernel !== undefined ? (isAbsolute(l.kernel) ? l.kernel : resolve(base, l.kernel)) : findLinuxCache().kernel;
    } catch (e) {
      if (!(e instanceof LinuxCacheError)) throw e;
      bad(at, `no kernel named and the default is missing: ${e.message}`, true);
      return;
    }
    let kernel: BzImage | undefined;
    const kfile = readInput(kernelPath);
    if (typeof kfile === "string") bad([...at, "kernel"], `${kfile} (give a bzImage, relative to the definition's folder, or leave kernel out for Debian's cached kernel)`);
    else {
      try {
        kernel = parseBzImage(kfile);
      } catch (e) {
        if (!(e instanceof BzImageError)) throw e;
        bad([...at, "kernel"], `${kernelPath}: ${e.message}`);
      }
    }
    let initrd: Uint8Array | undefined;
    let initrdPath: string | undefined;
    if (l.initrd !== undefined) {
      initrdPath = isAbsolute(l.initrd) ? l.initrd : resolve(base, l.initrd);
      const f = readInput(initrdPath);
      if (typeof f === "string") bad([...at, "initrd"], `${f} (give an initramfs, relative to the definition's folder, or leave initrd out for the default)`);
      else if (initrdFormat(f) === undefined) bad([...at, "initrd"], `${initrdPath} is not an initramfs (a cpio newc archive, or one compressed with gzip, xz, zstd, bzip2, lzma or lz4)`);
      else initrd = f;
    } else {
      try {
        initrd = defaultInitrdBytes();
      } catch (e) {
        if (!(e instanceof LinuxCacheError)) throw e;
        bad(at, `no initrd named and the default initramfs needs busybox: ${e.message}`, true);
      }
    }
    const cmdline = l.cmdline ?? DEFAULT_CMDLINE;
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(cmdline)) bad([...at, "cmdline"], "control characters (a newline, a tab) in the command line: printable characters and spaces only");
    if (problems.length > before || !kernel || !initrd) return;
    try {
      const layout = linuxLayout(Number(p.memory), kernel, new TextEncoder().encode(cmdline).length, initrd.length, appendsTscArg(cmdline) ? TSC_ARG_ROOM : 0);
      inputs.set(i, { kernelPath, kernel, ...(initrdPath !== undefined ? { initrdPath } : {}), initrd, cmdline, layout });
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e;
      bad(e.problem === "cmdline-too-long" ? [...at, "cmdline"] : ["partitions", i, "memory"], e.message);
    }
  });
  return { inputs, problems };
}
