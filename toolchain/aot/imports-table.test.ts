// Imported functions in a table: call_indirect reaches a host import through an adapter from the internal convention
// to the System V call of imports (compile.ts); the AOT instance agrees with V8 on results, argument order and the
// signature check. (Imported globals and shared memories are covered by the spec suite's linking/imports files.)
import { describe, expect, it } from "vitest";
import { Trap } from "./abi.ts";
import { HostInstance } from "./host.ts";
import { I32, I64, ModuleBuilder, op } from "./testing/wasm-builder.ts";
import { WA } from "../../core/webassembly.ts";

describe("imports reached through the table", () => {
  it("call_indirect calls a host import with its arguments in order and its result zero-extended", () => {
    const b = new ModuleBuilder();
    b.importFunc("env", "mix", [I32, I64, I32], [I32]);
    b.importFunc("env", "wide", [], [I64]);
    const tMix = b.type([I32, I64, I32], [I32]);
    const tWide = b.type([], [I64]);
    b.setTable(3);
    b.elem(0, [0, 1]);
    // callmix(a, b, c, slot) = call_indirect (type mix) a b c slot
    b.func([I32, I64, I32, I32], [I32], [], [...op.get(0), ...op.get(1), ...op.get(2), ...op.get(3), 0x11, tMix, 0x00], "callmix");
    b.func([I32], [I64], [], [...op.get(0), 0x11, tWide, 0x00], "callwide");
    const w = b.build();
    const mix = (a: bigint, x: bigint, c: bigint) => BigInt.asUintN(32, a * 1000n + x * 10n + c + 0xffff_0000n);
    const inst = new HostInstance(w, { env: { mix, wide: () => 0x1234_5678_9abc_def0n } });
    const v8 = new WA.Instance(new WA.Module(w), {
      env: { mix: (a: number, x: bigint, c: number) => Number(BigInt.asIntN(32, mix(BigInt(a >>> 0), BigInt.asUintN(64, x), BigInt(c >>> 0)))), wide: () => 0x1234_5678_9abc_def0n },
    }).exports as Record<string, (...a: (number | bigint)[]) => number | bigint>;
    try {
      expect(inst.call("callmix", [1, 2n, 3, 0]).value).toBe(BigInt((v8.callmix!(1, 2n, 3, 0) as number) >>> 0));
      expect(inst.call("callmix", [1, 2n, 3, 0]).value).toBe(0xffff_0000n + 1000n + 20n + 3n);
      expect(inst.call("callwide", [1]).value).toBe(0x1234_5678_9abc_def0n);
      // The signature check still applies to the import's entry, and the empty slot traps.
      expect(inst.call("callmix", [1, 2n, 3, 1]).trap).toBe(Trap.SignatureMismatch);
      expect(inst.call("callwide", [2]).trap).toBe(Trap.NullFunction);
      expect(() => v8.callmix!(1, 2n, 3, 1)).toThrow();
    } finally {
      inst.dispose();
    }
  });
});
