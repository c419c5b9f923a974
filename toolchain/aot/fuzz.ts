// `npm run fuzz`: the long-running form of the AOT differential generator test. Generates modules of random
// programs (testing/gen.ts), runs every function in V8 and as AOT-compiled native code, and stops at the first
// mismatch, printing the seed and writing the module to out/aot-fuzz-SEED.wasm for reproduction.
// Usage: tsx toolchain/aot/fuzz.ts [--programs N] [--seed S] [--functions F]
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { generateModule, MEM_WINDOW, Rng } from "./testing/gen.ts";
import { compareCall, compareMemory, describeMismatch, instantiateBoth } from "./testing/differential.ts";
import { I64 } from "./testing/wasm-builder.ts";
import { TRAP_NAMES } from "./abi.ts";

export interface FuzzResult {
  programs: number;
  calls: number;
  /** Calls by outcome: 0 = returned, else the trap code. */
  outcomes: Record<number, number>;
  failures: string[];
}

/** Runs `modules` generated modules of `functions` programs each starting at `seed`; returns every mismatch found. */
export function fuzz(seed: number, modules: number, functions: number, callsPerFunction = 3, stopAtFirst = true): FuzzResult {
  const res: FuzzResult = { programs: 0, calls: 0, outcomes: {}, failures: [] };
  for (let k = 0; k < modules; k++) {
    const s = seed + k;
    const g = generateModule(s, { functions, size: 40 });
    let pair;
    try {
      pair = instantiateBoth(g.wasm, g.imports, 3);
    } catch (e) {
      res.failures.push(`seed ${s}: ${(e as Error).message}`);
      saveRepro(s, g.wasm);
      if (stopAtFirst) return res;
      continue;
    }
    const r = new Rng(s ^ 0x5a5a);
    try {
      // Data segments and the start function have run in both engines.
      const d0 = compareMemory(pair);
      if (d0) {
        res.failures.push(`seed ${s}: after instantiation: ${d0}`);
        saveRepro(s, g.wasm);
        if (stopAtFirst) return res;
      }
      for (const e of g.exports) {
        res.programs++;
        for (let c = 0; c < callsPerFunction; c++) {
          const args = e.params.map((t) => BigInt.asUintN(t === I64 ? 64 : 32, r.interesting(t)));
          const m = compareCall(pair, { name: e.name, args }, MEM_WINDOW, res.outcomes);
          res.calls++;
          if (m) {
            res.failures.push(`seed ${s}: ${describeMismatch(m)}`);
            saveRepro(s, g.wasm);
            if (stopAtFirst) return res;
          }
        }
      }
      const d = compareMemory(pair);
      if (d) {
        res.failures.push(`seed ${s}: after all calls: ${d}`);
        saveRepro(s, g.wasm);
        if (stopAtFirst) return res;
      }
    } finally {
      pair.aot.dispose();
    }
  }
  return res;
}

function saveRepro(seed: number, wasm: Uint8Array): void {
  mkdirSync("out", { recursive: true });
  const path = `out/aot-fuzz-${seed}.wasm`;
  writeFileSync(`${path}.tmp`, wasm);
  renameSync(`${path}.tmp`, path);
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log("usage: tsx toolchain/aot/fuzz.ts [--programs N (default 100000)] [--seed S (default: time)] [--functions F per module (default 100)]\n" +
      "Runs random integer wasm programs through V8 and the AOT compiler and stops at the first difference.");
    return;
  }
  const flag = (name: string, def: number): number => {
    const i = argv.indexOf(name);
    if (i < 0) return def;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) {
      console.error(`${name} needs a non-negative integer, got '${argv[i + 1] ?? ""}'`);
      process.exit(2);
    }
    return v;
  };
  const programs = flag("--programs", 100_000);
  const functions = Math.max(1, flag("--functions", 100));
  const seed = flag("--seed", Date.now() % 1_000_000_000);
  const modules = Math.ceil(programs / functions);
  const t0 = Date.now();
  let total = 0;
  const outcomes: Record<number, number> = {};
  const step = 10;
  for (let k = 0; k < modules; k += step) {
    const n = Math.min(step, modules - k);
    const r = fuzz(seed + k, n, functions);
    total += r.programs;
    for (const [k, v] of Object.entries(r.outcomes)) outcomes[Number(k)] = (outcomes[Number(k)] ?? 0) + v;
    if (r.failures.length) {
      console.error(r.failures.join("\n"));
      console.error(`reproduce: tsx toolchain/aot/fuzz.ts --seed ${seed + k} --programs ${functions} --functions ${functions}`);
      process.exit(1);
    }
    console.log(`${total} programs, seed ${seed}.. ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const mix = Object.entries(outcomes).map(([k, v]) => `${k === "0" ? "returned" : (TRAP_NAMES[Number(k)] ?? `trap ${k}`)}: ${v}`).join(", ");
  console.log(`done: ${total} programs, 0 mismatches (calls — ${mix})`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
