// The `uvt` grammar shared by every command (cli/main.ts, cli/args.ts): --version, `uvt help CMD`, one meaning per
// flag with short forms, strict parsing (an unknown flag is exit 2 naming the known ones), `--` passthrough.
import { execa } from "execa";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseArgs } from "./args.ts";
import { UsageError } from "./command.ts";

const root = join(import.meta.dirname, "..");
const uvt = (args: string[]) => execa("node", ["cli/uvt.js", ...args], { cwd: root, reject: false });

describe("the uvt command line", () => {
  it("prints its version, lists the commands, and gives each command's help as `uvt help CMD`", async () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    const v = await uvt(["--version"]);
    expect([v.exitCode, v.stdout]).toEqual([0, `uvt (ultravisor) ${pkg.version}`]);
    const none = await uvt([]);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain("Commands:");
    for (const cmd of ["asm", "build", "run", "sim"]) {
      const [a, b] = await Promise.all([uvt(["help", cmd]), uvt([cmd, "--help"])]);
      expect(a.exitCode).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout).toMatch(new RegExp(`^Usage: uvt ${cmd} `));
    }
  }, 60_000);

  it("refuses unknown flags and missing values with exit 2, naming what is known", async () => {
    const r = await uvt(["build", "--image", "first"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe("uvt build: unknown option --image (known: -o/--out, --config, --target)");
    const m = await uvt(["asm", "x.s", "-o"]);
    expect(m.exitCode).toBe(2);
    expect(m.stderr.trim()).toBe("uvt asm: --out needs a value");
  }, 30_000);

  it("parses short forms, --name=value, booleans and a passthrough after --", () => {
    const p = parseArgs(["-o", "dir", "--config=h.yaml", "-q", "pos", "--", "-d", "int"], { values: ["out:o", "config"], booleans: ["quiet:q"], passthrough: true });
    expect([...p.flags]).toEqual([["out", "dir"], ["config", "h.yaml"]]);
    expect([...p.bools]).toEqual(["quiet"]);
    expect(p.positionals).toEqual(["pos"]);
    expect(p.rest).toEqual(["-d", "int"]);
    expect(() => parseArgs(["--", "x"], { values: [] })).not.toThrow();
    expect(() => parseArgs(["--quiet=yes"], { booleans: ["quiet"] })).toThrow(new UsageError("--quiet takes no value"));
  });
});
