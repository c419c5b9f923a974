// Tests of the simulator's boot (sim/host.ts Host.create), which runs the boot partition's own wasm
// (core/boot/assembly/boot.ts through core/boot-module.ts) in V8: the owners it leaves are checked against the rule of
// [0102]–[0109] computed here from the firmware map alone (usable → Available, listed but not usable → Boot, the
// first 4 MiB → Boot, unlisted → Missing, core's private page → Ultravisor), on a map whose ranges cut 4 MiB pages so that the module must split.
import { describe, expect, it } from "vitest";
import { Host } from "./host.ts";
import type { FirmwareRegion } from "../core/db-layout.ts";
import { KIND } from "../core/notation.ts";
import { ResourceService } from "./resource-service.ts";

const M = 1n << 20n;
const FIRMWARE: FirmwareRegion[] = [
  { base: 0n, length: 0x9f000n, type: "usable" },
  { base: 0x9f000n, length: 0x61000n, type: "reserved" },
  { base: 0x100000n, length: 0x7ee00000n - 0x100000n, type: "usable" },
  { base: 0x7ee00000n, length: 0x1201000n, type: "reserved" },
  // a hole (Missing) from 0x80001000 to 0x80400000
  { base: 0x80400000n, length: 0x4000000n + 0x3000n, type: "usable" },
];

function expected(ui: { avail: number; boot: number; missing: number; ultra: number; private: number }, a: bigint): number {
  if (a < 4n * M) return ui.boot;
  // Core's private 4 MiB page is the ultravisor's from the bootstrap on (memory-layout.md §5).
  if (a >> 22n === BigInt(ui.private)) return ui.ultra;
  const r = FIRMWARE.find((x) => a >= x.base && a < x.base + x.length);
  if (!r) return ui.missing;
  return r.type === "usable" ? ui.avail : ui.boot;
}

describe("the simulator's boot runs the boot module", () => {
  it("leaves every page of a firmware map that cuts 4 MiB pages with the owner the spec's rule gives, and its scratch zero", async () => {
    const host = await Host.create({ memory: 4n << 30n, firmware: FIRMWARE });
    const ui = host.db.indexPage();
    const region = BigInt(host.db.indexPage().index >> 10) << 22n;
    // Every 4 KiB page of the first 2.1 GiB and around each edge, but the database's own 4 MiB page (its pages).
    const edges = FIRMWARE.flatMap((r) => [r.base, r.base + r.length]);
    const pages = new Set<bigint>();
    for (const e of edges) for (let d = -8n; d < 8n; d++) if (e + d * 4096n >= 0n) pages.add(e + d * 4096n);
    for (let a = 0n; a < 0x84800000n; a += 64n * 4096n) pages.add(a);
    for (const a of pages) {
      if (a >= region && a < region + 4n * M) continue;
      expect(host.db.owner(a) >>> 0, `owner of 0x${a.toString(16)}`).toBe(expected(ui, a));
    }
    // The partial entries were split (the edges at 0x7ee00000 and 0x80001000 are not 4 MiB aligned).
    expect(host.view.leaf(0x80000000n).scale).toBe(1);
    // The module's inputs (the UEFI map and its record scratch) were in the boot partition's memory and are gone.
    expect(host.snapshot().subarray(0, 4 << 20).every((b) => b === 0)).toBe(true);
    // The boot's transactions are behind the backup point.
    expect(host.formatLog()).toEqual([]);
  });

  it("gives a reserved range to the ultravisor and refuses a range outside the database's page", async () => {
    const host = await Host.create({ memory: 64n << 30n, reserve: [[1024 + 2, 1024 + 17]] });
    const ui = host.db.indexPage();
    for (let p = 1024 + 2; p <= 1024 + 17; p++) expect(host.db.owner(BigInt(p) * 4096n) >>> 0).toBe(ui.ultra);
    expect(host.db.owner(BigInt(1024 + 100) * 4096n) >>> 0).toBe(ui.avail);
    await expect(Host.create({ memory: 64n << 30n, reserve: [[1024 + 1000, 2048 + 3]] })).rejects.toThrow(/one 4 MiB page/);
  });
});

describe("create-with-memory by the boot module", () => {
  it("gives the database the resource service's create gives for the same 4 KiB allotment from the ultravisor", async () => {
    const cfg = { memory: 64n << 30n, reserve: [[1024 + 100, 1024 + 199]] as Array<[number, number]> };
    const byModule = await Host.create(cfg);
    const byService = await Host.create(cfg);
    const ui = byModule.db.indexPage();
    const d = { name: "X", principal: "UserX", kind: KIND.Guest };
    const p = byModule.createFromPages(d, 1024 + 120, 12, ui.ultra);
    const q = new ResourceService(byService).create({ ...d, at: [{ map: byService.view.leaf(BigInt(1024 + 120) * 4096n).map, first: 120, last: 131 }], from: ui.ultra });
    expect(p).toBe(q);
    expect(byModule.diffDatabase(byModule.snapshot(), byService.snapshot())).toBeUndefined();
    for (let k = 0; k < 12; k++) expect(byModule.db.owner(BigInt(1024 + 120 + k) * 4096n) >>> 0).toBe(p);
    // A page the ultravisor does not own is refused, and nothing changes.
    const before = byModule.snapshot();
    expect(() => byModule.createFromPages({ ...d, name: "Y" }, 1024 + 300, 1, ui.ultra)).toThrow(/OWNER_MISMATCH|-8/);
    expect(byModule.diffDatabase(before, byModule.snapshot())).toBeUndefined();
  });
});
