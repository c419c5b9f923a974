// Benchmark: QEMU start → the first line of the default /init under plain QEMU TCG (-kernel/-initrd/-append under
// SeaBIOS, no monitor), with the cached Debian kernel, the default initramfs, 128 MiB and the default command line;
// also QEMU start → the kernel's first console line. This is the plain-QEMU side of issue 25's comparison; the
// partition side (the same kernel, initramfs, memory and command line in a Linux partition given 16/16 of its
// processor, same run, ratio target ≤ 1.5) joins it once the monitor boots Linux (docs/specs/linux-partition.md).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure, round } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
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
      return [
        { bench: "linux.plain-qemu.first-init-line", value: round(init / 1000), unit: "s" },
        { bench: "linux.plain-qemu.first-kernel-line", value: round(kernel / 1000), unit: "s" },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
