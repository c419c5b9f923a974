// Hardware tests of the first image: built by our toolchain alone (assembler → PE writer → ESP writer), booted by
// OVMF in QEMU from a raw GPT disk. Asserts the banner on both paths (ConOut and COM1), the memory figure against the
// --mem given, and the isa-debug-exit code; one of the two boots goes through the `uvt run` command line.
// Relocation is exercised on every boot: the preferred base 0x140000000 (5 GiB) lies beyond these guests' RAM, so
// OVMF must load the image elsewhere and apply its DIR64 entries; the banner is reached only through the two
// relocated pointers in .data (a stale one would fault or print garbage, and the banner assertions would fail).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_BANNER, FIRST_IMAGE_EXIT_CODE, FIRST_IMAGE_LINES } from "../../loader-efi/first-image.ts";
import { Machine } from "../../qemu/index.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildFirstImage } from "../../image/first-image.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-first-"));
let image: string;
/** A second build with another banner and exit code, so both options are seen to reach the guest. */
let custom: string;
const CUSTOM = { banner: "custom banner for the 1 GiB boot", exitCode: 77 };
beforeAll(async () => {
  image = (await writeEfiImage(join(scratch, "default"), buildFirstImage())).esp;
  custom = (await writeEfiImage(join(scratch, "custom"), buildFirstImage(CUSTOM))).esp;
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * The conventional memory OVMF can leave to an application, for a guest of `mem` MiB.
 * Upper bound: the firmware's own code and data (decompressed DXE drivers, boot-services pools, ACPI and runtime
 * regions, the 384 KiB legacy hole below 1 MiB) take well over 8 MiB at any size, so mem − 8; a loader that summed
 * every descriptor type instead of type 7 would land above it. Lower bound: those reservations are mostly a fixed
 * cost (about 46 MiB on Debian 12's OVMF 2022.11 from 128 MiB to 2 GiB, measured), plus structures that grow with
 * memory (page tables, memory-type bins); 64 MiB + mem/16 covers both with margin, and at 1 GiB that is the
 * brief's "80 %" floor or better (≥ 87 %).
 */
function allowedMiB(mem: number): [number, number] {
  return [mem - 64 - mem / 16, mem - 8];
}

/**
 * Serial lines with every "COM1: " message on a line of its own. Our COM1 writes are synchronous and complete, but
 * OVMF's ConOut path to the same UART is the firmware's: under load it has been seen to drop the tail of a line,
 * CR LF included (artifact: "...(250602 pagess)COM1: exiting ..."), gluing our next COM1 message onto it.
 */
function messages(lines: string[]): string[] {
  return lines.flatMap((l) => l.replace(/(?!^)COM1: /g, "\nCOM1: ").split("\n"));
}

function checkOutput(rawLines: string[], mem: number, banner = DEFAULT_BANNER): void {
  const lines = messages(rawLines);
  expect(lines).toContain(FIRST_IMAGE_LINES.banner("COM1", banner));
  expect(lines).toContain(FIRST_IMAGE_LINES.banner("ConOut", banner));
  const memLines = lines.map((l) => FIRST_IMAGE_LINES.memory.exec(l)).filter((m) => m !== null);
  const com1 = memLines.filter((m) => m[1] === "COM1");
  expect(com1).toHaveLength(1);
  const [, , mib, pages, descriptors] = com1[0]!;
  // Where the firmware delivered ConOut's copy whole, it carries the same figures (our decimal routine, twice).
  for (const m of memLines.filter((m) => m[1] === "ConOut")) expect(m.slice(2)).toEqual(com1[0]!.slice(2));
  // MiB really is pages / 256.
  expect(Number(mib)).toBe(Math.floor(Number(pages) / 256));
  expect(Number(descriptors)).toBeGreaterThan(3);
  const [lo, hi] = allowedMiB(mem);
  expect(Number(mib)).toBeGreaterThanOrEqual(lo);
  expect(Number(mib)).toBeLessThanOrEqual(hi);
  expect(lines.some((l) => FIRST_IMAGE_LINES.exit.exec(l)?.[1] === "COM1")).toBe(true);
  expect(lines.some((l) => FIRST_IMAGE_LINES.error.test(l))).toBe(false);
}

describe("first image on OVMF", () => {
  it("boots at 1 GiB: chosen banner on ConOut and COM1, memory within the firmware's reservations, chosen exit code", async () => {
    const m = await Machine.start({ name: "hw-first-1G", image: custom, mem: "1G", timeoutMs: 120_000, log: () => undefined });
    try {
      // The guest ends QEMU through isa-debug-exit; the Machine's own 120 s timeout bounds the wait.
      const exit = await m.wait();
      const lines = m.lines.map((l) => l.text);
      try {
        checkOutput(lines, 1024, CUSTOM.banner);
        expect(exit).toEqual({ kind: "guest", code: CUSTOM.exitCode });
      } catch (e) {
        m.failWith(`first image output wrong: ${(e as Error).message.split("\n")[0]}`);
        throw e;
      }
    } finally {
      await m.close();
    }
  }, 150_000);

  it("boots at 256 MiB through `uvt run`, which streams the serial console and exits 0 on the image's success code, 1 on another", async () => {
    const root = resolve(import.meta.dirname, "../..");
    const r = await execa("node", [join(root, "cli/uvt.js"), "run", "--image", image, "--mem", "256M", "--timeout", "120"], { cwd: scratch, reject: false, timeout: 140_000 });
    const lines = r.stdout.split("\n");
    expect(r.exitCode, `stderr: ${r.stderr}`).toBe(0);
    checkOutput(lines, 256);
    expect(r.stderr).toMatch(/accelerator (tcg|kvm)/);
    expect(r.stderr).toContain(`guest exit code ${FIRST_IMAGE_EXIT_CODE}: success`);
    // The success code comes from the map uvt build wrote beside the image; --expect-exit overrides it.
    const other = await execa("node", [join(root, "cli/uvt.js"), "run", "--image", image, "--timeout", "120", "--expect-exit", String(FIRST_IMAGE_EXIT_CODE + 1)], { cwd: scratch, reject: false, timeout: 140_000 });
    expect(other.exitCode, `stderr: ${other.stderr}`).toBe(1);
    expect(other.stderr).toContain(`guest exit code ${FIRST_IMAGE_EXIT_CODE}: failure (the image's success code is ${FIRST_IMAGE_EXIT_CODE + 1})`);
  }, 150_000);
});
