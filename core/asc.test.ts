// Tests of the one AssemblyScript build entry (core/asc.ts) on a tiny program in a temporary folder: the command line
// keeps the caller's order, a fresh output is not rebuilt, a newer dependency rebuilds it, a failing compile or a
// failing verification leaves the previous output and no temporary file behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ascBuild, ascCommandLine, ascStale, type AscTarget } from "./asc.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-asc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FLAGS = ["--runtime", "stub", "--optimizeLevel", "3", "--noColors"];

describe("core/asc.ts", () => {
  it("puts sources, --baseDir, the outputs, then the caller's flags", () => {
    const t: AscTarget = { sources: ["a.ts", "b.ts"], baseDir: "/r", out: "/o/x.wasm", wat: "/o/x.wat", flags: ["--f", "1"] };
    expect(ascCommandLine(t)).toEqual(["a.ts", "b.ts", "--baseDir", "/r", "--outFile", "/o/x.wasm", "--textFile", "/o/x.wat", "--f", "1"]);
    expect(ascCommandLine({ sources: ["/s.ts"], out: "/o.wasm", flags: [] }, "/tmp.wasm")).toEqual(["/s.ts", "--outFile", "/tmp.wasm"]);
  });

  it("builds when stale, skips when fresh, rebuilds after a dependency changes, keeps the output on failure", async () => {
    const src = join(dir, "p.ts");
    const dep = join(dir, "dep.txt");
    writeFileSync(src, "export function add(a: i32, b: i32): i32 { return a + b; }\n");
    writeFileSync(dep, "x");
    const t: AscTarget = { sources: [src], out: join(dir, "out", "p.wasm"), wat: join(dir, "out", "p.wat"), flags: FLAGS, deps: [dep] };
    const first = await ascBuild(t);
    expect(first.rebuilt).toBe(true);
    expect(Array.from(first.bytes.subarray(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
    expect(readFileSync(t.wat!, "utf8")).toContain("(func");
    expect(ascStale(t)).toBe(false);
    expect((await ascBuild(t)).rebuilt).toBe(false);

    const later = new Date(Date.now() + 5_000);
    utimesSync(dep, later, later);
    expect(ascStale(t)).toBe(true);
    expect((await ascBuild(t)).rebuilt).toBe(true);

    await expect(ascBuild({ ...t, verify: () => { throw new Error("refused"); } }, { force: true })).rejects.toThrow("refused");
    writeFileSync(src, "export function add(a: i32): i32 { return a + ; }\n");
    await expect(ascBuild(t, { force: true })).rejects.toThrow(/asc failed on .*p\.ts/);
    expect(readFileSync(t.out)).toEqual(Buffer.from(first.bytes));
    expect(readdirSync(join(dir, "out")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  }, 60_000);
});
