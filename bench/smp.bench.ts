// Benchmark of the application processors (issue 18; docs/specs/smp.md §1): the default image booted with two
// processors under multi-threaded QEMU TCG; at bring-up the bootstrap processor times 64 round trips of a fixed IPI to
// the first application processor, answered by a store it spins on (monitor-gen/smp.ts smp_ping), with the TSC. Under
// TCG the TSC is the host's, so the figures are host cycles of the emulation, not of a real machine's APICs. The same
// run dispatches X and Y on the second processor (docs/specs/smp.md §2): the quanta that processor never dispatched
// for — quantum IPIs merged while it was still busy — per thousand of the run's quanta, the cost of keeping one
// quantum count (§2.3), and the signal IPIs the guests there sent to the I/O partition's processor. A second run swaps
// the schedule (§2.7) at quantum 100: the TSC cycles from PCPU 0's request to each processor's first quantum from the
// new table (mostly the wait for the wrap, up to 16 quanta) and the spread between the two processors.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";

const AP = /^ultravisor: smp: application processor 1 \(local APIC id \d+\): (\d+) quantum interrupts, (\d+) lost, (\d+) signal IPIs$/;
const SIGNALS = /^ultravisor: smp: signal IPIs sent (\d+), taken by PCPU 0 (\d+)$/;
const TOOK = /^ultravisor: smp: PCPU (\d+) took the new schedule at quantum (\d+) \((\d+) TSC cycles after the request\)$/;
const PING = /^ultravisor: smp: IPI round trip to application processor 1: min (\d+) mean (\d+) TSC cycles over (\d+) rounds, lost (\d+)$/;

const bench: Bench = {
  name: "smp",
  async run(): Promise<Figure[]> {
    const dir = mkdtempSync(join(tmpdir(), "uv-bench-smp-"));
    try {
      const out = await writeEfiImage(dir, await buildUltravisorImage());
      const m = await Machine.start({ name: "bench-smp", image: out.esp, accel: "tcg", smp: 2, timeoutMs: 120_000, log: () => undefined });
      try {
        const p = await m.waitFor(PING, 100_000);
        const ap = await m.waitFor(AP, 100_000);
        const sig = await m.waitFor(SIGNALS, 100_000);
        await m.wait();
        const [min, mean, rounds, lost] = [p[1], p[2], p[3], p[4]].map(Number) as [number, number, number, number];
        const [taken, missed] = [Number(ap[1]), Number(ap[2])];
        const swap = await swapRun(dir);
        return [
          ...swap,
          { bench: "smp.quanta_lost_per_thousand", value: Math.round((missed * 1000 * 10) / (taken + missed)) / 10, unit: `per 1000 quanta on application processor 1 (TCG; ${missed} of ${taken + missed})` },
          { bench: "smp.signal_ipis", value: Number(sig[1]), unit: `signal IPIs sent to PCPU 0 in an 800-quantum run (${sig[2]} taken)` },
          { bench: "smp.ipi_round_trip.min", value: min, unit: `TSC cycles (TCG, host clock; ${rounds} rounds, ${lost} lost)` },
          { bench: "smp.ipi_round_trip.mean", value: mean, unit: "TSC cycles (TCG, host clock)", vs: "smp.ipi_round_trip.min", ratio: Math.round((mean / min) * 100) / 100 },
        ];
      } finally {
        await m.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** The default image with a swap at quantum 100 (a test build's request, docs/specs/smp.md §2.7) on two processors. */
async function swapRun(dir: string): Promise<Figure[]> {
  const out = await writeEfiImage(join(dir, "swap"), await buildUltravisorImage({ swap: { at: 100, duties: { X: 1, Y: 6 } } }));
  const m = await Machine.start({ name: "bench-smp-swap", image: out.esp, accel: "tcg", smp: 2, timeoutMs: 120_000, log: () => undefined });
  try {
    await m.wait();
    const took = m.lines.map((l) => TOOK.exec(l.text)).filter((x) => x !== null).map((x) => ({ pcpu: Number(x[1]), quantum: Number(x[2]), tsc: Number(x[3]) }));
    if (took.length !== 2) throw new Error(`the swap run reported ${took.length} processor(s) taking the new schedule, not 2`);
    const [a, b] = [took[0]!, took[1]!];
    return [
      { bench: "smp.swap_latency.max", value: Math.max(a.tsc, b.tsc), unit: `TSC cycles from the request (quantum 100) to the last processor's first quantum from the new table (TCG, host clock; quanta ${a.quantum}, ${b.quantum})` },
      { bench: "smp.swap_skew", value: Math.abs(a.tsc - b.tsc), unit: "TSC cycles between the two processors taking the new table (TCG, host clock)" },
    ];
  } finally {
    await m.close();
  }
}

export default bench;
