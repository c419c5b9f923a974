// Tests of a Linux partition's files on the ESP (image/linux.ts): the plan for the cached Debian kernel and the
// default initramfs puts KERNEL, INITRD and LOWPAGES on a real ESP written by the disk writer, and mtools reads back
// exactly the bytes the loader is to copy (the protected-mode kernel from (setup_sects + 1) · 512 of the file, the
// initramfs, the low pages), each with its partition-relative address inside the partition's memory.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseDefinition } from "../definition/load.ts";
import { linuxInputs } from "../definition/linux.ts";
import { mtype } from "../toolchain/disk/oracles.ts";
import { findLinuxCache } from "../toolchain/linux/cache.ts";
import { linkEfiImage } from "./efi-image.ts";
import { linuxEspFiles, linuxLoadPlan } from "./linux.ts";
import { assembleMinimalImage, MINIMAL_ENTRY } from "../loader-efi/minimal-image.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-image-linux-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const def = parseDefinition([
  "revision: 2",
  "partitions:",
  "  - { name: idle, kind: idle }",
  "  - { name: io, kind: io, duty: 2 }",
  "  - { name: Lnx, duty: 8, memory: 128 MB, linux: {} }",
].join("\n"), "h.yaml");

describe("a Linux partition on the ESP", () => {
  const { inputs, problems } = linuxInputs(def);
  const l = inputs.get(2)!;
  const plan = linuxLoadPlan("Lnx", l);

  it("plans the three files inside the partition's memory, apart from each other, with the 64-bit entry", () => {
    expect(problems).toEqual([]);
    const spans = plan.files.map((f) => [f.gpa, f.gpa + f.data.length] as const).sort((a, b) => a[0] - b[0]);
    for (const [s, e] of spans) expect([s >= 0, e <= plan.memory]).toEqual([true, true]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    expect(plan.entry).toEqual({ rip: 0x1000200, rsi: 0x2000, rsp: 0x1000, cr3: 0x4000, gdt: 0x1000 });
  });

  it("the disk writer puts them on the ESP and mtools reads back the bytes the loader copies", async () => {
    const img = linkEfiImage(assembleMinimalImage(), { entry: MINIMAL_ENTRY, extraFiles: linuxEspFiles([plan]) });
    const esp = join(dir, "esp.img");
    await img.esp.writeTo(esp);
    const off = img.espInfo.partitionOffset;
    const file = readFileSync(findLinuxCache().kernel);
    const setupSects = file[0x1f1] || 4;
    // Buffer.equals: a deep toEqual of megabytes is slow and its diff unreadable.
    expect(mtype(esp, off, "/LINUX/Lnx/KERNEL").equals(file.subarray((setupSects + 1) * 512))).toBe(true);
    expect(mtype(esp, off, "/LINUX/Lnx/INITRD").equals(l.initrd)).toBe(true);
    const low = mtype(esp, off, "/LINUX/Lnx/LOWPAGES");
    expect(low.length).toBe(0x9000);
    // The zero page at 0x2000 (offset 0x1000 of the blob) carries the file's setup header: "HdrS" at 0x202.
    expect(low.subarray(0x1000 + 0x202, 0x1000 + 0x206).toString("latin1")).toBe("HdrS");
  });

  it("refuses two Linux partitions whose folders FAT would fold together", () => {
    expect(() => linuxEspFiles([plan, { ...plan, name: "LNX" }])).toThrow(/share the ESP folder \/LINUX\/LNX \(FAT ignores case\)/);
  });
});
