// The image-facing output of the AOT compiler: with importsAsSymbols the object file carries rel32 relocations to
// `module.name` symbols that toolchain/x64's linker resolves (checked by linking at fixed addresses and reading the
// call targets back with objdump), exported MS x64 thunks are global symbols, and hw intrinsics never become symbols.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { link } from "../x64/link.ts";
import { compileWasm } from "./compile.ts";
import { I32, I64, ModuleBuilder, op } from "./testing/wasm-builder.ts";

describe("object file for images", () => {
  it("non-hw imports become rel32 relocations to module.name symbols that link to the embedder's addresses", () => {
    const b = new ModuleBuilder();
    b.importFunc("env", "log", [I32], []);
    b.importFunc("hw", "rdtsc", [], [I64]);
    b.importFunc("uv", "yield", [], [I32]);
    b.func([I32], [I32], [], [...op.get(0), ...op.call(0), ...op.call(1), 0x1a, ...op.call(2)], "f");
    const c = compileWasm(b.build(), { importsAsSymbols: true, msThunks: true, symbolPrefix: "core" });
    const rels = c.object.relocations.map((r) => `${r.kind} ${r.target}`).sort();
    expect(rels).toEqual(["rel32 env.log", "rel32 uv.yield"]);
    expect(c.object.symbols.filter((s) => s.global).map((s) => s.name)).toContain("core.ms.f");

    const base = 0x40_0000;
    const ext = new Map<string, number>([["env.log", 0x50_0000], ["uv.yield", 0x50_0010]]);
    const linked = link(c.object, [base], ext);
    const dir = mkdtempSync(join(tmpdir(), "aot-image-"));
    try {
      const bin = join(dir, "text.bin");
      writeFileSync(bin, linked.sections[0]!);
      const text = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", `--adjust-vma=${base}`, bin], { encoding: "utf8" });
      expect(text).toMatch(/call\s+0x500000\b/);
      expect(text).toMatch(/call\s+0x500010\b/);
      expect(text).toMatch(/rdtsc/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => link(c.object, [base], new Map([["env.log", 0x50_0000]]))).toThrow(/uv\.yield/);
  });
});
