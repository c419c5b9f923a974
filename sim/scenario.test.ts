// Tests of scenario validation and of `uvt sim`: bad files are reported with file, line and field; the CLI runs
// the shipped Figure 8 example and exits 0; patent notation round-trips.
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { join } from "node:path";
import { loadScenario, parseScenario } from "./scenario.ts";
import { DefinitionError } from "../definition/errors.ts";
import { runScenario } from "./run-scenario.ts";
import { formatOp, parseOp, parsePn, pn } from "../core/notation.ts";

function errorOf(text: string): string {
  try {
    parseScenario(text.startsWith("{") ? text : `revision: 2\n${text}`, "s.yaml");
  } catch (e) {
    if (e instanceof DefinitionError) return e.message;
    throw e;
  }
  throw new Error("no error");
}

describe("scenario validation", () => {
  it("names file, line, column and key", () => {
    expect(errorOf("host:\n  memory: 64 GB\noperations:\n  - create: { name: X, size: 4 GB, colour: red }\n"))
      .toBe("s.yaml:5:36: operations[0].create.colour: unknown key (allowed: name, user, kind, size, at)");
    expect(errorOf("host:\n  memory: lots\noperations: []\n")).toMatch(/^s\.yaml:3:11: host\.memory: "lots" is not a size such as "4 GB"/);
    expect(errorOf("host:\n  memory: 64 GB\noperations:\n  - merge: { map: \"[0,1,0]\", index: 1024 }\n"))
      .toBe("s.yaml:5:37: operations[0].merge.index: 1024 is out of range (at most 1023)");
    expect(errorOf("host:\n  memory: 64 GB\noperations:\n  - split: { map: \"[0,1,2000]\", index: 3 }\n"))
      .toMatch(/^s\.yaml:5:19: operations\[0\]\.split\.map: "\[0,1,2000\]": \[0,1,2000\] has a number above 1023/);
    expect(errorOf("host: { memory: 64 GB }\noperations:\n  - destroy: X\n    create: { name: Y, size: 4 MB }\n"))
      .toMatch(/^s\.yaml:4:5: operations\[0\]: exactly one operation per entry \(found create, destroy\)/);
    expect(errorOf("host: { memory: 64 GB\n")).toMatch(/^s\.yaml:\d+:\d+: \(syntax\): /);
    expect(errorOf('{"revision": 2, "host": {"memory": "64 GB"},\n "operations": [\n  {"create": {"name": "X", "size": "4 GB", "at": "Map[0,1,0] Slot(2)"}}]}'))
      .toMatch(/^s\.yaml:3:50: operations\[0\]\.create\.at: "Map\[0,1,0\] Slot\(2\)" is not a placement/);
    // A typo inside a transaction's text: a literal block's own line; a quoted string's line and the line in it.
    expect(errorOf("host: { memory: 64 GB }\noperations:\n  - transaction: |\n      Begin Transaction\n      Destroy Partitio[0,1,25]\n      Commit Transaction\n"))
      .toMatch(/^s\.yaml:6:1: operations\[0\]\.transaction: "Destroy Partitio\[0,1,25\]" is not an operation/);
    expect(errorOf('host: { memory: 64 GB, pcpus: 2 }\noperations:\n  - submit: { from: X, transaction: "Begin Transaction\\nDestroy Partitio[0,1,25]" }\n'))
      .toMatch(/^s\.yaml:4:37: operations\[0\]\.submit\.transaction: line 2 of the text: "Destroy Partitio/);
  });

  it("uvt sim prints the Figure 8 logs and exits 0; a bad file exits 2 with its location", async () => {
    const root = join(import.meta.dirname, "..");
    const ok = await execa("node", ["cli/uvt.js", "sim", "examples/figure8.yaml"], { cwd: root, reject: false });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain("Change Owner Map[0,1,1], IndexRange(768,1023), from [0,1,20], to [0,1,26]");
    expect(ok.stdout).toContain("PKM at Mem[0,1,18]");
    const help = await execa("node", ["cli/uvt.js", "sim", "--help"], { cwd: root, reject: false });
    expect(help.stdout).toContain("Usage: uvt sim FILE");
    const bad = await execa("node", ["cli/uvt.js", "sim", "package.json"], { cwd: root, reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^package\.json:1:1: revision: required key is missing/m);
    expect(bad.stderr).toMatch(/^package\.json:\d+:\d+: \w+: unknown key/m);
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
