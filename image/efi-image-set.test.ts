// writeEfiImage (efi-image.ts) replaces `uvt build`'s output set — BOOTX64.EFI, BOOTX64.map, BOOTX64.elf, esp.img — as a whole:
// when the disk image cannot be written, the previous files stay byte-identical and no temporary is left.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeEfiImage } from "./efi-image.ts";
import { buildFirstImage } from "./first-image.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-image-set-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const NAMES = ["BOOTX64.EFI", "BOOTX64.elf", "BOOTX64.map", "esp.img"];

function oldSet(dir: string): Map<string, Buffer> {
  const before = new Map<string, Buffer>();
  for (const n of NAMES) {
    const bytes = Buffer.from(`the previous build's ${n}\n`);
    writeFileSync(join(dir, n), bytes);
    before.set(n, bytes);
  }
  return before;
}

describe("uvt build's output set", () => {
  it("is replaced whole when every file is written", async () => {
    const dir = mkdtempSync(join(scratch, "ok-"));
    oldSet(dir);
    const img = buildFirstImage();
    await writeEfiImage(dir, img);
    expect(readdirSync(dir).sort()).toEqual([...NAMES].sort());
    expect(Buffer.compare(readFileSync(join(dir, "BOOTX64.EFI")), Buffer.from(img.efi))).toBe(0);
    expect(readFileSync(join(dir, "BOOTX64.map"), "utf8")).toBe(img.map);
    expect(readFileSync(join(dir, "esp.img")).length).toBe(img.esp.size);
  });

  it("is left untouched, with no temporary file, when the disk image cannot be written", async () => {
    const dir = mkdtempSync(join(scratch, "fail-"));
    const before = oldSet(dir);
    const img = buildFirstImage();
    // A region whose bytes cannot be read stands in for a failing disk write: it fails after the temporary disk
    // image has been created and truncated, i.e. after BOOTX64.EFI and the map have been written.
    const poisoned = {
      get length(): number {
        throw Object.assign(new Error("no space left on device (simulated)"), { code: "ENOSPC" });
      },
    } as unknown as Uint8Array;
    img.esp.extents.push({ offset: 0, data: poisoned });
    await expect(writeEfiImage(dir, img)).rejects.toThrow(/cannot write .*esp\.img/);
    expect(readdirSync(dir).sort()).toEqual([...NAMES].sort());
    for (const n of NAMES) expect(readFileSync(join(dir, n)).equals(before.get(n)!), n).toBe(true);
  });
});
