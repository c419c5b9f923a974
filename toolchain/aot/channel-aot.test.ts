// Differential test of the channel and schedule code on both engines that run core.wasm: V8 (the simulator) and the
// AOT backend's native x86-64 (bare metal, toolchain/aot, where hw.mfence is a locked read-modify-write barrier,
// ADR 0003). Random sequences of channel operations — including a peer scribbling over the headers — and random
// schedules must give the same results and the same memory bytes, call by call. It sits in toolchain/aot, above
// core, because it drives the AOT backend (core/ imports nothing of ours outside itself).
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCore, coreWasmPath } from "../../core/build.ts";
import { compareCall, compareMemory, describeMismatch, instantiateBoth, type Pair } from "./testing/differential.ts";

const CH = 0x10000; // channel
const SRC = 0x20000; // signal to insert
const DST = 0x21000; // removed signal
const SCHED = 0x22000; // requests, placements, table, control block
const WINDOW = 0x30000; // bytes compared after every call

let pair: Pair;

beforeAll(async () => {
  await buildCore();
  const hw = { panic: (): void => { throw new Error("core panic"); }, flush: () => undefined, mfence: () => undefined, pause: () => undefined };
  pair = instantiateBoth(new Uint8Array(readFileSync(coreWasmPath)), { hw }, 160);
}, 60_000);

afterAll(() => pair?.aot.dispose());

function call(name: string, ...args: (number | bigint)[]): void {
  const mm = compareCall(pair, { name, args: args.map((a) => BigInt.asUintN(64, BigInt(a))) }, WINDOW);
  if (mm) throw new Error(describeMismatch(mm));
}

function poke(at: number, bytes: number[]): void {
  pair.aot.memory.set(bytes, at);
  new Uint8Array(pair.v8Memory!.buffer).set(bytes, at);
}

type Op =
  | { k: "insert"; q: number; seed: number }
  | { k: "remove"; q: number }
  | { k: "pending"; q: number }
  | { k: "irq"; q: number }
  | { k: "pump"; q: number; n: number }
  | { k: "scribble"; off: number; value: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant("insert" as const), q: fc.integer({ min: 0, max: 3 }), seed: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("remove" as const), q: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("pending" as const), q: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("irq" as const), q: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("pump" as const), q: fc.integer({ min: 0, max: 3 }), n: fc.integer({ min: 0, max: 50 }) }) },
  // a hostile or buggy peer writes one byte anywhere in the header area
  { weight: 1, arbitrary: fc.record({ k: fc.constant("scribble" as const), off: fc.integer({ min: 0, max: 128 + 3 * 128 - 1 }), value: fc.integer({ min: 0, max: 255 }) }) },
);

describe("channels: AOT native code and V8 agree", () => {
  it("on random operation sequences over random geometries", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 2, max: 20 }),
        fc.array(op, { maxLength: 60 }),
        (nq, ss, slots, ops) => {
          call("chan_format", CH, 32768, nq, ss, slots, 4);
          poke(SRC, Array.from({ length: 256 }, (_, i) => (i * 13 + 5) & 0xff));
          for (const o of ops) {
            if (o.k === "insert") {
              poke(SRC, [o.seed]);
              call("chan_insert", CH, 32768, o.q, SRC);
            } else if (o.k === "remove") call("chan_remove", CH, 32768, o.q, DST);
            else if (o.k === "pending") call("chan_pending", CH, 32768, o.q);
            else if (o.k === "irq") call("chan_irq_received", CH, 32768, o.q);
            else if (o.k === "pump") call("chan_pump", CH, 32768, o.q, SRC, DST, o.n);
            else poke(CH + o.off, [o.value]);
          }
        },
      ),
      { numRuns: 60, seed: 20261121 },
    );
    expect(compareMemory(pair, WINDOW)).toBeNull();
  }, 60_000);
});

describe("schedule: AOT native code and V8 agree", () => {
  it("on random requests, evictions, installs and lookups", () => {
    const req = fc.record({
      partition: fc.integer({ min: 10, max: 14 }),
      duty: fc.integer({ min: 0, max: 17 }), // 0 and 17 are refused: both engines must refuse alike
      cstate: fc.integer({ min: 0, max: 4 }),
      flags: fc.integer({ min: 0, max: 7 }).map((x) => (x === 0 ? 1 : 0)),
      affinity: fc.integer({ min: 0, max: 9 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(req, { maxLength: 24 }), fc.bigInt({ min: 0n, max: 1000n }), (pcpus, rs, now) => {
        const requests = SCHED;
        const placements = SCHED + 0x400;
        const table = SCHED + 0x800;
        const ctl = SCHED + 0x1800;
        rs.forEach((r, i) => {
          const b = new Uint8Array(16);
          const d = new DataView(b.buffer);
          d.setUint32(0, 100 + i, true);
          d.setUint32(4, r.partition, true);
          b[8] = r.duty;
          b[9] = r.cstate;
          b[10] = r.flags;
          d.setUint32(12, r.affinity, true);
          poke(requests + i * 16, Array.from(b));
        });
        call("sched_compute", table, 0x1000, pcpus, requests, rs.length, 3, 900, placements);
        call("sched_ctl_init", ctl);
        call("sched_install", ctl, table, now);
        call("sched_install", ctl, table, now + 3n);
        for (let p = 0; p < pcpus + 1; p++) call("sched_lookup", ctl, p, now + BigInt(p * 7));
        call("sched_evict", table, 10 + (rs.length % 5));
        call("sched_table_at", ctl, now + 40n);
      }),
      { numRuns: 80, seed: 20261121 },
    );
  }, 60_000);
});
