// Hardware test of PCI devices as the ultravisor's resources (docs/specs/pci-devices.md, issue #15 item 2), through
// qemu/'s Machine under OVMF: one boot of examples/pci-devices.yaml with two data disks (as `uvt run --disk A --disk
// B`). Oracles: QEMU's own view of the bus (`info pci` over QMP) for the enumeration, the disk files' sizes for what
// the owner reads through its mappings (virtio-blk capacity), the virtio 1.x spec for the feature bit, and the page
// tables and the TSS I/O bitmap read over QMP for who can reach what. Three guests that own nothing touch the owner's
// memory BAR, port 0xCF8 and the owner's I/O port; each must be stopped alone while the owner keeps running.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { consoleLinesOf, PTE_ADDRESS, qwords, summaryOf, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { loadConfig } from "../../partitions/config.ts";
import { DEVLIST, DEVWIN } from "../../monitor-gen/pci.ts";
import { TSS } from "../../monitor-gen/descriptors.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-pci-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const config = loadConfig(join(import.meta.dirname, "..", "..", "examples", "pci-devices.yaml"));
const DISK_BYTES = [1 << 20, 2 << 20];

interface Bar { index: number; kind: "io" | "mem32" | "mem64"; address: bigint; size: bigint; prefetch: boolean }
interface Fn { bdf: string; vendor: number; device: number; bars: Bar[] }
let boot: {
  lines: string[]; exit: unknown; infoPci: string; espBytes: number;
  /** Per partition: its user leaves in the DEVWIN slot and at DEVLIST (virtual address → entry). */
  devLeaves: Map<string, Map<bigint, bigint>>; listLeaves: Map<string, Map<bigint, bigint>>;
  /** The TSS I/O bitmap's byte covering ports 0xCF8–0xCFF, read while paused. */
  cf8Byte: number;
};

const STARTED = /^ultravisor: partition (\S+) started at quantum \d+: cr3 (0x[0-9a-f]+) /;

/** Present 4 KiB leaves under PML4 slots [first, last] of the address space at `cr3`. */
async function leavesIn(m: Machine, cr3: bigint, first: number, last = first): Promise<Map<bigint, bigint>> {
  const out = new Map<bigint, bigint>();
  const pml4 = await qwords(m, cr3 & PTE_ADDRESS);
  for (let slot = first; slot <= last; slot++) {
    if (!(pml4[slot]! & 1n)) continue;
    const pdpt = await qwords(m, pml4[slot]! & PTE_ADDRESS);
    for (let j = 0; j < 512; j++) {
      if (!(pdpt[j]! & 1n)) continue;
      const pd = await qwords(m, pdpt[j]! & PTE_ADDRESS);
      for (let k = 0; k < 512; k++) {
        if (!(pd[k]! & 1n)) continue;
        const pt = await qwords(m, pd[k]! & PTE_ADDRESS);
        for (let l = 0; l < 512; l++) if (pt[l]! & 1n) out.set((BigInt(slot) << 39n) | (BigInt(j) << 30n) | (BigInt(k) << 21n) | (BigInt(l) << 12n), pt[l]!);
      }
    }
  }
  return out;
}

beforeAll(async () => {
  const disks = DISK_BYTES.map((n, i) => {
    const f = join(scratch, `data${i}.img`);
    writeFileSync(f, new Uint8Array(n));
    return f;
  });
  const img = await buildUltravisorImage({ config });
  const out = await writeEfiImage(join(scratch, "pci"), img);
  const m = await Machine.start({ name: "hw-pci", image: out.esp, disks, mem: "256M", timeoutMs: 150_000, log: () => undefined });
  try {
    await m.waitFor(/^ultravisor: scheduler running/, 120_000);
    await m.qmp!.execute("stop");
    const infoPci = await m.qmp!.humanMonitorCommand("info pci");
    const devLeaves = new Map<string, Map<bigint, bigint>>();
    const listLeaves = new Map<string, Map<bigint, bigint>>();
    for (const l of m.lines) {
      const p = STARTED.exec(l.text);
      if (!p) continue;
      // DEVWIN + every physical address below 2^46: PML4 slots 128–255.
      devLeaves.set(p[1]!, await leavesIn(m, BigInt(p[2]!), Number(DEVWIN >> 39n), 255));
      listLeaves.set(p[1]!, await leavesIn(m, BigInt(p[2]!), Number(DEVLIST >> 39n)));
    }
    const loaded = /^ultravisor: image loaded at (0x[0-9a-f]+)/.exec(m.lines.find((l) => l.text.startsWith("ultravisor: image loaded at "))?.text ?? "");
    if (!loaded) throw new Error("no image-loaded line");
    const tss = BigInt(loaded[1]!) + BigInt(img.symbols.find((x) => x.name === "g_tss")!.rva);
    const cf8Byte = (await m.qmp!.readPhysical(tss + BigInt(TSS.iomap + 0xcf8 / 8), 1))[0]!;
    await m.qmp!.execute("cont");
    const exit = await m.wait();
    boot = { lines: m.lines.map((l) => l.text), exit, infoPci, espBytes: statSync(out.esp).size, devLeaves, listLeaves, cf8Byte };
  } finally {
    await m.close();
  }
}, 170_000);

const withLog = (check: () => void): void => withSerialLog(boot.lines, check, boot ? boot.infoPci.split("\n") : []);

/** QEMU's `info pci`: functions of bus 0 with vendor:device and BARs (kind, address, inclusive end). */
function parseInfoPci(text: string): Fn[] {
  const fns: Fn[] = [];
  let cur: Fn | undefined;
  for (const line of text.split(/\r?\n/)) {
    const h = /^\s*Bus\s+(\d+), device\s+(\d+), function (\d+):/.exec(line);
    if (h) {
      cur = { bdf: `${Number(h[1]).toString(16).padStart(2, "0")}:${Number(h[2]).toString(16).padStart(2, "0")}.${h[3]}`, vendor: -1, device: -1, bars: [] };
      fns.push(cur);
      continue;
    }
    if (!cur) continue;
    const id = /PCI device ([0-9a-f]{4}):([0-9a-f]{4})/.exec(line);
    if (id && cur.vendor < 0) {
      cur.vendor = parseInt(id[1]!, 16);
      cur.device = parseInt(id[2]!, 16);
    }
    const b = /^\s*BAR(\d): (I\/O|32 bit|64 bit)( prefetchable)?(?: memory)? at (0x[0-9a-f]+) \[(0x[0-9a-f]+)\]/.exec(line);
    if (b) {
      const address = BigInt(b[4]!);
      cur.bars.push({ index: Number(b[1]), kind: b[2] === "I/O" ? "io" : b[2] === "32 bit" ? "mem32" : "mem64", address, size: BigInt(b[5]!) - address + 1n, prefetch: b[3] !== undefined });
    }
  }
  return fns;
}

/** The ultravisor's enumeration lines, in the same shape. */
function parseEnumeration(lines: readonly string[]): Fn[] {
  const fns = new Map<string, Fn>();
  for (const l of lines) {
    const f = /^ultravisor: pci ([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) vendor 0x([0-9a-f]+) device 0x([0-9a-f]+) class /.exec(l);
    if (f) fns.set(f[1]!, { bdf: f[1]!, vendor: parseInt(f[2]!, 16), device: parseInt(f[3]!, 16), bars: [] });
    const b = /^ultravisor: pci ([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) bar (\d) (io|mem32|mem64) 0x([0-9a-f]+) size 0x([0-9a-f]+)$/.exec(l);
    if (b) fns.get(b[1]!)!.bars.push({ index: Number(b[2]), kind: b[3] as Bar["kind"], address: BigInt(`0x${b[4]}`), size: BigInt(`0x${b[5]}`), prefetch: false });
    const p = /^ultravisor: pci ([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) bar (\d) prefetchable$/.exec(l);
    if (p) fns.get(p[1]!)!.bars.find((x) => x.index === Number(p[2]))!.prefetch = true;
  }
  return [...fns.values()];
}

const FAULT = /^partition (\S+): fault vector (\d+) at 0x([0-9a-f]+) rip 0x([0-9a-f]+) error 0x([0-9a-f]+)$/;
function faultOf(name: string): { vector: number; at: bigint; error: number; index: number } {
  const index = boot.lines.findIndex((l) => FAULT.exec(l)?.[1] === name);
  expect(index, `${name} fault line`).toBeGreaterThan(-1);
  const f = FAULT.exec(boot.lines[index]!)!;
  return { vector: Number(f[2]), at: BigInt(`0x${f[3]}`), error: parseInt(f[5]!, 16), index };
}

describe("PCI devices: enumerated by the ultravisor, given by the host definition, reachable by the owner only", () => {
  it("enumerates bus 0 as QEMU reports it: every function, its IDs and every BAR's kind, address and size", () => {
    withLog(() => {
      const qemu = parseInfoPci(boot.infoPci).filter((f) => f.bdf.startsWith("00:"));
      const ours = parseEnumeration(boot.lines);
      expect(qemu.length, "functions in info pci").toBeGreaterThan(3);
      expect(ours.map((f) => f.bdf).sort()).toEqual(qemu.map((f) => f.bdf).sort());
      for (const q of qemu) {
        const o = ours.find((f) => f.bdf === q.bdf)!;
        expect({ vendor: o.vendor, device: o.device }, q.bdf).toEqual({ vendor: q.vendor, device: q.device });
        expect(o.bars.sort((x, y) => x.index - y.index), `${q.bdf} BARs`).toEqual(q.bars.sort((x, y) => x.index - y.index));
      }
      expect(boot.lines).toContain(`ultravisor: pci: ${qemu.length} functions on bus 0`);
      // The boot disk is the transitional virtio-blk, the data disks the modern ones, in --disk order after it.
      expect(ours.filter((f) => f.vendor === 0x1af4).map((f) => [f.bdf, f.device])).toEqual([["00:01.0", 0x1001], ["00:02.0", 0x1042], ["00:03.0", 0x1042]]);
      expect(boot.exit).toEqual({ kind: "guest", code: config.exitCode });
    });
  });

  it("gives the devices the host definition names (disk 0 and 00:01.0 to owner, disk 1 to io) to their owners, and nothing else", () => {
    withLog(() => {
      const given = boot.lines.filter((l) => / given to partition /.test(l));
      expect(given).toEqual([
        "ultravisor: pci 00:02.0 given to partition owner (number 3): memory and I/O decoding on, bus mastering off",
        "ultravisor: pci 00:01.0 given to partition owner (number 3): memory and I/O decoding on, bus mastering off",
        "ultravisor: pci 00:03.0 given to partition io (number 2): memory and I/O decoding on, bus mastering on (no IOMMU yet)",
      ]);
      // The same function named twice (disk 0, then its address): the first claim wins, the second is reported.
      expect(boot.lines).toContain("ultravisor: pci 00:02.0 for partition bad-bar: already owned by partition number 3; not given again");
      // Only an owner has anything at DEVWIN: its devices' memory BARs, page by page at DEVWIN + physical address, uncached, NX.
      const ours = parseEnumeration(boot.lines);
      const pagesOf = (bdfs: string[]): Set<bigint> => {
        const want = new Set<bigint>();
        for (const f of ours.filter((x) => bdfs.includes(x.bdf))) {
          for (const b of f.bars.filter((x) => x.kind !== "io")) for (let o = 0n; o < b.size; o += 0x1000n) want.add(DEVWIN + b.address + o);
        }
        return want;
      };
      const owned = new Map([["owner", pagesOf(["00:01.0", "00:02.0"])], ["io", pagesOf(["00:03.0"])]]);
      expect([...boot.devLeaves.keys()].sort()).toEqual(config.partitions.filter((p) => p.kind !== "idle").map((p) => p.name).sort());
      for (const [name, leaves] of boot.devLeaves) {
        const want = owned.get(name);
        if (!want) {
          expect(leaves.size, `${name}: nothing mapped at DEVWIN`).toBe(0);
          continue;
        }
        expect(want.size, `${name} owns memory BAR pages`).toBeGreaterThan(1);
        expect(new Set(leaves.keys()), `${name}'s DEVWIN pages`).toEqual(want);
        for (const [va, pte] of leaves) {
          expect(pte & PTE_ADDRESS, `0x${va.toString(16)} maps its own physical address`).toBe(va - DEVWIN);
          expect(pte & 0x1fn, `0x${va.toString(16)}: present, writable, user, PWT, PCD`).toBe(0x1fn);
          expect(pte >> 63n, "no-execute").toBe(1n);
        }
      }
      // The device list: two pages, read-only, no-execute, in every CPL-3 partition of this host.
      for (const [name, leaves] of boot.listLeaves) {
        expect([...leaves.keys()], `${name}: the device list`).toEqual([DEVLIST, DEVLIST + 0x1000n]);
        for (const pte of leaves.values()) expect({ w: (pte >> 1n) & 1n, u: (pte >> 2n) & 1n, nx: pte >> 63n }, name).toEqual({ w: 0n, u: 1n, nx: 1n });
      }
    });
  });

  it("lets the owner read its data disk through the memory BAR and the boot disk through the I/O BAR", () => {
    withLog(() => {
      const owner = consoleLinesOf(boot.lines, "owner");
      const mem = owner.map((l) => /^pci owner 0x0*10 mem features-hi 0x([0-9a-f]+) cap (\d+)$/.exec(l)).find((x) => x);
      expect(mem, "the data disk's line").toBeTruthy();
      expect(parseInt(mem![1]!, 16) & 1, "VIRTIO_F_VERSION_1 (feature bit 32) offered by the modern device").toBe(1);
      expect(Number(mem![2]), "capacity in sectors = the first --disk's size / 512").toBe(DISK_BYTES[0]! / 512);
      const io = owner.map((l) => /^pci owner 0x0*8 io port 0x([0-9a-f]+) cap (\d+)$/.exec(l)).find((x) => x);
      expect(io, "the boot disk's legacy line").toBeTruthy();
      const espIo = parseEnumeration(boot.lines).find((f) => f.bdf === "00:01.0")!.bars.find((b) => b.kind === "io")!;
      expect(BigInt(`0x${io![1]}`)).toBe(espIo.address);
      expect(Number(io![2]), "capacity in sectors = the ESP image's size / 512").toBe(boot.espBytes / 512);
      // The owner keeps running after every attack.
      const last = Math.max(...["bad-bar", "bad-cf8", "bad-port"].map((n) => faultOf(n).index));
      expect(boot.lines.slice(last + 1).filter((l) => l.startsWith("owner: tick ")).length, "owner ticks after the attacks").toBeGreaterThan(1);
      expect(summaryOf(boot.lines, "owner").state).toBe("ready");
    });
  });

  it("stops each partition that does not own the device, alone: its memory BAR (#PF), port 0xCF8 and its I/O port (#GP)", () => {
    withLog(() => {
      const ours = parseEnumeration(boot.lines);
      const ownerMem = ours.filter((f) => f.bdf === "00:01.0" || f.bdf === "00:02.0").flatMap((f) => f.bars.filter((b) => b.kind !== "io").map((b) => DEVWIN + b.address));
      const bar = faultOf("bad-bar");
      expect(bar.vector).toBe(14);
      expect(ownerMem, "the attacked address is an owner's BAR page").toContain(bar.at);
      expect(bar.error & 5, "user-mode access to a page not present").toBe(4);
      expect(faultOf("bad-cf8").vector).toBe(13);
      expect(consoleLinesOf(boot.lines, "bad-cf8")).toContain("pci attack: out 0xcf8");
      expect(faultOf("bad-port").vector).toBe(13);
      const espIo = ours.find((f) => f.bdf === "00:01.0")!.bars.find((b) => b.kind === "io")!;
      expect(consoleLinesOf(boot.lines, "bad-port")).toContain(`pci attack: in port 0x${espIo.address.toString(16).padStart(8, "0")}`);
      for (const n of ["bad-bar", "bad-cf8", "bad-port"]) {
        expect(consoleLinesOf(boot.lines, n)).not.toContain("still running after the fault: containment failed");
        expect(summaryOf(boot.lines, n).state, n).toBe("failed");
      }
      for (const n of ["io", "owner"]) expect(summaryOf(boot.lines, n).state, n).toBe("ready");
      // The configuration ports are closed in the TSS bitmap whoever runs.
      expect(boot.cf8Byte, "bitmap byte of ports 0xCF8-0xCFF").toBe(0xff);
    });
  });
});
