// Differential test of the resource service's builders and the console-line reader on the two engines that run them
// (docs/specs/command-channel.md, "One resource service"): V8, as the simulator runs the boot module, and our AOT
// backend's native x86-64, as the machine runs it (toolchain/aot through koffi). Both start from the same database —
// a simulated host's memory with partitions in it — and every call, with random and hostile arguments (runs that name
// any map entry, caps too small, partitions that do not exist, random lines), must give the same result and leave
// the same bytes. It lives in sim/ because it builds the database with the simulator (sim may use every layer below).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootModuleWasm } from "../core/boot-module.ts";
import { compareCall, describeMismatch, instantiateBoth, type Pair } from "../toolchain/aot/testing/differential.ts";
import { Host } from "./host.ts";
import { ResourceService } from "./resource-service.ts";

const MB = 1n << 20n;
/** Bytes of memory both engines get: the host's first 12 MiB (Boot, the database's page, core's private page). */
const BYTES = 12 << 20;

let pair: Pair;
let ui = 0;
let req = 0;
let live: number[] = [];
let avail = 0;

beforeAll(async () => {
  const h = await Host.create({ memory: 64n * MB, order: 2 });
  const rs = new ResourceService(h);
  for (const [name, size] of [["A", 8n], ["B", 4n], ["C", 12n]] as const) live.push(rs.create({ name, size: size * MB }));
  rs.destroy("B");
  live = live.filter((p) => p !== rs.names().get("B"));
  ui = h.db.indexPage().index;
  avail = h.db.indexPage().avail;
  req = h.db.requestBuffer();
  const image = new Uint8Array(h.memory.buffer).slice(0, BYTES);
  pair = instantiateBoth(await bootModuleWasm(), { env: { db_submit: () => 0n, db_log_truncate: () => 0n } }, 256);
  const pages = BYTES / 65536;
  pair.aot.growMemory(pages - pair.aot.memoryPages);
  pair.v8Memory!.grow(pages - pair.v8Memory!.buffer.byteLength / 65536);
  pair.aot.memory.set(image);
  new Uint8Array(pair.v8Memory!.buffer).set(image);
}, 120_000);

afterAll(() => pair?.aot.dispose());

function call(name: string, ...args: number[]): void {
  const mm = compareCall(pair, { name, args: args.map((a) => BigInt.asUintN(64, BigInt(a))) });
  if (mm) throw new Error(describeMismatch(mm));
}

function poke(at: number, bytes: Uint8Array): void {
  pair.aot.memory.set(bytes, at);
  new Uint8Array(pair.v8Memory!.buffer).set(bytes, at);
}

const u32s = (xs: number[]): Uint8Array => new Uint8Array(new Uint32Array(xs).buffer);

describe("the boot module's builders and line reader: AOT native code and V8 agree", () => {
  it("on the database page choice, the grow, create from random runs and destroy of live and unknown partitions", () => {
    const run = fc.record({ map: fc.oneof(fc.constant(1024 + 18), fc.integer({ min: 0, max: 3071 })), first: fc.integer({ min: 0, max: 1100 }), last: fc.integer({ min: 0, max: 1100 }) });
    fc.assert(
      fc.property(
        fc.array(run, { maxLength: 12 }),
        fc.integer({ min: 0, max: 0x4000 }),
        fc.integer({ min: 0, max: 4096 }),
        fc.oneof(fc.constantFrom(...live), fc.integer({ min: 0, max: 3071 })),
        (runs, cap, hint, p) => {
          call("rs_alloc_db_page", ui, hint);
          call("rs_build_grow", ui, req, hint);
          poke(req + 0x7f00, u32s([0x41414141, 0, 0, 0, 0x72657355, 0, 0, 0, 16, 0]));
          poke(req + 0x4000, u32s(runs.flatMap((r) => [r.map, r.first, r.last])));
          call("rs_build_create", ui, req, cap, req + 0x7f00, req + 0x4000, runs.length, avail, hint);
          call("rs_created");
          call("rs_build_destroy", ui, req, cap, p, 0, 0);
          call("rs_build_destroy", ui, req, 0x8000, p, 0, 0);
        },
      ),
      { numRuns: 40, seed: 20261208 },
    );
  });

  it("on random console lines, read and checked against the database", () => {
    const word = fc.oneof(
      fc.constantFrom("create", "stop", "destroy", "restart", "A", "C", "G1", "console:A", "storage:C", "printer:A", "8M", "4M", "64G", "0K", "12M", ":", "console:"),
      fc.string({ maxLength: 10 }),
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 8 }), fc.integer({ min: 0, max: 1 << 23 }), (words, granule) => {
        const text = Buffer.from(words.join(" "), "latin1").subarray(0, 80);
        const at = req + 0x7b80;
        poke(at, new Uint8Array(128));
        poke(at, text);
        call("cl_parse", at, text.length, at + 128);
        call("cl_check", ui, at + 128, granule);
      }),
      { numRuns: 300, seed: 20261208 },
    );
  });

  it("the comparison can fail: a byte changed on one side is seen", () => {
    pair.aot.memory[req + 0x7b80] = 0x99;
    expect(() => call("cl_parse", req + 0x7b80, 1, req + 0x7c00)).toThrow(/differs/);
  });
});
