// Hardware test of the storage channel on the machine (docs/specs/storage-channel.md §6, §8; issue #15 items 5 and
// 7), through qemu/'s Machine under OVMF: one boot of examples/storage-hostile.yaml with one data disk (as `uvt run
// --disk FILE`). The I/O partition drives the disk's modern virtio-blk and serves a storage channel to each of A, B
// (the disk workload) and H (the hostile client). Oracles: the disk image file read from the host after the run
// (`uvt disk check`'s code, image/disk-workload.ts), and QEMU's own count of the bytes the device moved
// (query-blockstats over QMP), which must be exactly the honest clients' bytes — so every refused request moved
// nothing, not even to or from the disk.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { readBlock, summaryOf, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { checkDiskImage } from "../../image/disk-workload.ts";
import { loadConfig } from "../../partitions/config.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-storage-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const config = loadConfig(join(import.meta.dirname, "..", "..", "examples", "storage-hostile.yaml"));
const DISK = join(scratch, "data.img");
/** The workload's blocks: A 24 and B 20 blocks, three passes each, every pass written and read back once. */
const WORKLOAD_BYTES = 3 * (24 + 20) * 512;

interface Stats { wrBytes: number; rdBytes: number; flushes: number }
let boot: { lines: string[]; exit: unknown; stats: Stats; log: string };

const DONE = [/^A: disk: done; /, /^B: disk: done; /, /^H: storage-mdl: own write status /];

beforeAll(async () => {
  writeFileSync(DISK, new Uint8Array(1 << 20));
  const img = await buildUltravisorImage({ config });
  const out = await writeEfiImage(join(scratch, "storage"), img);
  const m = await Machine.start({ name: "hw-storage", image: out.esp, disks: [DISK], mem: "256M", timeoutMs: 150_000, log: () => undefined });
  try {
    await m.waitFor(/^ultravisor: scheduler running/, 120_000);
    // Every client finished (the run goes on to its end): then the device's counters, while QEMU is paused.
    const t0 = Date.now();
    while (!DONE.every((re) => m.lines.some((l) => re.test(l.text)))) {
      const ended = m.lines.some((l) => l.text.startsWith("ultravisor: stopping"));
      if (ended || Date.now() - t0 > 100_000) {
        throw new Error(`the clients did not finish${ended ? " before the run ended" : ""}:\n${m.lines.map((l) => l.text).filter((t) => /^[ABH]: (disk|storage)/.test(t)).slice(-20).join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await m.qmp!.execute("stop");
    const reply = (await m.qmp!.execute("query-blockstats")) as Array<{ "node-name"?: string; stats: { wr_bytes: number; rd_bytes: number; flush_operations: number } }>;
    await m.qmp!.execute("cont");
    const data = reply.find((d) => d["node-name"] === "data0") ?? reply.find((d) => d.stats.wr_bytes > 0);
    if (!data) throw new Error(`no statistics of the data disk in ${JSON.stringify(reply)}`);
    const exit = await m.wait();
    const lines = m.lines.map((l) => l.text);
    boot = { lines, exit, stats: { wrBytes: data.stats.wr_bytes, rdBytes: data.stats.rd_bytes, flushes: data.stats.flush_operations }, log: lines.join("\n") };
  } finally {
    await m.close();
  }
}, 170_000);

const withLog = (check: () => void): void => withSerialLog(boot.lines, check);

const block = (n: number): Uint8Array => readBlock(DISK, n);

describe("the storage channel on the machine", () => {
  it("the I/O partition drives the data disk's virtio-blk, bus mastering on for it alone", () => withLog(() => {
    expect(boot.lines).toContain("ultravisor: pci 00:02.0 given to partition io (number 2): memory and I/O decoding on, bus mastering on (no IOMMU yet)");
    expect(boot.lines).toContain("io: storage: virtio-blk 00:02.0 capacity 2048 sectors queue 64");
    // DMA_ADDR's bounds, asked by the I/O partition itself: past its memory pages, a slot without a channel.
    expect(boot.lines).toContain("io: storage: dma_addr past memory -2 empty slot -2");
    // DMA_ADDR and CLIENT_WRITE on a console channel it serves: that peer granted nothing (the monitor answered a
    // bus address and wrote into the peer before it checked the slot's channel type).
    expect(boot.lines.filter((l) => /^io: storage: console slot \d+ /.test(l))).toEqual([expect.stringMatching(/^io: storage: console slot \d+ dma_addr -2 client_write -2$/)]);
  }));

  it("the workload completes, every pass read back, and the image check from outside is clean", () => withLog(() => {
    for (const g of ["A", "B"]) {
      // READ CAPACITY (10) through the channel: the data written into the client's page by the monitor (CLIENT_WRITE);
      // the disk file is 1 MiB.
      expect(boot.lines).toContain(`${g}: disk: capacity ${(1 << 20) / 512} blocks of 512`);
      for (const p of [1, 2, 3]) expect(boot.lines).toContain(`${g}: disk: pass ${p} read back`);
      expect(boot.lines).toContain(`${g}: disk: done; synchronize cache status 0`);
    }
    const r = checkDiskImage(DISK, boot.log);
    expect(r.problems).toEqual([]);
    expect(r.acknowledged).toBe(24 + 20 + 1);
    expect(r.records).toBe(24 + 20 + 1);
    expect(new TextDecoder().decode(block(23).subarray(0, 16))).toBe("block 23 A gen 3");
  }));

  it("a client MDL naming memory that is not the client's is refused and nothing moves", () => withLog(() => {
    // Only the I/O partition may ask for bus addresses or write into a channel peer's memory.
    expect(boot.lines).toContain("H: storage-mdl: dma_addr result -1 client_write result -1");
    // Each attack: CHECK CONDITION, outside the client (−14) or an entry that wraps (−13), no byte transferred.
    for (let k = 0; k < 6; k++) expect(boot.lines).toContain(`H: storage-mdl: attack ${k} status 2 reason -${k === 5 ? 13 : 14} transferred 0`);
    expect(boot.lines).toContain("H: storage-mdl: own write status 0");
    // The device moved exactly the honest bytes: the workload's writes and reads, H's one block; nothing for an attack.
    expect(boot.stats.wrBytes).toBe(WORKLOAD_BYTES + 512);
    expect(boot.stats.rdBytes).toBe(WORKLOAD_BYTES);
    // The attacks' block (100) was never written; H's honest block was.
    expect(block(100).every((b) => b === 0)).toBe(true);
    expect(new TextDecoder().decode(block(101).subarray(0, 17))).toBe("block 101 H gen 1");
    for (const p of ["io", "A", "B", "H"]) expect(summaryOf(boot.lines, p).state).toBe("ready");
  }));
});
