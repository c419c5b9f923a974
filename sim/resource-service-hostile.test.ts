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
