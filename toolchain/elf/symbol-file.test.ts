// Tests of the ELF64 symbol file writer (toolchain/elf) against GNU binutils as the oracle: readelf reads the header,
// section headers and symbol table back as written, nm classifies the symbols by their sections (T/R/D/B), objdump -t
// agrees on addresses and sizes, and objdump -d disassembles the code bytes at their address.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ElfSymbolFileInput, writeElfSymbolFile } from "./symbol-file.ts";

const BASE = 0x140000000n;
const input: ElfSymbolFileInput = {
  sections: [
    // push rbp; mov rbp, rsp; nop; ret — then a second routine: xor eax, eax; ret
    { name: ".text", kind: "text", address: BASE + 0x1000n, bytes: Uint8Array.of(0x55, 0x48, 0x89, 0xe5, 0x90, 0xc3, 0x31, 0xc0, 0xc3), size: 9, align: 16 },
    { name: ".rdata", kind: "rdata", address: BASE + 0x2000n, bytes: new TextEncoder().encode("hello\0"), size: 6, align: 8 },
    { name: ".data", kind: "data", address: BASE + 0x3000n, bytes: new Uint8Array(16), size: 16, align: 8 },
    { name: ".bss", kind: "bss", address: BASE + 0x4000n, bytes: new Uint8Array(0), size: 0x2000, align: 16 },
  ],
  symbols: [
    { name: "efi_main", section: 0, address: BASE + 0x1000n, global: true },
    { name: "helper", section: 0, address: BASE + 0x1006n, global: false },
    { name: "greeting", section: 1, address: BASE + 0x2000n, global: false },
    { name: "g_counter", section: 2, address: BASE + 0x3008n, global: true },
    { name: "g_stack", section: 3, address: BASE + 0x4000n, global: false },
  ],
  entry: BASE + 0x1000n,
};

let dir: string;
let file: string;
const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, [...args, file], { encoding: "utf8" });
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uv-elf-test-"));
  file = join(dir, "sym.elf");
  writeFileSync(file, writeElfSymbolFile(input));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ELF64 symbol file", () => {
  it("has the header readelf expects of an x86-64 executable", () => {
    const h = run("readelf", "-h", "-W");
    expect(h).toMatch(/Class:\s+ELF64/);
    expect(h).toMatch(/Type:\s+EXEC/);
    expect(h).toMatch(/Machine:\s+Advanced Micro Devices X86-64/);
    expect(h).toMatch(/Entry point address:\s+0x140001000/);
  });

  it("describes each section at its address, bss as NOBITS", () => {
    const s = run("readelf", "-S", "-W");
    const row = (name: string): string[] => {
      const line = s.split("\n").find((l) => new RegExp(`\\]\\s+\\${name}\\s`).test(l));
      expect(line, name).toBeDefined();
      return line!.replace(/^.*\]\s+/, "").trim().split(/\s+/);
    };
    // Name Type Address Off Size ES Flg ...
    expect(row(".text").slice(1, 3)).toEqual(["PROGBITS", "0000000140001000"]);
    expect(row(".text")[4]).toBe("000009");
    expect(row(".text")[6]).toBe("AX");
    expect(row(".rdata").slice(1, 3)).toEqual(["PROGBITS", "0000000140002000"]);
    expect(row(".data")[6]).toBe("WA");
    expect(row(".bss").slice(1, 3)).toEqual(["NOBITS", "0000000140004000"]);
    expect(row(".bss")[4]).toBe("002000");
    expect(row(".symtab")[1]).toBe("SYMTAB");
  });

  it("lists every symbol with readelf -s, locals before globals, sized to the next symbol", () => {
    const rows = run("readelf", "-s", "-W").split("\n").map((l) => l.trim().split(/\s+/)).filter((r) => /^\d+:$/.test(r[0]!) && r[7]);
    const by = new Map(rows.map((r) => [r[7]!, r]));
    expect([...by.keys()].sort()).toEqual(["efi_main", "g_counter", "g_stack", "greeting", "helper"]);
    expect(by.get("efi_main")!.slice(1, 5)).toEqual(["0000000140001000", "6", "FUNC", "GLOBAL"]);
    expect(by.get("helper")!.slice(1, 5)).toEqual(["0000000140001006", "3", "FUNC", "LOCAL"]);
    expect(by.get("g_counter")!.slice(1, 5)).toEqual(["0000000140003008", "8", "OBJECT", "GLOBAL"]);
    expect(by.get("g_stack")!.slice(1, 5)).toEqual(["0000000140004000", "8192", "OBJECT", "LOCAL"]);
    const binds = rows.map((r) => r[4]);
    expect(binds.lastIndexOf("LOCAL")).toBeLessThan(binds.indexOf("GLOBAL"));
  });

  it("gives nm the classes of a native program", () => {
    const lines = run("nm").trim().split("\n").sort();
    expect(lines).toEqual([
      "0000000140001000 T efi_main",
      "0000000140001006 t helper",
      "0000000140002000 r greeting",
      "0000000140003008 D g_counter",
      "0000000140004000 b g_stack",
    ].sort());
  });

  it("agrees with objdump -t and disassembles the code at its address", () => {
    const t = run("objdump", "-t");
    expect(t).toMatch(/^0000000140001006 l\s+F \.text\s+0000000000000003 helper$/m);
    expect(t).toMatch(/^0000000140001000 g\s+F \.text\s+0000000000000006 efi_main$/m);
    const d = run("objdump", "-d", "-M", "intel");
    expect(d).toMatch(/0000000140001000 <efi_main>:/);
    expect(d).toMatch(/140001001:\s+48 89 e5\s+mov\s+rbp,\s*rsp/);
    expect(d).toMatch(/0000000140001006 <helper>:/);
  });

  it("refuses a symbol in a section that does not exist", () => {
    expect(() => writeElfSymbolFile({ sections: [], symbols: [{ name: "x", section: 0, address: 0n, global: true }] })).toThrow(/section 0/);
  });
});
