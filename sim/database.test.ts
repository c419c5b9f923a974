// Tests of the resource database in core.wasm through the simulator host, V8 running the real module: every class
// of bad input gets its error code and leaves the database bytes unchanged; a processor failure injected at every
// flush of a transaction rolls back to the exact prior bytes; replay since the backup reproduces the live bytes.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { InjectedFault } from "../core/wasm.ts";
import { errorName, REQUEST_BUFFER } from "../core/database.ts";
import { Host } from "./host.ts";
import { gmk, KIND, parseLog, type Op, type Transaction } from "../core/notation.ts";
import { ResourceService } from "./resource-service.ts";

const P = (k: number): number => gmk(0, 1, k);
const FIG8 = { memory: 64n << 30n, reserve: [[P(2), P(17)]] as Array<[number, number]>, presplit: [{ map: P(0), index: 15, into: P(16) }] };

function tx(text: string): Transaction {
  return parseLog(`Begin Transaction\n${text}\nCommit Transaction`)[0]!;
}

/** Submits and returns the error name; asserts that a rejection changed no database byte. */
function rejectName(h: Host, t: Transaction): string {
  const before = h.snapshot();
  const rc = h.db.trySubmit(t);
  if (rc < 0) expect(h.diffDatabase(before, h.snapshot())).toBeUndefined();
  return rc === 0 ? "OK" : errorName(rc);
}

describe("resource database: preconditions and bad input", () => {
  it("rejects each failed precondition with its own code and changes no byte", async () => {
    const h = await Host.create(FIG8);
    const cases: Array<[string, string]> = [
      ["Change Owner Map[0,1,0], Index(2), from [0,1,19], to [0,1,24]", "OWNER_MISMATCH"],
      ["Change Owner Map[0,1,25], Index(2), from [0,1,20], to [0,1,24]", "NOT_MAP_PAGE"],
      ["Change Owner Map[0,1,0], Index(2), from [0,1,20], to [0,1,30]", "NO_SUCH_PARTITION"],
      ["Change Owner Map[0,1,18], Index(0), from [0,1,24], to [0,1,20]", "PAGE_IN_USE"],
      ["Change Owner Map[0,1,1], Index(2), from [0,1,24], to [0,1,20]", "PAGE_IN_USE"],
      ["Change Owner Map[0,1,18], Index(23), from [0,1,24], to [0,1,20]", "PAGE_IN_USE"],
      ["Merge Map[0,1,0], Index(0), {From Map[0,1,1], For[0,1,20]}", "NOT_UNIFORM"],
      ["Merge Map[0,1,0], Index(2), {From Map[0,1,16], For[0,1,20]}", "OWNER_MISMATCH"],
      ["Split Map[0,1,18], Index(30), Into Map[0,1,2], {For[0,1,20]}", "SCALE"],
      ["Split Map[0,1,0], Index(3), Into Map[0,1,30], {For[0,1,20]}", "NOT_ULTRAVISOR_PAGE"],
      ["Split Map[0,1,0], Index(3), Into Map[0,1,18], {For[0,1,20]}", "PAGE_IN_USE"],
      // The database's PKM holds self-owned descriptor pages, so it is never uniform.
      ["Change Owner Map[0,1,18], IndexRange(25,1023), from [0,1,20], to [0,1,24]\nMerge Map[0,1,1], Index(1), {From Map[0,1,18], For[0,1,24]}", "NOT_UNIFORM"],
      ["Destroy Partition[0,1,20]", "PROTECTED"],
      ["Destroy Partition[0,1,30]", "NO_SUCH_PARTITION"],
      ['Initialize Partition[0,1,30] ("Q", UserQ, ...)', "NOT_ULTRAVISOR_PAGE"],
      ['Initialize Partition[0,1,24] ("Q", UserQ, ...)', "PARTITION_EXISTS"],
      // Initialized but never given its own page: the commit check refuses a live descriptor that is not self-owned.
      ['Change Owner Map[0,1,18], Index(30), from [0,1,20], to [0,1,24]\nInitialize Partition[0,1,30] ("Q", UserQ, ...)', "DESCRIPTOR_OWNER"],
      // A later operation fails: the earlier, applied ones are undone.
      ["Change Owner Map[0,1,0], Index(3), from [0,1,20], to [0,1,24]\nChange Owner Map[0,1,0], Index(3), from [0,1,20], to [0,1,24]", "OWNER_MISMATCH"],
    ];
    for (const [text, want] of cases) expect([text, rejectName(h, tx(text))]).toEqual([text, want]);
    expect(h.db.readLog()).toEqual([]);
  });

  it("refuses to merge a map page whose memory holds a live map page into one large entry", async () => {
    const h = await Host.create(FIG8);
    h.ensurePage(gmk(0, 5, 1023));
    h.submit(tx("Change Owner Map[0,1,18], Index(30), from [0,1,20], to [0,1,24]\nSplit Map[0,1,1], Index(5), Into Map[0,1,30], {For[0,1,20]}"));
    h.submit(tx("Change Owner Map[0,1,30], IndexRange(0,1023), from [0,1,20], to [0,1,24]"));
    h.submit(tx("Split Map[0,1,0], Index(3), Into Map[0,5,0], {For[0,1,20]}"));
    expect(rejectName(h, tx("Merge Map[0,1,1], Index(5), {From Map[0,1,30], For[0,1,24]}"))).toBe("PAGE_IN_USE");
    // Without the live map page inside, the same merge is accepted.
    h.submit(tx("Merge Map[0,1,0], Index(3), {From Map[0,5,0], For[0,1,20]}"));
    expect(rejectName(h, tx("Merge Map[0,1,1], Index(5), {From Map[0,1,30], For[0,1,24]}"))).toBe("OK");
  });

  it("rejects structurally bad requests with codes, never a trap", async () => {
    const h = await Host.create(FIG8);
    const co = (over: Partial<Extract<Op, { op: "changeOwner" }>>): Transaction => ({
      ops: [{ op: "changeOwner", map: P(0), first: 3, last: 3, from: P(20), to: P(24), ...over }],
    });
    expect(rejectName(h, co({ last: 1024 }))).toBe("INDEX_RANGE");
    expect(rejectName(h, co({ first: 5, last: 4 }))).toBe("INDEX_RANGE");
    expect(rejectName(h, co({ map: gmk(1000, 0, 0) }))).toBe("ADDRESS");
    expect(rejectName(h, co({ to: 0x80000000 | P(24) }))).toBe("BAD_PARTITION");
    expect(rejectName(h, co({ from: 0 }))).toBe("BAD_PARTITION");
    const v = new DataView(h.memory.buffer);
    const raw = (mutate: () => void): string => {
      const before = h.snapshot();
      h.db.encode(co({}));
      mutate();
      const rc = h.db.submitRaw(REQUEST_BUFFER);
      expect(h.diffDatabase(before, h.snapshot())).toBeUndefined();
      return errorName(rc);
    };
    expect(raw(() => v.setUint32(REQUEST_BUFFER, 0x12345678, true))).toBe("MALFORMED");
    expect(raw(() => v.setUint8(REQUEST_BUFFER + 16, 0x42))).toBe("UNKNOWN_OP");
    expect(raw(() => v.setUint32(REQUEST_BUFFER + 20, 24, true))).toBe("MALFORMED");
    expect(raw(() => v.setUint32(REQUEST_BUFFER + 4, 0x10000, true))).toBe("TOO_LARGE");
    expect(raw(() => v.setUint32(REQUEST_BUFFER + 8, 2, true))).toBe("MALFORMED");
    expect(errorName(h.db.submitRaw(h.memory.buffer.byteLength - 8))).toBe("ADDRESS");
    expect(errorName(h.db.submitRaw(0xfffffff0))).toBe("ADDRESS");
    // A descriptor image whose Me is not its page.
    const init: Transaction = { ops: [{ op: "initialize", partition: P(30), descriptor: { kind: KIND.Guest, name: "Q", principal: "" } }] };
    expect(raw(() => { h.db.encode(init); v.setUint32(REQUEST_BUFFER + 16 + 16 + 4, P(31), true); })).toBe("MALFORMED");
  });

  it("random request bytes give an error code or success, never a trap", async () => {
    const h = await Host.create(FIG8);
    const bytes = new Uint8Array(h.memory.buffer);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 200 }), fc.boolean(), (data, validHeader) => {
        bytes.set(data, REQUEST_BUFFER);
        if (validHeader) {
          const v = new DataView(h.memory.buffer);
          v.setUint32(REQUEST_BUFFER, 0x52545655, true);
          v.setUint32(REQUEST_BUFFER + 4, data.length & ~7, true);
          v.setUint32(REQUEST_BUFFER + 12, 0, true);
        }
        const before = h.snapshot();
        const rc = h.db.submitRaw(REQUEST_BUFFER);
        expect(rc).toBeLessThanOrEqual(0);
        if (rc < 0) expect(h.diffDatabase(before, h.snapshot())).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });
});

describe("resource database: structured fuzzing", () => {
  it("operations with arbitrary field values are applied whole or rejected whole, never trap", async () => {
    const h = await Host.create(FIG8);
    const num = fc.oneof(
      fc.integer({ min: 0, max: 1100 }),
      fc.constantFrom(P(0), P(1), P(16), P(18), P(19), P(20), P(24), P(25), P(30), gmk(0, 5, 0), gmk(0, 2, 600)),
      fc.integer({ min: 0, max: 0xffffffff }),
    );
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("changeOwner" as const), map: num, first: num, last: num, from: num, to: num }),
      fc.record({ op: fc.constant("initialize" as const), partition: num, descriptor: fc.record({ kind: fc.constantFrom(1, 5, 9, 16, 77), name: fc.constantFrom("A", "B"), principal: fc.constant("U") }) }),
      fc.record({ op: fc.constant("destroy" as const), partition: num }),
      fc.record({ op: fc.constant("split" as const), map: num, index: num, into: num, owner: num }),
      fc.record({ op: fc.constant("merge" as const), map: num, index: num, from: num, owner: num }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 4 }), (ops) => {
        const before = h.snapshot();
        const seq = h.db.logHeader().nextSeq;
        const rc = h.db.trySubmit({ ops });
        expect(rc).toBeLessThanOrEqual(0);
        if (rc < 0) {
          expect(h.diffDatabase(before, h.snapshot())).toBeUndefined();
          expect(h.db.logHeader().nextSeq).toBe(seq);
        } else accepted++;
      }),
      { numRuns: 150 },
    );
    // Whatever was accepted left a consistent map: attach re-walks it, and all of the order's 4 TB is accounted for.
    h.db.attach(h.db.indexPage().index);
    h.view.invalidate();
    const acc = h.view.accounting();
    expect(acc.installed + acc.missing).toBe(4n << 40n);
    expect(accepted).toBeLessThan(150);
  });
});

describe("resource database: rollback and replay", () => {
  it("rolls back to the exact prior bytes after a failure at every flush of a transaction", async () => {
    const h = await Host.create(FIG8);
    const rs = new ResourceService(h);
    // Count the flushes of one create so that every interruption point is tried.
    const probe = await Host.create(FIG8);
    const n0 = probe.flushCount;
    new ResourceService(probe).create({ name: "X", size: 4n << 30n });
    const flushes = probe.flushCount - n0;
    expect(flushes).toBeGreaterThan(8);
    let rolledBack = 0;
    for (let k = 1; k <= flushes; k++) {
      const before = h.snapshot();
      const committedBefore = h.db.logHeader().txCount;
      h.faultAtFlush = h.flushCount + k;
      expect(() => rs.create({ name: `X${k}`, size: 4n << 30n })).toThrow(InjectedFault);
      h.db.recover();
      const committed = h.db.logHeader().txCount > committedBefore;
      if (!committed) {
        expect(h.diffDatabase(before, h.snapshot())).toBeUndefined();
        rolledBack++;
      } else {
        // Only the very last flush (after the commit point) leaves the transaction committed.
        expect(k).toBe(flushes);
        const init = h.db.readLog().at(-1)!.ops.find((o) => o.op === "initialize");
        expect(init).toBeDefined();
        rs.destroy((init as { partition: number }).partition);
      }
    }
    expect(rolledBack).toBe(flushes - 1);
    rs.create({ name: "Z", size: 8n << 30n });
    expect(h.diffDatabase(h.snapshot(), await h.replayFromBackup())).toBeUndefined();
  });

  it("keeps the private 4 MiB page wherever the bootstrap put it: same Figure 8 log, the log and the request buffer there, the page protected", async () => {
    const moved = await Host.create({ ...FIG8, layout: { private: 9 } });
    const fixed = await Host.create(FIG8);
    const logs: string[][] = [];
    for (const h of [moved, fixed]) {
      const rs = new ResourceService(h);
      rs.create({ name: "X", size: 4n << 30n, at: [{ map: P(0), first: 2, last: 2 }] });
      logs.push(h.formatLog());
    }
    expect(logs[0]).toEqual(logs[1]);
    const ui = moved.db.indexPage();
    expect(ui.private).toBe(9);
    expect(ui.logBase).toBe(9 * 1024 + 528);
    expect(moved.db.logAddress()).toBe((9 * 1024 + 528) * 4096);
    expect(moved.db.requestBuffer()).toBe(9 * 0x400000 + 0x8000);
    // The PMM of the first 4 GiB (Map[0,1,1], order 3) gives [0,9,*] to the ultravisor and leaves [0,2,*] to the boot's rules.
    expect(moved.db.owner(9n * 0x400000n)).toBe(ui.ultra);
    expect(moved.db.owner(2n * 0x400000n)).toBe(ui.avail);
    expect(fixed.db.owner(2n * 0x400000n)).toBe(ui.ultra);
    // Its pages are core's: a ChangeOwner of the entry is refused, and nothing of the database is left in [0,2,*].
    expect(rejectName(moved, tx("Change Owner Map[0,1,1], Index(9), from [0,1,24], to [0,1,20]"))).toBe("PAGE_IN_USE");
    expect(new Uint8Array(moved.memory.buffer, 0x800000, 0x400000).findIndex((x) => x !== 0)).toBe(-1);
    expect(moved.diffDatabase(moved.snapshot(), await moved.replayFromBackup())).toBeUndefined();
  });

  it("GetMemOwner answers for every address the order covers and rejects others", async () => {
    const h = await Host.create(FIG8);
    const rs = new ResourceService(h);
    const x = rs.create({ name: "X", size: 4n << 30n, at: [{ map: P(0), first: 2, last: 2 }] });
    const ui = h.db.indexPage();
    expect(h.db.owner(8n << 30n)).toBe(x);
    expect(h.db.owner((12n << 30n) - 1n)).toBe(x);
    expect(h.db.owner(0n)).toBe(ui.boot);
    expect(h.db.owner(BigInt(P(23)) * 4096n + 100n)).toBe(ui.ultra);
    expect(h.db.owner(BigInt(P(25)) * 4096n)).toBe(x);
    expect(h.db.owner(64n << 30n)).toBe(ui.missing);
    expect(h.db.owner((4n << 40n) - 1n)).toBe(ui.missing);
    expect(errorName(h.db.owner(4n << 40n))).toBe("ADDRESS");
    expect(errorName(h.db.owner(1n << 63n))).toBe("ADDRESS");
  });
});
