// The PE checksum against GNU ld: images linked by `ld -m i386pep` carry a CheckSum computed by binutils; our
// algorithm must reproduce it over the same bytes (odd and even file lengths, with and without a symbol table).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readPe } from "./read.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-pesum-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ldImage(name: string, source: string, extra: string[]): Uint8Array {
  const s = join(dir, `${name}.s`);
  const o = join(dir, `${name}.o`);
  const efi = join(dir, `${name}.efi`);
  writeFileSync(s, source);
  execFileSync("as", [s, "-o", o]);
  execFileSync("ld", ["-m", "i386pep", "--subsystem", "10", "-e", "start", "-pie", ...extra, o, "-o", efi]);
  return readFileSync(efi);
}

const program = (fill: number) => `
  .text
  .globl start
start:
  movabs $table, %rax
  ret
  .data
table: .quad table, start
  .fill ${fill}, 1, 0x5a
  .byte 0x7f
`;

describe("peChecksum", () => {
  const cases: [string, string, string[]][] = [
    ["small", program(3), []],
    ["stripped", program(4000), ["-s"]],
    ["large", program(70000), []],
    ["odd", program(1), ["-s"]],
  ];
  for (const [name, source, extra] of cases)
    it(`reproduces ld's CheckSum (${name})`, () => {
      const file = ldImage(name, source, extra);
      const pe = readPe(file);
      expect(pe.checksum).not.toBe(0);
      expect(pe.computedChecksum).toBe(pe.checksum);
    });

  it("the cases cover both file length parities", () => {
    const lengths = cases.map(([name]) => readFileSync(join(dir, `${name}.efi`)).length % 2);
    expect(new Set(lengths)).toEqual(new Set([0, 1]));
  });

  it("notices a changed byte", () => {
    const file = ldImage("flip", program(100), []);
    file[file.length - 3]! ^= 0x10;
    const pe = readPe(file);
    expect(pe.computedChecksum).not.toBe(pe.checksum);
  });
});
