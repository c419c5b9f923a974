// Tests of `uvt asm`: flat binaries of the examples against GNU as (+ld for the multi-section one), listings, hex output,
// errors with file:line:column and exit codes, usage errors. One real process start checks the installed entry point.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { UsageError } from "../command.ts";
import asm from "./asm.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-asm-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(console, "error").mockImplementation((s) => void (err += `${String(s)}\n`));
  try {
    return { code: await asm.run(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

function gasFlat(src: string, sections: string[], starts: string[]): Buffer {
  writeFileSync(join(dir, "g.s"), readFileSync(src));
  execFileSync("as", ["--64", "-o", join(dir, "g.o"), join(dir, "g.s")]);
  execFileSync("ld", ["-o", join(dir, "g.elf"), "-e", "0", ...starts.map((s, i) => `--section-start=${sections[i]}=${s}`), join(dir, "g.o")]);
  const parts = sections.map((name) => {
    execFileSync("objcopy", ["-O", "binary", `--only-section=${name}`, join(dir, "g.elf"), join(dir, "part.bin")]);
    return readFileSync(join(dir, "part.bin"));
  });
  return Buffer.concat(parts);
}

describe("uvt asm", () => {
  it("writes the same flat binary as GNU as + ld for the examples", async () => {
    for (const ex of ["sum", "system"]) {
      const out = join(dir, `${ex}.bin`);
      expect((await run([`examples/asm/${ex}.s`, "-o", out])).code).toBe(0);
      expect(readFileSync(out).equals(gasFlat(`examples/asm/${ex}.s`, [".text"], ["0x1000"]))).toBe(true);
    }
    // Two sections, .data placed right after .text at its 16-byte alignment; based at 0x400000.
    const out = join(dir, "strings.bin");
    expect((await run(["examples/asm/strings.s", "-o", out, "--base", "0x400000"])).code).toBe(0);
    const ours = readFileSync(out);
    expect(ours.equals(gasFlat("examples/asm/strings.s", [".text", ".data"], ["0x400000", "0x400030"]))).toBe(true);
  });

  it("prints listings and hex", async () => {
    const l = await run(["examples/asm/sum.s", "--listing"]);
    expect(l.code).toBe(0);
    expect(l.out).toContain("00000000  31 c0                        7  xor     eax, eax");
    expect(l.out).toMatch(/00000011 {2}75 f4\s+14 {2}jne {5}again/);
    const h = await run(["examples/asm/sum.s", "--format", "hex"]);
    expect(h.out.split("\n")[0]).toBe("31 c0 48 85 f6 74 0c 48 03 07 48 83 c7 08 48 ff");
  });

  it("reports errors with file:line:column and refuses bad usage", async () => {
    const bad = join(dir, "bad.s");
    writeFileSync(bad, "nop\n  mov rax, ecx\n");
    const r = await run([bad, "-o", join(dir, "never.bin")]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${bad}:2:3: mov rax, ecx: operand widths differ (qword vs dword)\n`);
    expect(() => readFileSync(join(dir, "never.bin"))).toThrow();
    await expect(run([])).rejects.toThrow(UsageError);
    await expect(run(["x.s", "--format", "elf"])).rejects.toThrow(/--format must be bin or hex/);
    await expect(run([join(dir, "missing.s")])).rejects.toThrow(/cannot read/);
    await expect(run(["examples/asm/sum.s", "--base", "zz"])).rejects.toThrow(/--base/);
  });

  it("runs as a real process through the uvt entry point", () => {
    const r = spawnSync(process.execPath, ["cli/uvt.js", "asm", "examples/asm/sum.s", "--format", "hex"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith("31 c0 48 85 f6")).toBe(true);
    const h = spawnSync(process.execPath, ["cli/uvt.js", "asm", "--help"], { encoding: "utf8" });
    expect(h.stdout).toContain("Usage: uvt asm FILE");
  });
});
