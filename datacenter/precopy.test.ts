// The pre-copy model against figures worked by hand (geometric series of dirtied pages; docs/specs/datacenter.md §4):
// one test per stop rule, the order in which rules are checked, and refused inputs.
import { describe, expect, it } from "vitest";
import { DEFAULT_RULES, PAGE_BYTES, planPrecopy, PrecopyError } from "./precopy.ts";

/** A stream of 100,000 pages per second, so a round of n pages takes n/100 ms. */
const BW = 100_000 * PAGE_BYTES;

describe("pre-copy stop rules", () => {
  it("downtime target (QEMU): 1,000,000 pages dirtied at half the stream rate stop once ≤ 30,000 pages are left", () => {
    // Left after round k: 10^6 / 2^k → 500000, 250000, 125000, 62500, 31250, 15625; 15625 pages = 156.25 ms ≤ 300 ms.
    const p = planPrecopy({ pages: 1_000_000, dirtyRate: 50_000, bandwidth: BW, rules: { downtimeMs: 300, maxIterations: 29 } });
    expect(p.stop).toBe("downtime");
    expect(p.rounds.map((r) => r.sent)).toEqual([1_000_000, 500_000, 250_000, 125_000, 62_500, 31_250]);
    expect(p.finalPages).toBe(15_625);
    expect(p.downtimeMs).toBeCloseTo(156.25, 9);
    // 10 s + 5 + 2.5 + 1.25 + 0.625 + 0.3125 s live, then 0.15625 s paused.
    expect(p.totalMs).toBeCloseTo(19_843.75, 6);
    expect(p.totalSent).toBe(1_984_375);
  });

  it("remaining-dirty threshold (Xen, 50 pages): a tenth dirtied per round stops when 26 pages are left", () => {
    // 262144 → floor(26214.4) = 26214 → floor(2621.4) = 2621 → floor(262.1) = 262 → floor(26.2) = 26 < 50.
    const p = planPrecopy({ pages: 262_144, dirtyRate: 10_000, bandwidth: BW, rules: { dirtyThreshold: 50, maxIterations: 29, maxFactor: 3 } });
    expect(p.stop).toBe("dirty-threshold");
    expect(p.rounds.map((r) => r.sent)).toEqual([262_144, 26_214, 2_621, 262]);
    expect(p.finalPages).toBe(26);
    expect(p.downtimeMs).toBeCloseTo(0.26, 9);
  });

  it("iteration limit (Xen): a partition dirtying 90% of the stream rate is stopped after the 5th round", () => {
    const p = planPrecopy({ pages: 100_000, dirtyRate: 90_000, bandwidth: BW, rules: { dirtyThreshold: 50, maxIterations: 5 } });
    expect(p.stop).toBe("iterations");
    // 100000 → 90000 → 81000 → 72900 → 65610 → floor(59049) left for the stop-and-copy.
    expect(p.rounds.map((r) => r.sent)).toEqual([100_000, 90_000, 81_000, 72_900, 65_610]);
    expect(p.finalPages).toBe(59_049);
    expect(p.downtimeMs).toBeCloseTo(590.49, 9);
  });

  it("total-copy bound (Xen, 3× memory): a hot working set of 100,000 pages never shrinks; the 7th round passes 3 × 262,144", () => {
    // The partition dirties twice the stream rate but only within 100,000 pages: every later round sends 100,000.
    // Sent after k rounds: 262144 + 100000 (k-1); > 786432 first at k = 7 (862144). The downtime target is not met
    // (100,000 pages = 1 s > 300 ms), so QEMU's rule alone would go on for ever.
    const p = planPrecopy({ pages: 262_144, dirtyRate: 200_000, workingSet: 100_000, bandwidth: BW, rules: DEFAULT_RULES });
    expect(p.stop).toBe("total-copy");
    expect(p.rounds).toHaveLength(7);
    expect(p.totalSent - p.finalPages).toBe(862_144);
    expect(p.downtimeMs).toBeCloseTo(1000, 9);
  });

  it("rules are checked in order: when the downtime target and the threshold both hold, downtime is reported", () => {
    const p = planPrecopy({ pages: 262_144, dirtyRate: 10_000, bandwidth: BW, rules: DEFAULT_RULES });
    // After round 1, 26,214 pages = 262.14 ms ≤ 300 ms.
    expect(p.stop).toBe("downtime");
    expect(p.rounds).toHaveLength(1);
  });

  it("an idle partition (dirties nothing) stops clean after one round with no pages paused", () => {
    const p = planPrecopy({ pages: 1024, dirtyRate: 0, bandwidth: BW, rules: { maxFactor: 3 } });
    expect(p).toMatchObject({ stop: "clean", finalPages: 0, downtimeMs: 0, totalSent: 1024 });
  });

  it("refuses inputs that are not numbers, and rules that never end a non-converging run", () => {
    const ok = { pages: 10, dirtyRate: 1, bandwidth: BW, rules: DEFAULT_RULES };
    for (const bad of [
      { ...ok, pages: 0 }, { ...ok, pages: 1.5 }, { ...ok, dirtyRate: -1 }, { ...ok, dirtyRate: Number.NaN }, { ...ok, bandwidth: 0 },
      { ...ok, workingSet: 11 }, { ...ok, rules: { downtimeMs: 300 } }, { ...ok, rules: { ...DEFAULT_RULES, downtimeMs: Infinity } },
    ]) expect(() => planPrecopy(bad)).toThrow(PrecopyError);
  });
});
