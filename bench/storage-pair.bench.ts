// Benchmark of the storage pair's failover on the machine (issue 16; docs/specs/storage-failover.md §7):
// examples/storage-pair.yaml booted under QEMU TCG with one data disk named twice (two virtio-blk devices on one file).
// The monitor times the failover itself — from the primary's fault (its TSC and quantum, taken in the fault path) to
// the secondary's first completion to a client (its first SIGNAL on a storage slot) — and each client reports, per
// epoch, the blocks of its accepted completions and the quanta of the first and last: throughput before the death
// (epoch 0, the primary) and after (epoch 1, the secondary). Under TCG the TSC is the host's clock and a quantum is
// 2,000,000 APIC timer ticks; the figures are the emulation's, not a real machine's.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { round, type Bench, type Figure } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";
import { checkDiskImage } from "../image/disk-workload.ts";
import { loadConfig } from "../partitions/config.ts";

const FIRST = /^ultravisor: storage pair: first completion by \S+ at quantum (\d+) tsc (\d+): failover took (\d+) tsc, (\d+) quanta$/;
const FENCE = /^ultravisor: storage pair: \S+ failed at quantum \d+ tsc (\d+); device \S+ fenced .*: \S+ active at tsc (\d+)$/;
const STATS = /^(\S+): disk: pair: epoch ([01]): (\d+) requests (\d+) blocks quanta (\d+)-(\d+)$/;

const bench: Bench = {
  name: "storage-pair",
  async run(): Promise<Figure[]> {
    const dir = mkdtempSync(join(tmpdir(), "uv-bench-pair-"));
    try {
      const config = loadConfig(join(import.meta.dirname, "..", "examples", "storage-pair.yaml"));
      const disk = join(dir, "pair.img");
      writeFileSync(disk, new Uint8Array(1 << 20));
      const out = await writeEfiImage(dir, await buildUltravisorImage({ config }));
      const m = await Machine.start({ name: "bench-storage-pair", image: out.esp, accel: "tcg", disks: [disk, disk], timeoutMs: 160_000, log: () => undefined });
      let lines: string[];
      try {
        await m.wait();
        lines = m.lines.map((l) => l.text);
      } finally {
        await m.close();
      }
      const check = checkDiskImage(disk, lines.join("\n"));
      if (check.problems.length) throw new Error(`bench: the image check failed after the failover: ${check.problems[0]}`);
      const first = lines.map((l) => FIRST.exec(l)).find((x) => x);
      if (!first) throw new Error("bench: no failover line (ultravisor: storage pair: first completion …) in the run");
      const fence = lines.map((l) => FENCE.exec(l)).find((x) => x);
      if (!fence) throw new Error("bench: no fence line (ultravisor: storage pair: … fenced …) in the run");
      const epochs = [0, 1].map((e) => {
        const rows = lines.map((l) => STATS.exec(l)).filter((x): x is RegExpExecArray => x !== null && Number(x[2]) === e);
        if (rows.length !== 2) throw new Error(`bench: expected both clients' epoch ${e} line, found ${rows.length}`);
        const blocks = rows.reduce((n, r) => n + Number(r[4]), 0);
        const from = Math.min(...rows.map((r) => Number(r[5])));
        const to = Math.max(...rows.map((r) => Number(r[6])));
        return { blocks, quanta: to - from + 1 };
      });
      const before = epochs[0]!.blocks / epochs[0]!.quanta;
      const after = epochs[1]!.blocks / epochs[1]!.quanta;
      return [
        { bench: "storage_pair.fence_tsc", value: Number(fence[2]) - Number(fence[1]), unit: "TSC cycles of the monitor's fault path from the primary's death to epoch 1 (core's steps, bus mastering off, virtio reset drained; TCG, host clock)" },
        { bench: "storage_pair.failover_tsc", value: Number(first[3]), unit: "TSC cycles from the primary's fault to the secondary's first completion (TCG, host clock)" },
        { bench: "storage_pair.failover_quanta", value: Number(first[4]), unit: "quanta from the primary's fault to the secondary's first completion (2 ms each)" },
        { bench: "storage_pair.blocks_per_quantum_before", value: round(before, 2), unit: `blocks moved (written or read back) per quantum through the primary (${epochs[0]!.blocks} blocks in ${epochs[0]!.quanta} quanta)` },
        { bench: "storage_pair.blocks_per_quantum_after", value: round(after, 2), unit: `blocks moved (written or read back) per quantum through the secondary (${epochs[1]!.blocks} blocks in ${epochs[1]!.quanta} quanta)`, vs: "before the failover", ratio: round(after / before, 3) },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
