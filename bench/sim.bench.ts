// Benchmark: partition create + destroy cycles per second on the booted simulated platform, every request travelling
// the command channel (core's queues) to the ultravisor and db_submit_as (issue 6). One cycle defines a guest of
// 64 MB with one VCPU and a console channel to an I/O partition (descriptor + memory, channel memory and definition,
// server assignment, schedule), then stops it per [0186] (eviction, disconnects, the reclaim transaction).
// Figures: cycles per second, and command-channel requests per cycle (to read the first figure against).
// Also the cost per step of a `uvt sim` scenario of N create + destroy steps (N = 1k, 10k, 100k) on a plain host,
// printed transaction by transaction as the CLI does: it must not grow with N (the audit log is read incrementally).
import { bestOf, round, type Bench, type Figure } from "./bench.ts";
import { Platform } from "../sim/platform.ts";
import { runScenario } from "../sim/run-scenario.ts";
import type { Operation, Scenario } from "../sim/scenario.ts";

/** Milliseconds per step of a scenario creating and destroying `n` partitions of 4 MB, one after the other. */
async function msPerStep(n: number): Promise<number> {
  const operations: Operation[] = [];
  for (let i = 0; i < n; i++) {
    operations.push({ kind: "create", name: `P${i}`, size: 4n << 20n, line: 0 }, { kind: "destroy", who: `P${i}`, line: 0 });
  }
  const s: Scenario = { file: "generated", host: { memory: 64n << 30n, keepBackup: false }, operations, expect: { owners: [], output: [] } };
  let lines = 0;
  const t0 = performance.now();
  const r = await runScenario(s, () => void lines++, { map: false });
  const ms = performance.now() - t0;
  if (r.failures.length) throw new Error(`bench: generated scenario failed: ${r.failures[0]}`);
  return ms / n;
}

const bench: Bench = {
  name: "sim",
  async run(): Promise<Figure[]> {
    const pf = await Platform.boot({ memory: 64n << 30n, keepBackup: false }, { pcpus: 8 });
    pf.definePartition({ name: "IOa", kind: "IO", memory: 256n << 20n, vcpus: [{ duty: 16, dedicated: true }] });
    let n = 0;
    const cycle = (): void => {
      const name = `G${n++ % 1000}`;
      pf.definePartition({ name, memory: 64n << 20n, vcpus: [{ duty: 4 }], channels: [{ type: "console", server: "IOa" }] });
      pf.stop(name);
    };
    for (let i = 0; i < 50; i++) cycle(); // warm up (and let the first backups of the log happen)
    const served0 = pf.ultravisor.served.length;
    const cycles = 500;
    const t = await bestOf(3, () => {
      for (let i = 0; i < cycles; i++) cycle();
    });
    const requests = (pf.ultravisor.served.length - served0) / (3 * cycles);
    const steps: Figure[] = [];
    await msPerStep(1000); // warm-up: the first run pays for compiling the simulator's code
    const first = await msPerStep(1000);
    for (const n of [1000, 10_000, 100_000]) {
      const ms = n === 1000 ? first : await msPerStep(n);
      steps.push({ bench: `sim.scenario_${n}_steps_per_step`, value: round(ms, 4), unit: "ms/step", vs: "1000 steps", ratio: round(ms / first, 3) });
    }
    return [
      { bench: "sim.partition_create_destroy_per_s", value: Math.round(cycles / t), unit: "cycles/s" },
      { bench: "sim.command_channel_requests_per_cycle", value: round(requests, 2), unit: "requests/cycle" },
      ...steps,
    ];
  },
};

export default bench;
