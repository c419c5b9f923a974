// Tests of the recovery of system partitions as the simulator models it (docs/specs/command-channel.md, "Recovery of
// system partitions"): a fault stops the I/O or the command partition, the ultravisor's watchdog restarts it from its
// definition after a schedule cycle without a heartbeat, nothing it owns changes in the database, and what its
// clients sent meanwhile — console lines, typed lines — is served after the restart, in order, none lost.
import { describe, expect, it } from "vitest";
import { Platform, PlatformError } from "./platform.ts";
import { InjectedFault } from "../core/wasm.ts";

const MB = 1n << 20n;

async function booted(): Promise<Platform> {
  const pf = await Platform.boot({ memory: 1n << 30n }, { pcpus: 2 });
  pf.definePartition({ name: "IO", kind: "IO", memory: 16n * MB, vcpus: [{ duty: 4 }] });
  pf.typed("create G1 8M console:IO");
  return pf;
}

const printed = (pf: Platform): string[] => pf.events.filter((l) => l.startsWith("[G1]"));

/**
 * The database's state: every map page's entries, the channel table and the audit log's committed transactions (the
 * rest of memory — channel queues, schedule tables — moves while partitions run, and is not the database).
 */
const state = (pf: Platform): string =>
  JSON.stringify([pf.host.view.runs(), pf.host.db.channels(), pf.host.db.logHeader().txCount], (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

describe("recovery of system partitions", () => {
  it("the I/O partition killed mid-run: restarted after a cycle without heartbeat, every queued line printed in order, the database unchanged", async () => {
    const pf = await booted();
    pf.console("G1", "one\n");
    const before = state(pf);
    pf.fail("IO");
    const lines = Array.from({ length: 12 }, (_, i) => `queued ${i}`);
    for (const l of lines.slice(0, 6)) pf.console("G1", `${l}\n`);
    pf.advance(15n);
    for (const l of lines.slice(6)) pf.console("G1", `${l}\n`);
    expect(printed(pf)).toEqual(["[G1] one"]); // nothing printed while it is down
    expect(pf.events.some((l) => l.includes("restarted"))).toBe(false);
    pf.advance(1n);
    expect(pf.events.filter((l) => l.includes("no heartbeat from IO")).length).toBe(1);
    expect(printed(pf)).toEqual(["[G1] one", ...lines.map((l) => `[G1] ${l}`)]);
    pf.console("G1", "after\n");
    expect(printed(pf).at(-1)).toBe("[G1] after");
    expect(state(pf)).toBe(before);
  });

  it("the command partition killed: a line typed meanwhile changes nothing until its restart, then is carried out", async () => {
    const pf = await booted();
    const before = state(pf);
    const tx = pf.host.db.logHeader().txCount;
    pf.fail("Command");
    expect(pf.typed("create G2 8M console:IO")).toMatch(/waits/);
    pf.advance(8n);
    expect(pf.host.db.logHeader().txCount).toBe(tx);
    expect(state(pf)).toBe(before);
    expect(pf.rs.names().has("G2")).toBe(false);
    pf.advance(8n);
    expect(pf.rs.names().has("G2")).toBe(true);
    expect(pf.events.some((l) => l.startsWith("Command: G2: created partition"))).toBe(true);
  });

  it("refuses to fail a partition that is not running", async () => {
    const pf = await booted();
    pf.fail("IO");
    expect(() => pf.fail("IO")).toThrow(PlatformError);
    expect(() => pf.fail("Nobody")).toThrow(PlatformError);
  });
});

describe("a transaction in flight when the processor fails", () => {
  it("a typed create interrupted inside its create transaction: after recovery the database is the last commit, and the line typed again is carried out", async () => {
    const pf = await booted();
    const h = pf.host;
    // The create transaction's commit flushes at least 8 times (sim/database.test.ts); interrupt it at the first few.
    for (const k of [1, 2, 3]) {
      const before = state(pf);
      h.faultAtFlush = h.flushCount + k;
      expect(() => pf.typed("create G2 8M")).toThrow(InjectedFault);
      h.faultAtFlush = undefined;
      h.db.recover();
      expect(state(pf), `fault at flush ${k}`).toBe(before); // rolled back to the last commit
      expect(pf.rs.names().has("G2")).toBe(false);
    }
    expect(pf.typed("create G2 8M")).toMatch(/^G2: created partition/); // reapplied
    expect(pf.host.view.ownedBytes().get(pf.rs.resolve("G2"))! >= 8n * MB).toBe(true);
  });
});
