// Hardware test of DMA confined by QEMU's emulated Intel IOMMU (docs/specs/storage-channel.md §9, issue #15 item 4),
// through qemu/'s Machine under OVMF: one boot of examples/storage-iommu.yaml (host.iommu: uvt run's intel-iommu, the
// data disk with iommu_platform=on) whose I/O partition is the rogue-dma test build: before serving, it tells its
// device to READ the disk's last 4 KiB — filled with a pattern here — into a page of a client that DMA_ADDR never
// validated. Oracles: that page read over QMP before and after (unchanged, though the pattern differs from it), the
// ultravisor's fault line naming the device and the page, and then the storage workload through the same device with
// `uvt disk check`'s code clean on the image file. A second, short boot of the same host without the IOMMU shows the
// oracle can fail: there the same READ overwrites the page with the pattern.
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { summaryOf, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { checkDiskImage } from "../../image/disk-workload.ts";
import { parseDefinition } from "../../definition/load.ts";
import { bareMetalConfig, loadConfig } from "../../partitions/config.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-iommu-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const DISK = join(scratch, "data.img");
const PATTERN = 0x5a;

interface Page { target: bigint; before: Uint8Array; after: Uint8Array }
interface Boot extends Page { lines: string[]; log: string; submittedBeforeRead: boolean; done: Page & { unmapped: number } }
let boot: Boot;

/** The example's host, its I/O partition the rogue-dma test build; with or without the IOMMU. */
function rogueHost(iommu: boolean): ReturnType<typeof bareMetalConfig> {
  const file = join(import.meta.dirname, "..", "..", "examples", "storage-iommu.yaml");
  let text = readFileSync(file, "utf8").replace("{ name: io, kind: io, duty: 6 }", "{ name: io, kind: io, duty: 6, behaviour: { fault: rogue-dma } }");
  if (!iommu) text = text.replace(/^host: \{ iommu: true \}$/m, "");
  if (!text.includes("rogue-dma") || /^host: \{ iommu: true \}$/m.test(text) !== iommu) throw new Error(`${file} changed; update this test`);
  return bareMetalConfig(parseDefinition(text, file));
}

const DONE = [/^A: disk: done; /, /^B: disk: done; /];

beforeAll(async () => {
  // The disk: 1 MiB of zeros, its last 4 KiB (what the rogue READ asks for) the pattern.
  const fd = openSync(DISK, "w");
  try {
    writeSync(fd, new Uint8Array(1 << 20), 0, 1 << 20, 0);
    writeSync(fd, new Uint8Array(4096).fill(PATTERN), 0, 4096, (1 << 20) - 4096);
  } finally {
    closeSync(fd);
  }
  const img = await buildUltravisorImage({ config: rogueHost(true) });
  const out = await writeEfiImage(join(scratch, "iommu"), img);
  const m = await Machine.start({ name: "hw-iommu", image: out.esp, disks: [DISK], mem: "256M", timeoutMs: 170_000, log: () => undefined });
  try {
    const [, addr] = await m.waitFor(/^io: rogue-dma: READ into bus address (\d+) /, 120_000);
    const target = BigInt(addr!);
    const before = await m.readPhysical(target, 4096);
    const submitted = (): number => m.lines.filter((l) => l.text === "io: rogue-dma: submitted").length;
    let submittedBeforeRead = submitted() > 0;
    await m.waitFor(/^io: rogue-dma: device status /, 30_000);
    // The second rogue READ: into the page DMA_ADDR validated, after DMA_DONE unmapped it.
    const [, unmapped, addr0] = await m.waitFor(/^io: rogue-dma: DMA_DONE unmapped (\d+); READ into bus address (\d+) /, 30_000);
    const done: Page & { unmapped: number } = { target: BigInt(addr0!), unmapped: Number(unmapped), before: await m.readPhysical(BigInt(addr0!), 4096), after: new Uint8Array() };
    submittedBeforeRead ||= submitted() > 1;
    const t1 = Date.now();
    while (m.lines.filter((l) => l.text.startsWith("io: rogue-dma: device status ")).length < 2) {
      if (Date.now() - t1 > 30_000) throw new Error("the second rogue READ did not complete");
      await new Promise((r) => setTimeout(r, 100));
    }
    const faults = (): number => m.lines.filter((l) => l.text.startsWith("ultravisor: iommu: fault ")).length;
    const t2 = Date.now();
    while (faults() < 2 && Date.now() - t2 < 10_000) await new Promise((r) => setTimeout(r, 100));
    const after = await m.readPhysical(target, 4096);
    done.after = await m.readPhysical(done.target, 4096);
    const t0 = Date.now();
    while (!DONE.every((re) => m.lines.some((l) => re.test(l.text)))) {
      const ended = m.lines.some((l) => l.text.startsWith("ultravisor: stopping"));
      if (ended || Date.now() - t0 > 100_000) {
        throw new Error(`the clients did not finish${ended ? " before the run ended" : ""}:\n${m.lines.map((l) => l.text).filter((t) => /^(A|B|io): (disk|storage|rogue)/.test(t)).slice(-20).join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await m.wait();
    const lines = m.lines.map((l) => l.text);
    boot = { lines, log: lines.join("\n"), target, before, after, submittedBeforeRead, done };
  } finally {
    await m.close();
  }
}, 175_000);

const withLog = (check: () => void): void => withSerialLog(boot.lines, check);

/** The disk file's last 4 KiB. */
function tail(): Uint8Array {
  const b = new Uint8Array(4096);
  const fd = openSync(DISK, "r");
  try {
    readSync(fd, b, 0, 4096, (1 << 20) - 4096);
  } finally {
    closeSync(fd);
  }
  return b;
}

describe("DMA behind the IOMMU", () => {
  it("the ultravisor finds the VT-d unit, gives the I/O partition's disk a context entry and turns translation on", () => withLog(() => {
    expect(boot.lines).toContain("ultravisor: pci 00:02.0 given to partition io (number 2): memory and I/O decoding on, bus mastering on (DMA through the IOMMU)");
    // Found through the EFI system table, the ACPI 2.0 RSDP, the XSDT and QEMU's DMAR table (its DRHD, whose device
    // scope lists the disk).
    expect(boot.lines.some((l) => /^ultravisor: iommu: DMAR table at 0x[0-9a-f]+: remapping unit of segment 0 at 0xfed90000$/.test(l))).toBe(true);
    expect(boot.lines.filter((l) => l.includes("not in the remapping unit's device scope"))).toEqual([]);
    expect(boot.lines.some((l) => /^ultravisor: iommu: VT-d version 1\.\d at 0xfed90000, [34]-level tables, translation on; 1 device\(s\) with a context entry$/.test(l))).toBe(true);
    // The driver accepted VIRTIO_F_ACCESS_PLATFORM (a device behind the IOMMU refuses FEATURES_OK otherwise).
    expect(boot.lines).toContain("io: storage: virtio-blk 00:02.0 capacity 2048 sectors queue 64");
  }));

  it("a rogue DMA into a page DMA_ADDR never validated is blocked: the fault is logged and the page is unchanged", () => withLog(() => {
    expect(boot.submittedBeforeRead).toBe(false); // the page was read before the device was told to write it
    // The oracle can fail: the READ would have written the pattern, which the page does not hold.
    expect(boot.before.every((b) => b === PATTERN)).toBe(false);
    expect(Buffer.from(boot.after).equals(Buffer.from(boot.before))).toBe(true);
    const fault = boot.lines.map((l) => /^ultravisor: iommu: fault device 00:02\.0 address (\S+) reason (\S+) \((read|write)\)$/.exec(l)).find(Boolean);
    expect(fault).toBeTruthy();
    expect(BigInt(fault![1]!)).toBe(boot.target); // the page the device was told to write, a write
    expect(fault![3]).toBe("write");
  }));

  it("DMA_DONE unmaps what DMA_ADDR mapped: a rogue DMA into that page afterwards is blocked too", () => withLog(() => {
    expect(boot.done.unmapped).toBe(1);
    expect(boot.done.before.every((b) => b === PATTERN)).toBe(false);
    expect(Buffer.from(boot.done.after).equals(Buffer.from(boot.done.before))).toBe(true);
    const faults = boot.lines.map((l) => /^ultravisor: iommu: fault device 00:02\.0 address (\S+) reason \S+ \(write\)$/.exec(l)).filter(Boolean).map((f) => BigInt(f![1]!));
    expect(faults).toContain(boot.done.target);
  }));

  it("the storage workload then runs through the same device and the image check from outside is clean", () => withLog(() => {
    for (const g of ["A", "B"]) {
      for (const p of [1, 2]) expect(boot.lines).toContain(`${g}: disk: pass ${p} read back`);
      expect(boot.lines).toContain(`${g}: disk: done; synchronize cache status 0`);
    }
    const r = checkDiskImage(DISK, boot.log);
    // Clean but for the pattern this test put under the rogue READ, still there (a READ leaves the disk as it was).
    expect(r.problems).toEqual(Array.from({ length: 8 }, (_, k) => `block ${2040 + k}: not a block record`));
    expect(tail().every((b) => b === PATTERN)).toBe(true);
    expect(r.acknowledged).toBe(24 + 20);
    // Only the rogue pages' faults: every page of every request was mapped by DMA_ADDR while the request ran (and
    // unmapped by DMA_DONE at its end).
    const rogue = [boot.target, boot.done.target].map((t) => `address 0x${t.toString(16)} `);
    expect(boot.lines.filter((l) => l.startsWith("ultravisor: iommu: fault")).length).toBeGreaterThanOrEqual(2);
    expect(boot.lines.filter((l) => l.startsWith("ultravisor: iommu: fault") && !rogue.some((r) => l.includes(r)))).toEqual([]);
    for (const p of ["io", "A", "B"]) expect(summaryOf(boot.lines, p).state).toBe("ready");
  }));
});

describe("the same rogue DMA without the IOMMU (the oracle can fail)", () => {
  it("overwrites the client's page with the disk's pattern", async () => {
    const img = await buildUltravisorImage({ config: rogueHost(false) });
    const out = await writeEfiImage(join(scratch, "no-iommu"), img);
    const m = await Machine.start({ name: "hw-iommu-off", image: out.esp, disks: [DISK], mem: "256M", timeoutMs: 60_000, log: () => undefined });
    try {
      const [, addr] = await m.waitFor(/^io: rogue-dma: READ into bus address (\d+) /, 45_000);
      const before = await m.readPhysical(BigInt(addr!), 4096);
      expect(before.every((b) => b === PATTERN)).toBe(false);
      await m.waitFor(/^io: rogue-dma: device status /, 30_000);
      expect(m.lines.map((l) => l.text)).toContain("ultravisor: pci 00:02.0 given to partition io (number 2): memory and I/O decoding on, bus mastering on (no IOMMU yet)");
      const after = await m.readPhysical(BigInt(addr!), 4096);
      expect(after.every((b) => b === PATTERN)).toBe(true);
    } finally {
      await m.close();
    }
  }, 90_000);
});

describe("an image that asks for the IOMMU on a machine without one", () => {
  it("finds no VT-d unit and turns bus mastering off: no DMA at all, no disk driven", async () => {
    const img = await buildUltravisorImage({ config: rogueHost(true) });
    const out = await writeEfiImage(join(scratch, "no-unit"), img);
    const m = await Machine.start({ name: "hw-iommu-absent", image: out.esp, disks: [DISK], mem: "256M", iommu: false, timeoutMs: 60_000, log: () => undefined });
    try {
      await m.waitFor(/^io: storage: /, 45_000);
      const lines = m.lines.map((l) => l.text);
      expect(lines.some((l) => /^ultravisor: iommu: no VT-d unit at 0xfed90000 \(version \S+, capability \S+\): bus mastering turned off$/.test(l))).toBe(true);
      expect(lines).toContain("ultravisor: iommu: no DMAR table with a remapping unit of segment 0; trying QEMU's q35 base 0xfed90000, with every bus-0 device in its scope");
      expect(lines).toContain("io: storage: no disk driven (step -1)");
    } finally {
      await m.close();
    }
  }, 90_000);
});

describe("the storage pair behind the IOMMU", () => {
  it("gives each member's device its own context entry; the failover and the workload run with no fault", async () => {
    const config = { ...loadConfig(join(import.meta.dirname, "..", "..", "examples", "storage-pair.yaml")), iommu: true };
    const disk = join(scratch, "pair.img");
    writeFileSync(disk, new Uint8Array(1 << 20));
    const out = await writeEfiImage(join(scratch, "pair"), await buildUltravisorImage({ config }));
    const m = await Machine.start({ name: "hw-iommu-pair", image: out.esp, disks: [disk, disk], mem: "256M", timeoutMs: 90_000, log: () => undefined });
    let lines: string[];
    try {
      const t0 = Date.now();
      while (![/^A: disk: done; /, /^B: disk: done; /].every((re) => m.lines.some((l) => re.test(l.text)))) {
        if (Date.now() - t0 > 80_000 || m.lines.some((l) => l.text.startsWith("ultravisor: stopping"))) throw new Error("the pair's clients did not finish");
        await new Promise((r) => setTimeout(r, 200));
      }
      lines = m.lines.map((l) => l.text);
    } finally {
      await m.close();
    }
    withSerialLog(lines, () => {
      expect(lines).toContain("ultravisor: iommu: VT-d version 1.0 at 0xfed90000, 3-level tables, translation on; 2 device(s) with a context entry");
      expect(lines.some((l) => /^ultravisor: iommu: DMAR table at 0x[0-9a-f]+: remapping unit of segment 0 at 0xfed90000$/.test(l))).toBe(true);
      expect(lines.filter((l) => /^ultravisor: pci 00:0[23]\.0 given to partition s[ab] .*bus mastering on \(DMA through the IOMMU\)$/.test(l)).length).toBe(2);
      expect(lines.some((l) => /^ultravisor: storage pair: sa failed at /.test(l))).toBe(true);
      expect(lines.filter((l) => l.startsWith("ultravisor: iommu: fault"))).toEqual([]);
      const r = checkDiskImage(disk, lines.join("\n"));
      expect(r.problems).toEqual([]);
      expect(r.acknowledged).toBe(24 + 20);
    });
  }, 120_000);
});
