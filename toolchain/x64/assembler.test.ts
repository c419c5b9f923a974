// Unit tests of the Assembler's bookkeeping around the encoder: labels and symbols, sections (bss included), alignment,
// relocation records for external and cross-section references, prefixes and misuse errors.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Assembler } from "./assembler.ts";
import { addr, dword, qword } from "./operands.ts";
import { eax, rax, rbx } from "./registers.ts";

describe("Assembler", () => {
  it("records symbols with final offsets, global flags and local names for cross-section anonymous labels", () => {
    const a = new Assembler();
    const f = a.here("f");
    a.global(f);
    const anon = a.label();
    a.jmp(anon).nops(300).bind(anon).ret();
    a.section(".data");
    const d = a.here("d");
    a.dq(addr(anon)).dd(7);
    a.section(".bss");
    a.zero(5).align(64);
    const z = a.here("z");
    a.zero(64);
    const obj = a.finish();
    expect(obj.sections.map((s) => [s.name, s.kind, s.bytes.length, s.align])).toEqual([
      [".text", "text", 5 + 300 + 1, 16], [".data", "data", 12, 16], [".bss", "bss", 128, 64],
    ]);
    expect(obj.symbols).toEqual([
      { name: "f", section: 0, offset: 0, global: true },
      { name: `.L#${anon.id}`, section: 0, offset: 305, global: false },
      { name: "d", section: 1, offset: 0, global: false },
      { name: "z", section: 2, offset: 64, global: false },
    ]);
    expect(obj.relocations).toEqual([{ section: 1, offset: 0, kind: "abs64", target: `.L#${anon.id}`, addend: 0 }]);
    expect(a.labelOffset(d)).toBe(0);
    expect(a.labelOffset(z)).toBe(64);
    expect(obj.sections[0]!.bytes[0]).toBe(0xe9);
  });

  it("emits relocations for external symbols: rel32 with tail, abs32, abs64", () => {
    const a = new Assembler();
    const ext = a.symbol("ext");
    a.call(ext).jmp(ext).jcc("ne", ext).mov(dword(ext, 8), 5).mov(eax, addr(ext, -4)).mov(rax, addr(ext));
    const obj = a.finish();
    expect(obj.relocations).toEqual([
      { section: 0, offset: 6, kind: "rel32", target: "ext", addend: 0 },
      { section: 0, offset: 12, kind: "rel32", target: "ext", addend: 0 },
      { section: 0, offset: 1, kind: "rel32", target: "ext", addend: 0 },
      { section: 0, offset: 18, kind: "rel32", target: "ext", addend: 8, tail: 4 },
      { section: 0, offset: 27, kind: "abs32", target: "ext", addend: -4 },
      { section: 0, offset: 33, kind: "abs64", target: "ext", addend: 0 },
    ]);
    expect(obj.symbols).toEqual([]);
  });

  it("routes emit() of branch mnemonics with a label to the relaxing branch methods", () => {
    const a = new Assembler();
    const l = a.here();
    a.emit("jmp", l).emit("jne", l).emit("call", l);
    expect(Array.from(a.finish().sections[0]!.bytes)).toEqual([0xeb, 0xfe, 0x75, 0xfc, 0xe8, 0xf7, 0xff, 0xff, 0xff]);
  });

  it("aligns code with NOPs and data with the fill byte, raising the section alignment", () => {
    const a = new Assembler();
    a.ret().align(8).ret();
    a.section(".data").db(1).align(32, 0xaa).db(2);
    const obj = a.finish();
    expect(Array.from(obj.sections[0]!.bytes)).toEqual([0xc3, 0x0f, 0x1f, 0x80, 0, 0, 0, 0, 0xc3]);
    expect(obj.sections[1]!.bytes.length).toBe(33);
    expect(obj.sections[1]!.bytes[31]).toBe(0xaa);
    expect(obj.sections[1]!.align).toBe(32);
  });

  it("pads with multi-byte NOPs that objdump decodes as NOPs of the requested total length", () => {
    const a = new Assembler();
    const lens = Array.from({ length: 20 }, (_, i) => i + 1);
    for (const n of lens) a.nops(n).int3();
    const bytes = a.finish().sections[0]!.bytes;
    const dir = mkdtempSync(join(tmpdir(), "uvt-nops-"));
    try {
      writeFileSync(join(dir, "n.bin"), bytes);
      const dump = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", join(dir, "n.bin")], { encoding: "utf8" });
      const insns = dump.split("\n").map((l) => l.split("\t")).filter((f) => f.length >= 3 && /^\s+[0-9a-f]+:$/.test(f[0]!)).map((f) => f[2]!.trim().split(/\s+/)[0]!);
      // Between int3s only nop/xchg ax,ax (66 90) appear, and the runs have the requested byte lengths.
      expect(insns.filter((m) => m !== "int3" && m !== "nop" && m !== "xchg" && m !== "data16")).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    let at = 0;
    for (const n of lens) {
      at += n;
      expect(bytes[at]).toBe(0xcc);
      at++;
    }
  });

  it("refuses misuse with messages that say what to do", () => {
    const a = new Assembler();
    a.label("x");
    expect(() => a.label("x")).toThrow(/already defined/);
    const l = a.here();
    expect(() => a.bind(l)).toThrow(/bound twice/);
    expect(() => a.section("waytoolongname")).toThrow(/1 to 8 bytes/);
    expect(() => a.section(".bss").mov(rax, rbx)).toThrow(/bss/);
    expect(() => a.db(1)).toThrow(/use zero/);
    expect(() => a.section(".text").align(3)).toThrow(/power of two/);
    expect(() => a.dw(70000)).toThrow(/does not fit in 2 byte/);
    expect(() => a.db(addr(l) as never)).toThrow(/db .*: only numbers, strings and byte arrays/);
    expect(() => a.section(".text").jne(rax as never)).toThrow(/jne rax: a conditional jump takes a label/);
    const b = new Assembler();
    b.jmp(b.label());
    expect(() => b.finish()).toThrow(/used but never bound/);
    const c = new Assembler();
    c.lock();
    expect(() => c.finish()).toThrow(/prefix is not followed/);
    const d = new Assembler();
    d.finish();
    expect(() => d.finish()).toThrow(/already called/);
    expect(() => d.ret()).toThrow(/finished/);
    expect(() => new Assembler().mov(qword(rax), 1).mov(qword({ base: rax, disp: 2 ** 31 }), 1)).toThrow(/displacement 2147483648 does not fit/);
  });
});
