// End-to-end tests of the booted platform (sim/platform.ts) through the shipped examples: each scenario runs as
// `uvt sim` runs it, and the checks are derived from the spec — Figure 5's duty cycles, [0090]/[0174] (only the
// command partition submits), [0186] (processors at once, memory after the last disconnect), [0182] (a server closes
// its channels first), [0127] (console text) — reading the printed output and the database, not a pasted transcript.
import { execa } from "execa";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CMD } from "./command-channel.ts";
import { span } from "../core/mapview.ts";
import type { Transaction } from "../core/notation.ts";
import { Platform } from "./platform.ts";
import { runScenario, type RunResult } from "./run-scenario.ts";
import { loadScenario, parseScenario } from "./scenario.ts";
import { DefinitionError } from "../definition/errors.ts";

const root = join(import.meta.dirname, "..");

async function run(name: string): Promise<{ r: RunResult; lines: string[] }> {
  const lines: string[] = [];
  const r = await runScenario(loadScenario(join(root, "examples", `${name}.yaml`)), (l) => lines.push(l));
  return { r, lines };
}

/** Rows of the schedule tables printed after `title`: PCPU → 16 cell labels and the row's flags text. */
function scheduleAfter(lines: string[], title: string): Map<number, { cells: string[]; tail: string }> {
  const start = lines.findIndex((l) => l.startsWith(title));
  expect(start).toBeGreaterThanOrEqual(0);
  const rows = new Map<number, { cells: string[]; tail: string }>();
  for (const l of lines.slice(start + 3)) {
    const m = /^\s+(\d+)\s{2}(.*?)\s+(busy \d+\/16.*)$/.exec(l);
    if (!m) break;
    rows.set(Number(m[1]), { cells: m[2]!.trim().split(/\s+/), tail: m[3]! });
  }
  return rows;
}

describe("examples on the booted platform", () => {
  it("schedule-figure5: Figure 5's overlapped duty cycles, C-states, a dedicated I/O CPU, eviction and the swap at wrap", async () => {
    const { r, lines } = await run("schedule-figure5");
    expect(r.failures).toEqual([]);
    const fig5 = ["A.0", "B.0", "C.0"];
    const before = scheduleAfter(lines, "the schedule in effect");
    // Figure 5: A runs quanta 0-7 (8/16), B 8-11 (4/16 at offset 8), C 12-15 (4/16 at offset 12), on one PCPU
    const shared = [...before.values()].find((row) => row.cells.some((c) => fig5.includes(c)))!;
    const want = [...Array(8).fill("A.0"), ...Array(4).fill("B.0"), ...Array(4).fill("C.0")];
    expect(shared.cells).toEqual(want);
    // [0148]: the I/O partition's VCPU has a PCPU to itself; [0139]: D (in C1) is not scheduled anywhere
    const io = [...before.values()].find((row) => row.cells.includes("IO.0"))!;
    expect(io.cells).toEqual(Array(16).fill("IO.0"));
    expect(io.tail).toContain("dedicated");
    expect([...before.values()].flatMap((row) => row.cells)).not.toContain("D.0");
    // [0153]: stopping B gives its quanta to the idle VCPU at once, in the table still in effect
    const evicted = scheduleAfter(lines, "B evicted at once");
    const after = [...evicted.values()].find((row) => row.cells.includes("A.0"))!;
    expect(after.cells).toEqual(want.map((c) => (c === "B.0" ? "idle" : c)));
    // [0147]: the recomputed table replaced it only when the cycle wrapped; A and C keep their duty cycles
    const swapped = [...scheduleAfter(lines, "the recomputed schedule").values()].flatMap((row) => row.cells);
    expect(swapped.filter((c) => c === "A.0").length).toBe(8);
    expect(swapped.filter((c) => c === "C.0").length).toBe(4);
    expect(swapped).not.toContain("B.0");
  });

  it("console: each guest's text is printed by the I/O partition tagged with the guest's name", async () => {
    const { r, lines } = await run("console");
    expect(r.failures).toEqual([]);
    const tagged = lines.filter((l) => /^\s+\[\w+\] /.test(l)).map((l) => l.trim());
    expect(tagged).toEqual(["[X] hello from X", "[X] X: disk ready", "[Y] hello from Y"]);
    // the second console channel of W was refused at definition, before any transaction created W
    expect(r.host.db.readLog().some((tx) => tx.ops.some((o) => o.op === "initialize" && o.descriptor.name === "W"))).toBe(false);
  });

  it("command-channel: a guest's transaction is refused and audited; the command partition's is applied", async () => {
    const { r, lines } = await run("command-channel");
    expect(r.failures).toEqual([]);
    const audit = r.host.db.readAudit();
    const X = r.host.db.readLog().flatMap((tx) => tx.ops).find((o) => o.op === "initialize" && o.descriptor.name === "X");
    expect(X && X.op === "initialize").toBe(true);
    const x = X!.op === "initialize" ? X!.partition : 0;
    expect(audit.rejections.map((j) => [j.submitter, j.code])).toEqual([[x, -21]]);
    // the refused request took nothing; the same request from the command partition did
    expect(r.host.db.owner((3n << 30n) + (4n << 20n))).toBe(x);
    expect(lines.filter((l) => l.includes("NOT_COMMAND")).length).toBeGreaterThan(0);
  });

  it("partition-lifecycle: node-local contiguous memory, node-local processors, and everything given back", async () => {
    const { r } = await run("partition-lifecycle");
    expect(r.failures).toEqual([]);
    const log = r.host.db.readLog();
    const created = (name: string): number => {
      const op = log.flatMap((tx) => tx.ops).find((o) => o.op === "initialize" && o.descriptor.name === name);
      if (!op || op.op !== "initialize") throw new Error(`${name} not created`);
      return op.partition;
    };
    // X's memory (given in its create transaction) lies on node 1 = [32 GB, 64 GB) and is one contiguous range
    const X = created("X");
    const createX = log.find((tx) => tx.ops.some((o) => o.op === "initialize" && o.partition === X))!;
    const ranges = createX.ops.flatMap((o) => {
      if (o.op !== "changeOwner" || o.to !== X || o.map === r.host.view.leaf(BigInt(X) * 4096n).map) return [];
      const m = r.host.view.maps().find((p) => p.page === o.map)!;
      return [[m.base + BigInt(o.first) * span(m.scale), m.base + BigInt(o.last + 1) * span(m.scale)]];
    });
    expect(ranges.length).toBe(1);
    expect(ranges[0]![0]).toBeGreaterThanOrEqual(32n << 30n);
    expect(ranges[0]![1] - ranges[0]![0]).toBe(4n << 30n);
    // after the stops: no descriptor of X, Y, Z; every map entry names a live partition; only the service channels
    for (const name of ["X", "Y", "Z"]) expect(r.host.db.readDescriptor(created(name))).toBeUndefined();
    for (const [owner] of r.host.view.ownedBytes()) expect(r.host.db.readDescriptor(owner)).toBeDefined();
    expect(new Set(r.host.db.channels().map((c) => r.host.db.readDescriptor(c.client)!.name))).toEqual(new Set(["Command", "IOa", "IOb"]));
  });

  it("channel-teardown: [0186]'s order, core's refusal of an early reclaim, and a server closing its channels first", async () => {
    const { r, lines } = await run("channel-teardown");
    expect(r.failures).toEqual([]);
    const at = (s: string): number => {
      const i = lines.findIndex((l) => l.includes(s));
      expect(i, `a printed line containing "${s}"`).toBeGreaterThanOrEqual(0); // -1 would pass every "before" check
      return i;
    };
    expect(at("processors of X reclaimed at once")).toBeLessThan(at("disconnects channel"));
    expect(at("IOb completed its in-flight I/O")).toBeLessThan(at("memory of X reclaimed"));
    expect(at("rejected: transaction: CHANNEL_IN_USE")).toBeLessThan(at("IOb completed its in-flight I/O"));
    // [0182]: IOa's disconnect of Y's console channel is committed before IOa's own reclaim transaction
    const txs = r.logs.flat();
    const ioa = txs.find((tx) => tx.ops.some((o) => o.op === "initialize" && o.descriptor.name === "IOa"))!;
    const ioaPn = ioa.ops.find((o) => o.op === "initialize")!;
    const p = ioaPn.op === "initialize" ? ioaPn.partition : 0;
    const idx = (f: (tx: Transaction) => boolean): number => txs.findIndex(f);
    const served = idx((tx) => tx.ops.some((o) => o.op === "assignServer" && o.from === p && o.server === 0 && o.client !== p));
    const destroyed = idx((tx) => tx.ops.some((o) => o.op === "destroy" && o.partition === p));
    expect(served).toBeGreaterThanOrEqual(0);
    expect(served).toBeLessThan(destroyed);
  });

  it("uvt sim runs every platform example and exits 0", async () => {
    const files = ["console", "schedule-figure5", "command-channel", "partition-lifecycle", "channel-teardown", "runtime-console", "recovery", "typed-lines"].map((f) => `examples/${f}.yaml`);
    // Two at a time: each is a node start-up plus a core.wasm instantiation, and the machine has two cores.
    for (let i = 0; i < files.length; i += 2) {
      const runs = files.slice(i, i + 2).map((f) => execa("node", ["cli/uvt.js", "sim", f, "--quiet"], { cwd: root, reject: false }));
      for (const [k, res] of (await Promise.all(runs)).entries()) expect(res.exitCode, `${files[i + k]}: ${res.stderr}`).toBe(0);
    }
  }, 60_000);
});

describe("the command channel carries every request of the resource service", () => {
  it("after boot each committed transaction came through db_submit_as on the command channel or from a monitor", async () => {
    const pf = await Platform.boot({ memory: 1n << 30n }, { pcpus: 2 });
    const seq0 = pf.host.db.logHeader().nextSeq;
    const served0 = pf.ultravisor.served.length;
    pf.definePartition({ name: "IOa", kind: "IO", memory: 16n << 20n, vcpus: [{ duty: 16, dedicated: true }] });
    pf.definePartition({ name: "X", memory: 64n << 20n, vcpus: [{ duty: 8 }], channels: [{ type: "console", server: "IOa" }] });
    pf.stop("X");
    const txs = pf.host.db.readLog().filter((tx) => tx.seq! >= seq0);
    const fromMonitors = txs.filter((tx) => tx.ops.every((o) => o.op === "assignServer")).length;
    const served = pf.ultravisor.served.slice(served0);
    const viaChannel = served.filter((s) => s.opcode === CMD.TRANSACTION && s.status === 0).length;
    expect(viaChannel + fromMonitors).toBe(txs.length);
    expect(served.every((s) => s.submitter === pf.host.db.commandPartition())).toBe(true);
    expect(served.some((s) => s.opcode === CMD.STOP_PARTITION && s.status === 0)).toBe(true);
  });
});

describe("platform scenario validation", () => {
  const err = (text: string): string => {
    try {
      parseScenario(`revision: 2\n${text}`, "p.yaml");
    } catch (e) {
      if (e instanceof DefinitionError) return e.message;
      throw e;
    }
    return "no error";
  };
  it("names file, line, column and key for the platform's fields and operations", () => {
    expect(err("host: { memory: 8 GB }\noperations:\n  - stop: X\n")).toBe("p.yaml:4:5: operations[0].stop: stop needs a host with processors: add host.pcpus (or partitions)");
    expect(err("host: { memory: 8 GB, nodes: [{ memory: 8 GB, pcpus: 1 }] }\noperations: []\n")).toBe("p.yaml:2:23: host.nodes: nodes need host.pcpus (a host with processors)");
    expect(err("host: { memory: 8 GB, pcpus: 4, nodes: [{ memory: 8 GB, pcpus: 2 }] }\noperations: []\n"))
      .toBe("p.yaml:2:40: host.nodes: the nodes have 2 processors, host.pcpus says 4 (they must add up)");
    expect(err("host: { memory: 8 GB, pcpus: 2 }\noperations:\n  - define: { name: X, memory: 1 GB, vcpus: 1,\n      channels: [{ type: disk, server: IOa }] }\n"))
      .toBe("p.yaml:5:26: operations[0].define.channels[0].type: \"disk\" is not allowed (allowed: control, command, boot, console, storage, network, power, memory, processor)");
    expect(err("host: { memory: 8 GB, pcpus: 2 }\noperations:\n  - define: { name: X, memory: 1 GB, vcpus: [{ duty: 17 }] }\n"))
      .toBe("p.yaml:4:54: operations[0].define.vcpus[0].duty: 17 is out of range (at most 16)");
  });
});

describe("a definition that fails part-way", () => {
  it("leaves nothing behind: the channel table, the memory and the names are as before", async () => {
    const pf = await Platform.boot({ memory: 1n << 30n }, { pcpus: 2 });
    const slots = pf.host.db.channels();
    const owned = pf.host.view.ownedBytes();
    // control + 190 network channels: the 192-slot channel table (2 used by the command partition) runs out
    const channels = Array.from({ length: 190 }, () => ({ type: "network" as const, server: "Ultravisor" }));
    expect(() => pf.definePartition({ name: "X", memory: 64n << 20n, vcpus: [{ duty: 4 }], channels })).toThrow(/channel table is full/);
    expect(pf.host.db.channels()).toEqual(slots);
    expect(pf.rs.names().has("X")).toBe(false);
    const after = pf.host.view.ownedBytes();
    // only database pages may have moved (a split's map page); no partition owns anything new
    expect([...after.keys()].sort()).toEqual([...owned.keys()].sort());
    pf.definePartition({ name: "X", memory: 64n << 20n, vcpus: [{ duty: 4 }] });
    expect(pf.bus.channelsOf("X").length).toBe(1);
  });
});

describe("Platform.wake (an incoming migrated partition, docs/specs/datacenter.md §4)", () => {
  const busyOf = (pf: Platform, name: string): number =>
    pf.scheduleData().pcpus.reduce((n, c) => n + c.quanta.filter((q) => q.startsWith(`${name}.`)).length, 0);

  it("a partition defined with parked VCPUs holds its memory but no processor time until woken", async () => {
    const pf = await Platform.boot({ memory: 2n << 30n, keepBackup: false }, { pcpus: 2 });
    pf.definePartition({ name: "In", memory: 64n << 20n, vcpus: [{ duty: 4, cstate: 1 }, { duty: 4, cstate: 1 }] });
    pf.advance(16n);
    expect(pf.rs.names().has("In")).toBe(true);
    expect(busyOf(pf, "In")).toBe(0);
    pf.wake("In");
    pf.advance(16n);
    // Two VCPUs at 4/16 each: 8 quanta of the cycle, once the new table is in effect at the wrap.
    expect(busyOf(pf, "In")).toBe(8);
  });

  it("is refused, changing nothing, when the processors have no room; an unknown name is refused", async () => {
    const pf = await Platform.boot({ memory: 2n << 30n, keepBackup: false }, { pcpus: 1 });
    pf.definePartition({ name: "Big", memory: 64n << 20n, vcpus: [{ duty: 10 }] });
    pf.definePartition({ name: "In", memory: 64n << 20n, vcpus: [{ duty: 10, cstate: 1 }] });
    pf.advance(16n);
    const before = JSON.stringify(pf.scheduleData().pcpus);
    expect(() => pf.wake("In")).toThrow(/no processor has 10\/16 of a cycle free/);
    pf.advance(16n);
    expect(JSON.stringify(pf.scheduleData().pcpus)).toBe(before);
    expect(() => pf.wake("Nobody")).toThrow(/not a partition with VCPUs/);
  });
});
