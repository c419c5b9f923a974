// The resource service's destroy builder (core/boot/assembly/resource-service.ts rs_build_destroy) in V8 with hostile
// buffer arguments, on a database the simulator built: a `prefix` or `cap` whose sums wrap 32 bits must be refused
// (RS_TOO_BIG) with no byte written outside [req, req + cap) — before, a prefix of 2^32 − 64 made the builder write
// its records 48 bytes below `req`. It lives in sim/ because it builds the database with the simulator.
import { beforeAll, describe, expect, it } from "vitest";
import { bootModule, instantiateBootModule, type BootModule } from "../core/boot-module.ts";
import { Host } from "./host.ts";
import { ResourceService } from "./resource-service.ts";

const MB = 1n << 20n;
const BYTES = 12 << 20;
const RS_TOO_BIG = -1002;

let boot: BootModule;
let ui = 0;
let req = 0;
let p = 0;

beforeAll(async () => {
  const h = await Host.create({ memory: 64n * MB, order: 2 });
  const rs = new ResourceService(h);
  p = rs.create({ name: "A", size: 8n * MB });
  ui = h.db.indexPage().index;
  req = h.db.requestBuffer();
  boot = instantiateBootModule(await bootModule(), { db_submit: () => -1, db_log_truncate: () => -1 });
  boot.memory.grow(BYTES / 65536 - boot.memory.buffer.byteLength / 65536);
  new Uint8Array(boot.memory.buffer).set(new Uint8Array(h.memory.buffer).slice(0, BYTES));
}, 120_000);

describe("rs_build_destroy with hostile buffer arguments", () => {
  it("builds the honest teardown (the oracle that the partition is live and the call can succeed)", () => {
    expect(boot.rs.buildDestroy(ui, req, 0x8000, p, 0, 0)).toBeGreaterThan(0);
  });

  for (const [what, cap, prefix] of [
    ["a prefix that wraps dAt below req", 0x8000, 2 ** 32 - 64],
    ["a prefix beyond cap", 0x100, 0x1000],
    ["a cap that wraps req + cap", 2 ** 32 - 8, 0],
    ["a cap below the fixed records", 40, 0],
  ] as const) {
    it(`${what}: RS_TOO_BIG, nothing written outside [req, req + cap)`, () => {
      const mem = new Uint8Array(boot.memory.buffer);
      const before = mem.slice(req - 4096, req);
      const after = mem.slice(req + Math.min(cap, 0x8000), req + 0x9000);
      expect(boot.rs.buildDestroy(ui, req, cap, p, prefix, 0)).toBe(RS_TOO_BIG);
      expect(Buffer.from(mem.slice(req - 4096, req)).equals(Buffer.from(before)), "the page below req").toBe(true);
      expect(Buffer.from(mem.slice(req + Math.min(cap, 0x8000), req + 0x9000)).equals(Buffer.from(after)), "past req + cap").toBe(true);
    });
  }
});

describe("the builders against a hostile view of the database", () => {
  // An index page at page 20 of a fresh instance: its top map (page 21) pointing back at itself, an order outside
  // core's 2–5, or a top map page beyond the module's memory. Each builder must answer (a refusal or nothing to do),
  // not recurse without end (V8: "Maximum call stack size exceeded") or trap ("memory access out of bounds").
  let fresh: BootModule;
  beforeAll(async () => {
    fresh = instantiateBootModule(await bootModule(), { db_submit: () => -1, db_log_truncate: () => -1 });
    fresh.memory.grow(64 - fresh.memory.buffer.byteLength / 65536);
  });
  const cases: Array<[string, number, number, (i: number) => number]> = [
    ["order 0, a self map", 0, 21, (i) => (i === 0 ? (21 | 0x8000_0000) : 0)],
    ["order 2^32 - 1, a self map", 0xffff_ffff, 21, (i) => (i === 0 ? (21 | 0x8000_0000) : 0)],
    ["order 2, a top map beyond memory", 2, 0x3fff_0000, () => 0],
    ["order 3, every entry a self map", 3, 21, () => 21 | 0x8000_0000],
  ];
  for (const [what, order, top, entry] of cases) {
    it(`${what}: every builder answers`, () => {
      const v = new DataView(fresh.memory.buffer);
      new Uint8Array(fresh.memory.buffer, 20 * 4096, 2 * 4096).fill(0);
      v.setUint32(20 * 4096 + 12, top, true); // UI_MAP_LOW
      v.setUint32(20 * 4096 + 16, order, true); // UI_ORDER
      v.setUint32(20 * 4096 + 20, 21, true); // UI_ULTRA
      v.setUint32(20 * 4096 + 28, 7, true); // UI_AVAIL
      for (let i = 0; i < 1024; i++) v.setInt32(21 * 4096 + 4 * i, entry(i), true);
      const t0 = Date.now();
      expect(fresh.rs.allocDbPage(20, 0)).toBe(0);
      expect(fresh.rs.buildGrow(20, 30 * 4096, 0)).toBeLessThan(0);
      expect(fresh.rs.buildDestroy(20, 30 * 4096, 4096, 25, 0, 0)).toBeLessThan(0);
      expect(Date.now() - t0, "milliseconds").toBeLessThan(10_000);
    });
  }
});
