// Decoder and accepted-subset checks: malformed modules fail with a byte offset, anything outside the integer subset
// (floats, SIMD, bulk memory, multi-value returns, unknown hw intrinsics) is rejected with an error naming the
// function and the instruction, and V8 agrees about which inputs are valid wasm at all.
import { describe, expect, it } from "vitest";
import { compileWasm } from "./compile.ts";
import { DecodeError, decodeModule } from "./decode.ts";
import { CompileError, UnsupportedError } from "./validate.ts";
import { F32, I32, I64, ModuleBuilder, op } from "./testing/wasm-builder.ts";
import { corpus } from "./testing/corpus.ts";
import { WA } from "../../core/webassembly.ts";

function oneFunc(params: number[], results: number[], body: number[], name = "f"): Uint8Array {
  const b = new ModuleBuilder();
  b.setMemory(1, 1);
  b.func(params, results, [], body, name);
  return b.build();
}

describe("decoder", () => {
  it("decodes every section of the corpus modules", () => {
    for (const c of corpus()) {
      const m = decodeModule(c.wasm);
      expect(m.bodies.length).toBe(m.funcs.length);
      expect(m.exports.length).toBeGreaterThan(0);
      expect(new WA.Module(c.wasm)).toBeTruthy();
    }
    const d = decodeModule(corpus()[1]!.wasm);
    expect(d.start).not.toBeNull();
    expect(d.elems[0]!.funcs).toEqual([0, 1, 2, 3]);
  });

  it("rejects malformed input with the byte offset", () => {
    expect(() => decodeModule(new Uint8Array([1, 2, 3]))).toThrow(DecodeError);
    expect(() => decodeModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]))).toThrow(/version/);
    const good = oneFunc([], [I32], op.i32(1));
    expect(() => decodeModule(good.subarray(0, good.length - 3))).toThrow(/at byte 0x/);
    const bad = Uint8Array.from([...good.subarray(0, 8), 1, 0x80]);
    expect(() => decodeModule(bad)).toThrow(DecodeError);
  });

  it("reads LEB128 edge encodings the way V8 does", () => {
    for (const v of [0n, -1n, 63n, 64n, -64n, -65n, 2n ** 31n - 1n, -(2n ** 31n)]) {
      const w = oneFunc([], [I32], op.i32(v));
      const c = compileWasm(w);
      expect(c.exports[0]!.name).toBe("f");
    }
  });
});

describe("accepted subset", () => {
  it("rejects float instructions naming the function and the instruction", () => {
    const w = oneFunc([], [I32], [...op.i32(1), 0xb2 /* f32.convert_i32_s */, 0xa8 /* i32.trunc_f32_s */], "to_float");
    expect(() => compileWasm(w)).toThrow(UnsupportedError);
    expect(() => compileWasm(w)).toThrow(/"to_float" \(func 0\): unsupported instruction `f32\.convert_i32_s`/);
  });

  it("rejects float types in signatures and locals", () => {
    expect(() => compileWasm(oneFunc([F32], [], []))).toThrow(/f32 value type/);
    const b = new ModuleBuilder();
    b.func([], [], [F32], [], "loc");
    expect(() => compileWasm(b.build())).toThrow(/"loc".*f32 local/);
  });

  it("rejects bulk memory, SIMD and multi-value results", () => {
    expect(() => compileWasm(oneFunc([], [], [...op.i32(0), ...op.i32(0), ...op.i32(0), 0xfc, 11, 0]))).toThrow(/`memory\.fill`/);
    expect(() => compileWasm(oneFunc([], [], [0xfd, 12, ...new Array(16).fill(0), 0x1a]))).toThrow(/SIMD/);
    expect(() => compileWasm(oneFunc([], [I32, I32], [...op.i32(1), ...op.i32(2)]))).toThrow(/multiple results/);
  });

  it("rejects unknown hw imports and wrong intrinsic signatures; accepts the table's", () => {
    const mk = (name: string, params: number[], results: number[]) => {
      const b = new ModuleBuilder();
      b.importFunc("hw", name, params, results);
      b.func([], [], [], [], "f");
      return b.build();
    };
    expect(() => compileWasm(mk("teleport", [], []))).toThrow(/unknown hw intrinsic/);
    expect(() => compileWasm(mk("rdtsc", [], [I32]))).toThrow(/does not match the intrinsic/);
    expect(compileWasm(mk("rdtsc", [], [I64])).imports[0]!.intrinsic).toBe("rdtsc");
  });

  it("checks compile options: a constant memory base must fit a 32-bit displacement", () => {
    const w = oneFunc([], [I32], op.i32(1));
    expect(() => compileWasm(w, { memoryBase: 2 ** 31 })).toThrow(/memoryBase/);
    expect(() => compileWasm(w, { memoryBase: -1 })).toThrow(/memoryBase/);
    expect(compileWasm(w, { memoryBase: 0 }).memoryBase).toBe(0);
  });

  it("rejects invalid code that V8 rejects too", () => {
    const cases = [
      [...op.i32(1), 0x7c /* i64.add on i32 */],
      [...op.br(3)],
      [0x1a /* drop of nothing */, ...op.i32(1)],
      [...op.get(5), 0x1a, ...op.i32(0)],
    ];
    for (const body of cases) {
      const w = oneFunc([], [I32], body);
      expect(() => new WA.Module(w)).toThrow();
      expect(() => compileWasm(w)).toThrow(CompileError);
    }
  });
});

describe("validation before support (issue #23)", () => {
  const rejects = (w: Uint8Array, cls: typeof CompileError | typeof DecodeError, msg: RegExp) => {
    expect(() => new WA.Module(w)).toThrow();
    let err: unknown = null;
    try {
      compileWasm(w);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(cls);
    expect(err).not.toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(msg);
  };

  it("an invalid body is reported as invalid even when it also uses floats", () => {
    // f32.const 1; i32.const 1; f32.add → type mismatch, although f32 alone would be refused as unsupported.
    rejects(oneFunc([], [], [0x43, 0, 0, 0x80, 0x3f, ...op.i32(1), 0x92, 0x1a]), CompileError, /type mismatch/);
    // The same body, valid, is refused as unsupported naming the instruction.
    expect(() => compileWasm(oneFunc([], [], [0x43, 0, 0, 0x80, 0x3f, 0x43, 0, 0, 0x80, 0x3f, 0x92, 0x1a]))).toThrow(/unsupported instruction `f32\.const` .*\(floats: not supported/);
    const features = (body: number[]) => {
      try {
        compileWasm(oneFunc([], [], body));
      } catch (e) {
        return (e as UnsupportedError).feature;
      }
      return "accepted";
    };
    expect(features([...op.i32(0), ...op.i32(0), ...op.i32(0), 0xfc, 11, 0])).toBe("bulk memory");
    expect(features([0xd0, 0x70, 0xd1, 0x1a])).toBe("reference types");
  });

  it("duplicate export names, unknown indices and immutable globals are invalid", () => {
    const b = new ModuleBuilder();
    b.func([], [], [], [], "f");
    b.exportFunc("f", 0);
    rejects(b.build(), CompileError, /duplicate export name/);
    rejects(oneFunc([], [], [...op.call(7)]), CompileError, /unknown function 7/);
    rejects(oneFunc([], [], [...op.gget(3), 0x1a]), CompileError, /unknown global 3/);
    const g = new ModuleBuilder();
    g.global(I32, false, 1);
    g.func([], [], [], [...op.i32(2), ...op.gset(0)], "f");
    rejects(g.build(), CompileError, /global is immutable/);
  });

  it("bytes that are no instruction are malformed (illegal opcode), not unsupported", () => {
    rejects(oneFunc([], [], [0xff]), DecodeError, /illegal opcode/);
    rejects(oneFunc([], [], [0x3f, 0x01, 0x1a]), DecodeError, /zero byte expected/);
  });
});
