// Tests of the bare-metal view of a host definition (partitions/config.ts): the shipped bootable examples load into
// the image's configuration, and each rule only bare metal has (one processor, one I/O partition, fixed allotments,
// the image's channel wiring, duties that fit one processor) refuses a definition at the key it is about, in the one
// error format.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DefinitionError } from "../definition/errors.ts";
import { configFrom, figure1Config, FIGURE1_FILE, loadConfig } from "./config.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The message of the DefinitionError that loading `text` as a file raises. */
function refusal(text: string): string {
  const p = join(dir, "host.yaml");
  writeFileSync(p, text);
  try {
    loadConfig(p);
  } catch (e) {
    if (e instanceof DefinitionError) return e.message.replaceAll(p, "host.yaml");
    throw e;
  }
  return "no error";
}

const FIG1 = `revision: 2
partitions:
  - { name: idle, kind: idle }
  - { name: uv, kind: ultravisor, duty: 1 }
  - { name: io, kind: io, duty: 2 }
  - { name: command, kind: command, duty: 1 }
  - { name: X, duty: 4 }
`;

describe("the bare-metal view of a host definition", () => {
  it("reads the Figure 1 host from examples/ultravisor.yaml with its behaviours and run parameters", () => {
    const c = loadConfig(FIGURE1_FILE);
    expect(c).toEqual(figure1Config());
    expect(c.partitions.map((p) => [p.name, p.kind, p.duty])).toEqual([
      ["idle", "idle", 0], ["uv-partition", "ultravisor", 1], ["io", "io", 2], ["command", "command", 1], ["X", "guest", 4], ["Y", "guest", 3], ["Z", "guest", 2],
      ["V", "guest", 2],
    ]);
    expect(c.partitions[4]).toMatchObject({ lang: "as", probeCommand: true });
    expect(c.partitions[7]).toMatchObject({ vm: "realmode-demo" });
    expect([c.quantumTicks, c.runQuanta, c.guestPeriod, c.exitCode]).toEqual([2_000_000, 800, 8, 33]);
  });

  it("examples/ultravisor-containment.yaml loads, with one fault per faulty guest", () => {
    const c = loadConfig(join(FIGURE1_FILE, "..", "ultravisor-containment.yaml"));
    expect(c.partitions.filter((p) => p.fault).map((p) => p.fault)).toEqual(["write-outside", "write-unmapped", "cli", "hlt", "out", "cr3", "wasm-oob"]);
    expect(c.partitions.reduce((s, p) => s + p.duty, 0)).toBeLessThanOrEqual(16);
  });

  it("examples/ultravisor-svm.yaml loads, with one virtualized program per probe", () => {
    const c = loadConfig(join(FIGURE1_FILE, "..", "ultravisor-svm.yaml"));
    expect(c.partitions.filter((p) => p.vm).map((p) => p.vm)).toEqual(["realmode-demo", "absent", "vmrun", "vmsave", "clgi", "stgi", "triple-fault", "reach", "svme-clear", "cli-spin", "db-loop"]);
    expect(c.partitions.reduce((s, p) => s + p.duty, 0)).toBeLessThanOrEqual(16);
  });

  it("examples/ultravisor-isolation.yaml loads, with the test-only behaviours of the isolation test", () => {
    const c = loadConfig(join(FIGURE1_FILE, "..", "ultravisor-isolation.yaml"));
    expect(c.partitions.filter((p) => p.fault).map((p) => p.fault)).toEqual(["sse-a", "sse-b", "exec-stack", "exec-data", "sgdt"]);
    expect(c.partitions.reduce((s, p) => s + p.duty, 0)).toBeLessThanOrEqual(16);
  });


  it("accepts processors: rows up to 8, a preferred processor, a dedicated one; PCPU 0 for the partitions bound there", () => {
    const c = configFrom({
      revision: 2, host: { pcpus: 3 },
      partitions: [
        { name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2 }, { name: "A", duty: 5, pcpu: 2 }, { name: "D", vcpus: [{ dedicated: true }] },
      ],
    });
    expect(c.pcpus).toBe(3);
    expect(c.partitions.map((p) => [p.duty, p.pcpu, p.dedicated])).toEqual([[0, undefined, undefined], [2, 0, undefined], [5, 2, undefined], [16, undefined, true]]);
  });

  it("accepts a one-VCPU list in place of duty, and the wiring written out", () => {
    const c = configFrom({
      revision: 2,
      partitions: [
        { name: "idle", kind: "idle" }, { name: "io", kind: "io", vcpus: [{ duty: 2 }] },
        { name: "X", vcpus: [{ duty: 5 }], channels: [{ type: "console", server: "io" }] },
      ],
    });
    expect(c.partitions.map((p) => p.duty)).toEqual([0, 2, 5]);
  });

  it("refuses what one processor, one I/O partition and fixed allotments cannot build, each at its key", () => {
    expect(refusal(FIG1.replace("revision: 2\n", "revision: 2\nhost: { pcpus: 9 }\n"))).toBe(
      "host.yaml:2:16: host.pcpus: 9 processors: the bare-metal ultravisor schedules at most 8 in this version (uvt sim runs more)");
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, pcpu: 1 }"))).toBe(
      "host.yaml:7:31: partitions[4].pcpu: processor 1: the host has 1 (host.pcpus; 0 to 0)");
    expect(refusal(FIG1.replace("revision: 2\n", "revision: 2\nhost: { pcpus: 2 }\n").replace("{ name: io, kind: io, duty: 2 }", "{ name: io, kind: io, duty: 2, pcpu: 1 }"))).toMatch(
      /partitions\[2\]\.pcpu: a 'io' partition runs on processor 0 in this version/);
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 13 }"))).toBe(
      "host.yaml:2:1: partitions: the duties add up to 17 sixteenths, more than one processor (at most 16)");
    expect(refusal(FIG1.replace("  - { name: io, kind: io, duty: 2 }\n", ""))).toMatch(
      /^host\.yaml:2:1: partitions: exactly one partition of kind 'io' is needed on bare metal \(found 0\)/);
    expect(refusal(FIG1.replace("  - { name: command, kind: command, duty: 1 }\n", ""))).toBe(
      "host.yaml:2:1: partitions: the command partition and the ultravisor partition come together (the command channel joins them)");
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, memory: 64 MB }"))).toMatch(
      /^host\.yaml:7:25: partitions\[4\]\.memory: bare metal gives every partition a fixed allotment/);
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, vcpus: [{ duty: 4, cstate: 1 }] }"))).toMatch(
      /^host\.yaml:7:16: partitions\[4\]\.vcpus: bare metal gives a partition one VCPU, with a duty or dedicated/);
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, channels: [{ type: storage, server: io }] }"))).toBe(
      "host.yaml:7:25: partitions[4].channels: bare metal wires console → io for a 'guest' partition in this version; leave channels out or list exactly that");
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, kind: operations, duty: 4 }"))).toMatch(
      /^host\.yaml:7:22: partitions\[4\]\.kind: the operations partition runs in the simulator only/);
  });

  it("gives the hostile-server fault to the I/O partition only, and the guests' faults to guests only", () => {
    const c = configFrom({ revision: 2, partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2, behaviour: { fault: "fuzz-server" } }, { name: "A", duty: 2 }] });
    expect(c.partitions[1]!.fault).toBe("fuzz-server");
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, behaviour: { fault: fuzz-server } }"))).toMatch(
      /^host\.yaml:7:\d+: partitions\[4\]\.behaviour\.fault: fuzz-server is the I\/O partition's test fault \(the hostile channel server\), not a guest's$/);
    expect(refusal(FIG1.replace("{ name: io, kind: io, duty: 2 }", "{ name: io, kind: io, duty: 2, behaviour: { fault: canary } }"))).toMatch(
      /^host\.yaml:\d+:\d+: partitions\[2\]\.behaviour: only guests have a behaviour \(this is a 'io' partition; an I\/O partition takes only \{ fault: fuzz-server \} or \{ fault: rogue-dma \}/);
  });

  it("gives the rogue-dma fault to the I/O partition only, and host.iommu to the image (storage-channel.md §9)", () => {
    const c = configFrom({ revision: 2, host: { iommu: true }, partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2, behaviour: { fault: "rogue-dma" } }, { name: "A", duty: 2 }] });
    expect(c.partitions[1]!.fault).toBe("rogue-dma");
    expect(c.iommu).toBe(true);
    expect(configFrom({ revision: 2, partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2 }, { name: "A", duty: 2 }] }).iommu).toBeUndefined();
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, behaviour: { fault: rogue-dma } }"))).toMatch(
      /^host\.yaml:7:\d+: partitions\[4\]\.behaviour\.fault: rogue-dma is the I\/O partition's test fault \(its device told to DMA into a page it was not given\), not a guest's$/);
  });

  it("refuses a simulator scenario, which lists no partitions", () => {
    expect(refusal("revision: 2\nhost: { memory: 64 GB }\noperations: []\n")).toBe(
      "host.yaml:1:1: partitions: required by uvt build: the partitions the host starts with; this file has none (it is a simulator scenario: run it with uvt sim)");
  });

  it("names the path of a definition given as a value", () => {
    expect(() => configFrom({ revision: 2, partitions: [{ name: "idle", kind: "idle", duty: 2 }] }, "test host"))
      .toThrow(/^test host: partitions\[0\]\.duty: the idle partition has none/);
  });

  it("reads a Linux partition's files before anything is built: a bad kernel at its key; a good one is a virtualized partition with its memory", () => {
    writeFileSync(join(dir, "not-a-kernel"), "#!/bin/sh\n".repeat(100));
    expect(refusal(FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, memory: 128 MB, linux: { kernel: not-a-kernel } }"))).toMatch(
      /^host\.yaml:7:58: partitions\[4\]\.linux\.kernel: .*not-a-kernel: not a bzImage: /);
    const file = join(dir, "host.yaml");
    writeFileSync(file, FIG1.replace("{ name: X, duty: 4 }", "{ name: X, duty: 4, memory: 128 MB, linux: {} }"));
    const x = loadConfig(file).partitions.find((p) => p.name === "X")!;
    expect(x.linux?.layout.memory).toBe(128 << 20);
    expect(x.vm).toBeUndefined();
  });
});
