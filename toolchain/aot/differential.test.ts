// Differential tests of the AOT compiler against V8: the random-program generator (≥ 10,000 programs per run), the
// hand-written corpus and every export of core.wasm, called with random arguments (fast-check). Results, traps and
// linear-memory bytes must match exactly.
import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Trap } from "./abi.ts";
import { ValType } from "./decode.ts";
import { fuzz } from "./fuzz.ts";
import { corpus } from "./testing/corpus.ts";
import { compareCall, compareMemory, describeMismatch, instantiateBoth } from "./testing/differential.ts";

const SEED = Number(process.env.UV_AOT_SEED ?? 20261121);

const argOf = (t: number) =>
  t === ValType.I64
    ? fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 63n - 1n))
    : fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }), fc.bigInt({ min: 0n, max: 300n }), fc.constantFrom(0n, 2n ** 31n, 2n ** 32n - 1n));

describe("AOT vs V8: random programs", () => {
  it("10,000 generated programs (100 modules × 100 functions, 3 calls each) agree", () => {
    const r = fuzz(SEED, 100, 100, 3, false);
    expect(r.failures.slice(0, 5)).toEqual([]);
    expect(r.programs).toBeGreaterThanOrEqual(10_000);
    // The generator must keep exercising both paths: most calls run to completion, and every trap kind occurs.
    expect(r.outcomes[0]! / r.calls).toBeGreaterThan(0.4);
    for (const t of [Trap.Unreachable, Trap.DivByZero, Trap.MemoryOutOfBounds, Trap.TableOutOfBounds, Trap.NullFunction, Trap.SignatureMismatch]) {
      expect(r.outcomes[t] ?? 0, `trap ${t} never happened`).toBeGreaterThan(0);
    }
  }, 120_000);
});

describe("AOT vs V8: corpus", () => {
  for (const m of corpus()) {
    it(`${m.name}: every export with random arguments`, () => {
      const pair = instantiateBoth(m.wasm, {}, 4);
      try {
        expect(compareMemory(pair)).toBeNull();
        for (const e of pair.aot.compiled.exports) {
          fc.assert(
            fc.property(fc.tuple(...e.params.map(argOf)), (args) => {
              const mm = compareCall(pair, { name: e.name, args: args as bigint[] });
              if (mm) throw new Error(describeMismatch(mm));
            }),
            { numRuns: 60, seed: SEED },
          );
        }
      } finally {
        pair.aot.dispose();
      }
    });
  }
});

describe("AOT vs V8: core.wasm", () => {
  const path = "out/core.wasm";
  it.skipIf(!existsSync(path))("compiles whole and every export agrees on random arguments", () => {
    const wasm = new Uint8Array(readFileSync(path));
    const decoder = (mem: () => Uint8Array, p: bigint) => {
      const m = mem();
      const at = Number(p);
      if (at < 4 || at > m.length) return "?";
      const len = m[at - 4]! | (m[at - 3]! << 8);
      return Buffer.from(m.subarray(at, at + len)).toString("utf16le");
    };
    let memOf: () => Uint8Array = () => new Uint8Array(0);
    const hw = {
      panic: (msg: bigint) => {
        throw new Error(`panic: ${decoder(memOf, msg)}`);
      },
      flush: () => undefined,
      mfence: () => undefined,
      pause: () => undefined,
    };
    const pair = instantiateBoth(wasm, { hw }, 160);
    memOf = () => new Uint8Array(pair.v8Memory!.buffer);
    let calls = 0;
    try {
      for (const e of pair.aot.compiled.exports) {
        fc.assert(
          fc.property(fc.tuple(...e.params.map(argOf)), (args) => {
            const mm = compareCall(pair, { name: e.name, args: args as bigint[] });
            calls++;
            if (mm) throw new Error(describeMismatch(mm));
          }),
          { numRuns: 25, seed: SEED },
        );
      }
    } finally {
      pair.aot.dispose();
    }
    expect(calls).toBe(pair.aot.compiled.exports.length * 25);
  }, 60_000);
});
