// Benchmark: QEMU start → the first line of the default /init under plain QEMU TCG (-kernel/-initrd/-append under
// SeaBIOS, no monitor), with the cached Debian kernel, the default initramfs, 128 MiB and the default command line;
// also QEMU start → the kernel's first console line; and the same kernel entered by our own loading path without the
// monitor (loader-efi/linux-direct.ts under OVMF: our ESP files, zero page and 64-bit entry), with OVMF's own start
// (QEMU start → the loader's first line) given beside it. This is the plain-QEMU side of issue 25's comparison; the
// partition side (the same kernel, initramfs, memory and command line in a Linux partition given 16/16 of its
// processor, same run, ratio target ≤ 1.5) joins it once the monitor boots Linux (docs/specs/linux-partition.md).
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
      for (let i = 0; i < REPEAT; i++) {
        const m = await Machine.start({
          name: "bench-linux", accel: "tcg", mem: MEM_MIB, timeoutMs: 120_000, log: () => undefined,
          linux: { kernel: cache.kernel, initrd, append: DEFAULT_CMDLINE },
        });
        try {
          await m.waitFor(/^init: /, 110_000);
          init = Math.min(init, m.lines.find((l) => l.text.startsWith("init: "))!.ms);
          kernel = Math.min(kernel, m.lines.find((l) => l.text.includes("Linux version"))?.ms ?? Infinity);
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
      return [
        { bench: "linux.plain-qemu.first-init-line", value: round(init / 1000), unit: "s" },
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
