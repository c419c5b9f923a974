// Tests of host-definition validation (definition/load.ts, check.ts): each class of mistake a user makes — unknown or
// misspelt keys, wrong types, values out of range, null entries, duplicate names, sizes that do not add up,
// overlapping or unaligned firmware regions, servers that do not exist, placements no map can hold, a bad revision,
// a syntax error, a missing or unreadable file — is refused with FILE:LINE:COL: path: what (allowed), at its key.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DefinitionError } from "./errors.ts";
import { definitionFrom, loadDefinition, parseDefinition } from "./load.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-definition-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every line of the refusal of `text` (a revision-2 file unless it says otherwise). */
function refusal(text: string): string[] {
  try {
    parseDefinition(text.startsWith("revision") || text.startsWith("{") ? text : `revision: 2\n${text}`, "h.yaml");
  } catch (e) {
    if (e instanceof DefinitionError) {
      // Each line is in the one format, and the problems carry what the lines say.
      for (const l of e.message.split("\n")) expect(l).toMatch(/^h\.yaml(:\d+:\d+)?: \S+: \S/);
      expect(e.problems.length).toBe(e.message.split("\n").length);
      return e.message.split("\n");
    }
    throw e;
  }
  return [];
}

describe("host definitions: every class of error at its key", () => {
  it("unknown keys, with the nearest allowed key", () => {
    expect(refusal("partitons: []\n")).toEqual([
      "h.yaml:2:1: partitons: unknown key — did you mean 'partitions'? (allowed: $schema, revision, name, host, partitions, devices, run, operations, expect)",
    ]);
    expect(refusal("partitions:\n  - { name: X, duty: 4, behaviour: { faultAftr: 3 } }\n")).toEqual([
      "h.yaml:3:38: partitions[0].behaviour.faultAftr: unknown key — did you mean 'faultAfter'? (allowed: lang, fault, faultAfter, probeCommand, benchHypercalls, vm, disk, pair, failAtRequest)",
    ]);
  });

  it("wrong types, values out of range and values outside a list", () => {
    expect(refusal("host: { memory: lots }\n")).toEqual(['h.yaml:2:17: host.memory: "lots" is not a size such as "4 GB", "64 MB" or a byte count']);
    expect(refusal("run: { runQuanta: 1e300 }\n")).toEqual(["h.yaml:2:19: run.runQuanta: 1e+300 is out of range (at most 2147483647)"]);
    expect(refusal("run: { guestPeriod: 2.5 }\n")).toEqual(["h.yaml:2:21: run.guestPeriod: 2.5 is not an integer"]);
    expect(refusal("partitions:\n  - { name: X, kind: gust, duty: 40 }\n")).toEqual([
      "h.yaml:3:22: partitions[0].kind: \"gust\" is not allowed — did you mean 'guest'? (allowed: idle, ultravisor, io, command, guest, operations)",
      "h.yaml:3:34: partitions[0].duty: 40 is out of range (at most 16)",
    ]);
    expect(refusal("partitions: {}\n")).toEqual(["h.yaml:2:13: partitions: a mapping is not a list"]);
  });

  it("null entries and missing required keys", () => {
    expect(refusal("partitions: [null]\n")).toEqual(["h.yaml:2:14: partitions[0]: null is not a mapping"]);
    expect(refusal("partitions:\n  - { kind: io, duty: 2 }\n")).toEqual(["h.yaml:3:5: partitions[0].name: required key is missing (a string)"]);
    expect(() => parseDefinition("name: no revision\n", "h.yaml")).toThrow(
      "h.yaml:1:1: revision: required key is missing (revision: 2, the format this build reads)");
    expect(refusal("revision: 1\n")[0]).toMatch(/^h\.yaml:1:11: revision: 1 is not a revision this build reads \(expected 2;/);
  });

  it("duplicate names, names the database keeps, and keys written twice", () => {
    expect(refusal("partitions:\n  - { name: io, kind: io, duty: 2 }\n  - { name: io, duty: 1 }\n")).toEqual([
      "h.yaml:4:13: partitions[1].name: duplicate name 'io' (partitions[0] has it; names are unique)",
    ]);
    expect(refusal("partitions:\n  - { name: Available, duty: 1 }\n")[0]).toMatch(/^h\.yaml:3:13: partitions\[0\]\.name: "Available": a name the database keeps/);
    expect(refusal("host: { memory: 1 GB, memory: 2 GB }\n")[0]).toMatch(/^h\.yaml:2:\d+: \(syntax\): Map keys must be unique/);
  });

  it("sizes that do not add up, and firmware regions unaligned or overlapping", () => {
    expect(refusal("host: { memory: 64 GB, pcpus: 2, nodes: [{ memory: 16 GB, pcpus: 2 }] }\n")).toEqual([
      "h.yaml:2:41: host.nodes: the nodes have 16 GB of memory, host.memory says 64 GB (they must add up)",
    ]);
    expect(refusal("host: { memory: 8 MB }\n")).toEqual(["h.yaml:2:17: host.memory: 8 MB is too little (at least 12 MB: boot memory, the database's page and core's private page)"]);
    expect(refusal("host: { memory: 64 EB }\n")).toEqual(["h.yaml:2:17: host.memory: 64 EB is more than an order-5 map covers (at most 4 EB)"]);
    expect(refusal([
      "host:", "  memory: 2 GB", "  firmware:", "    - { base: 0, length: 1 GB, type: usable }", "    - { base: 4097, length: 4096, type: usable }",
      "    - { base: 512 MB, length: 1 GB, type: reserved }", "",
    ].join("\n"))).toEqual([
      "h.yaml:6:15: host.firmware[1].base: 4097 is not 4 KB aligned (a firmware region starts on a page)",
      "h.yaml:6:15: host.firmware[1].base: overlaps firmware[0] (0 + 1 GB): every byte is described once",
      "h.yaml:7:15: host.firmware[2].base: overlaps firmware[0] (0 + 1 GB): every byte is described once",
    ]);
  });

  it("placements no map can hold and servers that do not exist", () => {
    expect(refusal("host: { memory: 64 GB, order: 2 }\n")).toEqual([
      "h.yaml:2:31: host.order: an order-2 map covers 4 GB, less than host.memory (64 GB); leave order out or raise it",
    ]);
    expect(refusal("partitions:\n  - { name: X, duty: 4, memory: 6 MB }\n")).toEqual([
      "h.yaml:3:33: partitions[0].memory: 6 MB is not a positive multiple of 4 MB (the smallest page a partition gets)",
    ]);
    expect(refusal("partitions:\n  - { name: X, duty: 4, channels: [{ type: console, server: io }] }\n  - { name: io, kind: io, duty: 2 }\n")).toEqual([
      "h.yaml:3:61: partitions[0].channels[0].server: 'io' is listed after its client: list servers first (partitions are created in order)",
    ]);
    expect(refusal("partitions:\n  - { name: X, duty: 4, channels: [{ type: console, server: nobody }] }\n")[0]).toMatch(
      /^h\.yaml:3:61: partitions\[0\]\.channels\[0\]\.server: 'nobody' is not a partition of this host/);
    expect(refusal("partitions:\n  - { name: idle, kind: idle, duty: 2 }\n")).toEqual([
      "h.yaml:3:31: partitions[0].duty: the idle partition has none: it runs in every quantum nobody else uses and owns nothing",
    ]);
    expect(refusal("operations:\n  - stop: X\n")).toEqual(["h.yaml:3:5: operations[0].stop: stop needs a host with processors: add host.pcpus (or partitions)"]);
  });

  it("hostile files: an alias bomb is refused, not expanded; a number past 2^53 is out of range, never an empty refusal; keys such as __proto__ are unknown", () => {
    const bomb = ["a: &a [1,1,1,1,1,1,1,1,1]", "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]", "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]", "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]", ""].join("\n");
    expect(refusal(bomb)[0]).toMatch(/^h\.yaml:1:1: \(syntax\): Excessive alias count .*\(aliases may expand to at most 100 nodes\)$/);
    expect(refusal("host: { memory: 99999999999999999999999 }\n")).toEqual(["h.yaml:2:17: host.memory: 1e+23 is out of range (at most 9007199254740991)"]);
    expect(refusal("__proto__: { polluted: 1 }\n")[0]).toMatch(/^h\.yaml:2:1: __proto__: unknown key/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("a syntax error, a missing file, a directory", () => {
    expect(refusal("partitions: [ { name: X\n")[0]).toMatch(/^h\.yaml:\d+:\d+: \(syntax\): /);
    expect(() => loadDefinition(join(dir, "none.yaml"))).toThrow(`${join(dir, "none.yaml")}: (file): no such file (give the path of a host definition, e.g. examples/ultravisor.yaml)`);
    mkdirSync(join(dir, "sub"));
    expect(() => loadDefinition(join(dir, "sub"))).toThrow(`${join(dir, "sub")}: (file): is a directory (give a host definition file, YAML or JSON)`);
  });

  it("accepts JSON and fills in the documented defaults", () => {
    const p = join(dir, "h.json");
    writeFileSync(p, JSON.stringify({ revision: 2, partitions: [{ name: "X", duty: 4 }] }));
    const d = loadDefinition(p).def;
    expect(d.host.memory).toBe(256n << 20n);
    expect(d.partitions![0]!.kind).toBe("guest");
    expect(d.run).toEqual({ quantumTicks: 2_000_000, runQuanta: 800, guestPeriod: 8, exitCode: 33, probes: false });
    expect(d.operations).toEqual([]);
    expect(() => definitionFrom({ revision: 2, host: { memory: "1 GB", colour: "red" } }, "code")).toThrow(/^code: host\.colour: unknown key/);
  });
});
