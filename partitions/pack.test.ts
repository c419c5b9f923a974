// Tests of partition packing (partitions/pack.ts): the info page layout of docs/specs/image-layout.md and the window
// limits. Object merging is tested beside its code, toolchain/aot/merge-objects.test.ts.
import { describe, expect, it } from "vitest";
import { Assembler, eax } from "../toolchain/x64/index.ts";
import { INFO, WINDOW_LAYOUT, WINDOW } from "../monitor-gen/layout.ts";
import { fnv1a, packPartition } from "./pack.ts";
import { PROGRAM_ENTRY } from "./programs.ts";

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
    expect(d.getBigUint64(INFO.ownedBytes, true)).toBe(BigInt(WINDOW_LAYOUT.stackTop));
    expect(d.getBigUint64(INFO.slot(0), true)).toBe(WINDOW + BigInt(WINDOW_LAYOUT.slot(0)));
    // A server's slot stays 0 until the monitor connects the channel (the client may start later).
    expect(d.getBigUint64(INFO.slot(1), true)).toBe(0n);
    expect(d.getUint8(INFO.slot(0) + 8)).toBe(0);
    expect(d.getUint8(INFO.slot(1) + 8)).toBe(1);
    expect(Buffer.from(p.blob.subarray(INFO.slot(1) + 16, INFO.slot(1) + 23)).toString()).toBe("command");
    expect(p.entry).toBe(WINDOW + BigInt(WINDOW_LAYOUT.image));
  });

  it("refuses an image larger than the window, bad names and too many slots, saying what the limit is", () => {
    expect(() => packPartition(tiny(WINDOW_LAYOUT.imageMax), { name: "big", number: 1, slots: [] })).toThrow(/image is \d+ bytes, more than the window's 192512/);
    expect(() => packPartition(tiny(), { name: "has space", number: 1, slots: [] })).toThrow(/1–15 printable ASCII characters without spaces/);
    const slots = Array.from({ length: WINDOW_LAYOUT.maxSlots + 1 }, () => ({ role: "client" as const, peer: "io" }));
    expect(() => packPartition(tiny(), { name: "X", number: 1, slots })).toThrow(/17 channel slots, at most 16/);
  });

  it("FNV-1a matches the published test vectors", () => {
    expect(fnv1a(new Uint8Array())).toBe(0x811c9dc5);
    expect(fnv1a(Buffer.from("a"))).toBe(0xe40c292c);
    expect(fnv1a(Buffer.from("foobar"))).toBe(0xbf9cf968);
  });
});
