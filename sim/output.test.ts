// Machine-readable results of `uvt sim` (sim/output.ts): the JSON document of every example has the documented,
// versioned shape (sim/output-schema.ts, committed as docs/schema/sim-output.schema.json) and says what the text
// output says; each CSV table has its header and one row per fact; --svg writes the three pictures; the simulator
// is usable as a library through its one entry point (sim/index.ts, package.json "exports").
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { loadScenario, runScenario, simOutput } from "./index.ts";
import { SIM_OUTPUT_SCHEMA_PATH, simOutputJsonSchemaText, simOutputSchema } from "./output-schema.ts";

const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "uv-sim-output-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const uvt = (args: string[]) => execa("node", ["cli/uvt.js", ...args], { cwd: root, reject: false });

describe("uvt sim --format json|csv and --svg", () => {
  it("the committed JSON Schema is the generated one", () => {
    expect(readFileSync(SIM_OUTPUT_SCHEMA_PATH, "utf8"), "run: npx tsx sim/output-schema.ts").toBe(simOutputJsonSchemaText());
  });

  it("every example's JSON document has the documented shape", async () => {
    for (const f of readdirSync(join(root, "examples")).filter((n) => /\.(ya?ml|json)$/.test(n))) {
      const s = loadScenario(join(root, "examples", f));
      const out = simOutput(s, await runScenario(s, () => undefined));
      expect(() => simOutputSchema.parse(JSON.parse(JSON.stringify(out))), f).not.toThrow();
      expect(out.ok, f).toBe(true);
    }
  }, 120_000);

  it("uvt sim examples/figure8.yaml --format json parses and holds the spec's transactions; CSV tables agree", async () => {
    const r = await uvt(["sim", "examples/figure8.yaml", "--format", "json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = simOutputSchema.parse(JSON.parse(r.stdout));
    expect(doc.operations.map((o) => o.title)).toContain("Simulated Transaction Log from create Y (1GB = 256 4MB pages)");
    const texts = doc.operations.flatMap((o) => o.transactions.flatMap((t) => t.ops.map((x) => x.text)));
    expect(texts).toContain("Change Owner Map[0,1,1], IndexRange(768,1023), from [0,1,20], to [0,1,26]");
    const csv = await uvt(["sim", "examples/figure8.yaml", "--format", "csv"]);
    const lines = csv.stdout.trimEnd().split("\r\n");
    expect(lines[0]).toBe("operation,line,seq,op,text");
    expect(lines.length - 1).toBe(doc.boot.reduce((n, t) => n + t.ops.length, 0) + texts.length);
    const map = (await uvt(["sim", "examples/figure8.yaml", "--format", "csv", "--table", "map"])).stdout.trimEnd().split("\r\n");
    expect(map.length - 1).toBe(doc.memoryMap.reduce((n, m) => n + m.entries.length, 0));
    const bad = await uvt(["sim", "examples/figure8.yaml", "--format", "xml"]);
    expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, "uvt sim: --format must be text, json or csv, not 'xml'"]);
  }, 60_000);

  it("--svg writes the memory map, the schedule and the channel topology", async () => {
    const dir = join(scratch, "svg");
    const r = await uvt(["sim", "examples/ultravisor.yaml", "--svg", dir, "-q"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["channels.svg", "memory-map.svg", "schedule.svg"]);
    const sched = readFileSync(join(dir, "schedule.svg"), "utf8");
    expect(sched.match(/class="quantum"/g)?.length, "16 quanta on each of the host's two processors").toBe(32);
    // One arrow per channel of the channel table (every partition's console and control channels, the command channel).
    const doc = simOutputSchema.parse(JSON.parse((await uvt(["sim", "examples/ultravisor.yaml", "--format", "json"])).stdout));
    expect(doc.channels.length).toBeGreaterThan(8);
    expect(readFileSync(join(dir, "channels.svg"), "utf8").match(/class="channel"/g)?.length).toBe(doc.channels.length);
    expect(readFileSync(join(dir, "memory-map.svg"), "utf8")).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  }, 60_000);
});
