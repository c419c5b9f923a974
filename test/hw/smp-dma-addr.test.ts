// Hardware test of the I/O partition's hypercalls asked from an application processor (docs/specs/hypercall-abi.md
// DMA_ADDR, CLIENT_WRITE; docs/specs/smp.md §2.4): a guest Z on PCPU 1 calls random hypercalls 0–7 with random
// arguments (fault kind fuzz-hypercall) while the I/O partition on PCPU 0 serves A's and B's disk workload. DMA_ADDR
// and CLIENT_WRITE are refused to Z (−1), but their handler ran on PCPU 0's kernel stack (g_kstack_top) whatever the
// caller's processor: Z's calls wrote over the frames of PCPU 0's monitor, and PCPU 0 went on faulting in the idle
// partition until the run was stopped from outside. Oracles: the run reaches its end (isa-debug-exit), no partition
// but Z faulted (Z's refusals are audited), A's and B's workloads complete, and the disk image read from the host
// after the run (`uvt disk check`'s code) is clean. About 15 s under TCG.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { checkDiskImage } from "../../image/disk-workload.ts";
import { loadConfig } from "../../partitions/config.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-smp-dma-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const HOST = `revision: 2
name: DMA_ADDR and CLIENT_WRITE asked from another processor
host: { pcpus: 2 }
partitions:
  - { name: idle, kind: idle }
  - { name: io, kind: io, duty: 6 }
  - { name: A, kind: guest, duty: 3, behaviour: { disk: { first: 0, blocks: 24, passes: 6 } } }
  - { name: B, kind: guest, duty: 3, behaviour: { disk: { first: 24, blocks: 20, passes: 6 } } }
  - { name: Z, kind: guest, duty: 12, pcpu: 1, behaviour: { fault: fuzz-hypercall } }
devices:
  - { disk: 0, owner: io }
run:
  runQuanta: 2000
`;

describe("the I/O partition's hypercalls asked from PCPU 1", () => {
  it("a guest on PCPU 1 calling hypercalls 0–7 in a loop leaves PCPU 0's monitor and the disk workload intact", async () => {
    const path = join(scratch, "host.yaml");
    writeFileSync(path, HOST);
    const out = await writeEfiImage(join(scratch, "img"), await buildUltravisorImage({ config: loadConfig(path) }));
    const disk = join(scratch, "disk.img");
    writeFileSync(disk, new Uint8Array(1 << 20));
    const m = await Machine.start({ name: "hw-smp-dma-addr", image: out.esp, accel: "tcg", smp: 2, disks: [disk], mem: "256M", timeoutMs: 90_000, log: () => undefined });
    let lines: string[] = [];
    let exit: unknown;
    try {
      exit = await m.wait().catch((e: unknown) => e);
    } finally {
      lines = m.lines.map((l) => l.text);
      await m.close();
    }
    withSerialLog(lines, () => {
      expect(exit instanceof Error ? exit.message : "", "the run reached its end").toBe("");
      expect(lines).toContain("ultravisor: schedule (PCPU 1, quanta 0-15): Z Z Z Z Z Z Z Z Z Z Z Z idle idle idle idle");
      expect(lines.some((l) => /^Z: fuzz-hypercall seed /.test(l)), "Z ran").toBe(true);
      expect(lines.some((l) => /^ultravisor: audit: partition Z: /.test(l)), "Z's refusals audited").toBe(true);
      expect(lines.filter((l) => / fault vector /.test(l) && !l.startsWith("partition Z:")), "no partition but Z faulted").toEqual([]);
      for (const g of ["A", "B"]) expect(lines.some((l) => l.startsWith(`${g}: disk: done; `)), `${g} done`).toBe(true);
      expect(checkDiskImage(disk, lines.join("\n")).problems, "disk check").toEqual([]);
    });
  }, 150_000);
});
