// The bare-metal view of a host definition (definition/host.ts): what the ultravisor image is built from — which
// partitions exist, their role, their share of the one processor (sixteenths, docs/specs/schedule.md), what each
// guest's program does, and how a run is paced. The schema and the rules every reader shares live in definition/;
// here are the rules only this image has (one processor, one I/O partition that owns COM1, fixed allotments, the
// console and command channels wired by the image), reported in the same positioned format. The built-in default
// is the spec's Figure 1 host, read from examples/ultravisor.yaml, the same file `uvt sim` runs.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { type z } from "zod";
import { type FaultKind, type VmKind, hostDefinition, type PartitionDefinition } from "../definition/host.ts";
import { defaultChannels } from "../definition/channels.ts";
import { type LoadedDefinition, definitionFrom, loadDefinition } from "../definition/load.ts";
import { DefinitionError, type Problem } from "../definition/errors.ts";
import { type LinuxInputs, linuxInputs } from "../definition/linux.ts";
import { MAX_PCPUS, WINDOW_LAYOUT } from "../monitor-gen/layout.ts";

export type PartitionKind = "idle" | "io" | "ultravisor" | "command" | "guest";

export interface PartitionSpec {
  name: string;
  kind: PartitionKind;
  /** Quanta per 16-quantum cycle (0 for the idle partition: it gets what nobody else uses; 16 when dedicated). */
  duty: number;
  /** A whole processor to itself ([0087]; docs/specs/smp.md §2.1). */
  dedicated?: boolean;
  /** The processor it prefers ([0148]): its row when the machine has that processor (docs/specs/smp.md §2.1). */
  pcpu?: number;
  /** Runs on PCPU 0 only (I/O, ultravisor, hardware-virtualized, device owners; docs/specs/smp.md §2.1). */
  bound?: boolean;
  /** Guests: commit this fault after `faultAfter` lines (containment tests). */
  fault?: FaultKind;
  faultAfter?: number;
  /** Guests: try the command hypercall once and print the refusal (both languages). */
  probeCommand?: boolean;
  /**
   * Guests: "as" (partitions/assembly/guest.ts through asc and toolchain/aot; X, Y, Z of the default host) or "asm"
   * (typed assembler, the default when left out: the faults AssemblyScript cannot commit and the hypercall bench).
   */
  lang?: "asm" | "as";
  /** Guests: measure this many TIME hypercall round trips at start (bench builds). */
  benchHypercalls?: number;
  /** Guests: run hardware-virtualized under SVM with this program (docs/specs/svm.md, partitions/svm-guest.ts). */
  vm?: VmKind;
  /** Linux partitions: the checked kernel, initrd, command line and layout (docs/specs/linux-partition.md). */
  linux?: LinuxInputs;
  /** Guests: the storage workload over blocks [first, first + blocks), `passes` times (docs/specs/storage-channel.md §6). */
  disk?: { first: number; blocks: number; passes: number; bench?: boolean };
  /** I/O partitions: a member of the storage pair (docs/specs/storage-failover.md §7), not the console server. */
  pair?: "primary" | "secondary";
  /** The pair's primary: fail at the N-th storage request it takes. */
  failAtRequest?: number;
}

export interface UltravisorConfig {
  partitions: PartitionSpec[];
  /** Processors the schedule has rows for at most (host.pcpus; docs/specs/smp.md §2.1); the machine uses what it has. */
  pcpus: number;
  /** Local APIC timer count per quantum (QEMU's APIC timer counts at 1 GHz: 2,000,000 = 2 ms). */
  quantumTicks: number;
  /** Stop after this many quanta with a summary and an isa-debug-exit; 0 = run until powered off. */
  runQuanta: number;
  /** Quanta between two lines of a guest. */
  guestPeriod: number;
  exitCode: number;
  /** Time-stamp probes on the monitor's timer → switch path (bench builds). */
  probes?: boolean;
  /** PCI devices given to partitions (docs/specs/pci-devices.md §2); absent or empty: the host gives none. */
  devices?: DeviceSpec[];
  /** The host confines DMA with the Intel IOMMU (host.iommu; docs/specs/storage-channel.md §9). */
  iommu?: boolean;
}

/** A device given to a partition: matched at boot against bus 0's enumeration (monitor-gen/pci.ts). */
export interface DeviceSpec {
  /** The N-th modern virtio-blk function on bus 0 (`uvt run --disk`), or a PCI address as bus << 8 | dev << 3 | fn. */
  match: { disk: number } | { bdf: number };
  /** Index of the owner in `partitions` (its partition number is index + 1). */
  owner: number;
  /** Bus mastering on: the owner is the I/O partition, which drives the device (DMA_ADDR, docs/specs/storage-channel.md §8). */
  dma?: boolean;
}

const root = resolve(fileURLToPath(import.meta.url), "..", "..");
/** The Figure 1 host: `uvt build` without --config, `uvt sim` of the same file, the hardware tests. */
export const FIGURE1_FILE = join(root, "examples", "ultravisor.yaml");

let figure1: UltravisorConfig | undefined;
/** The spec's Figure 1 host (boot, idle, ultravisor, I/O, command, guests X, Y, Z), a fresh copy each call. */
export function figure1Config(): UltravisorConfig {
  figure1 ??= loadConfig(FIGURE1_FILE);
  return structuredClone(figure1);
}

/**
 * The Figure 1 definition as written in its file (sizes as text, defaults not filled in): tests and benches derive
 * their hosts from it and read them back through configFrom, so every host they build passes the same checks.
 */
export function figure1Definition(): FileDefinition {
  return parse(readFileSync(FIGURE1_FILE, "utf8")) as FileDefinition;
}

/** A host definition as a file holds it (the schema's input side). */
export type FileDefinition = z.input<typeof hostDefinition>;

/** Reads a host definition file for `uvt build`; throws DefinitionError, one positioned line per problem. */
export function loadConfig(path: string): UltravisorConfig {
  return bareMetalConfig(loadDefinition(path));
}

/** A definition given as a value (tests, benches): the same schema and rules, errors named by `label`. */
export function configFrom(value: unknown, label = "(definition)"): UltravisorConfig {
  return bareMetalConfig(definitionFrom(value, label));
}

/**
 * What the bare-metal image can build from a valid definition, or every reason it cannot, each at its key. Keys the
 * schema marks "simulator:" (firmware map, map order, boot memory, operations, expectations) describe how `uvt sim`
 * models the host and do not change the image.
 */
export function bareMetalConfig(d: LoadedDefinition): UltravisorConfig {
  const problems: Problem[] = [];
  const bad = (path: ReadonlyArray<PropertyKey>, message: string, key = false): void => {
    problems.push(d.problem(path, message, key));
  };
  const def = d.def;
  if (!def.partitions) {
    throw new DefinitionError([d.problem(["partitions"], "required by uvt build: the partitions the host starts with; this file has none (it is a simulator scenario: run it with uvt sim)")]);
  }
  const h = def.host;
  const pcpus = h.pcpus ?? 1;
  if (pcpus > MAX_PCPUS) bad(["host", "pcpus"], `${pcpus} processors: the bare-metal ultravisor schedules at most ${MAX_PCPUS} in this version (uvt sim runs more)`);
  if (h.nodes !== undefined && h.nodes.length !== 1) bad(["host", "nodes"], "the bare-metal ultravisor runs on one node in this version", true);
  const owners = new Set((def.devices ?? []).map((dev) => dev.owner));
  const parts = def.partitions;
  const channels = defaultChannels(parts);
  // Linux partitions' files are read and checked here, before anything is built (definition/linux.ts).
  const linux = linuxInputs(d);
  problems.push(...linux.problems);
  const specs = parts.map((p, i): PartitionSpec => {
    const at = ["partitions", i];
    if (p.kind === "operations") bad([...at, "kind"], "the operations partition runs in the simulator only in this version (bare metal: idle, ultravisor, io, command, guest)");
    const lin = linux.inputs.get(i);
    if (p.memory !== undefined && p.linux === undefined) bad([...at, "memory"], `bare metal gives every partition a fixed allotment of ${WINDOW_LAYOUT.pages} window pages plus its channel pages in this version; leave memory out (uvt sim then gives 4 MB)`, true);
    if (p.node !== undefined && p.node !== 0) bad([...at, "node"], "bare metal has one node (0) in this version", true);
    const duty = dutyOf(p, at, bad);
    const dedicated = p.kind !== "idle" && isDedicated(p);
    // What only the bootstrap processor has in this version binds these partitions to PCPU 0 (smp.md §2.1).
    const bound = p.kind === "io" || p.kind === "ultravisor" || p.kind === "idle" || p.behaviour?.vm !== undefined || p.linux !== undefined || owners.has(p.name);
    if (p.pcpu !== undefined && p.pcpu >= pcpus) bad([...at, "pcpu"], `processor ${p.pcpu}: the host has ${pcpus} (host.pcpus; 0 to ${pcpus - 1})`);
    else if (p.pcpu !== undefined && p.pcpu !== 0 && bound) bad([...at, "pcpu"], `a '${p.kind}'${p.behaviour?.vm || p.linux ? " hardware-virtualized" : ""} partition${owners.has(p.name) ? " that owns devices" : ""} runs on processor 0 in this version (docs/specs/smp.md §2.1)`);
    if (dedicated && bound) bad([...at, "vcpus"], `a '${p.kind}' partition runs on processor 0 among others in this version; it cannot have a processor to itself`, true);
    const given = p.channels;
    const wired = channels.get(p.name) ?? [];
    if (given !== undefined && JSON.stringify(given) !== JSON.stringify(wired)) {
      bad([...at, "channels"], `bare metal wires ${wired.length ? wired.map((c) => `${c.type} → ${c.server}`).join(", ") : "no channel"} for a '${p.kind}' partition in this version; leave channels out or list exactly that`, true);
    }
    const b = p.behaviour ?? {};
    const storage = b.disk !== undefined || b.fault === "storage-mdl";
    if (storage && b.lang === "asm") bad([...at, "behaviour", "lang"], "the storage workload and its hostile client are AssemblyScript guests (lang: as, or leave lang out)");
    if (storage && (p.kind !== "guest" || b.vm !== undefined || p.linux !== undefined)) bad([...at, "behaviour"], "only a guest running at CPL 3 runs the storage workload", true);
    return {
      name: p.name, kind: p.kind === "operations" ? "guest" : p.kind, duty,
      ...(dedicated ? { dedicated: true } : {}),
      ...(bound && p.kind !== "idle" ? { pcpu: 0, bound: true } : p.pcpu !== undefined ? { pcpu: p.pcpu } : {}),
      ...(b.fault !== undefined ? { fault: b.fault } : {}),
      ...(b.faultAfter !== undefined ? { faultAfter: b.faultAfter } : {}),
      ...(b.probeCommand ? { probeCommand: true } : {}),
      ...(b.lang !== undefined || storage ? { lang: storage ? "as" as const : b.lang! } : {}),
      ...(b.disk !== undefined ? { disk: { first: b.disk.first, blocks: b.disk.blocks, passes: b.disk.passes, ...(b.disk.bench ? { bench: true } : {}) } } : {}),
      ...(b.benchHypercalls !== undefined ? { benchHypercalls: b.benchHypercalls } : {}),
      ...(b.vm !== undefined ? { vm: b.vm } : {}),
      ...(lin ? { linux: lin } : {}),
      ...(b.pair !== undefined ? { pair: b.pair } : {}),
      ...(b.failAtRequest !== undefined ? { failAtRequest: b.failAtRequest } : {}),
    };
  });
  const kinds = (k: PartitionKind): number => specs.filter((p) => p.kind === k).length;
  if (kinds("idle") !== 1) bad(["partitions"], `exactly one partition of kind 'idle' is needed (found ${kinds("idle")}): it runs whenever nobody else does`, true);
  const consoleIo = specs.filter((p) => p.kind === "io" && p.pair === undefined).length;
  const members = specs.filter((p) => p.pair !== undefined).length;
  if (consoleIo !== 1) bad(["partitions"], `exactly one partition of kind 'io' is needed on bare metal (found ${consoleIo}${members ? " besides the storage pair's members" : ""}): it owns COM1 and serves every console`, true);
  checkPair(specs, def.devices ?? [], bad);
  if ((kinds("command") === 1) !== (kinds("ultravisor") === 1)) {
    bad(["partitions"], "the command partition and the ultravisor partition come together (the command channel joins them)", true);
  }
  const busy = specs.reduce((s, p) => s + p.duty, 0);
  if (busy > 16 * pcpus) bad(["partitions"], `the duties add up to ${busy} sixteenths, more than ${pcpus === 1 ? "one processor (at most 16)" : `${pcpus} processors (at most ${16 * pcpus})`}`, true);
  if (parts.length - 2 > WINDOW_LAYOUT.maxSlots) bad(["partitions"], `${parts.length - 2} partitions need console channels; the I/O partition serves at most ${WINDOW_LAYOUT.maxSlots}`, true);
  if (problems.length) throw new DefinitionError(problems.sort((a, b) => a.line - b.line || a.col - b.col));
  const r = def.run;
  // definition/check.ts has refused every device entry that is not exactly one of disk/pci with a CPL-3 owner.
  const devices = (def.devices ?? []).map((dev): DeviceSpec => {
    const owner = parts.findIndex((p) => p.name === dev.owner);
    const dma = parts[owner]!.kind === "io" ? { dma: true } : {};
    if (dev.disk !== undefined) return { match: { disk: dev.disk }, owner, ...dma };
    const [bus, slot, fn] = dev.pci!.split(/[:.]/).map((x) => parseInt(x, 16));
    return { match: { bdf: (bus! << 8) | (slot! << 3) | fn! }, owner, ...dma };
  });
  return {
    partitions: specs, pcpus, quantumTicks: r.quantumTicks, runQuanta: r.runQuanta, guestPeriod: r.guestPeriod, exitCode: r.exitCode,
    ...(r.probes ? { probes: true } : {}),
    ...(devices.length ? { devices } : {}),
    ...(def.host.iommu ? { iommu: true } : {}),
  };
}

/**
 * The storage pair's rules that only the machine has (docs/specs/storage-failover.md §7.1): one primary and one
 * secondary or neither, each owning exactly one data disk (`devices: [{ disk: N, owner }]`) and nothing else.
 */
function checkPair(specs: PartitionSpec[], devices: ReadonlyArray<{ disk?: number | undefined; pci?: string | undefined; owner: string }>,
  bad: (path: ReadonlyArray<PropertyKey>, m: string, key?: boolean) => void): void {
  const members = specs.map((p, i) => ({ p, i })).filter(({ p }) => p.pair !== undefined);
  if (members.length === 0) return;
  for (const role of ["primary", "secondary"] as const) {
    const n = members.filter(({ p }) => p.pair === role).length;
    if (n !== 1) bad(["partitions"], `a storage pair has exactly one ${role} (found ${n}): mark two io partitions with behaviour pair: primary and pair: secondary`, true);
  }
  for (const { p, i } of members) {
    const owned = devices.filter((d) => d.owner === p.name);
    if (owned.length !== 1 || owned[0]!.disk === undefined) {
      bad(["partitions", i, "behaviour", "pair"], `the pair's ${p.pair} '${p.name}' must own exactly one data disk (devices: [{ disk: N, owner: ${p.name} }]; it owns ${owned.length} device${owned.length === 1 ? " that is not a disk" : "s"})`);
    }
  }
}

/** The one VCPU's duty: `duty`, or `vcpus: 1` (a whole processor), or a one-entry list with a duty. */
function dutyOf(p: PartitionDefinition, at: ReadonlyArray<PropertyKey>, bad: (path: ReadonlyArray<PropertyKey>, m: string, key?: boolean) => void): number {
  if (p.kind === "idle") return 0;
  if (p.duty !== undefined) return p.duty;
  const v = p.vcpus;
  if (typeof v === "number") {
    if (v !== 1) bad([...at, "vcpus"], `${v} VCPUs: bare metal gives a partition one VCPU in this version (use duty)`);
    return 16;
  }
  if (v && v.length === 1 && !v[0]!.cstate && (v[0]!.dedicated || v[0]!.duty !== undefined)) return v[0]!.dedicated ? 16 : v[0]!.duty!;
  bad([...at, "vcpus"], "bare metal gives a partition one VCPU, with a duty or dedicated, in this version (no C-states: use duty)", true);
  return 0;
}

/** `vcpus: [{ dedicated: true }]`: the one VCPU has a processor to itself. */
function isDedicated(p: PartitionDefinition): boolean {
  return Array.isArray(p.vcpus) && p.vcpus.length === 1 && p.vcpus[0]!.dedicated === true;
}
