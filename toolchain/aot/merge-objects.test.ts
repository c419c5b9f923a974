// Tests of object merging (toolchain/aot/merge-objects.ts): merging two objects keeps each one's local labels apart
// while cross-object references resolve (checked by disassembling the linked bytes with GNU objdump).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Assembler, qword, rax } from "../x64/index.ts";
import { link } from "../x64/link.ts";
import { mergeObjects } from "./merge-objects.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-merge-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mergeObjects", () => {
  it("keeps both objects' local labels apart and resolves references across them (objdump oracle)", () => {
    // Each object refers to an anonymous label in its own .rdata: both become local symbols named .L<n>.
    const mk = (value: number, callee?: string): Assembler => {
      const a = new Assembler();
      const data = a.label();
      a.section(".rdata");
      a.bind(data);
      a.dq(value);
      a.section(".text");
      if (callee) a.bind(a.symbol(callee));
      a.mov(rax, qword(data));
      a.ret();
      return a;
    };
    const first = mk(0x1111);
    first.section(".text");
    first.call(first.symbol("second_fn"));
    const a = first.finish();
    const b = mk(0x2222, "second_fn").finish();
    const clash = a.symbols.filter((s) => s.name.startsWith(".L")).map((s) => s.name).filter((n) => b.symbols.some((t) => t.name === n));
    expect(clash.length, "both objects use the same local names (the case merging must handle)").toBeGreaterThan(0);
    const merged = mergeObjects(a, b, "b$");
    const bases = merged.sections.map((_, i) => 0x10000 * (i + 1));
    const linked = link(merged, bases);
    const second = Number(linked.symbols.get("second_fn")!);
    // The call in a's text lands on b's function; each mov reads its own object's constant.
    const f = join(dir, "a.bin");
    writeFileSync(f, linked.sections[0]!);
    const dis = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "--adjust-vma=0x10000", f], { encoding: "utf8" });
    expect(dis).toContain(`call   0x${second.toString(16)}`);
    const readAt = (sec: number, insnOffset: number): number => {
      const bytes = linked.sections[sec]!;
      const rel = new DataView(bytes.buffer, bytes.byteOffset).getInt32(insnOffset + 3, true);
      return bases[sec]! + insnOffset + 7 + rel;
    };
    const aData = readAt(0, 0);
    const bData = readAt(a.sections.length + b.sections.findIndex((s) => s.name === ".text"), 0);
    const value = (addr: number): bigint => {
      const i = bases.findIndex((base, k) => addr >= base && addr < base + 0x10000 && merged.sections[k]!.name === ".rdata");
      return new DataView(linked.sections[i]!.buffer).getBigUint64(addr - bases[i]!, true);
    };
    expect(value(aData)).toBe(0x1111n);
    expect(value(bData)).toBe(0x2222n);
  });
});
