// The simulator's view of a host definition (definition/host.ts): the host to build, the partitions it boots with,
// the operations to run in order and the outcomes to check (`uvt sim FILE`). The schema and the shared rules are
// definition/'s; here the definition becomes the simulator's own types, and the transactions written in the spec's
// notation are parsed, so a typo inside one is reported at its own line. A bootable host (one with `partitions`)
// runs as the machine runs it: the boot partition creates the system partitions, designates the command partition,
// and the command partition creates the rest (sim/run-scenario.ts; docs/specs/host-definition.md).
import { isScalar } from "yaml";
import { DefinitionError, pathText } from "../definition/errors.ts";
import { bootChannels } from "../definition/channels.ts";
import { type DeviceDefinition, type PartitionDefinition } from "../definition/host.ts";
import { loadDefinition, type LoadedDefinition, parseDefinition } from "../definition/load.ts";
import type { HostConfig } from "./host.ts";
import { KIND, type KindName, NotationError, parseLog } from "../core/notation.ts";
import type { Run } from "./resource-service.ts";
import type { ChannelDef, PartitionDef, PlatformConfig, VcpuDef } from "./platform.ts";

export type Operation = { title?: string; expectError?: string; line: number } & (
  | { kind: "create"; name: string; principal?: string; partitionKind?: number; size?: bigint; at?: Run[] }
  | { kind: "destroy"; who: string }
  | { kind: "merge"; map: number; index: number }
  | { kind: "split"; map: number; index: number; into?: number }
  | { kind: "transaction"; text: string }
  | { kind: "backup" }
  // Platform operations (a host with processors): partitions end to end through the command channel.
  | { kind: "define"; def: PartitionDef }
  | { kind: "stop"; who: string; inflight: string[] }
  | { kind: "ioComplete"; server: string }
  | { kind: "console"; from: string; text: string }
  // A line an operator types on the serial console, read by the command partition (docs/specs/command-channel.md).
  | { kind: "serial"; text: string }
  // A fault injected into a running partition; the ultravisor's watchdog restarts it.
  | { kind: "fail"; who: string }
  | { kind: "submit"; from: string; text: string }
  | { kind: "schedule" }
  | { kind: "tick"; quanta: number }
);

export interface OwnerExpectation {
  address: bigint;
  is: string;
  line: number;
}

/** The partitions a bootable host starts with, in the order the machine creates them. */
export interface BootPlan {
  /** Created by the boot partition before it designates the command partition: the I/O and command partitions. */
  system: PartitionDef[];
  /** Created afterwards, by the command partition when there is one (else by the boot partition): the guests. */
  guests: PartitionDef[];
  /** The ultravisor partition's name and duty: its VCPU runs the ultravisor's share of the schedule. */
  ultravisor?: { name: string; duty: number };
  /** The idle partition's name in the file (the database's Idle pseudo partition). */
  idle?: string;
  /** Guests that try the command channel once (behaviour.probeCommand): refused and audited. */
  probeCommand: string[];
  /** What only the machine does (faults, the program's language), per partition, for the printout. */
  machineOnly: Array<{ name: string; what: string }>;
  /** The file line of each boot-time partition, for failures. */
  lines: Map<string, number>;
}

export interface Scenario {
  file: string;
  name?: string;
  host: HostConfig;
  /** Present when the host has processors or partitions: the scenario runs on a booted platform (sim/platform.ts). */
  platform?: PlatformConfig;
  /** Present when the definition lists partitions (a bootable host). */
  boot?: BootPlan;
  operations: Operation[];
  expect: {
    owners: OwnerExpectation[]; mapPages?: number; mapPagesLine?: number;
    /** Lines that must appear in the output, in this order (each a substring of a printed line). */
    output: Array<{ text: string; line: number }>;
  };
}

/** Memory a simulated partition gets when its definition gives none: the smallest partition (one 4 MB page). */
export const DEFAULT_PARTITION_MEMORY = 4n << 20n;

const KIND_NAMES: Record<PartitionDefinition["kind"], KindName> = {
  idle: "Idle", ultravisor: "Ultravisor", io: "IO", command: "Command", guest: "Guest", operations: "Operations",
};

/** A definition's partition as the platform defines it; `ultravisor` is the file's name for the Ultravisor. */
function partitionDef(p: PartitionDefinition, channels: readonly { type: ChannelDef["type"]; server: string }[] | undefined, ultravisor: string | undefined): PartitionDef {
  const pcpu = p.pcpu !== undefined ? { pcpu: p.pcpu } : {};
  const vcpus: VcpuDef[] =
    p.duty !== undefined ? [{ duty: p.duty, ...pcpu }]
    : typeof p.vcpus === "number" ? Array.from({ length: p.vcpus }, () => ({ duty: 16, ...pcpu }))
    : (p.vcpus ?? []).map((v) => ({ duty: v.dedicated ? 16 : v.duty ?? 16, ...(v.dedicated ? { dedicated: true } : {}), ...(v.cstate ? { cstate: v.cstate } : {}), ...pcpu }));
  return {
    name: p.name, kind: KIND_NAMES[p.kind], memory: p.memory ?? DEFAULT_PARTITION_MEMORY, vcpus,
    // System partitions belong to the System principal, guests to User<name>, as the machine's definitions say.
    ...(p.user !== undefined ? { user: p.user } : p.kind === "io" || p.kind === "command" ? { user: "System" } : {}),
    ...(p.node !== undefined ? { node: p.node } : {}),
    ...(channels ? { channels: channels.map((c) => ({ type: c.type, server: c.server === ultravisor ? "Ultravisor" : c.server })) } : {}),
  };
}

/** The bootable host's partitions in the machine's order (docs/specs/host-definition.md, "Simulating a bootable host"). */
function bootPlan(parts: readonly PartitionDefinition[], lineOf: (i: number) => number, devices: readonly DeviceDefinition[] = []): BootPlan {
  const uv = parts.find((p) => p.kind === "ultravisor");
  const channels = bootChannels(parts);
  const system: PartitionDef[] = [];
  const guests: PartitionDef[] = [];
  const machineOnly: BootPlan["machineOnly"] = [];
  for (const p of parts) {
    if (p.kind === "idle" || p.kind === "ultravisor") continue;
    let list = channels.get(p.name) ?? [];
    // The simulator's command partition always reaches the ultravisor over its command channel (Platform.boot).
    if (p.kind === "command" && !list.some((c) => c.type === "command")) list = [...list, { type: "command", server: "Ultravisor" }];
    const def = partitionDef(p, list, uv?.name);
    (p.kind === "io" || p.kind === "command" ? system : guests).push(def);
    const b = p.behaviour;
    const what = [b?.lang === "as" ? "AssemblyScript program" : undefined, b?.fault === "pci-owner" ? "reads its PCI devices through their BARs" : b?.fault ? `fault ${b.fault} after ${b.faultAfter ?? 2} lines` : undefined,
      b?.benchHypercalls ? `${b.benchHypercalls} timed hypercalls` : undefined, b?.vm ? `hardware-virtualized (SVM) program ${b.vm}` : undefined,
      p.linux ? `Linux kernel ${p.linux.kernel ?? "(Debian's, cached)"}, initrd ${p.linux.initrd ?? "(default)"}` : undefined,
      // PCI devices (docs/specs/pci-devices.md): the simulator has no PCI bus, so it records none (ADR 0016).
      ...devices.filter((x) => x.owner === p.name).map((x) => `PCI ${x.disk !== undefined ? `disk ${x.disk}` : `device ${x.pci}`} given at boot (the simulator has no PCI bus and records no device)`)]
      .filter(Boolean).join(", ");
    if (what) machineOnly.push({ name: p.name, what });
  }
  return {
    system, guests,
    ...(uv ? { ultravisor: { name: uv.name, duty: uv.duty ?? 1 } } : {}),
    ...(parts.some((p) => p.kind === "idle") ? { idle: parts.find((p) => p.kind === "idle")!.name } : {}),
    probeCommand: parts.filter((p) => p.behaviour?.probeCommand).map((p) => p.name),
    machineOnly,
    lines: new Map(parts.map((p, i) => [p.name, lineOf(i)])),
  };
}

/** Transactions in the spec's notation, parsed here so that a typo is reported at its line in the file. */
function notation(d: LoadedDefinition, path: ReadonlyArray<PropertyKey>, text: string): string {
  try {
    parseLog(text);
  } catch (e) {
    if (!(e instanceof NotationError)) throw e;
    // A literal block's text starts on the line after its `|`, so its lines are the file's; a quoted string's "\n"
    // lines and a folded block's are not, so there the scalar's line is given with the line inside the text.
    const node = d.node(path);
    const block = isScalar(node) && node.type === "BLOCK_LITERAL";
    if (!block) d.fail(path, e.message.replace(/^line (\d+): /, "line $1 of the text: "));
    const at = d.at(path);
    throw new DefinitionError([{ file: d.file, line: at.line + e.line, col: 1, path: pathText(path), message: e.message.replace(/^line \d+: /, "") }]);
  }
  return text;
}

/** The simulator's scenario from a validated definition. */
export function scenarioOf(d: LoadedDefinition): Scenario {
  const def = d.def;
  const h = def.host;
  const host: HostConfig = {
    memory: h.memory,
    ...(h.order !== undefined ? { order: h.order } : {}),
    ...(h.reserve ? { reserve: [h.reserve] } : {}),
    ...(h.split ? { presplit: h.split } : {}),
    ...(h.firmware ? { firmware: h.firmware } : {}),
  };
  const bootable = def.partitions !== undefined;
  const platform: PlatformConfig | undefined =
    h.pcpus !== undefined || bootable ? { pcpus: h.pcpus ?? 1, ...(h.nodes ? { nodes: h.nodes } : {}) } : undefined;
  const boot = def.partitions ? bootPlan(def.partitions, (i) => d.at(["partitions", i]).line, def.devices) : undefined;
  const uvName = def.partitions?.find((p) => p.kind === "ultravisor")?.name;
  const operations = def.operations.map((op, i): Operation => {
    const at = ["operations", i];
    const common = {
      line: d.at(at).line,
      ...(op.title !== undefined ? { title: op.title } : {}),
      ...(op.expectError !== undefined ? { expectError: op.expectError } : {}),
    };
    if (op.create) {
      const c = op.create;
      return {
        ...common, kind: "create", name: c.name,
        ...(c.user !== undefined ? { principal: c.user } : {}),
        ...(c.kind !== undefined ? { partitionKind: KIND[c.kind] } : {}),
        ...(c.size !== undefined ? { size: c.size } : {}),
        ...(c.at !== undefined ? { at: c.at } : {}),
      };
    }
    if (op.destroy !== undefined) return { ...common, kind: "destroy", who: op.destroy };
    if (op.merge) return { ...common, kind: "merge", map: op.merge.map, index: op.merge.index };
    if (op.split) return { ...common, kind: "split", map: op.split.map, index: op.split.index, ...(op.split.into !== undefined ? { into: op.split.into } : {}) };
    if (op.transaction !== undefined) return { ...common, kind: "transaction", text: notation(d, [...at, "transaction"], op.transaction) };
    if (op.backup) return { ...common, kind: "backup" };
    if (op.define) return { ...common, kind: "define", def: partitionDef(op.define, op.define.channels, uvName) };
    if (op.stop !== undefined) {
      return typeof op.stop === "string"
        ? { ...common, kind: "stop", who: op.stop, inflight: [] }
        : { ...common, kind: "stop", who: op.stop.partition, inflight: op.stop.inflight ?? [] };
    }
    if (op.ioComplete !== undefined) return { ...common, kind: "ioComplete", server: op.ioComplete };
    if (op.console) return { ...common, kind: "console", from: op.console.from, text: op.console.text };
    if (op.serial !== undefined) return { ...common, kind: "serial", text: op.serial };
    if (op.fail !== undefined) return { ...common, kind: "fail", who: op.fail };
    if (op.submit) return { ...common, kind: "submit", from: op.submit.from, text: notation(d, [...at, "submit", "transaction"], op.submit.transaction) };
    if (op.schedule) return { ...common, kind: "schedule" };
    return { ...common, kind: "tick", quanta: op.tick! };
  });
  const e = def.expect;
  const expect: Scenario["expect"] = {
    owners: (e?.owners ?? []).map((o, i) => ({ address: o.address, is: o.is, line: d.at(["expect", "owners", i]).line })),
    output: (e?.output ?? []).map((text, i) => ({ text, line: d.at(["expect", "output", i]).line })),
    ...(e?.mapPages !== undefined ? { mapPages: e.mapPages, mapPagesLine: d.at(["expect", "mapPages"]).line } : {}),
  };
  return {
    file: d.file, ...(def.name !== undefined ? { name: def.name } : {}), host,
    ...(platform ? { platform } : {}), ...(boot ? { boot } : {}), operations, expect,
  };
}

/** Parses and validates a scenario from text; `file` is used in error messages. Throws DefinitionError. */
export function parseScenario(text: string, file: string): Scenario {
  return scenarioOf(parseDefinition(text, file));
}

/** Reads FILE (YAML or JSON) as a scenario. Throws DefinitionError, one positioned line per problem. */
export function loadScenario(file: string): Scenario {
  return scenarioOf(loadDefinition(file));
}
