// Tests of the ultravisor host definition (partitions/config.ts): the shipped examples load, the YAML Figure 1 host
// is the built-in default, and each kind of mistake is refused with a message naming the partition and the field.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, figure1Config, loadConfig, type UltravisorConfig, validateConfig } from "./config.ts";

const root = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "uv-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ultravisor host definitions", () => {
  it("examples/ultravisor.yaml is the built-in Figure 1 host", () => {
    expect(loadConfig(join(root, "examples/ultravisor.yaml"))).toEqual(figure1Config());
  });

  it("examples/ultravisor-containment.yaml loads, with one fault per faulty guest", () => {
    const c = loadConfig(join(root, "examples/ultravisor-containment.yaml"));
    expect(c.partitions.filter((p) => p.fault).map((p) => p.fault)).toEqual(["write-outside", "write-unmapped", "cli", "hlt", "out", "cr3", "wasm-oob"]);
    expect(c.partitions.reduce((s, p) => s + p.duty, 0)).toBeLessThanOrEqual(16);
  });

  it("examples/ultravisor-isolation.yaml loads, with the test-only behaviours of the isolation test", () => {
    const c = loadConfig(join(root, "examples/ultravisor-isolation.yaml"));
    expect(c.partitions.filter((p) => p.fault).map((p) => p.fault)).toEqual(["sse-a", "sse-b", "exec-stack", "exec-data", "sgdt"]);
    expect(c.partitions.reduce((s, p) => s + p.duty, 0)).toBeLessThanOrEqual(16);
  });

  const bad = (edit: (c: UltravisorConfig) => void, message: RegExp): void => {
    const c = figure1Config();
    edit(c);
    expect(() => validateConfig(c, "host.yaml")).toThrow(ConfigError);
    expect(() => validateConfig(c, "host.yaml")).toThrow(message);
  };

  it("refuses over-committed processors, duplicate or long names, a missing I/O partition, misplaced faults", () => {
    bad((c) => (c.partitions[4]!.duty = 12), /^host\.yaml: the duties add up to 21 sixteenths/);
    bad((c) => (c.partitions[5]!.name = "X"), /partitions\[5\] \(X\): duplicate name/);
    bad((c) => (c.partitions[5]!.name = "a-very-long-name"), /partitions\[5\].*1–15 printable ASCII/);
    bad((c) => c.partitions.splice(2, 1), /exactly one partition of kind 'io'/);
    bad((c) => (c.partitions[2]!.fault = "cli"), /partitions\[2\] \(io\): fault must be one of write-outside, write-unmapped, cli, hlt, out, cr3, wasm-oob, exec-stack, exec-data, sgdt, sse-a, sse-b and only on a guest/);
    bad((c) => (c.partitions[0]!.duty = 2), /idle partition's duty must be 0/);
    bad((c) => c.partitions.splice(3, 1), /command partition and the ultravisor partition come together/);
    bad((c) => (c.quantumTicks = 5), /quantumTicks must be an integer from 10000/);
    bad((c) => (c.revision = 2), /revision 2 is not supported/);
    bad((c) => (c.partitions[6]!.fault = "cli"), /partitions\[6\] \(Z\): an AssemblyScript guest's only fault is wasm-oob/);
    bad((c) => Object.assign(c.partitions[5]!, { lang: "asm", fault: "wasm-oob" }), /partitions\[5\] \(Y\): an AssemblyScript guest's only fault is wasm-oob, and wasm-oob needs lang: as/);
    bad((c) => (c.partitions[5]!.benchHypercalls = 10), /partitions\[5\] \(Y\): benchHypercalls exists only for asm guests/);
  });

  it("names the file and the YAML problem when the file does not parse", () => {
    const p = join(dir, "broken.yaml");
    writeFileSync(p, "partitions: [ { name: X\n");
    expect(() => loadConfig(p)).toThrow(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: `));
  });
});
