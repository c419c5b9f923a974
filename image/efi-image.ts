// Links an assembled program into an EFI application and packs it onto an ESP disk image: toolchain/x64 object →
// toolchain/pe (layout, relocation, PE32+ with DIR64 base relocations) → toolchain/disk (GPT + FAT ESP). Also writes
// the outputs of `uvt build` (BOOTX64.EFI, esp.img, symbol map, ELF symbol file for gdb) so that the four appear together, each whole, or not at all.
// Part of image/, the top bare-metal layer (docs/architecture.md, Layers).
import { mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { buildEspImage, type EspImageInfo } from "../toolchain/disk/esp.ts";
import type { SparseImage } from "../toolchain/disk/sparse.ts";
import { buildPe, type BuiltPe } from "../toolchain/pe/build.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { formatSymbolMap, type MapEntry, symbolEntries, symbolFile } from "./symbol-map.ts";
import { failure, writeFileTemp } from "./write-atomic.ts";

/** Where removable-media boot looks for the x86-64 loader (UEFI 2.10, 3.5.1.1). */
export const BOOT_PATH = "/EFI/BOOT/BOOTX64.EFI";

export interface EfiImage {
  pe: BuiltPe;
  /** The PE32+ file. */
  efi: Uint8Array;
  symbols: MapEntry[];
  /** Text symbol map (address, section, name). */
  map: string;
  /** ELF64 symbol file for gdb (BOOTX64.elf): the sections and symbols at the preferred image base. */
  elf: Uint8Array;
  esp: SparseImage;
  espInfo: EspImageInfo;
  /** Milliseconds per stage, for the build benchmark and `uvt build` output. */
  timings: { link: number; disk: number };
}

export interface EfiImageOptions {
  entry: string;
  /** Extra files on the ESP besides BOOTX64.EFI. */
  extraFiles?: Array<{ path: string; data: Uint8Array }>;
  espSizeMiB?: number;
  /** The isa-debug-exit code with which the image reports success; the map's header records it for `uvt run`. */
  successExit?: number;
}

export function linkEfiImage(obj: ObjectFile, opts: EfiImageOptions): EfiImage {
  const t0 = performance.now();
  const pe = buildPe(obj, { entry: opts.entry });
  const symbols = symbolEntries(obj, pe.layout);
  const map = formatSymbolMap(symbols, pe.layout.imageBase, "BOOTX64.EFI", opts.successExit);
  const elf = symbolFile(obj, pe, opts.entry);
  const t1 = performance.now();
  const { image, info } = buildEspImage({
    files: [{ path: BOOT_PATH, data: pe.file }, ...(opts.extraFiles ?? [])],
    ...(opts.espSizeMiB !== undefined ? { sizeMiB: opts.espSizeMiB } : {}),
  });
  const t2 = performance.now();
  return { pe, efi: pe.file, symbols, map, elf, esp: image, espInfo: info, timings: { link: t1 - t0, disk: t2 - t1 } };
}

export interface WrittenImage {
  efi: string;
  esp: string;
  map: string;
  elf: string;
}

/**
 * Writes BOOTX64.EFI, esp.img, BOOTX64.map and BOOTX64.elf into `dir` (created if needed) as one set: all four go to temporary
 * files beside their targets first and are renamed into place only when every one of them is written, so a failed
 * write (a full disk, an unwritable name) leaves the previous set untouched and no temporary file behind — never a
 * new loader beside an old disk image. The renames themselves can only fail on a target that is a directory, which
 * is checked before the first of them.
 */
export async function writeEfiImage(dir: string, image: EfiImage): Promise<WrittenImage> {
  makeDirs(dir);
  const out = { efi: join(dir, "BOOTX64.EFI"), esp: join(dir, "esp.img"), map: join(dir, "BOOTX64.map"), elf: join(dir, "BOOTX64.elf") };
  const temps: Array<{ tmp: string; path: string }> = [];
  try {
    temps.push({ tmp: writeFileTemp(out.efi, image.efi), path: out.efi });
    temps.push({ tmp: writeFileTemp(out.map, image.map), path: out.map });
    temps.push({ tmp: writeFileTemp(out.elf, image.elf), path: out.elf });
    temps.push({ tmp: await image.esp.writeTemp(out.esp), path: out.esp });
    for (const t of temps) {
      let st;
      try {
        st = statSync(t.path);
      } catch {
        continue;
      }
      if (st.isDirectory()) throw Object.assign(new Error(`cannot write ${t.path}: it is a directory`), { code: "EISDIR" });
    }
  } catch (e) {
    for (const t of temps) rmSync(t.tmp, { force: true });
    throw e;
  }
  // The disk image last: a reader that sees the new esp.img also sees the loader and map that belong to it.
  for (const t of temps) {
    try {
      renameSync(t.tmp, t.path);
    } catch (e) {
      for (const u of temps) rmSync(u.tmp, { force: true });
      throw failure(t.path, e);
    }
  }
  return out;
}

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdirSync never returns on some filesystems that refuse the
 * directory (e.g. under /proc), and a build must fail with the reason instead of hanging.
 */
function makeDirs(dir: string): void {
  const abs = resolve(dir);
  let st;
  try {
    st = statSync(abs);
  } catch {
    st = undefined;
  }
  if (st) {
    if (!st.isDirectory()) throw Object.assign(new Error(`${dir} exists and is not a directory`), { code: "ENOTDIR" });
    return;
  }
  const parent = dirname(abs);
  if (parent !== abs) makeDirs(parent);
  mkdirSync(abs);
}
