// Hardware test of the Linux partition's inputs without our monitor (docs/specs/linux-partition.md §8): the cached
// Debian kernel (scripts/setup) with the default initramfs (toolchain/linux/default-initramfs.ts, written by
// toolchain/initramfs/) booted by plain QEMU TCG through its own -kernel loader under SeaBIOS. /init's lines must
// appear — uname naming the Debian kernel's release, MemTotal within the memory QEMU was given, the workload's sum —
// and the machine must stop through the keyboard-controller reset (reboot=k; QEMU's -no-reboot turns the reset
// into an exit). This proves kernel, initramfs writer and command line apart from the monitor, and is the plain-QEMU
// side of the benchmark (bench/linux.bench.ts).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { findLinuxCache } from "../../toolchain/linux/cache.ts";
import { DEFAULT_CMDLINE, defaultInitramfs, WORKLOAD_N } from "../../toolchain/linux/default-initramfs.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-linux-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const MEM_MIB = 128;

describe("Debian's kernel and the default initramfs under plain QEMU TCG", () => {
  it("reaches /init: uname shows the Debian kernel, MemTotal fits the memory, the workload runs, the reset stops QEMU", async () => {
    const cache = findLinuxCache();
    const initrd = join(scratch, "initrd.gz");
    writeFileSync(initrd, defaultInitramfs().gzip());
    const m = await Machine.start({
      name: "linux-qemu", accel: "tcg", mem: MEM_MIB, timeoutMs: 90_000,
      linux: { kernel: cache.kernel, initrd, append: DEFAULT_CMDLINE },
    });
    try {
      await m.waitFor(/^init: started/, 80_000);
      const release = cache.kernelPackage.replace(/^linux-image-/, "");
      const uname = await m.waitFor(/^init: uname (.*)$/, 20_000);
      expect(uname[1]).toMatch(new RegExp(`^Linux \\S+ ${release.replace(/\./g, "\\.")} .*Debian.* x86_64`));
      const mem = await m.waitFor(/^init: MemTotal:\s+(\d+) kB$/, 20_000);
      const kb = Number(mem[1]);
      // The kernel reports RAM minus what it keeps (its image, the first MiB, memmap): below what QEMU gives, and
      // — Debian's 6.1 keeps about 20 MiB of 128 — more than half of it.
      expect(kb).toBeLessThan(MEM_MIB * 1024);
      expect(kb).toBeGreaterThan((MEM_MIB * 1024) / 2);
      const sum = await m.waitFor(/^init: workload sum 1\.\.(\d+) = (\d+)$/, 30_000);
      expect(Number(sum[1])).toBe(WORKLOAD_N);
      expect(Number(sum[2])).toBe((WORKLOAD_N * (WORKLOAD_N + 1)) / 2);
      await m.waitFor(/^init: done, powering off$/, 10_000);
      // reboot=k → keyboard-controller reset → -no-reboot: QEMU shuts down by itself.
      const exit = await Promise.race([m.wait(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
      expect(exit).toEqual({ kind: "shutdown" });
      const kernelLine = m.lines.find((l) => l.text.includes("Linux version"));
      expect(kernelLine?.text).toContain(release);
    } finally {
      await m.close();
    }
  }, 120_000);
});
