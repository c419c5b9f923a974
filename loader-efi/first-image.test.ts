// Unit tests of the first image's program (loader-efi/first-image.ts) with GNU objdump as the disassembler oracle:
// the port I/O it needs is really there, and bad options are refused. Its behaviour is tested by booting it
// (test/hw/first-image.test.ts).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assembleFirstImage } from "./first-image.ts";
import { assembleMinimalImage } from "./minimal-image.ts";

function disassemble(code: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), "uv-loader-test-"));
  try {
    const f = join(dir, "text.bin");
    writeFileSync(f, code);
    return execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", f], { encoding: "utf8" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("first image program", () => {
  it("polls COM1's line status, writes bytes to COM1 and the exit code to isa-debug-exit", () => {
    const obj = assembleFirstImage();
    const text = disassemble(obj.sections.find((s) => s.name === ".text")!.bytes);
    expect(text).toMatch(/mov\s+\$0x3fd,%dx/);
    expect(text).toMatch(/in\s+\(%dx\),%al/);
    expect(text).toMatch(/test\s+\$0x20,%al/);
    expect(text).toMatch(/mov\s+\$0x3f8,%dx/);
    expect(text).toMatch(/out\s+%al,\(%dx\)/);
    expect(text).toMatch(/mov\s+\$0x21,%eax/); // 33, the default exit code
    expect(text).toMatch(/mov\s+\$0xf4,%dx/);
    expect(text).toMatch(/out\s+%eax,\(%dx\)/);
  });

  it("stores absolute pointers in .data (DIR64 relocations) and nothing 32-bit absolute", () => {
    const obj = assembleFirstImage();
    const data = obj.sections.findIndex((s) => s.name === ".data");
    const abs = obj.relocations.filter((r) => r.kind !== "rel32");
    expect(abs.map((r) => [r.section, r.kind, r.target])).toEqual([
      [data, "abs64", "s_banner"],
      [data, "abs64", "print"],
    ]);
  });

  it("refuses exit codes QEMU cannot report and banners that are not printable ASCII", () => {
    expect(() => assembleFirstImage({ exitCode: 128 })).toThrow(/0\.\.127/);
    expect(() => assembleFirstImage({ banner: "tab\there" })).toThrow(/printable ASCII/);
    expect(() => assembleFirstImage({ banner: "x".repeat(500) })).toThrow(/at most/);
  });

  it("the minimal image writes its marker and exits at once", () => {
    const text = disassemble(assembleMinimalImage().sections[0]!.bytes);
    expect(text.match(/out\s+%al,\(%dx\)/g)?.length).toBe("uv-minimal\r\n".length);
    expect(text).toMatch(/out\s+%eax,\(%dx\)/);
  });
});
