// The object → EFI application path with the real assembler and linker (toolchain/x64): binutils must see absolute
// and RIP-relative references in the finished image land on the addresses of the symbols they name.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addr, Assembler, dword, qword, rax, rbx, rcx } from "../x64/index.ts";
import { buildPe } from "./build.ts";
import { objdumpPrivate, objdumpSections } from "./objdump.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-pebuild-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function program() {
  const a = new Assembler();
  const entry = a.label("efi_main");
  a.global(entry);
  a.bind(entry);
  a.section(".rdata");
  const msg = a.here("msg");
  a.asciz("hello");
  a.section(".data");
  a.dq(0);
  const table = a.here("table");
  a.dq(addr(msg), addr(entry, 4));
  a.section(".bss");
  const counter = a.here("counter");
  a.zero(64);
  a.section(".text");
  a.mov(rax, addr(table));
  a.lea(rbx, qword(msg));
  a.mov(rcx, qword(table));
  a.add(dword(counter), 1);
  a.ret();
  return a.finish();
}

describe("buildPe with the x64 assembler and linker", () => {
  const obj = program();
  const built = buildPe(obj, { entry: "efi_main" });
  const path = join(dir, "p.efi");
  writeFileSync(path, built.file);
  const vma = new Map(objdumpSections(path).map((s) => [s.name, s.vma]));
  const base = objdumpPrivate(path).fields.get("ImageBase")!;
  // Where the linker put each symbol, as an RVA from objdump's image base.
  const rva = (name: string) => built.linked.symbols.get(name)! - built.layout.imageBase;
  const at = (name: string) => base + rva(name);

  it("places symbols where binutils sees the sections", () => {
    expect(at("msg")).toBe(vma.get(".rdata"));
    expect(at("table")).toBe(vma.get(".data")! + 8n);
    expect(at("counter")).toBe(vma.get(".bss"));
    expect(objdumpPrivate(path).fields.get("AddressOfEntryPoint")).toBe(rva("efi_main"));
  });

  it("patches absolute and RIP-relative references to those addresses", () => {
    const dis = execFileSync("objdump", ["-d", "-j", ".text", path], { encoding: "utf8" });
    const hexOf = (n: bigint) => `0x${n.toString(16)}`;
    expect(dis).toMatch(new RegExp(`movabs\\s+\\$${hexOf(at("table"))},%rax`));
    // objdump annotates each RIP-relative operand with the address it resolves to.
    const targets = [...dis.matchAll(/# (0x[0-9a-f]+)/g)].map((m) => BigInt(m[1]!));
    expect(targets).toEqual([at("msg"), at("table"), at("counter")]);
  });

  it("records a base relocation for each absolute address", () => {
    const sites = built.linked.abs64.map((s) => built.layout.sections[s.section]!.rva + s.offset).sort((x, y) => x - y);
    expect(sites).toHaveLength(3);
    const listed = objdumpPrivate(path).relocations.filter((r) => r.type === "DIR64").map((r) => r.rva);
    expect(listed).toEqual(sites);
  });

  it("refuses 32-bit absolute references", () => {
    const a = new Assembler();
    a.bind(a.label("efi_main"));
    a.section(".data");
    const x = a.here("x");
    a.dd(addr(x));
    expect(() => buildPe(a.finish(), { entry: "efi_main" })).toThrow(/abs32 reference to 'x' at \.data\+0x0/);
  });
});
