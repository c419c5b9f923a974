// The PE reader against GNU objdump on images GNU ld produced (so the reader is not only checked against our own
// writer): header fields, section table and base relocations must agree; truncated or foreign files are refused.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { objdumpPrivate, objdumpSections } from "./objdump.ts";
import { readPe } from "./read.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-peread-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("readPe on an ld-linked EFI application", () => {
  const s = join(dir, "a.s");
  writeFileSync(
    s,
    `.text
.globl start
start: movabs $p1, %rax
  movabs $p2, %rbx
  ret
.section .rodata
p1: .quad start
.data
p2: .quad p1, p2
.fill 5000, 1, 1
p3: .quad p3
.bss
.lcomm buf, 9000
`,
  );
  execFileSync("as", [s, "-o", join(dir, "a.o")]);
  const efi = join(dir, "a.efi");
  execFileSync("ld", ["-m", "i386pep", "--subsystem", "10", "-e", "start", "-pie", join(dir, "a.o"), "-o", efi]);
  const pe = readPe(readFileSync(efi));
  const dump = objdumpPrivate(efi);

  it("reads the header fields objdump prints", () => {
    expect(pe.imageBase).toBe(dump.fields.get("ImageBase"));
    expect(BigInt(pe.entryRva)).toBe(dump.fields.get("AddressOfEntryPoint"));
    expect(BigInt(pe.sizeOfImage)).toBe(dump.fields.get("SizeOfImage"));
    expect(BigInt(pe.subsystem)).toBe(dump.fields.get("Subsystem"));
    expect(BigInt(pe.dllCharacteristics)).toBe(dump.fields.get("DllCharacteristics"));
    expect(pe.characteristics).toBe(dump.characteristics);
    expect(pe.dataDirectories.map((d) => [d.rva, d.size])).toEqual(dump.directories);
  });

  it("reads the section table", () => {
    const sections = objdumpSections(efi);
    expect(pe.sections.map((x) => x.name)).toEqual(sections.map((x) => x.name));
    pe.sections.forEach((x, i) => {
      expect(pe.imageBase + BigInt(x.rva)).toBe(sections[i]!.vma);
      expect(x.virtualSize).toBe(sections[i]!.size);
    });
  });

  it("reads the base relocations", () => {
    const want = dump.relocations.filter((r) => r.type !== "ABSOLUTE").map((r) => r.rva);
    expect(want.length).toBeGreaterThanOrEqual(5);
    expect(pe.baseRelocations.map((r) => r.rva)).toEqual(want);
    expect(pe.baseRelocations.every((r) => r.type === 10)).toBe(true);
  });

  it("refuses truncated and foreign files", () => {
    const file = readFileSync(efi);
    expect(() => readPe(file.subarray(0, 0x100))).toThrow(/not a complete PE file/);
    expect(() => readPe(readFileSync(join(dir, "a.o")))).toThrow(/no MZ signature/);
  });
});
