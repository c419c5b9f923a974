// Tests of the resource service's transactions as the simulator runs them: built by the machine's own AssemblyScript
// (core/boot/assembly/resource-service.ts, run by V8 through Host.builders()), checked and applied by core.wasm.
// Covers [0223] create, [0224] destroy (memory back to Available, the map as before), the grow of [0202] when the
// 4 KiB pages run out, refusals that change nothing, and that our AOT compiles the same builders for the machine.
import { describe, expect, it } from "vitest";
import { Host } from "./host.ts";
import { ResourceService } from "./resource-service.ts";
import { bootModuleWasm } from "../core/boot-module.ts";
import { compileBootDb } from "../loader-efi/uv-boot-db.ts";
import { REQUEST_MAX } from "../core/database.ts";

const MB = 1n << 20n;

async function host(): Promise<{ h: Host; rs: ResourceService }> {
  const h = await Host.create({ memory: 64n * MB, order: 2 });
  return { h, rs: new ResourceService(h) };
}

/** The map as runs of equal entries: what must come back after a create and a destroy. */
const mapOf = (h: Host): string => JSON.stringify(h.view.runs(), (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

describe("resource service built by core's AssemblyScript, run by V8", () => {
  it("creates a partition with [0223]'s records and destroys it with [0224]'s: its memory back to Available, the map as before", async () => {
    const { h, rs } = await host();
    const ui = h.db.indexPage();
    const before = mapOf(h);
    const p = rs.create({ name: "Guest1", size: 8n * MB });
    const created = h.db.readLog().at(-1)!.ops;
    expect(created.map((o) => o.op)).toEqual(["changeOwner", "initialize", "changeOwner", ...created.slice(3).map(() => "changeOwner")]);
    expect(created[0]).toMatchObject({ from: ui.avail, to: ui.ultra });
    expect(created[1]).toMatchObject({ op: "initialize", partition: p, descriptor: { name: "Guest1", principal: "UserGuest1" } });
    expect(created[2]).toMatchObject({ from: ui.ultra, to: p });
    expect(h.view.ownedBytes().get(p)).toBe(8n * MB + 4096n);
    expect(mapOf(h)).not.toBe(before);

    rs.destroy("Guest1");
    const destroyed = h.db.readLog().at(-1)!.ops;
    expect(destroyed.at(-3)).toMatchObject({ op: "changeOwner", from: p, to: ui.ultra });
    expect(destroyed.at(-2)).toEqual({ op: "destroy", partition: p });
    expect(destroyed.at(-1)).toMatchObject({ op: "changeOwner", from: ui.ultra, to: ui.avail });
    for (const o of destroyed.slice(0, -3)) expect(o).toMatchObject({ op: "changeOwner", from: p, to: ui.avail });
    expect(h.view.ownedBytes().get(p)).toBeUndefined();
    expect(mapOf(h)).toBe(before);
    expect(rs.names().has("Guest1")).toBe(false);
    // The name is free again, and the same descriptor page is chosen (lowest first).
    expect(rs.create({ name: "Guest1", size: 8n * MB })).toBe(p);
  });

  it("grows the database with a new PKM instead of refusing when one Available 4 KiB page is left", async () => {
    const { h, rs } = await host();
    const ui = h.db.indexPage();
    // A partition made of every Available 4 KiB page but the lowest four: the database's page has almost no room
    // left. Its descriptor takes the first of the four, A's the second, B's the third (the last but the spare).
    // The Available 4 KiB pages as (map, index), Available's own descriptor page left out (it owns itself).
    const pages = h.view.maps().filter((m) => m.scale === 1).flatMap((m) => {
      const out: Array<{ map: number; index: number }> = [];
      for (let i = 0; i < 1024; i++) {
        if (h.view.entry(m.page, i) === ui.avail && Number(m.base / 4096n) + i !== ui.avail) out.push({ map: m.page, index: i });
      }
      return out;
    });
    expect(pages.length).toBeGreaterThan(4);
    const at: Array<{ map: number; first: number; last: number }> = [];
    for (const q of pages.slice(4)) {
      const last = at.at(-1);
      if (last && last.map === q.map && last.last === q.index - 1) last.last = q.index;
      else at.push({ map: q.map, first: q.index, last: q.index });
    }
    rs.create({ name: "Eater", at, from: ui.avail });
    const pkms = h.view.maps().filter((m) => m.scale === 1).length;
    rs.create({ name: "A", size: 4n * MB });
    rs.create({ name: "B", size: 4n * MB });
    expect(h.view.maps().filter((m) => m.scale === 1).length).toBe(pkms);
    const c = rs.create({ name: "C", size: 4n * MB });
    // One transaction before C's create: the spare taken for the ultravisor and split into a new PKM.
    const log = h.db.readLog();
    const grow = log.at(-2)!.ops;
    expect(grow.map((o) => o.op)).toEqual(["changeOwner", "split"]);
    expect(grow[1]).toMatchObject({ op: "split", owner: ui.avail });
    const into = (grow[1] as { into: number }).into;
    expect(grow[0]).toMatchObject({ from: ui.avail, to: ui.ultra });
    expect(h.view.leaf(BigInt(into) * 4096n).owner).toBe(ui.ultra);
    expect(h.view.maps().filter((m) => m.scale === 1).length).toBe(pkms + 1);
    // C's descriptor lies in the new PKM.
    expect(h.view.leaf(BigInt(c) * 4096n).map).toBe(into);
    expect(h.view.leaf(BigInt(c) * 4096n).owner).toBe(c);
  });

  it("refuses a name in use, an unknown partition and too big a request, changing no byte", async () => {
    const { h, rs } = await host();
    rs.create({ name: "G", size: 4n * MB });
    const snap = h.snapshot();
    expect(() => rs.create({ name: "G", size: 4n * MB })).toThrow(/exists already/);
    expect(() => rs.create({ name: "ThisNameIsTooLong", size: 4n * MB })).toThrow(/at most 16/);
    expect(() => rs.destroy(12345)).toThrow(/not a live partition/);
    const b = h.builders();
    const req = h.db.requestBuffer();
    expect(b.buildDestroy(h.db.indexPage().index, req, REQUEST_MAX, 12345, 0, 0)).toBe(-1004);
    expect(b.buildCreate(h.db.indexPage().index, req, 64, req + 0x7f00, req + 0x4000, 1, 0, 0)).toBe(-1002);
    // The builders wrote only into core's request buffer, which is not database state.
    expect(h.diffDatabase(snap, h.snapshot())).toBeUndefined();
  });

  it("is the code our AOT compiles for the machine: every builder is an export of the compiled boot module", async () => {
    const c = compileBootDb(await bootModuleWasm(), "rs_check");
    for (const n of ["rs_alloc_db_page", "rs_build_grow", "rs_build_create", "rs_created", "rs_build_destroy"]) {
      expect(c.exports.find((e) => e.name === n)?.thunk ?? -1).toBeGreaterThanOrEqual(0);
    }
  });
});
