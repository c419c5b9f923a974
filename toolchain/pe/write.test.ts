// The PE writer against GNU objdump: headers, section table, contents and base relocations of images built from
// hand-made object files must read back (through binutils' independent pei-x86-64 reader) as what was asked for;
// malformed requests must fail with a clear message.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { link } from "../x64/link.ts";
import type { ObjectFile } from "../x64/object.ts";
import { pattern, sampleObject } from "./fixture.ts";
import { layoutPe, peInputFromObject, rvaOf } from "./layout.ts";
import { objdumpContents, objdumpPrivate, objdumpSections } from "./objdump.ts";
import { readPe } from "./read.ts";
import { type PeWriteInput, writePe } from "./write.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-pe-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function save(bytes: Uint8Array): string {
  const path = join(dir, `t${n++}.efi`);
  writeFileSync(path, bytes);
  return path;
}

function build(obj: ObjectFile, imageBase?: bigint) {
  const layout = layoutPe(obj, imageBase === undefined ? {} : { imageBase });
  const linked = link(obj, layout.sections.map((s) => s.address));
  const input = peInputFromObject(obj, layout, linked, "efi_main");
  return { layout, linked, input, file: writePe(input) };
}

describe("writePe against objdump", () => {
  const obj = sampleObject();
  const { layout, linked, input, file } = build(obj, 0x7f_0000_0000n);
  const path = save(file);
  const p = objdumpPrivate(path);
  const sections = objdumpSections(path);
  const sites = input.abs64Rvas.slice().sort((a, b) => a - b);

  it("writes a PE32+ EFI application header", () => {
    expect(p.fields.get("Magic")).toBe(0x20bn);
    expect(p.fields.get("Subsystem")).toBe(10n);
    expect(p.fields.get("ImageBase")).toBe(0x7f_0000_0000n);
    expect(p.fields.get("SectionAlignment")).toBe(0x1000n);
    expect(p.fields.get("FileAlignment")).toBe(0x200n);
    expect(p.fields.get("AddressOfEntryPoint")).toBe(BigInt(rvaOf(layout, 1, 0x10)));
    expect(p.fields.get("BaseOfCode")).toBe(BigInt(layout.sections[1]!.rva));
    expect(p.fields.get("NumberOfRvaAndSizes")).toBe(16n);
    expect(p.flags).toEqual(expect.arrayContaining([
        "executable",
        "large address aware",
        "line numbers stripped",
        "debugging information removed",
      ]),);
    expect(p.flags).not.toContain("relocations stripped");
    // Our own reader agrees with binutils on every field both print.
    const r = readPe(file);
    expect(r.machine).toBe(0x8664);
    expect(BigInt(r.characteristics)).toBe(BigInt(p.characteristics));
    expect(BigInt(r.sizeOfImage)).toBe(p.fields.get("SizeOfImage"));
    expect(BigInt(r.sizeOfHeaders)).toBe(p.fields.get("SizeOfHeaders"));
    expect(BigInt(r.sizeOfCode)).toBe(p.fields.get("SizeOfCode"));
    expect(BigInt(r.sizeOfInitializedData)).toBe(p.fields.get("SizeOfInitializedData"));
    expect(BigInt(r.sizeOfUninitializedData)).toBe(p.fields.get("SizeOfUninitializedData"));
    expect(BigInt(r.checksum)).toBe(p.fields.get("CheckSum"));
    expect(r.checksum).toBe(r.computedChecksum);
    expect(r.timestamp).toBe(0);
  });

  it("lays out the sections in kind order at the RVAs the layout promised", () => {
    expect(sections.map((s) => s.name)).toEqual([".text", ".rdata", ".data", ".bss", ".reloc"]);
    for (const s of sections.slice(0, 4)) {
      const i = obj.sections.findIndex((o) => o.name === s.name);
      expect(s.vma).toBe(layout.sections[i]!.address);
      expect(s.size).toBe(obj.sections[i]!.bytes.length);
      expect(s.vma % 0x1000n).toBe(0n);
    }
    const bss = sections.find((s) => s.name === ".bss")!;
    expect(bss.flags).not.toContain("CONTENTS");
    expect(sections.find((s) => s.name === ".text")!.flags).toContain("CODE");
    expect(sections.find((s) => s.name === ".rdata")!.flags).toContain("READONLY");
    for (const s of sections.filter((x) => x.name !== ".bss")) expect(s.fileOffset % 0x200).toBe(0);
    // SizeOfImage covers the last section, rounded to the section alignment.
    const last = sections[sections.length - 1]!;
    const end = Number(last.vma - 0x7f_0000_0000n) + last.size;
    expect(p.fields.get("SizeOfImage")).toBe(BigInt(Math.ceil(end / 0x1000) * 0x1000));
  });

  it("stores the linked contents byte for byte", () => {
    for (const name of [".text", ".rdata", ".data"]) {
      const i = obj.sections.findIndex((o) => o.name === name);
      expect(objdumpContents(path, name)).toEqual(linked.sections[i]);
    }
    // Each abs64 field holds its target's address where binutils places the target's section (plus the addend).
    for (const r of obj.relocations) {
      const sym = obj.symbols.find((x) => x.name === r.target)!;
      const vma = sections.find((x) => x.name === obj.sections[sym.section]!.name)!.vma;
      const bytes = objdumpContents(path, obj.sections[r.section]!.name);
      const got = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(r.offset, true);
      expect(got, `${r.target}+${r.addend} at ${obj.sections[r.section]!.name}+0x${r.offset.toString(16)}`).toBe(vma + BigInt(sym.offset + r.addend));
    }
  });

  it("lists a DIR64 base relocation for every abs64 site and nothing else", () => {
    const reloc = sections.find((s) => s.name === ".reloc")!;
    expect(p.directories[5]).toEqual([Number(reloc.vma - 0x7f_0000_0000n), reloc.size]);
    expect(p.relocations.filter((r) => r.type === "DIR64").map((r) => r.rva)).toEqual(sites);
    expect(p.relocations.every((r) => r.type === "DIR64" || r.type === "ABSOLUTE")).toBe(true);
    expect(readPe(file).baseRelocations.map((r) => r.rva)).toEqual(sites);
  });

  it("matches objdump's base relocations for random site sets", () => {
    const text = pattern(0x100, 9);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 0x5ff }), { maxLength: 60 }).map((s) => s.map((x) => x * 8)),
        (offsets) => {
          const data = pattern(0x3000, 5);
          const pe = writePe({
            sections: [
              { name: ".text", kind: "text", rva: 0x1000, bytes: text },
              { name: ".data", kind: "data", rva: 0x2000, bytes: data },
            ],
            entryRva: 0x1000,
            abs64Rvas: offsets.map((o) => 0x2000 + o),
          });
          const dump = objdumpPrivate(save(pe));
          const want = offsets.map((o) => 0x2000 + o).sort((a, b) => a - b);
          expect(dump.relocations.filter((r) => r.type === "DIR64").map((r) => r.rva)).toEqual(want);
          expect(dump.fields.get("CheckSum")).toBe(BigInt(readPe(pe).computedChecksum));
        },
      ),
      { numRuns: 12 },
    );
  });

  it("is reproducible", () => {
    expect(build(sampleObject(), 0x7f_0000_0000n).file).toEqual(file);
  });
});

describe("writePe rejects malformed input", () => {
  const text = pattern(0x40, 1);
  const base = (): PeWriteInput => ({
    sections: [
      { name: ".text", kind: "text", rva: 0x1000, bytes: text },
      { name: ".data", kind: "data", rva: 0x2000, bytes: pattern(0x100, 2) },
      { name: ".bss", kind: "bss", rva: 0x3000, bytes: new Uint8Array(0x100) },
    ],
    entryRva: 0x1000,
    abs64Rvas: [0x2000],
  });
  const cases: [string, (i: PeWriteInput) => void, RegExp][] = [
    ["a section name over 8 bytes", (i) => ((i.sections[1] as { name: string }).name = ".datalong"), /at most 8/],
    ["an entry point in .data", (i) => (i.entryRva = 0x2010), /in data section \.data, not in executable code/],
    ["an entry point outside every section", (i) => (i.entryRva = 0x1040), /outside every section/],
    ["overlapping abs64 sites", (i) => (i.abs64Rvas = [0x2000, 0x2004]), /overlap/],
    ["a duplicated abs64 site", (i) => (i.abs64Rvas = [0x2008, 0x2008]), /listed twice/],
    ["a site running past its section", (i) => (i.abs64Rvas = [0x20fc]), /runs past the end/],
    ["a site in zero-fill", (i) => (i.abs64Rvas = [0x3000]), /zero-fill/],
    ["an unaligned section RVA", (i) => ((i.sections[1] as { rva: number }).rva = 0x2100), /not a multiple of 0x1000/],
    ["overlapping sections", (i) => ((i.sections[1] as { rva: number }).rva = 0x1000), /overlaps section \.text/],
    ["a section over the headers", (i) => ((i.sections[0] as { rva: number }).rva = 0), /overlaps the headers/],
    ["an unaligned image base", (i) => (i.imageBase = 0x1234000n), /64 KiB multiple/],
    ["a caller-made .reloc", (i) => ((i.sections[1] as { name: string }).name = ".reloc"), /reserved/],
  ];
  for (const [what, mutate, message] of cases)
    it(`throws on ${what}`, () => {
      const i = base();
      mutate(i);
      expect(() => writePe(i)).toThrow(message);
    });

  it("accepts the unmutated input", () => {
    expect(() => writePe(base())).not.toThrow();
  });

  it("layoutPe rejects long names and impossible alignments", () => {
    const obj = sampleObject();
    obj.sections[0]!.name = ".verylongname";
    expect(() => layoutPe(obj)).toThrow(/".verylongname" is 13 bytes/);
    const obj2 = sampleObject();
    obj2.sections[2]!.align = 0x200000;
    expect(() => layoutPe(obj2)).toThrow(/only guarantees 4096/);
  });
});
