// core.wasm's redundant-I/O logic (core/assembly/storage-pair.ts through core/storage-pair.ts) against
// docs/specs/storage-failover.md §3–§4: which completions a client accepts, what it re-issues after a failover, the
// client's rule on overlapping writes, the control block's only path ACTIVE → FENCING → FENCED → ACTIVE, and that a
// damaged table or block is refused with nothing written (each damaged field at PAIR_LAYOUT's offset).
import { beforeAll, describe, expect, it } from "vitest";
import { InFlightTable, PAIR_LAYOUT, PairControl, PairRefusal, PairState } from "./storage-pair.ts";
import { loadCore, type Core } from "./wasm.ts";

let core: Core;
beforeAll(async () => {
  core = await loadCore();
});

const bytesOf = (v: DataView): Buffer => Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));

describe("the client's in-flight table", () => {
  it("accepts one completion per request, from the epoch it was issued in", () => {
    const t = new InFlightTable(core);
    expect(t.issue(1n, 0n, 2, true)).toBe(0);
    expect(t.issue(2n, 8n, 1, false)).toBe(1);
    expect(t.complete(1n, 1)).toBe(0); // another epoch's server
    expect(t.complete(1n, 0)).toBe(1);
    expect(t.complete(1n, 0)).toBe(0); // a duplicate
    expect(t.complete(99n, 0)).toBe(0); // never issued
    expect(t.view().getUint32(PAIR_LAYOUT.table.count, true)).toBe(1);
  });

  it("refuses a second request with the same tag, a full table, an overflowing range and overlaps with a write", () => {
    const t = new InFlightTable(core);
    expect(t.issue(1n, 10n, 4, true)).toBe(0);
    expect(t.issue(1n, 100n, 1, false)).toBe(PairRefusal.inFlight);
    expect(t.issue(2n, 13n, 1, false)).toBe(PairRefusal.overlap); // a read inside an in-flight write
    expect(t.issue(3n, 8n, 2, true)).toBe(1); // ends where the write begins: no overlap
    expect(t.issue(4n, 0n, 9, false)).toBe(PairRefusal.overlap); // a read over both writes
    expect(t.issue(5n, 200n, 1, false)).toBe(2);
    expect(t.issue(6n, 200n, 1, false)).toBe(3); // two reads of one block may overlap
    expect(t.issue(7n, 200n, 1, true)).toBe(PairRefusal.overlap);
    expect(t.issue(8n, 0xffff_ffff_ffff_fffen, 4, false)).toBe(PairRefusal.overflow);
    for (let i = 0; i < 12; i++) expect(t.issue(BigInt(100 + i), BigInt(1000 + i), 1, true)).toBe(4 + i);
    const before = bytesOf(t.view());
    expect(t.issue(200n, 5000n, 1, true)).toBe(PairRefusal.full);
    expect(bytesOf(t.view())).toEqual(before);
  });

  it("after a failover, ignores the old server's completions and re-issues everything in flight, in tag order", () => {
    const t = new InFlightTable(core);
    for (const id of [5n, 3n, 9n]) t.issue(id, id * 10n, 1, true);
    expect(t.complete(3n, 0)).toBe(1);
    expect(t.failover(0)).toBe(-2); // not newer
    expect(t.failover(1)).toBe(2);
    expect(t.complete(5n, 0)).toBe(0); // the old server's late completion
    expect(t.complete(5n, 1)).toBe(0); // not sent to the new server yet
    expect(t.takeReissues()).toEqual([5n, 9n]);
    expect(t.takeReissues()).toEqual([]);
    expect(t.complete(5n, 0)).toBe(0);
    expect(t.complete(5n, 1)).toBe(1);
    expect(t.issue(11n, 90n, 1, true)).toBe(PairRefusal.overlap); // request 9 (block 90) is still in flight
    expect(t.issue(11n, 91n, 1, true)).toBeGreaterThanOrEqual(0);
  });

  it("refuses a damaged table — magic, entries, count, a state, an entry's range, epoch or write flag — and writes nothing", () => {
    const cases: Array<[string, (v: DataView) => void]> = [
      ["magic", (v) => v.setUint32(PAIR_LAYOUT.table.magic, 0, true)],
      ["entries", (v) => v.setUint32(PAIR_LAYOUT.table.entries, 1_000_000, true)],
      ["count", (v) => v.setUint32(PAIR_LAYOUT.table.count, 0, true)],
      ["state", (v) => v.setUint32(PAIR_LAYOUT.table.header + 3 * PAIR_LAYOUT.table.entry + PAIR_LAYOUT.entry.state, 7, true)],
      // An in-flight entry's own fields (before, accepted: a wrapping range hid overlaps from the client's rule).
      ["lba + blocks wraps", (v) => v.setBigUint64(PAIR_LAYOUT.table.header + PAIR_LAYOUT.entry.lba, 0xffff_ffff_ffff_ffffn, true)],
      ["epoch above the table's", (v) => v.setUint32(PAIR_LAYOUT.table.header + PAIR_LAYOUT.entry.epoch, 5, true)],
      ["write neither 0 nor 1", (v) => v.setUint32(PAIR_LAYOUT.table.header + PAIR_LAYOUT.entry.write, 7, true)],
    ];
    for (const [what, damage] of cases) {
      const t = new InFlightTable(core);
      t.issue(1n, 0n, 1, true);
      damage(t.view());
      const before = bytesOf(t.view());
      expect([what, t.issue(2n, 10n, 1, true)]).toEqual([what, PairRefusal.badTable]);
      expect([what, t.complete(1n, 0)]).toEqual([what, -1]);
      expect([what, t.failover(1)]).toEqual([what, -1]);
      expect([what, t.takeReissues()]).toEqual([what, []]);
      expect(bytesOf(t.view())).toEqual(before);
    }
  });
});

describe("the pair's control block", () => {
  it("goes ACTIVE → FENCING → FENCED → ACTIVE only, with the epoch told only while ACTIVE", () => {
    const c = new PairControl(core);
    expect(c.epoch()).toBe(0);
    expect(c.step(PairState.fenced, 1n)).toBe(-3);
    expect(c.step(PairState.active, 1n)).toBe(-3);
    expect(c.step(PairState.fencing, 1n)).toBe(0);
    expect(c.epoch()).toBe(-3);
    expect(c.step(PairState.active, 2n)).toBe(-3); // no new server before the fence
    expect(c.step(PairState.fenced, 3n)).toBe(0);
    expect(c.epoch()).toBe(-3);
    expect(c.step(PairState.active, 4n)).toBe(0);
    expect(c.epoch()).toBe(1);
    const v = c.view();
    expect(v.getUint32(PAIR_LAYOUT.ctl.active, true)).toBe(1);
    expect(v.getBigUint64(PAIR_LAYOUT.ctl.fencedAt, true)).toBe(4n);
  });

  it("refuses a damaged block and writes nothing", () => {
    for (const [what, off, value] of [["magic", PAIR_LAYOUT.ctl.magic, 1], ["state", PAIR_LAYOUT.ctl.state, 9], ["active", PAIR_LAYOUT.ctl.active, 2]] as const) {
      const c = new PairControl(core);
      c.view().setUint32(off, value, true);
      const before = bytesOf(c.view());
      expect([what, c.step(PairState.fencing, 1n)]).toEqual([what, -1]);
      expect([what, c.epoch()]).toEqual([what, -1]);
      expect(bytesOf(c.view())).toEqual(before);
    }
  });
});
