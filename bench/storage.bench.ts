// Benchmark of storage on the machine (issue 15; docs/specs/storage-channel.md §8): one boot under QEMU TCG with
// `-icount shift=0` (bench/README-ultravisor.md: QEMU then advances virtual time by 1 ns per executed instruction and
// the guest's TSC follows it, so a TSC difference is an instruction count, independent of the host's load) of a host
// whose I/O partition drives a data disk, in the same run:
//  - direct: the I/O partition reads 4 KiB into its own page 256 times, driving its virtio-blk itself (no channel);
//  - channel: guest G reads 4 KiB through the storage channel 256 times (six in flight); the I/O partition
//    times each such request from its removal to its completion's insertion (the check by core, DMA_ADDR for the page,
//    the device request, the completion, the signal — its own and the monitor's instructions).
// The channel figure counts the I/O partition's side only (with the monitor's work for its DMA_ADDR and SIGNAL
// hypercalls); the client's own instructions and the context switches between them are not in it.
// Both exclude the device's own time (the I/O partition's TSC spent polling the used ring, which is QEMU's emulation
// and the host's disk, not our instructions). The client's round trip (insertion → completion in its queue) includes
// the schedule: the I/O partition runs in its quanta only, so requests per second through the channel are bounded by
// the schedule, not by the instructions; `storage.channel.requests_per_s` is the client's reads over its whole run in
// virtual seconds (1 ns = one instruction), and `storage.direct.requests_per_s` 1e9 / the direct read's median with
// the polling included.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure, round } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";
import { configFrom } from "../partitions/config.ts";

const HOST = {
  revision: 2,
  name: "storage bench",
  partitions: [
    { name: "idle", kind: "idle" },
    { name: "io", kind: "io", duty: 8 },
    { name: "G", kind: "guest", duty: 4, behaviour: { disk: { first: 0, blocks: 256, passes: 1, bench: true } } },
  ],
  devices: [{ disk: 0, owner: "io" }],
  run: { runQuanta: 0 },
};

const IO = /^io: storage: bench (direct|channel) 4k read: min (\d+) median (\d+)(?: total median (\d+))? over (\d+)$/;
const CLIENT = /^G: disk: bench round trip min (\d+) median (\d+)$/;
const CLIENT_TOTAL = /^G: disk: bench (\d+) reads in (\d+)$/;

/** One boot's figures (the IOMMU bench, bench/iommu.bench.ts, runs it with the host's IOMMU on as well). */
export interface StorageRun {
  directMedian: number; directMin: number; directTotal: number; samples: number;
  channelMedian: number; channelMin: number; channelSamples: number;
  roundTrip: number; reads: number; channelRate: number;
}

/** Boots the benchmark's host (with `host.iommu` when asked) under -icount and reads its figures. */
export async function storageRun(iommu: boolean): Promise<StorageRun> {
  const dir = mkdtempSync(join(tmpdir(), "uv-bench-storage-"));
  try {
    const disk = join(dir, "data.img");
    writeFileSync(disk, new Uint8Array(4 << 20));
    const host = iommu ? { ...HOST, host: { iommu: true } } : HOST;
    const out = await writeEfiImage(dir, await buildUltravisorImage({ config: configFrom(host, "bench/storage.bench.ts") }));
    const m = await Machine.start({ name: iommu ? "bench-storage-iommu" : "bench-storage", image: out.esp, disks: [disk], mem: "256M", accel: "tcg", timeoutMs: 300_000, extraArgs: ["-icount", "shift=0"], log: () => undefined });
    try {
      const found = new Map<string, RegExpExecArray>();
      const t0 = Date.now();
      while (!(found.has("direct") && found.has("channel") && found.has("client") && found.has("total"))) {
        for (const l of m.lines) {
          const a = IO.exec(l.text);
          if (a) found.set(a[1]!, a);
          const c = CLIENT.exec(l.text);
          if (c) found.set("client", c);
          const t = CLIENT_TOTAL.exec(l.text);
          if (t) found.set("total", t);
        }
        if (Date.now() - t0 > 280_000) throw new Error(`storage bench: no figures after 280 s; last lines:\n${m.lines.slice(-15).map((l) => l.text).join("\n")}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const d = found.get("direct")!;
      const c = found.get("channel")!;
      const g = found.get("client")!;
      const t = found.get("total")!;
      return {
        directMedian: Number(d[3]), directMin: Number(d[2]), directTotal: Number(d[4]), samples: Number(d[5]),
        channelMedian: Number(c[3]), channelMin: Number(c[2]), channelSamples: Number(c[5]),
        roundTrip: Number(g[2]), reads: Number(t[1]), channelRate: (Number(t[1]) * 1e9) / Number(t[2]),
      };
    } finally {
      await m.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: Bench = {
  name: "storage",
  async run(): Promise<Figure[]> {
    const r = await storageRun(false);
    return [
      { bench: "storage.direct.instructions_per_4k", value: r.directMedian, unit: `instructions (median of ${r.samples}; min ${r.directMin}; device time excluded; -icount)` },
      { bench: "storage.channel.instructions_per_4k", value: r.channelMedian, unit: `I/O partition + monitor instructions (median of ${r.channelSamples}; min ${r.channelMin}; device time excluded; -icount)`,
        vs: "storage.direct.instructions_per_4k", ratio: round(r.channelMedian / r.directMedian, 2) },
      { bench: "storage.direct.requests_per_s", value: Math.round(1e9 / r.directTotal), unit: `4 KiB reads per virtual second (-icount: 1 ns per instruction; median ${r.directTotal} ns with the polling; QEMU's device work takes no virtual time)` },
      { bench: "storage.channel.requests_per_s", value: Math.round(r.channelRate), unit: `4 KiB reads per virtual second, ${r.reads} reads, 6 in flight, client round trip median ${r.roundTrip} ns (the fixed schedule bounds it: the I/O partition serves in its quanta only)`,
        vs: "storage.direct.requests_per_s", ratio: Number((r.channelRate * r.directTotal / 1e9).toPrecision(3)) },
    ];
  },
};

export default bench;
