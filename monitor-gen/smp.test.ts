// The application processors' trampoline (monitor-gen/smp.ts) against GNU as: its 16- and 32-bit instructions are
// written as bytes (the encoder does 64-bit code only), so the same instructions are written here as assembly, in the
// right modes, assembled by GNU as and compared byte for byte; and the page's layout is checked (code fits before the
// GDT, the GDT's descriptors are the flat 32-bit code and data and the 64-bit code the far jumps name).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CODE16, CODE32, TRAMPOLINE, trampolineBytes } from "./smp.ts";

/** GNU as's bytes for `source` (its .text section). */
function gas(source: string): number[] {
  const dir = mkdtempSync(join(tmpdir(), "uv-smp-"));
  try {
    writeFileSync(join(dir, "t.s"), source);
    execFileSync("as", ["--32", "-o", join(dir, "t.o"), join(dir, "t.s")]);
    execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "t.o"), join(dir, "t.bin")]);
    return [...readFileSync(join(dir, "t.bin"))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the application processors' trampoline", () => {
  it("16-bit part: the bytes GNU as gives for the same instructions in .code16", () => {
    expect(CODE16).toEqual(gas(`.intel_syntax noprefix
.code16
cli
mov ax, cs
mov ds, ax
xor esi, esi
mov si, cs
shl esi, 4
lgdt [${TRAMPOLINE.gdtr}]
mov eax, cr0
or al, 1
mov cr0, eax
jmp fword ptr [${TRAMPOLINE.far32}]
`));
  });

  it("32-bit part: the bytes GNU as gives for the same instructions in .code32", () => {
    expect(CODE32).toEqual(gas(`.intel_syntax noprefix
.code32
mov eax, 0x10
mov ds, ax
mov es, ax
mov ss, ax
mov eax, cr4
or eax, 0x20
mov cr4, eax
mov eax, [esi + ${TRAMPOLINE.cr3}]
mov cr3, eax
mov ecx, 0xc0000080
rdmsr
or eax, [esi + ${TRAMPOLINE.efer}]
wrmsr
mov eax, cr0
or eax, 0x80000000
mov cr0, eax
jmp fword ptr [esi + ${TRAMPOLINE.far64}]
`));
  });

  it("the page: code before the GDT, the GDT's selectors 0x08/0x10/0x18 flat 32-bit code, data and 64-bit code", () => {
    const b = trampolineBytes();
    const d = new DataView(b.buffer);
    expect(TRAMPOLINE.code16 + CODE16.length).toBeLessThanOrEqual(TRAMPOLINE.code32);
    expect(TRAMPOLINE.code32 + CODE32.length).toBeLessThanOrEqual(TRAMPOLINE.gdt);
    const desc = (sel: number): { base: number; limit: number; access: number; flags: number } => {
      const v = d.getBigUint64(TRAMPOLINE.gdt + sel, true);
      const n = (s: bigint, w: bigint): number => Number((v >> s) & ((1n << w) - 1n));
      return { base: n(16n, 24n) | (n(56n, 8n) << 24), limit: n(0n, 16n) | (n(48n, 4n) << 16), access: n(40n, 8n), flags: n(52n, 4n) };
    };
    // access: present, ring 0, code (execute/read) or data (read/write); flags: G with D (32-bit) or L (64-bit).
    expect(desc(0x08)).toEqual({ base: 0, limit: 0xfffff, access: 0x9a, flags: 0xc });
    expect(desc(0x10)).toEqual({ base: 0, limit: 0xfffff, access: 0x92, flags: 0xc });
    expect(desc(0x18)).toEqual({ base: 0, limit: 0xfffff, access: 0x9a, flags: 0xa });
    expect(d.getUint16(TRAMPOLINE.gdtr, true)).toBe(31);
  });
});
