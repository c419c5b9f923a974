// Tests of the one AssemblyScript build entry (core/asc.ts) on tiny programs in a temporary folder: the command line
// keeps the caller's order; the up-to-date rule is a content key (a touched file does not rebuild, a changed source,
// an imported file, a dependency or a flag does); concurrent builds share the worker pool and one output's build; a
// failing compile or a failing verification leaves the previous output and no temporary file behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ascBuild, ascCommandLine, ascStale, type AscTarget } from "./asc.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-asc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FLAGS = ["--runtime", "stub", "--optimizeLevel", "3", "--noColors"];
const later = (): Date => new Date(Date.now() + 5_000);

describe("core/asc.ts", () => {
  it("puts sources, --baseDir, the outputs, then the caller's flags", () => {
    const t: AscTarget = { sources: ["a.ts", "b.ts"], baseDir: "/r", out: "/o/x.wasm", wat: "/o/x.wat", flags: ["--f", "1"] };
    expect(ascCommandLine(t)).toEqual(["a.ts", "b.ts", "--baseDir", "/r", "--outFile", "/o/x.wasm", "--textFile", "/o/x.wat", "--f", "1"]);
    expect(ascCommandLine({ sources: ["/s.ts"], out: "/o.wasm", flags: [] }, "/tmp.wasm")).toEqual(["/s.ts", "--outFile", "/tmp.wasm"]);
  });

  it("keys outputs by content: touch does not rebuild; a changed source, import, dependency or flag does", async () => {
    const src = join(dir, "p.ts");
    const lib = join(dir, "lib.ts");
    const dep = join(dir, "dep.txt");
    writeFileSync(lib, "export function twice(a: i32): i32 { return a * 2; }\n");
    writeFileSync(src, 'import { twice } from "./lib";\nexport function add(a: i32, b: i32): i32 { return twice(a) + b; }\n');
    writeFileSync(dep, "x");
    const t: AscTarget = { sources: [src], out: join(dir, "out", "p.wasm"), wat: join(dir, "out", "p.wat"), flags: FLAGS, deps: [dep] };
    const first = await ascBuild(t);
    expect(first.rebuilt).toBe(true);
    expect(Array.from(first.bytes.subarray(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
    expect(readFileSync(t.wat!, "utf8")).toContain("(func");
    expect(JSON.parse(readFileSync(`${t.out}.key`, "utf8")).reads).toEqual(expect.arrayContaining([src, lib]));
    expect(ascStale(t)).toBe(false);
    expect((await ascBuild(t)).rebuilt).toBe(false);

    // Newer timestamps, same bytes: still up to date.
    for (const f of [src, lib, dep]) utimesSync(f, later(), later());
    expect(ascStale(t)).toBe(false);
    expect((await ascBuild(t)).rebuilt).toBe(false);

    // One byte of the imported file (found by recording what asc read, not declared anywhere).
    writeFileSync(lib, "export function twice(a: i32): i32 { return a * 3; }\n");
    expect(ascStale(t)).toBe(true);
    const changed = await ascBuild(t);
    expect(changed.rebuilt).toBe(true);
    expect(Buffer.from(changed.bytes).equals(Buffer.from(first.bytes))).toBe(false);
    expect(ascStale(t)).toBe(false);

    writeFileSync(dep, "y");
    expect(ascStale(t)).toBe(true);
    expect((await ascBuild(t)).rebuilt).toBe(true);

    const other = { ...t, flags: [...FLAGS.slice(0, 3), "2", "--noColors"] };
    expect(ascStale(other)).toBe(true);
    expect((await ascBuild(other)).rebuilt).toBe(true);
    expect(ascStale(t)).toBe(true);
    expect((await ascBuild(t)).rebuilt).toBe(true);

    rmSync(t.wat!);
    expect(ascStale(t)).toBe(true);
  }, 120_000);

  it("builds concurrent targets in parallel and one output once", async () => {
    const targets = [1, 2, 3].map((n): AscTarget => {
      const src = join(dir, `c${n}.ts`);
      writeFileSync(src, `export function f(a: i32): i32 { return a + ${n}; }\n`);
      return { sources: [src], out: join(dir, "out", `c${n}.wasm`), flags: FLAGS };
    });
    const [a, b, ...rest] = await Promise.all([ascBuild(targets[0]!), ascBuild(targets[0]!), ...targets.slice(1).map((t) => ascBuild(t))]);
    expect(a).toBe(b);
    expect([a, ...rest].every((r) => r!.rebuilt)).toBe(true);
  }, 120_000);

  it("keeps the output on failure, with no temporary file left", async () => {
    const src = join(dir, "f.ts");
    writeFileSync(src, "export function add(a: i32, b: i32): i32 { return a + b; }\n");
    const t: AscTarget = { sources: [src], out: join(dir, "out", "f.wasm"), flags: FLAGS };
    const first = await ascBuild(t);
    await expect(ascBuild({ ...t, verify: () => { throw new Error("refused"); } }, { force: true })).rejects.toThrow("refused");
    writeFileSync(src, "export function add(a: i32): i32 { return a + ; }\n");
    await expect(ascBuild(t, { force: true })).rejects.toThrow(/asc failed on .*f\.ts/);
    expect(readFileSync(t.out)).toEqual(Buffer.from(first.bytes));
    expect(readdirSync(join(dir, "out")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  }, 60_000);
});
