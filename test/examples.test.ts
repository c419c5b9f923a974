// Every example in examples/ both ways, through the `uvt` command a user runs: `uvt sim FILE` runs it with every
// expectation holding, and `uvt build --config FILE` builds the image of each bootable host (one that lists
// partitions and says so in its header) and refuses each simulator-only scenario with a positioned line and exit 2. A misspelt key fails both
// commands the same way.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "uv-examples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const files = readdirSync(join(root, "examples")).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
/** A bootable example says how to build it in its header; every other example is a simulator scenario. */
const bootable = (f: string): boolean => readFileSync(join(root, "examples", f), "utf8").includes(`uvt build --config examples/${f}`);
const uvt = (args: string[]) => execa("node", ["cli/uvt.js", ...args], { cwd: root, reject: false });

describe("every example, built and simulated", () => {
  it("has bootable hosts among the examples, the Figure 1 host first", () => {
    expect(files.filter(bootable)).toEqual(expect.arrayContaining(["ultravisor.yaml", "ultravisor-containment.yaml"]));
  });

  for (const f of files) {
    it(`uvt sim examples/${f} exits 0 with every expectation holding`, async () => {
      const r = await uvt(["sim", `examples/${f}`, "--no-map"]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain("all expectations hold");
    }, 60_000);

    it(`uvt build --config examples/${f} ${bootable(f) ? "builds the image" : "refuses the simulator scenario at its key"}`, async () => {
      const out = join(scratch, f);
      const r = await uvt(["build", "--config", `examples/${f}`, "--out", out]);
      if (bootable(f)) {
        expect(r.exitCode, r.stderr).toBe(0);
        for (const n of ["BOOTX64.EFI", "esp.img", "BOOTX64.map"]) expect(existsSync(join(out, n))).toBe(true);
      } else {
        expect(r.exitCode).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`^examples/${f.replace(".", "\\.")}:\\d+:\\d+: [\\w.[\\]]+: \\S`));
        expect(existsSync(join(out, "BOOTX64.EFI"))).toBe(false);
      }
    }, 120_000);
  }

  it("the Figure 1 host: uvt sim shows its partitions, channels, the refused probe and the Figure 1 duties on its two processors", async () => {
    const r = await uvt(["sim", "examples/ultravisor.yaml", "--no-map"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("boot: the boot partition creates io, command and designates the command partition:");
    expect(r.stdout).toContain("Set Command Partition, from [0,0,0]");
    for (const g of ["X", "Y", "Z"]) expect(r.stdout).toContain(`the command partition command creates ${g}:`);
    expect(r.stdout).toMatch(/audit log: rejected submission from X \[[\d,]+\]: NOT_COMMAND/);
    // Two processors (host.pcpus 2): X and Y prefer PCPU 1, as on the machine (docs/specs/smp.md §2.1).
    const rows = [0, 1].map((p) => r.stdout.split("\n").find((l) => new RegExp(`^\\s+${p}\\s+\\S`).test(l) && l.includes("busy"))!);
    const count = (row: string, n: string): number => row.split(/\s+/).filter((c) => c === `${n}.0`).length;
    expect(["uv-partition", "io", "command", "Z", "V"].map((n) => count(rows[0]!, n))).toEqual([1, 2, 1, 2, 2]);
    expect(["X", "Y"].map((n) => count(rows[1]!, n))).toEqual([4, 3]);
  }, 60_000);

  it("a host with PCI devices: uvt sim accepts them and says, per owner, that the simulator records no device", async () => {
    const r = await uvt(["sim", "examples/pci-devices.yaml", "--no-map"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("io: on the machine only: PCI disk 1 given at boot (the simulator has no PCI bus and records no device)");
    expect(r.stdout).toMatch(/^owner: on the machine only: .*PCI disk 0 given at boot .*PCI device 00:01\.0 given at boot /m);
  }, 60_000);

  it("a misspelt key fails uvt build and uvt sim alike: file, line, column, path, exit 2, nothing written", async () => {
    const bad = join(scratch, "typo.yaml");
    writeFileSync(bad, readFileSync(join(root, "examples", "ultravisor.yaml"), "utf8").replace("partitions:", "partitons:"));
    const line = readFileSync(bad, "utf8").split("\n").findIndex((l) => l.startsWith("partitons:")) + 1;
    const want = `${bad}:${line}:1: partitons: unknown key — did you mean 'partitions'?`;
    const out = join(scratch, "typo-out");
    for (const args of [["build", "--config", bad, "--out", out], ["sim", bad]]) {
      const r = await uvt(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr.startsWith(want), r.stderr).toBe(true);
      expect(r.stdout).toBe("");
    }
    expect(existsSync(out)).toBe(false);
    const fault = join(scratch, "fault.yaml");
    writeFileSync(fault, readFileSync(join(root, "examples", "ultravisor-containment.yaml"), "utf8").replace("faultAfter: 2 } }\n  - { name: bad-unmapped", "faultAftr: 2 } }\n  - { name: bad-unmapped"));
    for (const args of [["build", "--config", fault, "--out", out], ["sim", fault]]) {
      const r = await uvt(args);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^${fault.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:\\d+:\\d+: partitions\\[4\\]\\.behaviour\\.faultAftr: unknown key — did you mean 'faultAfter'\\?`));
    }
    const missing = await uvt(["build", "--config", join(scratch, "none.yaml")]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.trim()).toBe(`${join(scratch, "none.yaml")}: (file): no such file (give the path of a host definition, e.g. examples/ultravisor.yaml)`);
  }, 120_000);
});

// Operations estates (docs/specs/operations.md) live in examples/ops/: each loads, its partitions are defined and
// moved by their `then:` actions, and every started one is placed.
const estates = readdirSync(join(root, "examples", "ops")).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
describe("operations estates in examples/ops/", () => {
  it("there are some", () => expect(estates.length).toBeGreaterThan(0));
  for (const f of estates) {
    it(`uvt ops list examples/ops/${f} --json: loads, and every running partition is placed`, async () => {
      const r = await execa("node", ["cli/uvt.js", "ops", "list", `examples/ops/${f}`, "--json"], { cwd: root, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      const defs = (JSON.parse(r.stdout) as { partitions: Array<{ state: string; placement?: { host: string } }> }).partitions;
      expect(defs.length).toBeGreaterThan(0);
      for (const d of defs) expect(d.state === "running", JSON.stringify(d)).toBe(d.placement !== undefined);
    }, 60_000);
  }
});
