// Oracle test of relocations and link.ts: a three-section program (cross-section RIP-relative operands with and without
// a trailing immediate, abs64/abs32 data, movabs of a symbol, call/jmp/jcc into another section) is assembled by us and
// linked by link.ts, and assembled by GNU as and linked by GNU ld at the same addresses; the section bytes must agree.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hex } from "./gas.ts";
import { link, LinkError } from "./link.ts";
import { parseAsm } from "./parse.ts";
import { Assembler } from "./assembler.ts";
import { addr, dword } from "./operands.ts";
import { eax, rax } from "./registers.ts";

const SOURCE = `.intel_syntax noprefix
.text
.globl start
start:
  lea rax, [rip+table]
  mov rcx, qword ptr [rip+table+8]
  mov dword ptr [rip+counter], 0x1234
  cmp byte ptr [rip+flag], 1
  add qword ptr [rip+ptrs-4], 100000
  movabs rdx, offset table
  call helper
  jmp helper
  jne helper
  je start
  ret
.data
table: .quad 1, 2, start, helper+16
ptrs: .long table, counter+4
counter: .long 0
flag: .byte 0
.section .text2,"ax"
helper: lea rax, [rip+start]
  call start
  mov eax, dword ptr [rip+flag]
  ret
`;

const BASES = [0x401000n, 0x403000n, 0x405000n];

describe("link.ts vs GNU ld", () => {
  it("patches every relocation like ld does at the same addresses", () => {
    const obj = parseAsm(SOURCE, "link.s").asm.finish();
    expect(obj.sections.map((s) => `${s.name}:${s.kind}`)).toEqual([".text:text", ".data:data", ".text2:text"]);
    const linked = link(obj, BASES);
    const dir = mkdtempSync(join(tmpdir(), "uvt-ld-"));
    try {
      writeFileSync(join(dir, "in.s"), SOURCE);
      execFileSync("as", ["--64", "-o", join(dir, "in.o"), join(dir, "in.s")]);
      execFileSync("ld", ["-o", join(dir, "out"), "-e", "start", "--section-start=.text=0x401000", "--section-start=.data=0x403000", "--section-start=.text2=0x405000", join(dir, "in.o")]);
      for (const [i, name] of [".text", ".data", ".text2"].entries()) {
        const bin = join(dir, `${name}.bin`);
        execFileSync("objcopy", ["-O", "binary", `--only-section=${name}`, join(dir, "out"), bin]);
        expect(`${name}: ${hex(linked.sections[i]!)}`).toBe(`${name}: ${hex(readFileSync(bin))}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // abs64 sites: movabs in .text, two .quad in .data.
    expect(linked.abs64.map((s) => s.section).sort()).toEqual([0, 1, 1]);
    expect(linked.symbols.get("helper")).toBe(0x405000n);
  });

  it("refuses undefined symbols and fields that do not fit, naming the place", () => {
    const a = new Assembler();
    a.mov(rax, addr(a.symbol("nowhere"))).mov(eax, dword(a.symbol("far_away")));
    const obj = a.finish();
    expect(() => link(obj, [0x1000])).toThrow(/undefined symbol 'nowhere' referenced at \.text\+0x2/);
    expect(link(obj, [0x1000], new Map([["nowhere", 5n], ["far_away", 0x2000n]])).sections[0]![2]).toBe(5);
    expect(() => link(obj, [0x1000], new Map([["nowhere", 5n], ["far_away", 0x200000000n]]))).toThrow(LinkError);
    const b = new Assembler();
    b.section(".data").dd(addr(b.here("x")));
    expect(() => link(b.finish(), [0, 0x100000000n])).toThrow(/abs32 value 0x100000000 for 'x' at \.data\+0x0 does not fit/);
    expect(() => link(obj, [])).toThrow(/1 sections but 0 base addresses/);
  });
});
