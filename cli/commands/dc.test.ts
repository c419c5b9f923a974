// `uvt dc run` as a user runs it: --help, refused files and options exit 2 with what and where, the example's event
// log as text, JSON and CSV (the CSV read back by Python's csv module, the SVG charts parsed by Python's XML parser:
// oracles that are not ours), and the same file giving the same output twice.
import { execa } from "execa";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const uvt = (args: string[]) => execa("node", ["cli/uvt.js", "dc", ...args], { cwd: root, reject: false });
const scratch = mkdtempSync(join(tmpdir(), "uvt-dc-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const EXAMPLE = "examples/dc/small.yaml";

describe("uvt dc", { timeout: 60_000 }, () => {
  it("has --help; a missing or bad file and bad options exit 2 saying what and where", async () => {
    for (const args of [["--help"], ["run", "--help"]]) {
      const r = await uvt(args);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/^Usage: uvt dc run FILE/);
    }
    const bad = join(scratch, "bad.yaml");
    writeFileSync(bad, "datacenter: 1\nseed: 1\nuntil: 100\nracks: [{ name: R, hosts: [{ name: H, memory: 2 GB, pcpus: 0 }] }]\npartitions: []\n");
    const cases: Array<[string[], RegExp]> = [
      [[], /no subcommand/], [["go"], /unknown subcommand 'go'/], [["run"], /exactly one FILE/],
      [["run", join(scratch, "none.yaml")], /cannot read .*none\.yaml: ENOENT/], [["run", EXAMPLE, "--format", "xml"], /--format must be text, json or csv/],
      [["run", bad], /bad\.yaml: racks\[0\]\.hosts\[0\]\.pcpus: 0 is not a whole number in 1\.\.64/],
    ];
    for (const [args, re] of cases) {
      const r = await uvt(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });

  it("runs the example: a migration and a host failure, as text, JSON and CSV, with both charts", async () => {
    const text = await uvt(["run", EXAMPLE]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toBe(readFileSync(join(root, "datacenter/expected/small.log"), "utf8").trimEnd());
    const json = await uvt(["run", EXAMPLE, "--format", "json", "--svg", join(scratch, "svg")]);
    const out = JSON.parse(json.stdout) as { format: string; events: Array<{ kind: string; downtimeMs?: number }>; summary: Record<string, number> };
    expect(out.format).toBe("uv-dc/1");
    expect(out.events.map((e) => e.kind)).toEqual(expect.arrayContaining(["host-failed", "lease-expired", "rehosted", "lost", "migration-done"]));
    expect(out.summary).toMatchObject({ rehosted: 1, lost: 1, migrations: 1 });
    const csvPath = join(scratch, "events.csv");
    const csv = await uvt(["run", EXAMPLE, "--format", "csv"]);
    writeFileSync(csvPath, csv.stdout);
    const py = await execa("python3", ["-c", [
      "import csv, json, sys, xml.etree.ElementTree as ET",
      `rows = list(csv.DictReader(open(sys.argv[1], newline="")))`,
      "svgs = [ET.parse(p).getroot().tag for p in sys.argv[2:]]",
      "print(json.dumps({'n': len(rows), 'kinds': [r['kind'] for r in rows], 'reasons': [r['reason'] for r in rows], 'down': [r['downtime_ms'] for r in rows if r['kind'] == 'migration-done'], 'svgs': svgs}))",
    ].join("\n"), csvPath, join(scratch, "svg", "memory.svg"), join(scratch, "svg", "downtime.svg")]);
    const got = JSON.parse(py.stdout) as { n: number; kinds: string[]; reasons: string[]; down: string[]; svgs: string[] };
    expect(got.n).toBe(out.events.length);
    expect(got.kinds).toEqual(out.events.map((e) => e.kind));
    // Reasons hold commas and semicolons: the quoting must bring them back whole.
    expect(got.reasons.some((r) => r.includes(";"))).toBe(true);
    expect(got.down).toEqual([String(out.events.find((e) => e.kind === "migration-done")!.downtimeMs)]);
    expect(got.svgs).toEqual(["{http://www.w3.org/2000/svg}svg", "{http://www.w3.org/2000/svg}svg"]);
    const again = await uvt(["run", EXAMPLE, "--format", "csv"]);
    expect(again.stdout).toBe(csv.stdout);
  });

  it("--etcd: the failure is noticed by a real lease's expiry; the outcome is the deterministic run's", async () => {
    const file = join(scratch, "fail-only.yaml");
    const text = readFileSync(join(root, EXAMPLE), "utf8").replace(/^until: .*$/m, "until: 6000").replace(/^events:[\s\S]*$/m, "events:\n  - { at: 1000, fail: H2 }\n");
    writeFileSync(file, text);
    const outcome = (out: string) => (JSON.parse(out) as { events: Array<{ kind: string; partition?: string; to?: string }> }).events.filter((e) => e.kind === "rehosted" || e.kind === "lost").map((e) => `${e.kind} ${e.partition} ${e.to ?? ""}`);
    const sim = await uvt(["run", file, "--format", "json"]);
    expect(sim.exitCode, sim.stderr).toBe(0);
    const live = await uvt(["run", file, "--format", "json", "--etcd"]);
    expect(live.exitCode, live.stderr).toBe(0);
    expect(live.stderr).toMatch(/^uvt dc: etcd cluster at http:\/\/127\.0\.0\.1:\d+ /);
    const reasons = (JSON.parse(live.stdout) as { events: Array<{ kind: string; reason?: string }> }).events.filter((e) => e.kind === "lease-expired").map((e) => e.reason);
    expect(reasons).toEqual([expect.stringMatching(/^its etcd lease \(TTL 3 s\) expired; /)]);
    expect(outcome(live.stdout)).toEqual(outcome(sim.stdout));
    expect(outcome(sim.stdout).length).toBeGreaterThan(0);
  });
});
