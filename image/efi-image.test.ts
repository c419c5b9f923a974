// Tests of the image pipeline (image/) against GNU binutils and mtools: the symbol map agrees with what
// objdump reads from BOOTX64.EFI (entry point, section ranges, the DIR64 relocations of the first image's two
// pointers), and the ESP holds the very same file at the boot path.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objdumpPrivate, objdumpSections } from "../toolchain/pe/objdump.ts";
import { BOOT_PATH, writeEfiImage, type WrittenImage } from "./efi-image.ts";
import { buildFirstImage, type FirstImage } from "./first-image.ts";
import { parseSymbolMap } from "./symbol-map.ts";

let dir: string;
let img: FirstImage;
let out: WrittenImage;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "uv-image-test-"));
  img = buildFirstImage();
  out = await writeEfiImage(dir, img);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("first image files", () => {
  it("is an EFI application whose entry point is the map's efi_main", () => {
    const p = objdumpPrivate(out.efi);
    const map = parseSymbolMap(readFileSync(out.map, "utf8"));
    const base = p.fields.get("ImageBase")!;
    expect(p.fields.get("Subsystem")).toBe(10n);
    expect(base + p.fields.get("AddressOfEntryPoint")!).toBe(map.find((s) => s.name === "efi_main")!.address);
  });

  it("places every mapped symbol inside the section objdump reports for it", () => {
    const sections = objdumpSections(out.efi);
    const map = parseSymbolMap(readFileSync(out.map, "utf8"));
    expect(map.length).toBe(img.symbols.length);
    for (const s of map) {
      const sec = sections.find((x) => x.name === s.section);
      expect(sec, s.name).toBeDefined();
      expect(s.address >= sec!.vma && s.address < sec!.vma + BigInt(sec!.size), `${s.name} in ${s.section}`).toBe(true);
    }
    // Sorted by address, as the format promises.
    for (let i = 1; i < map.length; i++) expect(map[i]!.address >= map[i - 1]!.address).toBe(true);
  });

  it("carries DIR64 base relocations exactly at the two pointers the code loads at run time", () => {
    const p = objdumpPrivate(out.efi);
    const map = parseSymbolMap(readFileSync(out.map, "utf8"));
    const base = p.fields.get("ImageBase")!;
    const rvaOf = (n: string): number => Number(map.find((s) => s.name === n)!.address - base);
    expect(p.relocations.filter((r) => r.type === "DIR64").map((r) => r.rva).sort()).toEqual([rvaOf("banner_ptr"), rvaOf("print_ptr")].sort());
  });

  it("puts the same BOOTX64.EFI on the ESP at the removable-media boot path (read back with mtools)", () => {
    const fromDisk = execFileSync("mtype", ["-i", `${out.esp}@@${img.espInfo.partitionOffset}`, `::${BOOT_PATH}`]);
    expect(Buffer.compare(fromDisk, Buffer.from(readFileSync(out.efi)))).toBe(0);
  });

  it("writes BOOTX64.elf with the map's symbols at the map's addresses (nm) and the PE's code bytes (objdump -d)", () => {
    const map = parseSymbolMap(readFileSync(out.map, "utf8"));
    const nm = execFileSync("nm", [out.elf], { encoding: "utf8" }).trim().split("\n").map((l) => l.split(" "));
    expect(nm.map(([a, , n]) => `${a} ${n}`).sort()).toEqual(map.map((s) => `${s.address.toString(16).padStart(16, "0")} ${s.name}`).sort());
    expect(nm.find(([, , n]) => n === "efi_main")![1]).toMatch(/^[Tt]$/);
    // The same instruction bytes at efi_main in both files: objdump reads the PE and the ELF alike.
    const at = map.find((s) => s.name === "efi_main")!.address;
    const first = (f: string): string => {
      const d = execFileSync("objdump", ["-d", `--start-address=0x${at.toString(16)}`, `--stop-address=0x${(at + 16n).toString(16)}`, f], { encoding: "utf8" });
      return d.split("\n").filter((l) => /^\s+[0-9a-f]+:\t/.test(l)).map((l) => l.split("\t")[1]!.trim()).join(" ");
    };
    expect(first(out.elf)).not.toBe("");
    expect(first(out.elf)).toBe(first(out.efi));
  });
});
