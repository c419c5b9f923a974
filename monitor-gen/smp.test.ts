// The application processors' trampoline (monitor-gen/smp.ts) against GNU as: its 16- and 32-bit instructions are
// written as bytes (the encoder does 64-bit code only), so the same instructions are written here as assembly, in the
// right modes, assembled by GNU as and compared byte for byte; and the page's layout is checked (code fits before the
// GDT, the GDT's descriptors are the flat 32-bit code and data and the 64-bit code the far jumps name); and the
// layout of the schedule tables per processor count the monitor reads (emitScheduleTables).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Assembler } from "../toolchain/x64/index.ts";
import { MAX_PCPUS } from "./layout.ts";
import { CODE16, CODE32, type EmbeddedSchedule, emitScheduleTables, SCHED_ROW, TRAMPOLINE, trampolineBytes } from "./smp.ts";

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

describe("the schedule tables an image embeds (docs/specs/smp.md §2.1)", () => {
  const table = (rows: number): EmbeddedSchedule => ({ bytes: new Uint8Array(SCHED_ROW.first + rows * SCHED_ROW.size).fill(rows), rows: Array.from({ length: rows }, (_, p) => `row ${p}`) });
  it("lays out the count, one address per processor count (0 where core refused) and one text per row", () => {
    const a = new Assembler();
    emitScheduleTables(a, [null, table(2), table(3)]);
    const obj = a.finish();
    const rdata = obj.sections.findIndex((s) => s.name === ".rdata");
    const sym = (n: string): number => obj.symbols.find((s) => s.name === n && s.section === rdata)!.offset;
    const bytes = obj.sections[rdata]!.bytes;
    const d = new DataView(bytes.buffer, bytes.byteOffset);
    expect(d.getBigUint64(sym("g_sched_pcpus"), true)).toBe(3n);
    expect(sym("g_sched_tables")).toBe(sym("g_sched_pcpus") + 8);
    expect(sym("g_sched_texts")).toBe(sym("g_sched_tables") + 8 * MAX_PCPUS);
    // The tables' and texts' addresses are relocations (the image is relocated); the one core refused is a zero.
    const relocAt = new Set(obj.relocations.filter((r) => r.section === rdata).map((r) => r.offset));
    const tableSlots = Array.from({ length: MAX_PCPUS }, (_, k) => relocAt.has(sym("g_sched_tables") + 8 * k));
    expect(tableSlots).toEqual([false, true, true, ...Array(MAX_PCPUS - 3).fill(false)]);
    expect(d.getBigUint64(sym("g_sched_tables"), true)).toBe(0n);
    const textSlots = (k: number): boolean[] => Array.from({ length: MAX_PCPUS }, (_, p) => relocAt.has(sym("g_sched_texts") + 8 * (k * MAX_PCPUS + p)));
    expect(textSlots(1).filter(Boolean)).toHaveLength(2);
    expect(textSlots(2).filter(Boolean)).toHaveLength(3);
    // g_schedule is the first table core gave (here the one for two processors), 64-byte aligned.
    expect(sym("g_schedule") % 64).toBe(0);
    expect(bytes[sym("g_schedule")]).toBe(2);
  });

  it("refuses no table or more than the monitor's rows", () => {
    expect(() => emitScheduleTables(new Assembler(), [])).toThrow(/1 to 8 processors/);
    expect(() => emitScheduleTables(new Assembler(), Array(MAX_PCPUS + 1).fill(null))).toThrow(/1 to 8 processors, not 9/);
  });
});
