// Benchmark of the application processors (issue 18; docs/specs/smp.md §1): the default image booted with two
// processors under multi-threaded QEMU TCG; at bring-up the bootstrap processor times 64 round trips of a fixed IPI to
// the first application processor, answered by a store it spins on (monitor-gen/smp.ts smp_ping), with the TSC. Under
// TCG the TSC is the host's, so the figures are host cycles of the emulation, not of a real machine's APICs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";

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
        await m.wait();
        const [min, mean, rounds, lost] = [p[1], p[2], p[3], p[4]].map(Number) as [number, number, number, number];
        return [
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

export default bench;
