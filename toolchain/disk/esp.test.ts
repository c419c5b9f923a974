// ESP images against the real tools: sgdisk verifies the GPT (both headers, both arrays, CRCs) and reads the
// partition back, fsck.fat checks the file system on the partition slice, and mtools lists names and reads every
// file back byte for byte, for FAT32 and FAT16 volumes, nested directories, long names, empty and multi-cluster files.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildEspImage, type EspImageOptions, writeEspImage } from "./esp.ts";
import type { FatFile } from "./fat.ts";
import { ESP_TYPE_GUID } from "./guid.ts";
import { fsckPartition, mcopyAll, mdirEntries, mtools, mtype, sgdisk } from "./oracles.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-esp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const scratch = (what: string) => join(dir, `${n++}-${what}`);

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
const text = (s: string) => new TextEncoder().encode(s);

/** Byte equality with a short failure message (vitest's deep equality is far too slow for megabytes). */
function expectSameBytes(got: Uint8Array | undefined, want: Uint8Array, what: string): void {
  expect(got, `${what} missing`).toBeDefined();
  const a = Buffer.from(got!.buffer, got!.byteOffset, got!.byteLength);
  const b = Buffer.from(want.buffer, want.byteOffset, want.byteLength);
  if (a.equals(b)) return;
  let i = 0;
  while (i < Math.min(a.length, b.length) && a[i] === b[i]) i++;
  expect.fail(`${what}: ${a.length} bytes vs ${b.length} expected, first difference at byte ${i}`);
}

const sampleFiles: FatFile[] = [
  { path: "/EFI/BOOT/BOOTX64.EFI", data: bytes(300_000, 1) }, // hundreds of clusters
  { path: "/EFI/BOOT/startup.nsh", data: text("BOOTX64.EFI\r\n") },
  { path: "/EFI/ultravisor/partitions/Guest Partition X/config file.yaml", data: text("memory: 64M\n") },
  { path: "/EFI/ultravisor/partitions/Guest Partition Y/config file.yaml", data: text("memory: 128M\n") },
  { path: "/EFI/ultravisor/empty.bin", data: new Uint8Array(0) },
  { path: "/EFI/ultravisor/LONGFI~1.TXT", data: text("exact 8.3 name") },
  { path: "/EFI/ultravisor/longfilename.txt", data: text("needs a tail past ~1") },
  { path: "/EFI/ultravisor/longfilename.text", data: text("and another") },
  { path: "/EFI/ultravisor/résumé.txt", data: text("non-ASCII name") },
  { path: "/EFI/ultravisor/a.b.c.d", data: text("dots") },
  { path: "/EFI/ultravisor/x+y=z;[1].txt", data: text("lossy characters") },
  { path: "/EFI/ultravisor/twenty-six characters.long", data: bytes(4097, 2) }, // 2 full LFN entries, no terminator
  { path: "/EFI/ultravisor/thirteen.char", data: bytes(13, 4) }, // exactly one full LFN entry
  { path: "/EFI/ultravisor/" + "n".repeat(255), data: bytes(10, 3) }, // the longest name
  { path: "/README.TXT", data: text("short only") },
];

function checkImage(path: string, info: Awaited<ReturnType<typeof writeEspImage>>, files: readonly FatFile[], dirs: string[]) {
  const v = sgdisk(["-v", path]);
  expect(v.output).toContain("No problems found");
  expect(v.status).toBe(0);
  const p = sgdisk(["-p", path]);
  expect(p.output).toContain(`Disk identifier (GUID): ${info.diskGuid}`);
  expect(p.output).toMatch(new RegExp(`^\\s+1\\s+${info.partitionFirstLba}\\s+${info.partitionFirstLba + info.partitionSectors - 1}\\s.*EF00\\s+EFI System Partition$`, "m"));
  const i = sgdisk(["-i", "1", path]);
  expect(i.output).toContain(`Partition GUID code: ${ESP_TYPE_GUID} (EFI system partition)`);
  expect(i.output).toContain(`Partition unique GUID: ${info.partitionGuid}`);
  expect(info.partitionOffset % (1 << 20)).toBe(0);

  const f = fsckPartition(path, info.partitionOffset, info.partitionSectors, scratch("part"));
  expect(f.complaints).toEqual([]);
  expect(f.status).toBe(0);
  expect(f.fatBits).toBe(info.fatType === "FAT32" ? 32 : 16);
  // The Microsoft rule: the cluster count, as fsck.fat computes it from the BPB, decides the type.
  if (info.fatType === "FAT32") expect(f.totalClusters).toBeGreaterThanOrEqual(65525);
  else {
    expect(f.totalClusters).toBeGreaterThanOrEqual(4085);
    expect(f.totalClusters).toBeLessThan(65525);
  }
  expect(f.totalClusters - f.usedClusters).toBe(info.freeClusters);

  const out = scratch("mcopy");
  mkdirSync(out);
  const got = mcopyAll(path, info.partitionOffset, out);
  expect([...got.files.keys()].sort()).toEqual(files.map((x) => x.path).sort());
  for (const file of files) expectSameBytes(got.files.get(file.path), file.data, file.path);
  expect([...got.dirs].sort()).toEqual(dirs.sort());
}

function impliedDirs(files: readonly FatFile[], extra: readonly string[] = []): string[] {
  const dirs = new Set<string>(extra);
  for (const f of files) {
    const parts = f.path.split("/").slice(1, -1);
    for (let k = 1; k <= parts.length; k++) dirs.add("/" + parts.slice(0, k).join("/"));
  }
  return [...dirs];
}

describe("writeEspImage", () => {
  for (const [sizeMiB, type] of [
    [64, "FAT32"],
    [20, "FAT16"],
  ] as const)
    it(`writes a ${sizeMiB} MiB ${type} ESP that sgdisk, fsck.fat and mtools accept and read back`, async () => {
      const path = scratch("esp.img");
      const info = await writeEspImage(path, { files: sampleFiles, sizeMiB, directories: ["/EFI/empty dir"] });
      expect(info.fatType).toBe(type);
      expect(readFileSync(path).length).toBe(sizeMiB << 20);
      checkImage(path, info, sampleFiles, impliedDirs(sampleFiles, ["/EFI/empty dir"]));
      // mdir at the partition offset, as the issue asks, and mtype of single files.
      const boot = mdirEntries(path, info.partitionOffset, "/EFI/BOOT");
      expect(boot).toContainEqual({ short: "BOOTX64.EFI", long: null });
      expect(boot).toContainEqual({ short: "STARTUP.NSH", long: "startup.nsh" });
      expectSameBytes(mtype(path, info.partitionOffset, "/EFI/BOOT/BOOTX64.EFI"), sampleFiles[0]!.data, "mtype BOOTX64.EFI");
      expect(mtype(path, info.partitionOffset, "/EFI/ultravisor/partitions/Guest Partition Y/config file.yaml").toString()).toBe(
        "memory: 128M\n",
      );
    });

  it("gives 8.3 names by the basis-name and numeric-tail rules", async () => {
    const path = scratch("names.img");
    const info = await writeEspImage(path, { files: sampleFiles, sizeMiB: 8 });
    const names = new Map(mdirEntries(path, info.partitionOffset, "/EFI/ultravisor").map((e) => [e.long ?? e.short, e.short]));
    expect(names.get("LONGFI~1.TXT")).toBe("LONGFI~1.TXT");
    expect(names.get("longfilename.txt")).toBe("LONGFI~2.TXT");
    expect(names.get("longfilename.text")).toBe("LONGFI~1.TEX");
    expect(names.get("résumé.txt")).toBe("R_SUM_~1.TXT");
    expect(names.get("a.b.c.d")).toBe("A~1.D");
    expect(names.get("x+y=z;[1].txt")).toBe("X_Y_Z_~1.TXT");
    expect(names.get("empty.bin")).toBe("EMPTY.BIN");
    expect(names.get("partitions")).toBe("PARTIT~1");
  });

  it("picks FAT16 or FAT32 by cluster count around the boundary", async () => {
    for (const [sizeMiB, type] of [
      [7, "FAT16"],
      [34, "FAT16"],
      [35, "FAT32"],
    ] as const) {
      const path = scratch("edge.img");
      const files = sampleFiles.slice(0, 2);
      const info = await writeEspImage(path, { files, sizeMiB });
      expect(info.fatType).toBe(type);
      const f = fsckPartition(path, info.partitionOffset, info.partitionSectors, scratch("part"));
      expect(f.complaints).toEqual([]);
      expect(f.fatBits).toBe(type === "FAT32" ? 32 : 16);
    }
  });

  it("fills a volume to the last cluster", async () => {
    const probe = buildEspImage({ files: [], sizeMiB: 8, label: "NO NAME" }).info;
    // The root (FAT16: fixed region) takes no cluster; one file of every free cluster fills the volume.
    const files = [{ path: "/big.bin", data: bytes(probe.freeClusters * probe.clusterBytes, 5) }];
    const path = scratch("full.img");
    const info = await writeEspImage(path, { files, sizeMiB: 8, label: "NO NAME" });
    expect(info.freeClusters).toBe(0);
    checkImage(path, info, files, []);
    await expect(writeEspImage(scratch("over.img"), { files: [{ path: "/big.bin", data: bytes(files[0]!.data.length + 1, 5) }], sizeMiB: 8 })).rejects.toThrow(
      /use an image of at least \d+ MiB/,
    );
  });

  it("is reproducible, and the seed decides the GUIDs", () => {
    const a = buildEspImage({ files: sampleFiles, sizeMiB: 8 });
    const b = buildEspImage({ files: sampleFiles, sizeMiB: 8 });
    expectSameBytes(a.image.toBytes(), b.image.toBytes(), "second build");
    const c = buildEspImage({ files: sampleFiles, sizeMiB: 8, seed: "other" });
    expect(c.info.diskGuid).not.toBe(a.info.diskGuid);
    expect(c.info.partitionGuid).not.toBe(a.info.partitionGuid);
    expect(c.info.volumeId).not.toBe(a.info.volumeId);
  });

  it("stores the given timestamp", async () => {
    const path = scratch("time.img");
    const info = await writeEspImage(path, { files: sampleFiles.slice(0, 1), sizeMiB: 8, time: new Date(Date.UTC(2031, 6, 15, 13, 45, 10)) });
    const out = mtools("mdir", ["-i", `${path}@@${info.partitionOffset}`, "::/EFI/BOOT"]);
    expect(out).toMatch(/BOOTX64\s+EFI\s+300000 2031-07-15\s+13:45/);
  });

  it("refuses bad requests with a message and leaves nothing behind", async () => {
    const bad: [Partial<EspImageOptions>, RegExp][] = [
      [{ sizeMiB: 6 }, /at least 7/],
      [{ sizeMiB: 8.5 }, /whole number of MiB/],
      [{ files: [{ path: "EFI/x", data: new Uint8Array(1) }] }, /must be absolute/],
      [{ files: [{ path: "/a/b", data: new Uint8Array(1) }, { path: "/A/c", data: new Uint8Array(1) }] }, /differ only in case/],
      [{ files: [{ path: "/a", data: new Uint8Array(1) }, { path: "/A", data: new Uint8Array(1) }] }, /already has another file named "a"/],
      [{ files: [{ path: "/a", data: new Uint8Array(1) }, { path: "/a/b", data: new Uint8Array(1) }] }, /is a file, not a directory/],
      [{ files: [{ path: "/a?b", data: new Uint8Array(1) }] }, /not allowed in FAT names/],
      [{ files: [{ path: "/name.", data: new Uint8Array(1) }] }, /cannot end in a space or a period/],
      [{ files: [{ path: "/" + "x".repeat(256), data: new Uint8Array(1) }] }, /at most 255/],
      [{ files: [{ path: "/x//y", data: new Uint8Array(1) }] }, /empty path component/],
      [{ label: "much too long label" }, /volume label/],
      [{ time: new Date(Date.UTC(1970, 0, 1)) }, /1980–2107/],
    ];
    for (const [opts, message] of bad) {
      const out = join(dir, "bad", `${n++}.img`);
      mkdirSync(join(dir, "bad"), { recursive: true });
      await expect(writeEspImage(out, { files: [], sizeMiB: 8, ...opts })).rejects.toThrow(message);
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(join(dir, "bad"))).toEqual([]);
    // A failed write (missing directory) leaves no temporary file either.
    const missing = join(dir, "missing", "x.img");
    const err = await writeEspImage(missing, { files: [], sizeMiB: 8 }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    expect(err?.message).toMatch(new RegExp(`^cannot write ${missing}: ENOENT`));
    expect(err?.message).not.toContain(".tmp");
    expect(err?.code).toBe("ENOENT");
  });

  it("replaces an existing image in one step", async () => {
    const path = scratch("replace.img");
    writeFileSync(path, "old");
    await writeEspImage(path, { files: sampleFiles.slice(0, 1), sizeMiB: 8 });
    expect(readFileSync(path).length).toBe(8 << 20);
    expect(readdirSync(dir).filter((x) => x.endsWith(".tmp"))).toEqual([]);
  });
});
