// Benchmark: QEMU start → the first line of the default /init under plain QEMU TCG (-kernel/-initrd/-append under
// SeaBIOS, no monitor), with the cached Debian kernel, the default initramfs, 128 MiB and the default command line;
// also QEMU start → the kernel's first console line; and the same kernel entered by our own loading path without the
// monitor (loader-efi/linux-direct.ts under OVMF: our ESP files, zero page and 64-bit entry), with OVMF's own start
// (QEMU start → the loader's first line) given beside it; and issue 25's comparison: the same kernel, initramfs,
// memory and command line in a Linux partition of the ultravisor, from the partition's start to its first /init line,
// against plain QEMU's start to first /init line (target ratio ≤ 1.5), with the partition's exits per second by kind.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure, round } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { definitionFrom } from "../definition/load.ts";
import { linuxInputs } from "../definition/linux.ts";
import { linkEfiImage, writeEfiImage } from "../image/efi-image.ts";
import { linuxEspFiles, linuxLoadPlan } from "../image/linux.ts";
import { assembleLinuxDirect, LINUX_DIRECT_ENTRY, LINUX_DIRECT_LINES } from "../loader-efi/linux-direct.ts";
import { findLinuxCache } from "../toolchain/linux/cache.ts";
import { buildUltravisorImage, machineMemoryMiB } from "../image/ultravisor.ts";
import { bareMetalConfig } from "../partitions/config.ts";
import { EXIT_KINDS, VM } from "../monitor-gen/svm/layout.ts";
import { DEFAULT_CMDLINE, defaultInitramfs } from "../toolchain/linux/default-initramfs.ts";

const REPEAT = Number(process.env["UV_BENCH_LINUX_REPEAT"] ?? 3);
const MEM_MIB = 128;

const bench: Bench = {
  name: "linux",
  async run(): Promise<Figure[]> {
    const dir = mkdtempSync(join(tmpdir(), "uv-bench-linux-"));
    try {
      const cache = findLinuxCache();
      const initrd = join(dir, "initrd.gz");
      writeFileSync(initrd, defaultInitramfs().gzip());
      let init = Infinity;
      let kernel = Infinity;
      let kernelToInit = Infinity; // per run, then the least: not a difference of two runs' minima
      for (let i = 0; i < REPEAT; i++) {
        const m = await Machine.start({
          name: "bench-linux", accel: "tcg", mem: MEM_MIB, timeoutMs: 120_000, log: () => undefined,
          linux: { kernel: cache.kernel, initrd, append: DEFAULT_CMDLINE },
        });
        try {
          await m.waitFor(/^init: /, 110_000);
          const firstInit = m.lines.find((l) => l.text.startsWith("init: "))!.ms;
          const firstKernel = m.lines.find((l) => l.text.includes("Linux version"))?.ms ?? Infinity;
          init = Math.min(init, firstInit);
          kernel = Math.min(kernel, firstKernel);
          kernelToInit = Math.min(kernelToInit, firstInit - firstKernel);
        } finally {
          await m.close();
        }
      }
      // Our path: the same kernel, initramfs, memory and command line, from the ESP through linux-direct.
      const d = definitionFrom({ revision: 2, partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2 }, { name: "L", duty: 16, memory: `${MEM_MIB} MB`, linux: {} }] }, "bench host");
      const plan = linuxLoadPlan("L", linuxInputs(d).inputs.get(2)!);
      const obj = assembleLinuxDirect({ files: plan.files.map((f) => ({ path: f.path, size: f.data.length, gpa: f.gpa })), entry: plan.entry, memory: plan.memory });
      const image = (await writeEfiImage(join(dir, "direct"), linkEfiImage(obj, { entry: LINUX_DIRECT_ENTRY, extraFiles: linuxEspFiles([plan]) }))).esp;
      let direct = Infinity;
      let directFromLoader = Infinity;
      for (let i = 0; i < REPEAT; i++) {
        const m = await Machine.start({ name: "bench-linux-direct", image, accel: "tcg", mem: "1G", timeoutMs: 120_000, log: () => undefined });
        try {
          await m.waitFor(/^init: /, 110_000);
          const first = m.lines.find((l) => l.text.startsWith("init: "))!.ms;
          const started = m.lines.find((l) => l.text.startsWith(LINUX_DIRECT_LINES.started))!.ms;
          direct = Math.min(direct, first);
          directFromLoader = Math.min(directFromLoader, first - started);
        } finally {
          await m.close();
        }
      }
      // The partition: the same kernel, initramfs, memory and command line in a Linux partition of the ultravisor, given
      // 15/16 of the processor (the I/O partition, whose duty is at least 1, has the 16th, and runs in the time L
      // gives away while its console queue is full). From the monitor's "partition L started" line to L's first /init
      // line, and L's exits by kind over that time (its VM page, read over QMP).
      const uvDef = definitionFrom({ revision: 2, run: { runQuanta: 60_000 }, partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 1 }, { name: "L", duty: 15, memory: `${MEM_MIB} MB`, linux: {} }] }, "bench host");
      const uvImg = await buildUltravisorImage({ config: bareMetalConfig(uvDef) });
      const uvEsp = (await writeEfiImage(join(dir, "partition"), uvImg)).esp;
      let partition = Infinity;
      let exits: Record<string, number> = {};
      for (let i = 0; i < REPEAT; i++) {
        const m = await Machine.start({ name: "bench-linux-partition", image: uvEsp, accel: "tcg", mem: machineMemoryMiB(uvImg.linux), timeoutMs: 150_000, log: () => undefined });
        try {
          await m.waitFor(/^L: init: /, 140_000);
          const started = m.lines.find((l) => /^ultravisor: partition L started at quantum/.test(l.text))!.ms;
          const first = m.lines.find((l) => l.text.startsWith("L: init: "))!.ms;
          const vmcb = /^ultravisor: svm: partition L virtualized: VMCB (0x[0-9a-f]+)/.exec(m.lines.find((l) => /^ultravisor: svm: partition L virtualized/.test(l.text))!.text)![1]!;
          const counts = Buffer.from(await m.readPhysical(BigInt(vmcb) - 4096n + BigInt(VM.exitKinds), 8 * EXIT_KINDS.length));
          if (first - started < partition) {
            partition = first - started;
            exits = Object.fromEntries(EXIT_KINDS.map((k, j) => [k, Number(counts.readBigUInt64LE(8 * j))]));
          }
        } finally {
          await m.close();
        }
      }
      const seconds = partition / 1000;
      return [
        { bench: "linux.partition.start-to-first-init-line", value: round(seconds), unit: "s", vs: "linux.plain-qemu.first-init-line", ratio: round(partition / init) },
        ...EXIT_KINDS.map((k) => ({ bench: `linux.partition.exits-per-s.${k}`, value: round(exits[k]! / seconds, 0), unit: "exits/s (partition start to first /init line)" })),
        // A harder yardstick beside it: plain QEMU from the kernel's first line (its firmware, loading and decompression
        // excluded) to /init — the partition's figure includes its decompression, this one does not.
        { bench: "linux.partition.vs-plain-kernel-to-init", value: round(seconds), unit: "s", vs: "linux.plain-qemu.kernel-line-to-init-line", ratio: round(partition / kernelToInit) },
        { bench: "linux.plain-qemu.first-init-line", value: round(init / 1000), unit: "s" },
        { bench: "linux.plain-qemu.kernel-line-to-init-line", value: round(kernelToInit / 1000), unit: "s" },
        { bench: "linux.plain-qemu.first-kernel-line", value: round(kernel / 1000), unit: "s" },
        { bench: "linux.direct-entry.first-init-line", value: round(direct / 1000), unit: "s" },
        // From our loader's first line (OVMF's boot excluded) to /init, beside plain QEMU's whole boot.
        { bench: "linux.direct-entry.loader-to-init", value: round(directFromLoader / 1000), unit: "s", vs: "linux.plain-qemu.first-init-line", ratio: round(directFromLoader / init) },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
