// Tests of scenario validation and of `uvt sim`: bad files are reported with file, line and field; the CLI runs
// the shipped Figure 8 example and exits 0; patent notation round-trips.
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { join } from "node:path";
import { loadScenario, parseScenario, ScenarioError } from "./scenario.ts";
import { runScenario } from "./run-scenario.ts";
import { formatOp, parseOp, parsePn, pn } from "../core/notation.ts";

function errorOf(text: string): ScenarioError {
  try {
    parseScenario(text, "s.yaml");
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("scenario validation", () => {
  it("names file, line and field", () => {
    const e1 = errorOf("host:\n  memory: 64 GB\noperations:\n  - create: { name: X, size: 4 GB, colour: red }\n");
    expect(e1.message).toBe("s.yaml:4: operations[0].create.colour: unknown field (allowed: name, user, kind, size, at)");
    const e2 = errorOf("host:\n  memory: lots\noperations: []\n");
    expect(e2.message).toMatch(/^s\.yaml:2: host\.memory: "lots" is not a size/);
    const e3 = errorOf("host:\n  memory: 64 GB\noperations:\n  - merge: { map: \"[0,1,0]\", index: 1024 }\n");
    expect(e3.message).toBe("s.yaml:4: operations[0].merge.index: expected an integer in 0..1023");
    const e4 = errorOf("host:\n  memory: 64 GB\noperations:\n  - split: { map: \"[0,1,2000]\", index: 3 }\n");
    expect(e4.message).toMatch(/^s\.yaml:4: operations\[0\]\.split\.map: K=2000 is not in 0\.\.1023/);
    const e5 = errorOf("operations: []\n");
    expect(e5.message).toBe("s.yaml:1: (top).host: required field is missing");
    const e6 = errorOf("host: { memory: 64 GB }\noperations:\n  - destroy: X\n    create: { name: Y, size: 4 MB }\n");
    expect(e6.message).toMatch(/^s\.yaml:3: operations\[0\]: exactly one of/);
    const e7 = errorOf("host: { memory: 64 GB\n");
    expect(e7.field).toBe("(syntax)");
    const e8 = errorOf('{"host": {"memory": "64 GB"},\n "operations": [\n  {"create": {"name": "X", "size": "4 GB", "at": "Map[0,1,0] Slot(2)"}}]}');
    expect(e8.message).toMatch(/^s\.yaml:3: operations\[0\]\.create\.at: "Map\[0,1,0\] Slot\(2\)" is not a placement/);
    // A typo inside a transaction's text: a literal block's own line; a quoted string's line and the line in it.
    const e9 = errorOf("host: { memory: 64 GB }\noperations:\n  - transaction: |\n      Begin Transaction\n      Destroy Partitio[0,1,25]\n      Commit Transaction\n");
    expect(e9.message).toMatch(/^s\.yaml:5: operations\[0\]\.transaction: "Destroy Partitio\[0,1,25\]" is not an operation/);
    const e10 = errorOf('host: { memory: 64 GB, pcpus: 2 }\noperations:\n  - submit: { from: X, transaction: "Begin Transaction\\nDestroy Partitio[0,1,25]" }\n');
    expect(e10.message).toMatch(/^s\.yaml:3: operations\[0\]\.submit\.transaction: line 2 of the text: "Destroy Partitio/);
  });

  it("uvt sim prints the Figure 8 logs and exits 0; a bad file exits 2 with its location", async () => {
    const root = join(import.meta.dirname, "..");
    const ok = await execa("node", ["cli/uvt.js", "sim", "examples/figure8.yaml"], { cwd: root, reject: false });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain("Change Owner Map[0,1,1], IndexRange(768,1023), from [0,1,20], to [0,1,26]");
    expect(ok.stdout).toContain("PKM at Mem[0,1,18]");
    const help = await execa("node", ["cli/uvt.js", "sim", "--help"], { cwd: root, reject: false });
    expect(help.stdout).toContain("Usage: uvt sim SCENARIO");
    const bad = await execa("node", ["cli/uvt.js", "sim", "package.json"], { cwd: root, reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/package\.json:\d+: \(top\)\.\w+: unknown field/);
  }, 60_000);
});

describe("shipped examples", () => {
  it("firmware-map.json: holes, a reserved range, an odd-sized top, a rejected stale request", async () => {
    const printed: string[] = [];
    const r = await runScenario(loadScenario(join(import.meta.dirname, "..", "examples", "firmware-map.json")), (l) => printed.push(l));
    expect(r.failures).toEqual([]);
    expect(printed.join("\n")).toContain("rejected: transaction: OWNER_MISMATCH");
    expect(r.host.view.accounting().installed).toBe(r.host.installed);
  });
});

describe("patent notation", () => {
  it("formats and parses every operation form", () => {
    const lines = [
      "Change Owner Map[0,1,18], Index(25), from [0,1,20], to [0,1,24]",
      "Change Owner Map[0,1,1], IndexRange(768,1023), from [0,1,20], to [0,1,26]",
      'Initialize Partition[0,1,25] ("X", UserX, ...)',
      'Initialize Partition[0,1,27] ("cmd", Operator, Command)',
      "Destroy Partition[0,1,25]",
      "Merge Map[0,1,0], Index(15), {From Map[0,1,16], For[0,1,20]}",
      "Split Map[0,1,0], Index(15), Into Map[0,1,16], {For[0,1,20]}",
    ];
    for (const l of lines) expect(formatOp(parseOp(l))).toBe(l);
    expect(() => parseOp("Change Owner Map[0,1,18], Slot(3), from [0,1,20], to [0,1,24]")).toThrow(/is not an operation/);
    expect(pn(parsePn("[3, 1023, 7]"))).toBe("[3,1023,7]");
    expect(() => parsePn("[0,1024,0]")).toThrow(/M=1024/);
  });
});
