// The virtual data center (docs/specs/datacenter.md): fixed-seed event logs against checked-in expectations (re-bless
// with UPDATE_GOLDEN=1), host failure noticed through missed heartbeats and every partition that fits re-hosted, live
// migration changing both hosts' databases through transactions, and the source or destination failing at each
// phase of a migration with the partition running on exactly one host afterwards (never on two at any time). The
// oracle for "running" and "free memory" is each host's own resource database, not the data center's bookkeeping.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataCenter, formatEvent } from "./datacenter.ts";
import { checkScenario, parseScenario, type DcScenario } from "./scenario.ts";
import { PAGE_BYTES, planPrecopy } from "./precopy.ts";

const root = join(import.meta.dirname, "..");
const G = 1 << 30;

function golden(name: string, text: string): void {
  const file = join(import.meta.dirname, "expected", name);
  if (process.env.UPDATE_GOLDEN === "1" || !existsSync(file)) {
    if (process.env.UPDATE_GOLDEN !== "1") throw new Error(`${file} is missing: run with UPDATE_GOLDEN=1 once and check it by hand`);
    writeFileSync(file, text);
  }
  expect(text).toBe(readFileSync(file, "utf8"));
}

/** Two racks of two hosts; P1 (1 GB) and P2 (2 GB) on H1 at start; events and migration settings per test. */
function scenario(over: Record<string, unknown> = {}): DcScenario {
  return checkScenario({
    datacenter: 1, seed: 1, until: 20_000, heartbeat: { interval: 1000, lease: 3000 },
    // 1 GiB/s: a 1 GB partition's first round takes 1 s.
    migration: { bandwidth: G },
    racks: [
      { name: "R1", hosts: [{ name: "H1", memory: "8 GB", pcpus: 4 }, { name: "H2", memory: "4 GB", pcpus: 4 }] },
      { name: "R2", hosts: [{ name: "H3", memory: "4 GB", pcpus: 4 }, { name: "H4", memory: "2 GB", pcpus: 4 }] },
    ],
    partitions: [{ name: "P1", memory: "1 GB", vcpus: 1, dirtyRate: 20_000 }, { name: "P2", memory: "2 GB", vcpus: 1, dirtyRate: 1000 }],
    events: [],
    ...over,
  });
}

/** Runs in 50 ms steps, checking that no partition ever runs on two hosts; returns the data center at the end. */
async function stepped(s: DcScenario, parts = ["P1", "P2"]): Promise<DataCenter> {
  const dc = await DataCenter.create(s);
  for (let t = 0; t <= s.until; t += 50) {
    dc.run(t);
    for (const p of parts) expect(dc.runningOn(p).length, `${p} at ${t} ms`).toBeLessThanOrEqual(1);
  }
  return dc;
}

const kinds = (dc: DataCenter): string[] => dc.events.map((e) => `${e.kind}${e.partition ? ` ${e.partition}` : ""}${e.host ? ` ${e.host}` : ""}`);

describe("deterministic runs", () => {
  it("examples/dc/small.yaml gives the checked-in event log, twice in a row", async () => {
    const text = readFileSync(join(root, "examples/dc/small.yaml"), "utf8");
    const a = (await DataCenter.create(parseScenario(text))).run().events.map(formatEvent).join("\n") + "\n";
    const b = (await DataCenter.create(parseScenario(text))).run().events.map(formatEvent).join("\n") + "\n";
    expect(b).toBe(a);
    golden("small.log", a);
  });

  it("the seed drives the heartbeat jitter: another seed notices the failure at another time", async () => {
    const at = async (seed: number): Promise<number> => {
      const dc = (await DataCenter.create(scenario({ seed, events: [{ at: 5000, fail: "H1" }] }))).run();
      return dc.events.find((e) => e.kind === "lease-expired")!.t;
    };
    const times = new Set([await at(1), await at(2), await at(3), await at(4)]);
    expect(times.size).toBeGreaterThan(1);
    expect(await at(2)).toBe(await at(2));
  });
});

describe("host failure", () => {
  it("is noticed only when the lease runs out, then every partition is re-hosted first fit on a live host", async () => {
    const s = scenario({ events: [{ at: 5000, fail: "H1" }] });
    const dc = await DataCenter.create(s);
    const lastBeatBefore = 5000;
    dc.run(5000 + 1999); // less than a lease after the last possible beat: nothing noticed yet, nothing runs
    expect(kinds(dc)).not.toContain("lease-expired H1");
    expect(dc.runningOn("P1")).toEqual([]);
    expect(dc.placement.get("P1")).toBe("H1"); // still believed there: no oracle told the operations partition
    dc.run();
    const exp = dc.events.find((e) => e.kind === "lease-expired")!;
    // The last beat came at most interval + jitter (≤ 1.1 s) before the failure; the lease is 3 s.
    expect(exp.t).toBeGreaterThan(lastBeatBefore + 3000 - 1100);
    expect(exp.t).toBeLessThanOrEqual(lastBeatBefore + 3000);
    // P1 (1 GB) goes to H2 (4 GB, first in order), P2 (2 GB) to H2 as well (3.87 - 1 = 2.87 GB left).
    expect(dc.runningOn("P1")).toEqual(["H2"]);
    expect(dc.runningOn("P2")).toEqual(["H2"]);
    expect(dc.events.filter((e) => e.kind === "rehosted").map((e) => `${e.partition}→${e.to}`)).toEqual(["P1→H2", "P2→H2"]);
  });

  it("re-hosts every partition that fits and reports each one that does not, with the hosts' free memory as the reason", async () => {
    // H1 runs 1+2+3 GB; the survivors have 4, 4 and 2 GB hosts minus their service partitions.
    const s = scenario({
      partitions: [
        { name: "P1", memory: "1 GB", vcpus: 1 }, { name: "P2", memory: "2 GB", vcpus: 1 }, { name: "P3", memory: "3 GB", vcpus: 1 },
        { name: "Q", memory: "1 GB", vcpus: 1, rack: "R2" },
      ],
      racks: [
        { name: "R1", hosts: [{ name: "H1", memory: "8 GB", pcpus: 4 }, { name: "H2", memory: "2 GB", pcpus: 4 }] },
        { name: "R2", hosts: [{ name: "H3", memory: "4 GB", pcpus: 4 }, { name: "H4", memory: "2 GB", pcpus: 4 }] },
      ],
      events: [{ at: 1000, fail: "H1" }],
    });
    const dc = (await DataCenter.create(s)).run();
    const parts = ["P1", "P2", "P3"];
    const lost = dc.events.filter((e) => e.kind === "lost").map((e) => e.partition!);
    for (const p of parts) {
      const on = dc.runningOn(p);
      if (lost.includes(p)) {
        expect(on).toEqual([]);
        // The reason is true: no live host's own database has that much memory free now.
        const need = BigInt(s.partitions.find((x) => x.name === p)!.memory);
        for (const h of ["H2", "H3", "H4"]) expect(dc.freeBytes(h) < need, `${h} could take ${p}`).toBe(true);
        expect(dc.events.find((e) => e.kind === "lost" && e.partition === p)!.reason).toMatch(/needs \d+ GB .*: \d+ MB free/);
      } else expect(on).toHaveLength(1);
    }
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.length).toBeLessThan(parts.length);
  });
});

describe("live migration", () => {
  it("moves the partition through both hosts' databases as transactions; downtime and rounds are the pre-copy plan's", async () => {
    const s = scenario({ events: [{ at: 1000, migrate: "P2", to: "H3" }] });
    const dc = await DataCenter.create(s);
    const tx = { H1: 0, H3: 0 };
    dc.hosts.get("H1")!.platform.host.listeners.push(() => tx.H1++);
    dc.hosts.get("H3")!.platform.host.listeners.push(() => tx.H3++);
    const free = { H1: dc.freeBytes("H1"), H3: dc.freeBytes("H3") };
    dc.run(1000);
    // Pre-copy: the destination's database holds the memory, the partition still runs on the source only.
    // (its 2 GB and the pages of its control channel, which the destination defines with it)
    const held = free.H3 - dc.freeBytes("H3");
    expect(held >= 2n * BigInt(G) && held <= 2n * BigInt(G) + (64n << 10n), `${held}`).toBe(true);
    expect(dc.runningOn("P2")).toEqual(["H1"]);
    dc.run();
    expect(dc.runningOn("P2")).toEqual(["H3"]);
    const back = dc.freeBytes("H1") - free.H1;
    expect(back >= 2n * BigInt(G) && back <= 2n * BigInt(G) + (64n << 10n), `${back}`).toBe(true);
    expect(tx.H1).toBeGreaterThan(0);
    expect(tx.H3).toBeGreaterThan(0);
    const done = dc.events.find((e) => e.kind === "migration-done")!;
    const plan = planPrecopy({ pages: (2 * G) / PAGE_BYTES, dirtyRate: 1000, bandwidth: G, rules: s.migration.rules });
    expect(done).toMatchObject({ rounds: plan.rounds.length, stop: plan.stop, sentPages: plan.totalSent });
    expect(done.t).toBe(1000 + Math.ceil(plan.totalMs - plan.downtimeMs) + Math.ceil(plan.downtimeMs));
  });

  it("each stop rule ends a migration in the data center as configured", async () => {
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, string]> = [
      [{}, { dirtyRate: 20_000 }, "downtime"],
      [{ downtimeMs: null }, { dirtyRate: 1000 }, "dirty-threshold"],
      [{ downtimeMs: null, dirtyThreshold: null, maxIterations: 3 }, { dirtyRate: 200_000 }, "iterations"],
      [{ downtimeMs: null, maxIterations: null }, { dirtyRate: 400_000, workingSet: 100_000 }, "total-copy"],
    ];
    for (const [rules, part, stop] of cases) {
      const s = scenario({ migration: { bandwidth: G, ...rules }, partitions: [{ name: "P1", memory: "1 GB", vcpus: 1, ...part }], events: [{ at: 100, migrate: "P1", to: "H2" }], until: 60_000 });
      const dc = (await DataCenter.create(s)).run();
      expect(dc.events.find((e) => e.kind === "migration-done"), stop).toMatchObject({ stop });
      expect(dc.runningOn("P1")).toEqual(["H2"]);
    }
  });

  it("the destination failing during pre-copy: the partition keeps running on the source, never on two hosts", async () => {
    const dc = await stepped(scenario({ events: [{ at: 1000, migrate: "P2", to: "H3" }, { at: 1500, fail: "H3" }] }));
    expect(kinds(dc)).toContain("migration-aborted P2");
    expect(kinds(dc)).not.toContain("migration-done P2");
    expect(dc.runningOn("P2")).toEqual(["H1"]);
    expect(dc.placement.get("P2")).toBe("H1");
  });

  it("the destination failing during the stop-and-copy: the source resumes it", async () => {
    // P1 dirties 20,000 pages/s: round 1 (1 s) leaves 20,000 pages = 78 ms ≤ 300 ms; the pause is 1001..1079.
    const plan = planPrecopy({ pages: G / PAGE_BYTES, dirtyRate: 20_000, bandwidth: G, rules: scenario().migration.rules });
    const pause = 1000 + Math.ceil(plan.totalMs - plan.downtimeMs);
    const dc = await stepped(scenario({ events: [{ at: 1000, migrate: "P1", to: "H2" }, { at: pause + 10, fail: "H2" }] }));
    expect(dc.events.find((e) => e.kind === "migration-aborted")!.reason).toMatch(/stop-and-copy; the source resumes it/);
    expect(dc.runningOn("P1")).toEqual(["H1"]);
  });

  it("the source failing mid-way: the destination discards its copy, the lease expires and the partition is re-hosted on one host", async () => {
    const s = scenario({ events: [{ at: 1000, migrate: "P2", to: "H3" }, { at: 1500, fail: "H1" }] });
    const dc = await DataCenter.create(s);
    const freeH3 = dc.freeBytes("H3");
    dc.run(1500);
    expect(dc.freeBytes("H3")).toBe(freeH3); // the incomplete copy is stopped on H3's database
    expect(dc.runningOn("P2")).toEqual([]);
    dc.run();
    expect(kinds(dc)).toEqual(expect.arrayContaining(["migration-aborted P2", "lease-expired H1"]));
    for (const p of ["P1", "P2"]) expect(dc.runningOn(p), p).toHaveLength(1);
  });

  it("the source failing after the switch-over changes nothing: the partition already runs on the destination", async () => {
    const dc = await stepped(scenario({ events: [{ at: 1000, migrate: "P1", to: "H2" }, { at: 5000, fail: "H1" }] }));
    expect(dc.events.filter((e) => e.partition === "P1").map((e) => e.kind)).toEqual(["placed", "migration-start", "migration-switchover", "migration-done"]);
    expect(dc.runningOn("P1")).toEqual(["H2"]);
  });

  it("refuses a migration to a host of another rack, of a partition already migrating, or to where it runs", async () => {
    const s = scenario({
      partitions: [{ name: "P1", memory: "1 GB", vcpus: 1, rack: "R1" }],
      events: [{ at: 100, migrate: "P1", to: "H3" }, { at: 200, migrate: "P1", to: "H1" }, { at: 300, migrate: "P1", to: "H2" }, { at: 301, migrate: "P1" }],
    });
    const dc = (await DataCenter.create(s)).run();
    expect(dc.events.filter((e) => e.kind === "migration-refused").map((e) => e.reason)).toEqual(["H3 is not in rack R1", "it runs on H1 already", "it is migrating already"]);
  });
});

describe("scenario checks", () => {
  it("names every problem of a bad file and refuses it whole", () => {
    expect(() => parseScenario("datacenter: 2\nseed: -1\nuntil: 0\nracks: []\npartitions: {}\nbogus: 1\n", "x.yaml")).toThrow(
      /x\.yaml: bogus: unknown key[\s\S]*datacenter: 2 is not a known revision[\s\S]*seed: -1[\s\S]*racks: is not a non-empty list/,
    );
    const ok = { datacenter: 1, seed: 1, until: 10, racks: [{ name: "R", hosts: [{ name: "H", memory: "2 GB", pcpus: 1 }] }], partitions: [] };
    expect(() => checkScenario({ ...ok, partitions: [{ name: "P", memory: "3 MB", vcpus: 1 }] })).toThrow(/partitions\[0\]\.memory: .*multiple of 4 MB/);
    expect(() => checkScenario({ ...ok, events: [{ at: 5, fail: "NOPE" }] })).toThrow(/events\[0\]\.fail: no host NOPE/);
    expect(() => checkScenario({ ...ok, events: [{ at: 50, fail: "H" }] })).toThrow(/events\[0\]\.at: 50 is not a whole number in 0\.\.10/);
    expect(() => checkScenario({ ...ok, heartbeat: { interval: 1000, lease: 500 } })).toThrow(/lease: 500 ms must be longer/);
    expect(() => checkScenario({ ...ok, migration: { maxIterations: null, maxFactor: null } })).toThrow(/never ends/);
    expect(() => parseScenario("a: [")).toThrow(/not YAML or JSON/);
  });
});
