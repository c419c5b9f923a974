// Regression tests for issue #23's memory-limit cases: limits the specification calls invalid are rejected before
// code generation (max < min, more than 65536 pages), memory.grow past the maximum returns -1, and a store whose
// address + offset lands near 4 GiB traps instead of writing past the reservation. Runs compiled code natively
// (host.ts) and checks V8 agrees.
import { describe, expect, it } from "vitest";
import { compileWasm } from "./compile.ts";
import { HostInstance } from "./host.ts";
import { Trap } from "./abi.ts";
import { CompileError } from "./validate.ts";
import { I32, ModuleBuilder, op } from "./testing/wasm-builder.ts";
import { WA } from "../../core/webassembly.ts";

/** grow(delta) -> old size; size() -> pages; store(addr, value) with the given offset; load(addr) likewise. */
function memModule(min: number, max: number | null, offset = 0): Uint8Array {
  const b = new ModuleBuilder();
  b.setMemory(min, max);
  b.func([I32], [I32], [], [...op.get(0), 0x40, 0x00], "grow");
  b.func([], [I32], [], [0x3f, 0x00], "size");
  b.func([I32, I32], [], [], [...op.get(0), ...op.get(1), ...op.mem(0x36, offset, 2)], "store");
  b.func([I32], [I32], [], [...op.get(0), ...op.mem(0x28, offset, 2)], "load");
  return b.build();
}

describe("memory limits (issue #23)", () => {
  it("rejects a maximum below the minimum, as V8 does", () => {
    const w = memModule(1, 0);
    expect(() => new WA.Module(w)).toThrow();
    expect(() => compileWasm(w)).toThrow(CompileError);
    expect(() => compileWasm(w)).toThrow(/size minimum must not be greater than maximum/);
  });

  it("rejects more than 65536 pages (4 GiB) in the minimum or the maximum", () => {
    for (const [min, max] of [[65537, null], [0, 65537], [65537, 65537]] as const) {
      const w = memModule(min, max);
      expect(() => new WA.Module(w)).toThrow();
      expect(() => compileWasm(w)).toThrow(/memory size must be at most 65536 pages \(4GiB\)/);
    }
    // The limit itself is valid.
    expect(compileWasm(memModule(0, 65536)).memory).toEqual({ minPages: 0, maxPages: 1024 });
  });

  it("memory.grow beyond the maximum returns -1 and leaves the size alone", () => {
    const inst = new HostInstance(memModule(1, 2));
    try {
      expect(inst.call("grow", [1000]).value).toBe(0xffffffffn);
      expect(inst.call("size", []).value).toBe(1n);
      expect(inst.call("grow", [1]).value).toBe(1n);
      expect(inst.call("size", []).value).toBe(2n);
      expect(inst.call("grow", [1]).value).toBe(0xffffffffn);
      // A delta with the top bit set is a huge unsigned page count, not a negative one.
      expect(inst.call("grow", [0x80000000]).value).toBe(0xffffffffn);
      expect(inst.call("grow", [0]).value).toBe(2n);
      // Past the old size but inside the maximum: writable now; one byte past the grown size: a trap, not a crash.
      expect(inst.call("store", [65600, 7]).trap).toBe(0);
      expect(inst.call("store", [2 * 65536 - 3, 7]).trap).toBe(Trap.MemoryOutOfBounds);
    } finally {
      inst.dispose();
    }
  });

  it("the embedder's page cap bounds memory.grow too (module maximum absent)", () => {
    const inst = new HostInstance(memModule(1, null), {}, { maxPages: 3 });
    try {
      expect(inst.call("grow", [3]).value).toBe(0xffffffffn);
      expect(inst.call("grow", [2]).value).toBe(1n);
      expect(inst.call("size", []).value).toBe(3n);
    } finally {
      inst.dispose();
    }
  });

  it("a store with offset 0x10000 near 4 GiB traps instead of landing past the reservation", () => {
    for (const offset of [0x10000, 0xffffffff, 0xfffffffc]) {
      const w = memModule(1, 1, offset);
      const v8 = new WA.Instance(new WA.Module(w), {}).exports as Record<string, (...a: number[]) => number>;
      const inst = new HostInstance(w);
      try {
        for (const addr of [0xffff0000, 0xfffffffc, 0xffffffff, 0x80000000, 0]) {
          expect(() => v8.store!(addr | 0, 1)).toThrow(/out of bounds/);
          expect(inst.call("store", [addr, 1]).trap).toBe(Trap.MemoryOutOfBounds);
          expect(inst.call("load", [addr]).trap).toBe(Trap.MemoryOutOfBounds);
        }
      } finally {
        inst.dispose();
      }
    }
  });

  it("the largest in-bounds access works and the next byte traps", () => {
    const inst = new HostInstance(memModule(1, 1, 0x10));
    try {
      expect(inst.call("store", [65536 - 4 - 0x10, 0x12345678]).trap).toBe(0);
      expect(inst.call("load", [65536 - 4 - 0x10]).value).toBe(0x12345678n);
      expect(inst.call("store", [65536 - 3 - 0x10, 1]).trap).toBe(Trap.MemoryOutOfBounds);
    } finally {
      inst.dispose();
    }
  });
});
