// Tests of core.wasm's command-partition and channel-table operations (docs/specs/memory-layout.md §11) on a real
// simulated host: who may submit after boot ([0090], [0174]) and the audit record of a refusal, and the teardown rules
// of [0114]/[0182] enforced by core itself. Each refusal must leave every database byte as it was.
import { beforeEach, describe, expect, it } from "vitest";
import { Host } from "./host.ts";
import { KIND, type Op, type Transaction } from "../core/notation.ts";
import { ResourceService } from "./resource-service.ts";

let host: Host;

beforeEach(async () => {
  host = await Host.create({ memory: 64n << 20n });
});

/** A partition with a descriptor and no memory, defined the way the resource service defines every partition. */
function define(name: string, kind: number): number {
  return new ResourceService(host).create({ name, kind, at: [] });
}

/** n Available 4 KiB pages, handed to p; returns the first page. */
function give(p: number, n: number): number {
  const ui = host.db.indexPage();
  const first = host.freeDbPage();
  const leaf = host.view.leaf(BigInt(first) * 4096n);
  for (let i = 0; i < n; i++) expect(host.view.entry(leaf.map, leaf.index + i)).toBe(ui.avail);
  host.submit({ ops: [{ op: "changeOwner", map: leaf.map, first: leaf.index, last: leaf.index + n - 1, from: ui.avail, to: p }] });
  return first;
}

/** Live bytes with the audit log blanked: a refusal by db_submit_as writes its REJECTED record there, and only there. */
function withoutLog(): Uint8Array {
  const b = host.snapshot();
  const ui = host.db.indexPage();
  b.fill(0, ui.logBase * 4096, (ui.logBase + ui.logPages) * 4096);
  return b;
}

/** Submits and expects refusal with `code`; every database byte and the log's transaction count stay as they were. */
function refused(tx: Transaction, code: number, submit: (tx: Transaction) => number = (t) => host.db.trySubmit(t)): void {
  const before = withoutLog();
  const h = host.db.logHeader();
  expect(submit(tx)).toBe(code);
  expect(host.diffDatabase(before, withoutLog())).toBeUndefined();
  expect(host.db.logHeader().nextSeq).toBe(h.nextSeq);
  expect(host.db.logHeader().txCount).toBe(h.txCount);
}

describe("channel table (memory-layout.md §11.2)", () => {
  it("defines, connects, protects and removes a channel exactly as the teardown rules require", () => {
    const X = define("X", KIND.Guest);
    const IO = define("IOa", KIND.IO);
    const base = give(X, 3);
    const map = host.view.leaf(BigInt(base) * 4096n);
    const ui = host.db.indexPage();
    // pages the client does not own cannot become its channel; pseudo partitions cannot own channels
    refused({ ops: [{ op: "defineChannel", slot: 0, client: X, base: base + 3, pages: 1, type: 3 }] }, -8);
    refused({ ops: [{ op: "defineChannel", slot: 0, client: ui.avail, base, pages: 1, type: 3 }] }, -22);
    refused({ ops: [{ op: "defineChannel", slot: 192, client: X, base, pages: 1, type: 3 }] }, -3);
    refused({ ops: [{ op: "defineChannel", slot: 0, client: X, base, pages: 3, type: 9 }] }, -1);
    host.submit({ ops: [{ op: "defineChannel", slot: 5, client: X, base, pages: 3, type: 3 }] });
    refused({ ops: [{ op: "defineChannel", slot: 5, client: X, base, pages: 3, type: 3 }] }, -25);
    expect(host.db.channels()).toEqual([{ slot: 5, client: X, server: 0, base, pages: 3, type: 3 }]);
    // second transaction of [0132]: the server; its before-image must hold
    refused({ ops: [{ op: "assignServer", slot: 5, client: X, server: IO, from: IO }] }, -8);
    refused({ ops: [{ op: "assignServer", slot: 5, client: IO, server: IO, from: 0 }] }, -24);
    refused({ ops: [{ op: "assignServer", slot: 5, client: X, server: X, from: 0 }] }, -6);
    host.submit({ ops: [{ op: "assignServer", slot: 5, client: X, server: IO, from: 0 }] });
    // [0114], [0182]: while the server is connected the client's channel memory cannot go, not even with the rest
    const giveBack: Op = { op: "changeOwner", map: map.map, first: map.index, last: map.index + 2, from: X, to: ui.avail };
    refused({ ops: [giveBack] }, -23);
    refused({ ops: [{ op: "removeChannel", slot: 5, client: X }] }, -23);
    refused({ ops: [{ op: "destroy", partition: X }] }, -23);
    refused({ ops: [{ op: "destroy", partition: IO }] }, -23);
    // a transaction that gives the pages away and back again leaves them the client's: the commit check passes
    host.submit({ ops: [giveBack, { ...giveBack, from: ui.avail, to: X }] });
    // disconnect, then the memory and the channel go in one transaction
    host.submit({ ops: [{ op: "assignServer", slot: 5, client: X, server: 0, from: IO }] });
    host.submit({ ops: [{ op: "removeChannel", slot: 5, client: X }, giveBack] });
    expect(host.db.channels()).toEqual([]);
    // rollback of a failed transaction restores a removed channel exactly (before-image in the record)
    host.submit({ ops: [{ op: "defineChannel", slot: 7, client: IO, base: give(IO, 1), pages: 1, type: 4 }] });
    refused({ ops: [{ op: "removeChannel", slot: 7, client: IO }, { op: "destroy", partition: ui.avail }] }, -13);
    expect(host.db.channels().map((c) => c.slot)).toEqual([7]);
  });

  it("refuses a channel over a page in use: the client's own descriptor, or a page another channel already holds (issue #12)", () => {
    // The attack: the client's descriptor page is owned by the client (a descriptor owns itself), so ownership alone
    // let it become a channel; once the server formatted the channel the descriptor was gone while the page stayed
    // self-owned, and the partition could never be destroyed.
    const X = define("X", KIND.Guest);
    const base = give(X, 2);
    refused({ ops: [{ op: "defineChannel", slot: 3, client: X, base: X, pages: 1, type: 3 }] }, -11);
    host.submit({ ops: [{ op: "defineChannel", slot: 3, client: X, base, pages: 2, type: 3 }] });
    // … and one page cannot serve two channels (two servers would format over each other)
    refused({ ops: [{ op: "defineChannel", slot: 4, client: X, base: base + 1, pages: 1, type: 3 }] }, -11);
    // nor can two channels of one transaction share a page
    host.submit({ ops: [{ op: "removeChannel", slot: 3, client: X }] });
    refused({ ops: [
      { op: "defineChannel", slot: 3, client: X, base, pages: 2, type: 3 },
      { op: "defineChannel", slot: 4, client: X, base, pages: 1, type: 3 },
    ] }, -11);
    expect(host.db.channels()).toEqual([]);
  });

  it("refuses a channel over a descriptor initialised and handed to the client in the same transaction", () => {
    // Not the client's own descriptor: a fresh one, given to the client before the channel is defined over it. It is
    // refused (the descriptor would not own itself at commit), and nothing changes.
    const X = define("X", KIND.Guest);
    const ui = host.db.indexPage();
    const q = host.freeDbPage();
    const leaf = host.view.leaf(BigInt(q) * 4096n);
    const rc = host.db.trySubmit({ ops: [
      { op: "changeOwner", map: leaf.map, first: leaf.index, last: leaf.index, from: ui.avail, to: ui.ultra },
      { op: "initialize", partition: q, descriptor: { kind: KIND.Guest, name: "Q", principal: "UserQ" } },
      { op: "changeOwner", map: leaf.map, first: leaf.index, last: leaf.index, from: ui.ultra, to: X },
      { op: "defineChannel", slot: 3, client: X, base: q, pages: 1, type: 3 },
    ] });
    expect(rc).toBe(-15); // DESCRIPTOR_OWNER, at the commit check (docs/specs/memory-layout.md §11.2)
    expect(host.db.channels()).toEqual([]);
    expect(host.db.readDescriptor(q)).toBeUndefined();
    expect(host.db.owner(BigInt(q) * 4096n)).toBe(ui.avail);
  });
});

describe("command partition (memory-layout.md §11.1)", () => {
  it("accepts only Boot before the designation and only the command partition after it; refusals are audited", async () => {
    const ui = host.db.indexPage();
    const C = define("Command", KIND.Command);
    const X = define("X", KIND.Guest);
    const tx = (to: number): Transaction => ({ ops: [{ op: "setCommand", to, from: 0 }] });
    expect(host.db.commandPartition()).toBe(0);
    // before boot completes, not even the future command partition may submit
    refused(tx(C), -21, (t) => host.db.trySubmitAs(t, C));
    refused(tx(X), -22, (t) => host.db.trySubmitAs(t, ui.boot)); // a guest cannot be designated
    expect(host.db.trySubmitAs(tx(C), ui.boot)).toBe(0);
    expect(host.db.commandPartition()).toBe(C);
    const h0 = host.db.logHeader();
    // after boot: Boot and guests are refused; nothing of the request is applied
    const take: Transaction = { ops: [{ op: "destroy", partition: X }] };
    refused(take, -21, (t) => host.db.trySubmitAs(t, ui.boot));
    refused(take, -21, (t) => host.db.trySubmitAs(t, X));
    const h1 = host.db.logHeader();
    expect(h1.rejected).toBe(h0.rejected + 2);
    expect(h1.txCount).toBe(h0.txCount);
    const audit = host.db.readAudit();
    expect(audit.rejections.slice(-2)).toEqual([
      { submitter: ui.boot, code: -21, nextSeq: h0.nextSeq },
      { submitter: X, code: -21, nextSeq: h0.nextSeq },
    ]);
    // the designated command partition cannot be destroyed
    expect(host.db.trySubmitAs({ ops: [{ op: "destroy", partition: C }] }, C)).toBe(-13);
    // its own transactions run, and replay from the backup steps over the REJECTED records to the same bytes
    const leaf = host.view.leaf(BigInt(X) * 4096n);
    expect(host.db.trySubmitAs({ ops: [
      { op: "changeOwner", map: leaf.map, first: leaf.index, last: leaf.index, from: X, to: ui.ultra },
      { op: "destroy", partition: X },
    ] }, C)).toBe(0);
    expect(host.diffDatabase(host.snapshot(), await host.replayFromBackup())).toBeUndefined();
  });
});
