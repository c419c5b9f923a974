// Tests of partition packing (partitions/pack.ts) and object merging (partitions/aot-guest.ts): the info page layout
// of docs/specs/image-layout.md, the window limits, and that merging two objects keeps each one's local labels apart
// while cross-object references resolve (checked by disassembling the linked bytes with GNU objdump).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Assembler, eax, qword, rax } from "../toolchain/x64/index.ts";
import { link } from "../toolchain/x64/link.ts";
import { INFO, WIN, WINDOW } from "../monitor-gen/layout.ts";
import { mergeObjects } from "./aot-guest.ts";
import { fnv1a, packPartition } from "./pack.ts";
import { PROGRAM_ENTRY } from "./programs.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-pack-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tiny(extraBytes = 0): Assembler {
  const a = new Assembler();
  a.bind(a.symbol(PROGRAM_ENTRY));
  a.mov(eax, 1).ret();
  if (extraBytes) {
    a.section(".data");
    a.zero(extraBytes);
  }
  return a;
}

describe("partition windows", () => {
  it("writes the info page: number, slots, name, owned bytes, each slot's address, role and peer", () => {
    const p = packPartition(tiny(), { name: "X", number: 5, slots: [{ role: "client", peer: "io" }, { role: "server", peer: "command" }] });
    const d = new DataView(p.blob.buffer);
    expect(d.getBigUint64(INFO.number, true)).toBe(5n);
    expect(d.getBigUint64(INFO.slots, true)).toBe(2n);
    expect(Buffer.from(p.blob.subarray(INFO.name, INFO.name + 2)).toString()).toBe("X\0");
    expect(d.getBigUint64(INFO.ownedBytes, true)).toBe(BigInt(WIN.stackTop));
    expect(d.getBigUint64(INFO.slot(0), true)).toBe(WINDOW + BigInt(WIN.slot(0)));
    // A server's slot stays 0 until the monitor connects the channel (the client may start later).
    expect(d.getBigUint64(INFO.slot(1), true)).toBe(0n);
    expect(d.getUint8(INFO.slot(0) + 8)).toBe(0);
    expect(d.getUint8(INFO.slot(1) + 8)).toBe(1);
    expect(Buffer.from(p.blob.subarray(INFO.slot(1) + 16, INFO.slot(1) + 23)).toString()).toBe("command");
    expect(p.entry).toBe(WINDOW + BigInt(WIN.image));
  });

  it("refuses an image larger than the window, bad names and too many slots, saying what the limit is", () => {
    expect(() => packPartition(tiny(WIN.imageMax), { name: "big", number: 1, slots: [] })).toThrow(/image is \d+ bytes, more than the window's 192512/);
    expect(() => packPartition(tiny(), { name: "has space", number: 1, slots: [] })).toThrow(/1–15 printable ASCII characters without spaces/);
    const slots = Array.from({ length: WIN.maxSlots + 1 }, () => ({ role: "client" as const, peer: "io" }));
    expect(() => packPartition(tiny(), { name: "X", number: 1, slots })).toThrow(/17 channel slots, at most 16/);
  });

  it("FNV-1a matches the published test vectors", () => {
    expect(fnv1a(new Uint8Array())).toBe(0x811c9dc5);
    expect(fnv1a(Buffer.from("a"))).toBe(0xe40c292c);
    expect(fnv1a(Buffer.from("foobar"))).toBe(0xbf9cf968);
  });
});

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
