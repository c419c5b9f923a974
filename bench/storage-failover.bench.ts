// Benchmarks of the storage pair's failover in the simulator (issue 16, docs/specs/storage-failover.md §6): the
// steps from the primary's death to the secondary's first completion (over a fault after every step of a run), the
// clients' acknowledgements per 1,000 steps before the death and after the secondary's first completion (the same
// runs), and fault runs simulated per second. Steps are the simulator's unit of one action; the machine's figures
// in time come with the machine side of the pair.
import { round, type Bench, type Figure } from "./bench.ts";
import { loadCore } from "../core/wasm.ts";
import { runPair, type PairScenario } from "../sim/storage-pair.ts";

const scenario: PairScenario = {
  clients: [
    { name: "X", first: 0, blocks: 64, passes: 4, inFlight: 8, perRequest: 2 },
    { name: "Y", first: 64, blocks: 64, passes: 4, inFlight: 8, perRequest: 4 },
  ],
  diskBlocks: 128, detectAfter: 5, fence: true, lateDevice: 40, maxSteps: 1_000_000,
};

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const bench: Bench[] = [{
  name: "storage-failover",
  async run(): Promise<Figure[]> {
    const core = await loadCore();
    const whole = runPair(core, scenario);
    if (!whole.finished || whole.diskProblems.length) throw new Error("bench: the run without a fault is not clean");
    const gaps: number[] = [];
    const before: number[] = [];
    const after: number[] = [];
    const t0 = performance.now();
    let runs = 0;
    for (let k = 10; k < whole.steps - 10; k++) {
      const r = runPair(core, { ...scenario, failAfter: k });
      runs++;
      if (!r.finished || r.diskProblems.length || r.doubleAcks.length) throw new Error(`bench: fault after step ${k} left problems: ${r.diskProblems[0] ?? r.doubleAcks[0] ?? "stalled"}`);
      const f = r.failover!;
      if (f.firstSecondaryCompletion === undefined) continue; // the fault came after the last request
      gaps.push(f.firstSecondaryCompletion - f.died);
      const acks = r.events.filter((e) => / acked /.test(e.what));
      const pre = acks.filter((e) => e.step < f.died).length;
      const post = acks.filter((e) => e.step >= f.firstSecondaryCompletion!).length;
      before.push((1000 * pre) / f.died);
      if (r.steps > f.firstSecondaryCompletion) after.push((1000 * post) / (r.steps - f.firstSecondaryCompletion));
    }
    const secs = (performance.now() - t0) / 1000;
    const b = median(before);
    const a = median(after);
    return [
      { bench: "storage_failover.steps_to_secondary", value: median(gaps), unit: `steps from the primary's death to the secondary's first completion (median of ${gaps.length} faults; detection after ${scenario.detectAfter} steps)` },
      { bench: "storage_failover.acks_per_kstep_before", value: round(b, 1), unit: "requests acknowledged per 1,000 steps before the death (median)" },
      { bench: "storage_failover.acks_per_kstep_after", value: round(a, 1), unit: "requests acknowledged per 1,000 steps after the secondary's first completion (median)", vs: "before the death, same runs", ratio: round(a / b, 3) },
      { bench: "storage_failover.runs_per_s", value: round(runs / secs, 1), unit: `fault runs simulated per second (${whole.steps} steps each without a fault)` },
    ];
  },
}];
export default bench;
