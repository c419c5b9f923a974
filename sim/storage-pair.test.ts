// Redundant I/O partitions in the simulator (sim/storage-pair.ts, docs/specs/storage-failover.md §6): the primary
// dies after every step of a run in turn; with its device fenced before the secondary is named, every client
// finishes, every acknowledged block holds its latest generation and every request is acknowledged once. Without the
// fence some run breaks the disk check through a late write of the dead primary's device — the failure fencing
// exists to prevent, so the check can fail. The decisions are core's (stor_check, the in-flight table, the control
// block's order).
import { beforeAll, describe, expect, it } from "vitest";
import { loadCore, type Core } from "../core/wasm.ts";
import { runPair, type PairScenario } from "./storage-pair.ts";

let core: Core;
beforeAll(async () => {
  core = await loadCore();
});

const base: PairScenario = {
  clients: [
    { name: "X", first: 0, blocks: 24, passes: 3, inFlight: 4, perRequest: 2 },
    { name: "Y", first: 32, blocks: 24, passes: 3, inFlight: 4, perRequest: 3 },
  ],
  diskBlocks: 64, detectAfter: 5, fence: true, lateDevice: 40, maxSteps: 100_000,
};

function clean(r: ReturnType<typeof runPair>): string[] {
  return [...(r.finished ? [] : [`stalled after ${r.steps} steps`]), ...r.diskProblems, ...r.doubleAcks];
}

describe("a storage pair fails over with nothing lost, torn or applied twice", () => {
  it("runs the workload to the end with no fault, every block holding its latest generation", () => {
    const r = runPair(core, base);
    expect(clean(r)).toEqual([]);
    expect(r.acked.get("X")!.size).toBe(24);
    expect([...r.acked.get("Y")!.values()].every((g) => g === 3)).toBe(true);
    expect(r.events.some((e) => /re-issue|dies/.test(e.what))).toBe(false);
  });

  it("with the primary killed after every step in turn (fenced), each run is clean", () => {
    const steps = runPair(core, base).steps;
    for (const variant of [{ detectAfter: 5, lateDevice: 40 }, { detectAfter: 1, lateDevice: 0 }]) {
      const bad: string[] = [];
      let reissued = 0;
      for (let k = 1; k <= steps; k++) {
        const r = runPair(core, { ...base, ...variant, failAfter: k });
        const p = clean(r);
        if (p.length) bad.push(`fault after step ${k}: ${p[0]}`);
        if (r.events.some((e) => / re-issues /.test(e.what))) reissued++;
        expect(r.failover?.died).toBe(k);
      }
      expect(bad).toEqual([]);
      expect(reissued).toBeGreaterThan(steps / 4); // most faults caught requests in flight
    }
  });

  it("without the fence, a late write of the dead primary's device overwrites acknowledged data in some run", () => {
    const steps = runPair(core, base).steps;
    const broken = [];
    for (let k = 1; k <= steps; k++) {
      const r = runPair(core, { ...base, fence: false, failAfter: k });
      if (r.diskProblems.length) broken.push({ k, r });
    }
    expect(broken.length).toBeGreaterThan(0);
    const { r } = broken[0]!;
    expect(r.events.some((e) => /a late write/.test(e.what))).toBe(true);
    expect(r.diskProblems[0]).toMatch(/acknowledged, the block holds/);
  });

  it("a server writing every completion twice gets each request acknowledged once, with or without a failover", () => {
    for (const failAfter of [undefined, 60]) {
      const r = runPair(core, { ...base, echo: true, failAfter });
      expect(clean(r)).toEqual([]);
      expect(r.events.some((e) => / ignores /.test(e.what))).toBe(true);
    }
  });

  it("is deterministic: the same scenario gives the same events and disk", () => {
    const a = runPair(core, { ...base, failAfter: 77 });
    const b = runPair(core, { ...base, failAfter: 77 });
    expect(b.events).toEqual(a.events);
    expect(Buffer.from(b.disk).equals(Buffer.from(a.disk))).toBe(true);
  });
});
