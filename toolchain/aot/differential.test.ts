// Differential tests of the AOT compiler against V8: the random-program generator (≥ 10,000 programs per run, and a
// check that they use every instruction of the accepted subset), the hand-written corpus and every export of
// core.wasm, called with random arguments (fast-check). Results, traps and linear-memory bytes must match exactly.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { buildCore, coreWasmPath } from "../../core/build.ts";
import { Trap } from "./abi.ts";
import { Reader, ValType, decodeModule } from "./decode.ts";
import { fuzz } from "./fuzz.ts";
import { MEMORY, NUMERIC, Op, newInstr, opName, readInstr } from "./opcodes.ts";
import { corpus } from "./testing/corpus.ts";
import { generateModule } from "./testing/gen.ts";
import { compareCall, compareMemory, describeMismatch, instantiateBoth } from "./testing/differential.ts";

// A new seed each run (so the suite keeps exploring), printed so that any failure reproduces with UV_AOT_SEED=….
const SEED = process.env.UV_AOT_SEED ? Number(process.env.UV_AOT_SEED) : ((Date.now() ^ (process.pid << 16)) >>> 0) % 2 ** 31;
if (!Number.isSafeInteger(SEED)) throw new Error(`UV_AOT_SEED must be an integer, got ${process.env.UV_AOT_SEED}`);
console.log(`AOT differential seed: ${SEED} (reproduce with UV_AOT_SEED=${SEED})`);
/** The accepted instructions that are neither pure numeric operators nor loads/stores (validate.ts). */
const CONTROL = [
  Op.Unreachable, Op.Nop, Op.Block, Op.Loop, Op.If, Op.Else, Op.End, Op.Br, Op.BrIf, Op.BrTable, Op.Return, Op.Call,
  Op.CallIndirect, Op.Drop, Op.Select, Op.SelectT, Op.LocalGet, Op.LocalSet, Op.LocalTee, Op.GlobalGet, Op.GlobalSet,
  Op.MemorySize, Op.MemoryGrow, Op.I32Const, Op.I64Const,
];

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
    for (const t of [Trap.Unreachable, Trap.DivByZero, Trap.IntOverflow, Trap.MemoryOutOfBounds, Trap.TableOutOfBounds, Trap.NullFunction, Trap.SignatureMismatch]) {
      expect(r.outcomes[t] ?? 0, `trap ${t} never happened`).toBeGreaterThan(0);
    }
  }, 120_000);

  it("the generator covers the whole accepted subset", () => {
    // Every opcode the validator accepts, plus the module-level features, must occur in the programs the test above
    // runs (the first ten modules of the same seeds suffice), so nothing in the subset goes untested by chance.
    const want = new Set([...NUMERIC.keys(), ...MEMORY.keys(), ...CONTROL].map(opName));
    const seen = new Set<string>();
    for (let k = 0; k < 10; k++) {
      const m = decodeModule(generateModule(SEED + k, { functions: 100, size: 40 }).wasm);
      if (m.datas.length) seen.add("data segment");
      if (m.start !== null) seen.add("start function");
      if (m.numImportedFuncs) seen.add("imported function");
      for (const g of m.globals) seen.add(`${g.mutable ? "mutable" : "immutable"} global`);
      for (const b of m.bodies) {
        const r = new Reader(m.bytes, b.start, b.end);
        const ins = newInstr();
        while (!r.done) {
          readInstr(r, ins);
          seen.add(opName(ins.op));
          if ((ins.op === Op.Block || ins.op === Op.Loop) && ins.a >= 0) seen.add(`${opName(ins.op)} with a type index`);
          if ((ins.op === Op.Block || ins.op === Op.Loop || ins.op === Op.If) && ins.a !== -0x40 && ins.a < 0) seen.add(`${opName(ins.op)} with a result`);
          if (ins.op === Op.SelectT) seen.add("typed select");
        }
      }
    }
    for (const f of ["data segment", "start function", "imported function", "mutable global", "immutable global", "typed select"]) want.add(f);
    for (const o of [Op.Block, Op.Loop]) want.add(`${opName(o)} with a type index`);
    for (const o of [Op.Block, Op.Loop, Op.If]) want.add(`${opName(o)} with a result`);
    expect([...want].filter((x) => !seen.has(x))).toEqual([]);
  });
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
  const path = coreWasmPath;
  // (Re)builds out/core.wasm when a core source changed, so these tests always see the current core.
  beforeAll(async () => {
    await buildCore();
  }, 120_000);
  it("compiles whole and every export agrees on random arguments", () => {
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

  it("channel workload: format, then random insert/remove/pump sequences leave identical memory", () => {
    const wasm = new Uint8Array(readFileSync(path));
    const hw = { panic: () => { throw new Error("panic"); }, flush: () => undefined, mfence: () => undefined };
    fc.assert(
      fc.property(
        fc.record({
          signal: fc.constantFrom(8, 16, 64, 100),
          slots: fc.integer({ min: 2, max: 40 }),
          ops: fc.array(fc.tuple(fc.constantFrom("insert", "remove", "pump"), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 50 })), { maxLength: 40 }),
        }),
        ({ signal, slots, ops }) => {
          const pair = instantiateBoth(wasm, { hw }, 160);
          try {
            const v8 = pair.v8.exports as Record<string, (...a: number[]) => number>;
            const old = pair.v8Memory!.grow(4);
            expect(pair.aot.growMemory(4)).toBe(old);
            const base = old * 65536;
            const size = v8.chan_format_bytes!(2, signal, slots) >>> 0;
            const same = (name: string, args: number[]) => {
              const m = compareCall(pair, { name, args: args.map((x) => BigInt(x >>> 0)) });
              if (m) throw new Error(describeMismatch(m));
            };
            same("chan_format", [base, size, 2, signal, slots, 4]);
            expect(v8.chan_check!(base, size)).toBeGreaterThanOrEqual(0);
            const src = base + size + 64;
            const dst = src + 256;
            for (const [op, q, n] of ops) {
              if (op === "insert") same("chan_insert", [base, size, q, src + n]);
              else if (op === "remove") same("chan_remove", [base, size, q, dst]);
              else same("chan_pump", [base, size, q, src, dst, n]);
            }
          } finally {
            pair.aot.dispose();
          }
        },
      ),
      { numRuns: 30, seed: SEED },
    );
  }, 60_000);
});
