// Builds the bare-metal ultravisor image: the ring-0 program (loader-efi/ultravisor.ts, monitor-gen/*) and every
// partition program (partitions/*) assembled with toolchain/x64, the partition windows packed (partitions/pack.ts),
// the schedule table computed and the channel template formatted by core.wasm (the same code the simulator runs),
// all embedded in one PE32+ file on an ESP (docs/specs/image-layout.md explains why embedded). image/ is the top
// bare-metal layer: it may import every folder below it (loader-efi, partitions, monitor-gen, core, toolchain), never
// sim/ (docs/architecture.md, Layers).
import { Assembler, addr } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { loadCore } from "../core/wasm.ts";
import { chanExports, ChannelType, ServerState } from "../core/channel.ts";
import { STORAGE } from "../core/storage.ts";
import { readSchedule, SchedError, ScheduleError, Scheduler } from "../core/schedule.ts";
import { emitConsole } from "../monitor-gen/console.ts";
import { emitDescriptors } from "../monitor-gen/descriptors.ts";
import { emitMonitor } from "../monitor-gen/entry.ts";
import { emitPci } from "../monitor-gen/pci.ts";
import { emitIommu, IOMMU_IMAGE_MARKER } from "../monitor-gen/iommu.ts";
import { emitStoragePair } from "../monitor-gen/storage-pair.ts";
import { CHANNEL_RECORD, CHANNEL_RECORD_DWORDS, PARTITION_RECORD, PARTITION_RECORD_DWORDS, emitLead, emitRecord } from "../monitor-gen/lead.ts";
import { CHAN, CMDCHAN, FLAG, PAGE, WINDOW_LAYOUT } from "../monitor-gen/layout.ts";
import { emitPaging, TEXT } from "../monitor-gen/paging.ts";
import { emitSvm } from "../monitor-gen/svm/monitor.ts";
import { type EmbeddedSchedule, emitScheduleTables, emitSmp, emitSwapTables } from "../monitor-gen/smp.ts";
import { MEMORY_MARKER, SVM_IMAGE_MARKER } from "../monitor-gen/svm/layout.ts";
import type { LinuxLoad } from "../monitor-gen/svm/linux.ts";
import { assembleSvmGuest } from "../partitions/svm-guest.ts";
import { type CoreLoaderPlan, emitLoader, LOADER_ENTRY, type LinuxStaging } from "../loader-efi/ultravisor.ts";
import { figure1Config, type PartitionSpec, type UltravisorConfig } from "../partitions/config.ts";
import { COMMAND_SLOT, STORAGE_SLOT, IO_EMIT, definitionBytes, definitionOf, assembleGuest, assembleUltravisorPartition } from "../partitions/programs.ts";
import { packPartition, type PackedPartition, type SlotInfo } from "../partitions/pack.ts";
import { type AotPartition, assembleAotCommand, assembleAotGuest, assembleAotIo, packAotPartition, partitionWasm } from "../partitions/aot-guest.ts";
import { mergeObjects } from "../toolchain/aot/merge-objects.ts";
import { assembleUltravisorWithCore } from "../partitions/uv-core.ts";
import { compileCoreForImage, type CoreDbPlan, emitCoreDb } from "../monitor-gen/core-db.ts";
import { compileBootDb, emitBootDb } from "../loader-efi/uv-boot-db.ts";
import { bootModuleWasm } from "../core/boot-module.ts";
import { buildCore, coreWasmPath } from "../core/build.ts";
import { readFileSync } from "node:fs";
import { defaultLayout } from "../core/db-layout.ts";
import { FOUR_MIB, privateArea } from "../core/database.ts";
import { type EfiImage, linkEfiImage } from "./efi-image.ts";
import { linuxEspFiles, type LinuxLoadPlan, linuxLoadPlan } from "./linux.ts";

export interface UltravisorImageOptions {
  config?: UltravisorConfig;
  /** Build the resource database at boot with the AOT-compiled core (default true). */
  coreDatabase?: boolean;
  /** Test builds: make the first ExitBootServices call fail on a stale map key, to exercise the retry. */
  staleMapKeyOnce?: boolean;
  /** Test builds: the ultravisor partition creates this guest with one page less than its allotment (START refused). */
  shortAllotmentFor?: string;
  /** Test builds: the ultravisor partition calls START with two numbers that are not the descriptor first (refused). */
  startProbes?: boolean;
  /** Test builds: the UEFI types the database's own 4 MiB page may hold (default CORE_LOADER_PLAN.types). */
  coreDbPageTypes?: number[];
  /** Test builds: bytes the boot believes a state page has for extended state (a smaller CPU save area is refused). */
  xstateSpace?: number;
  espSizeMiB?: number;
  /** Called at the end of each stage of a build with its name (uvt build prints them with timings on stderr). */
  progress?: (step: string) => void;
  /** Test builds: the seed of the fuzz guests' PRNG (each fuzz guest mixes in its partition number). */
  fuzzSeed?: bigint;
  /**
   * Test builds: at quantum `at` the monitor swaps to core's tables for these duties, from the next wrap on every
   * processor (docs/specs/smp.md §2.7). Each partition must stay on its row.
   */
  swap?: { at: number; duties: Record<string, number> };
}

export interface BuiltPartition {
  spec: PartitionSpec;
  number: number;
  packed: PackedPartition | null;
  /** AssemblyScript partitions (I/O, command, lang: as guests): the AOT compilation. */
  aot?: AotPartition;
}

export interface ChannelDef {
  kind: "console" | "command" | "storage";
  /**
   * The command partition's console channel: a second queue carries the lines typed on COM1 from the I/O partition
   * to it (the input template; docs/specs/image-layout.md, "Typed lines").
   */
  input?: boolean;
  client: number;
  server: number;
  clientSlot: number;
  serverSlot: number;
}

export interface UltravisorImage extends EfiImage {
  config: UltravisorConfig;
  partitions: BuiltPartition[];
  channels: ChannelDef[];
  /** The schedule table bytes for one processor (docs/specs/schedule.md); `schedules` has every count the image embeds. */
  schedule: Uint8Array;
  /** Table k − 1 for k processors, k = 1 … host.pcpus, null where core refused (docs/specs/smp.md §2.1). */
  schedules: Array<EmbeddedSchedule | null>;
  /** Test builds with `swap`: the tables the monitor swaps to (§2.7). */
  swapSchedules?: Array<EmbeddedSchedule | null>;
  /** Linux partitions: their files on the ESP and where the loader puts them (docs/specs/linux-partition.md §7). */
  linux: LinuxLoadPlan[];
  timings: EfiImage["timings"] & { assemble: number };
}

/**
 * Linear memory of the two instances of core on the machine (the lead monitor's, identity-mapped, and the ultravisor
 * partition's view): all of the first 4 GiB but the last 64 KiB, since the private page may be anywhere there. What is
 * reachable is the page tables' business: the view maps only the database's pages.
 */
const UV_CORE_MEMORY_BYTES = 0xffff_0000;

/**
 * The database the boot builds: an order-2 map (hosts up to 4 GiB) in Figure 8's placement (core/db-layout.ts
 * defaultLayout) in its own 4 MiB page [0,1,*], and core's private 4 MiB page (scratch, request buffer, map directory,
 * log) wherever the loader carves it from the ultravisor region (docs/specs/memory-layout.md §5, ADR 0002). The
 * private page's offsets are core's (core/database.ts privateArea), the ones the simulator uses.
 */
export const CORE_DB_PLAN: CoreDbPlan = (() => {
  const l = defaultLayout(2);
  const pa = privateArea(0);
  return {
    words: [2, l.ui, l.missing, l.avail, l.idle, l.boot, 0, 0, l.region, l.top, ...l.chain],
    memoryBytes: UV_CORE_MEMORY_BYTES,
    dbPage: { lo: l.region * FOUR_MIB, hi: (l.region + 1) * FOUR_MIB },
    requestOffset: pa.requestBuffer,
    logPageOffset: pa.logBase,
  };
})();

/**
 * What the loader checks: the database's own 4 MiB page must be memory that is free once boot services are gone
 * (UEFI types 3 and 4, boot services code and data, and 7, conventional) in the map it reads first.
 */
export const CORE_LOADER_PLAN: CoreLoaderPlan = { dbPage: CORE_DB_PLAN.dbPage, types: [3, 4, 7] };

/** Partition numbers: 1-based position in the configuration (the schedule's partition field). */
export const partitionNumber = (index: number): number => index + 1;

/** A fuzzing partition's PRNG seed: the build's (1 when none was given) mixed with its partition number. */
function fuzzSeedOf(opts: UltravisorImageOptions, index: number): bigint {
  return BigInt.asUintN(64, (opts.fuzzSeed ?? 1n) ^ (BigInt(partitionNumber(index)) * 0x9e37_79b9_7f4a_7c15n));
}
const IDLE_VCPU_BASE = 1000;

/** A guest of the storage workload or its hostile client: a storage channel to the I/O partition (definition/channels.ts). */
export function usesStorage(p: PartitionSpec): boolean {
  return p.kind === "guest" && (p.disk !== undefined || p.fault === "storage-mdl");
}

/** The console I/O partition: the io partition that is not a member of the storage pair (partitions/config.ts). */
export function consoleIoIndex(parts: readonly PartitionSpec[]): number {
  return parts.findIndex((p) => p.kind === "io" && p.pair === undefined);
}

/** The storage pair's members' indices (docs/specs/storage-failover.md §7), or null without a pair. */
export function pairIndices(parts: readonly PartitionSpec[]): { primary: number; secondary: number } | null {
  const primary = parts.findIndex((p) => p.pair === "primary");
  const secondary = parts.findIndex((p) => p.pair === "secondary");
  return primary >= 0 && secondary >= 0 ? { primary, secondary } : null;
}

function planChannels(parts: PartitionSpec[]): ChannelDef[] {
  const io = consoleIoIndex(parts);
  const out: ChannelDef[] = [];
  let ioSlot = 0;
  parts.forEach((p, i) => {
    if (p.kind === "idle" || i === io) return;
    out.push({ kind: "console", client: i, server: io, clientSlot: 0, serverSlot: ioSlot++, ...(p.kind === "command" ? { input: true } : {}) });
  });
  const cmd = parts.findIndex((p) => p.kind === "command");
  const uv = parts.findIndex((p) => p.kind === "ultravisor");
  if (cmd >= 0 && uv >= 0) out.push({ kind: "command", client: cmd, server: uv, clientSlot: COMMAND_SLOT, serverSlot: COMMAND_SLOT });
  // Storage clients (docs/specs/storage-channel.md §8): slot STORAGE_SLOT of the guest, served by the I/O partition.
  // With a storage pair, slot STORAGE_SLOT to the primary and the next to the secondary, each member serving from its
  // slot 1 on (its slot 0 is its own console channel).
  const pair = pairIndices(parts);
  const memberSlot = [1, 1];
  parts.forEach((p, i) => {
    if (!usesStorage(p)) return;
    if (!pair) {
      out.push({ kind: "storage", client: i, server: io, clientSlot: STORAGE_SLOT, serverSlot: ioSlot++ });
      return;
    }
    out.push({ kind: "storage", client: i, server: pair.primary, clientSlot: STORAGE_SLOT, serverSlot: memberSlot[0]!++ });
    out.push({ kind: "storage", client: i, server: pair.secondary, clientSlot: STORAGE_SLOT + 1, serverSlot: memberSlot[1]!++ });
  });
  return out;
}

export async function buildUltravisorImage(opts: UltravisorImageOptions = {}): Promise<UltravisorImage> {
  const config = opts.config ?? figure1Config();
  const t0 = performance.now();
  const parts = config.partitions;
  const channels = planChannels(parts);
  const step = opts.progress ?? ((): void => {});
  const withCore = opts.coreDatabase ?? true;
  const programs = await compilePrograms(parts, withCore);
  step("AssemblyScript programs (asc)");
  const tables = await scheduleAndTemplates(parts, config.pcpus ?? 1, opts.swap);
  step("core.wasm");
  const built = buildPartitions(config, opts, channels, programs, withCore, tables.scheduleLines);
  const linux = linuxPlans(parts);
  const a = new Assembler();
  const compiled = emitRing0(a, config, opts, built, programs, withCore, linux);
  emitHostTables(a, tables, parts, built, channels, withCore, linux.plans);
  const obj = withTextMarkers(mergeCompiled(a.finish(), compiled));
  step("partitions, monitors and loader assembled, core AOT-compiled");
  const t1 = performance.now();
  const schedule = tables.schedule;
  const img = linkEfiImage(obj, {
    entry: LOADER_ENTRY, successExit: config.exitCode, extraFiles: linuxEspFiles(linux.plans),
    ...(opts.espSizeMiB !== undefined ? { espSizeMiB: opts.espSizeMiB } : {}),
  });
  return { ...img, config, partitions: built, channels, schedule, schedules: tables.schedules, ...(tables.swap ? { swapSchedules: tables.swap.tables } : {}), linux: linux.plans, timings: { ...img.timings, assemble: t1 - t0 } };
}

/** The AssemblyScript programs the image needs, compiled to wasm (core.wasm too, which later steps read from disk). */
interface Programs { coreWasm: Uint8Array | null; guestWasm: Uint8Array | null; ioWasm: Uint8Array; commandWasm: Uint8Array | null; bootWasm: Uint8Array | null }

async function compilePrograms(parts: PartitionSpec[], withCore: boolean): Promise<Programs> {
  // The AssemblyScript programs first, all at once: core/asc.ts compiles them in parallel (two worker threads) and a
  // cold build is mostly these compilations (docs/adr/0007-fast-cold-build.md). core.wasm goes first, the longest.
  const [, guest, io, command, boot] = await Promise.all([
    buildCore(),
    parts.some((p) => p.kind === "guest" && p.lang === "as") ? partitionWasm("guest") : null,
    partitionWasm(parts.some((p) => p.kind === "io" && p.fault === "fuzz-server") ? "io-fuzz" : "io"),
    parts.some((p) => p.kind === "command") ? partitionWasm("command") : null,
    withCore ? bootModuleWasm() : null,
  ]);
  // core.wasm as buildCore left it on disk: the ultravisor partition's program and the image's AOT-compiled core.
  const coreWasm = withCore ? new Uint8Array(readFileSync(coreWasmPath)) : null;
  return { coreWasm, guestWasm: guest, ioWasm: io, commandWasm: command, bootWasm: boot };
}

/** The schedule table and the channel templates, computed by core.wasm in V8; the schedule as text and as lines. */
interface HostTables { schedule: Uint8Array; schedules: Array<EmbeddedSchedule | null>; swap: { at: number; tables: Array<EmbeddedSchedule | null> } | null; template: Uint8Array; commandTemplate: Uint8Array; inputTemplate: Uint8Array; storageTemplate: Uint8Array; scheduleLines: string[] }

/**
 * The schedule for k processors, k = 1 … pcpus (docs/specs/smp.md §2.1), computed by core.wasm: one VCPU per
 * partition with its duty (or dedicated) and, from two processors on, its affinity (`pcpu`: PCPU 0 for the partitions
 * bound there). With one processor every VCPU is on PCPU 0 and affinity would only reorder the row, so none is given.
 */
function computeSchedules(core: Awaited<ReturnType<typeof loadCore>>, parts: PartitionSpec[], pcpus: number): Array<EmbeddedSchedule | null> {
  const sched = new Scheduler(core, pcpus, parts.length);
  const idleIndex = parts.findIndex((p) => p.kind === "idle");
  const names = (rows: ReturnType<typeof readSchedule>["rows"]): string[] => rows.map((r) => r.entries.map((e) => parts[e.partition - 1]?.name ?? `#${e.partition}`).join(" "));
  return Array.from({ length: pcpus }, (_, j) => {
    const k = j + 1;
    const vcpus = parts.flatMap((p, i) => (p.kind === "idle" ? [] : [{
      vcpu: partitionNumber(i), partition: partitionNumber(i), duty: p.duty,
      ...(p.dedicated ? { dedicated: true } : {}), ...(k > 1 && p.pcpu !== undefined ? { affinity: p.pcpu } : {}),
    }]));
    try {
      const { table } = sched.compute(vcpus, k, { partition: partitionNumber(idleIndex), vcpuBase: IDLE_VCPU_BASE });
      const bytes = new Uint8Array(core.memory.buffer, table, sched.sched.sched_table_bytes(k)).slice();
      const rows = readSchedule(bytes.buffer as ArrayBuffer, 0).rows;
      // A partition bound to PCPU 0 that core placed elsewhere (its row full, or taken by a dedicated VCPU): no table.
      const away = parts.findIndex((p, i) => p.bound && rows.some((r, q) => q > 0 && r.entries.some((e) => e.partition === partitionNumber(i))));
      if (away >= 0) throw new ScheduleError(SchedError.NO_ROOM, away, `${parts[away]!.name} runs on processor 0 only and does not fit there`);
      return { bytes, rows: names(rows) };
    } catch (e) {
      if (e instanceof ScheduleError && k < pcpus) return null; // fewer processors than this host needs: no table for them
      throw new Error(`core refused the schedule for ${k} processor(s): ${(e as Error).message}`);
    }
  });
}

/**
 * The tables a test build swaps to (docs/specs/smp.md §2.7): core's, for the same partitions with `duties` in place of
 * theirs. A partition that would change rows is refused: a partition is bound to one processor for the whole run.
 */
function swapSchedules(core: Awaited<ReturnType<typeof loadCore>>, parts: PartitionSpec[], pcpus: number, first: Array<EmbeddedSchedule | null>, duties: Record<string, number>): Array<EmbeddedSchedule | null> {
  for (const n of Object.keys(duties)) if (!parts.some((p) => p.name === n && p.kind !== "idle")) throw new Error(`swap: no partition named ${n} with a duty`);
  const next = computeSchedules(core, parts.map((p) => (duties[p.name] !== undefined ? { ...p, duty: duties[p.name]! } : p)), pcpus);
  const rowOf = (t: EmbeddedSchedule, name: string): number => t.rows.findIndex((r) => r.split(" ").includes(name));
  next.forEach((t, k) => {
    const f = first[k];
    if (!t || !f) return;
    for (const p of parts) if (p.kind !== "idle" && rowOf(t, p.name) !== rowOf(f, p.name)) throw new Error(`swap: ${p.name} would move from PCPU ${rowOf(f, p.name)} to PCPU ${rowOf(t, p.name)} with ${k + 1} processor(s)`);
  });
  return next;
}

async function scheduleAndTemplates(parts: PartitionSpec[], pcpus: number, swapOpt?: UltravisorImageOptions["swap"]): Promise<HostTables> {
  // core.wasm: the schedule tables and the channel template.
  const core = await loadCore();
  const schedules = computeSchedules(core, parts, pcpus);
  const swap = swapOpt ? { at: swapOpt.at, tables: swapSchedules(core, parts, pcpus, schedules, swapOpt.duties) } : null;
  const one = schedules[0] ?? schedules.find((t) => t)!;
  const schedule = one.bytes;
  const chan = chanExports(core);
  const tplBase = carvePage(core);
  const r = chan.chan_format(tplBase, PAGE, 1, CHAN.signalSize, CHAN.maxSlots, ChannelType.console);
  if (r !== 0) throw new Error(`core.wasm chan_format refused the console geometry (status ${r})`);
  // srv_state READY through core's own export: the monitor maps the server before any partition runs.
  if (chan.chan_server_state_set(tplBase, PAGE, ServerState.ready) !== 0) throw new Error("core.wasm chan_server_state_set refused the console template");
  const template = new Uint8Array(core.memory.buffer, tplBase, PAGE).slice();
  const commandTemplate = formatCommandTemplate(core);
  const inputTemplate = formatCommandTemplate(core, ChannelType.console);
  const storageTemplate = formatStorageTemplate(core);

  const rows = readSchedule(schedule.buffer as ArrayBuffer, 0).rows[0]!.entries;
  const scheduleLines = scheduleRuns(rows.map((e) => parts[e.partition - 1]?.name ?? `#${e.partition}`));
  return { schedule, schedules, swap, template, commandTemplate, inputTemplate, storageTemplate, scheduleLines };
}

/** Every partition's program, packed for its window (or, for a virtualized one, its guest-physical image). */
function buildPartitions(config: UltravisorConfig, opts: UltravisorImageOptions, channels: ChannelDef[], programs: Programs, withCore: boolean, scheduleLines: string[]): BuiltPartition[] {
  const parts = config.partitions;
  // Partition programs.
  // With the database, a command partition and an ultravisor partition, guests are created at run time from the
  // command partition's definitions; every other partition is created by the boot partition.
  const definedAtRunTime = runTimeDefinitions(parts, withCore);
  const definitions = parts.flatMap((p, i) => (definedAtRunTime(p) ? [definitionOf(p, partitionNumber(i))] : []));
  const coreWasm = programs.coreWasm;
  const built: BuiltPartition[] = parts.map((spec, i) => {
    if (spec.kind === "idle") return { spec, number: partitionNumber(i), packed: null };
    const slots: SlotInfo[] = [];
    for (const c of channels) {
      // Only storage slots carry their type (the console and command slots' records stay as they were).
      const type = c.kind === "storage" ? { type: ChannelType.storage } : {};
      if (c.client === i) slots[c.clientSlot] = { role: "client", peer: parts[c.server]!.name, ...type };
      if (c.server === i) slots[c.serverSlot] = { role: "server", peer: parts[c.client]!.name, ...type };
    }
    for (let k = 0; k < slots.length; k++) if (!slots[k]) throw new Error(`partition ${spec.name}: channel slot ${k} left empty`);
    const aot =
      spec.kind === "io" ? assembleAotIo(programs.ioWasm, spec.fault === "fuzz-server" ? fuzzSeedOf(opts, i) : undefined, {
          inputSlot: channels.find((c) => c.input && c.server === i)?.serverSlot,
          devices: (config.devices?.length ?? 0) > 0, bench: parts.some((p) => p.disk?.bench === true),
          pair: spec.pair !== undefined ? { failAtRequest: spec.failAtRequest ?? 0 } : undefined,
          ...(spec.fault === "rogue-dma" ? { rogueDma: true } : {}),
        })
      : spec.kind === "command" ? assembleAotCommand(programs.commandWasm!, definitions.map(definitionBytes), COMMAND_SLOT, withCore ? CORE_DB_PLAN.words[1]! : 0)
      : spec.kind === "guest" && spec.lang === "as" ? assembleAotGuest(programs.guestWasm!, {
          period: config.guestPeriod, outOfBounds: spec.fault === "wasm-oob", probeCommand: spec.probeCommand === true,
          ...(spec.disk ? { disk: spec.disk } : {}), ...(spec.fault === "storage-mdl" ? { hostileStorage: true } : {}),
          ...(spec.disk && pairIndices(parts) ? { pair: true } : {}),
        })
      : null;
    if (aot) return { spec, number: partitionNumber(i), aot, packed: packAotPartition(aot, { name: spec.name, number: partitionNumber(i), slots }) };
    if (spec.vm) return { spec, number: partitionNumber(i), packed: packSvmGuest(assembleSvmGuest({ kind: spec.vm, period: config.guestPeriod })) };
    // A Linux partition's memory is filled from its ESP files at boot (linux_load), not from a blob in the image.
    if (spec.linux) return { spec, number: partitionNumber(i), packed: packSvmGuest(new Uint8Array(0)) };
    const program =
      spec.kind === "ultravisor" ? (coreWasm ? assembleUltravisorWithCore(coreWasm, programs.bootWasm!, {
          ui: CORE_DB_PLAN.words[1]!, memoryBytes: CORE_DB_PLAN.memoryBytes, requestOffset: CORE_DB_PLAN.requestOffset,
          definitions: definitions.length, summaryAt: summaryQuantum(config.runQuanta), schedule: scheduleLines,
          ...(opts.shortAllotmentFor !== undefined ? { shortAllotment: shortAllotmentNumber(parts, opts.shortAllotmentFor) } : {}),
          ...(opts.startProbes ? { startProbes: true } : {}),
        }) : assembleUltravisorPartition())
      : assembleGuest({
          period: config.guestPeriod,
          ...(spec.fault ? { fault: { kind: spec.fault, afterLines: spec.faultAfter ?? 2 } } : {}),
          ...(spec.probeCommand ? { probeCommand: true } : {}),
          ...(spec.benchHypercalls ? { benchHypercalls: spec.benchHypercalls } : {}),
          ...(opts.fuzzSeed !== undefined ? { fuzzSeed: fuzzSeedOf(opts, i) } : {}),
        });
    return { spec, number: partitionNumber(i), packed: packPartition(program, { name: spec.name, number: partitionNumber(i), slots }) };
  });
  return built;
}

/** With the database, a command partition and an ultravisor partition, guests are created at run time from the
 * command partition's definitions (this says which); every other partition is created by the boot partition. */
function runTimeDefinitions(parts: PartitionSpec[], withCore: boolean): (p: PartitionSpec) => boolean {
  const defining = withCore && parts.some((p) => p.kind === "command") && parts.some((p) => p.kind === "ultravisor");
  return (p) => defining && p.kind === "guest";
}

/** Linux partitions: their load plans, what linux_load copies, and what the loader stages (docs/specs/linux-partition.md §7). */
function linuxPlans(parts: PartitionSpec[]): { plans: LinuxLoadPlan[]; loads: LinuxLoad[]; staging: LinuxStaging[] } {
  const plans = parts.flatMap((p) => (p.linux ? [linuxLoadPlan(p.name, p.linux)] : []));
  const loads: LinuxLoad[] = plans.map((plan, k) => ({
    record: parts.findIndex((p) => p.name === plan.name),
    memPages: plan.memory / PAGE,
    files: plan.files.map((f, j) => ({ stage: `linux${k}$stage${j}`, size: f.data.length, gpa: f.gpa })),
    entry: plan.entry,
    ...(plan.tscArgAt !== undefined ? { tscArgAt: plan.tscArgAt } : {}),
  }));
  const staging = plans.map((plan, k) => ({ prefix: `linux${k}$`, files: plan.files.map((f) => ({ path: f.path, size: f.data.length })) }));
  return { plans, loads, staging };
}

/** The compiled core and boot module the ring-0 code calls; merged into the object after it is assembled. */
interface Compiled { coreImage: ReturnType<typeof compileCoreForImage> | null; bootDb: ReturnType<typeof compileBootDb> | null }

/** Ring 0: loader, console, descriptors, paging, the monitors (ring 3, SVM, lead) and the database's entry points. */
function emitRing0(a: Assembler, config: UltravisorConfig, opts: UltravisorImageOptions, built: BuiltPartition[], programs: Programs, withCore: boolean,
  linux: ReturnType<typeof linuxPlans>): Compiled {
  const parts = config.partitions;
  const io = built[consoleIoIndex(parts)]!.packed!;
  const pair = pairIndices(parts);
  if (pair && !withCore) throw new Error("a storage pair needs the AOT-compiled core in ring 0 (its control block is core's): build with the database");
  const coreImage = programs.coreWasm ? compileCoreForImage(programs.coreWasm) : null;
  const bootDb = programs.bootWasm ? compileBootDb(programs.bootWasm) : null;
  const loaderPlan = { ...CORE_LOADER_PLAN, types: opts.coreDbPageTypes ?? CORE_LOADER_PLAN.types };
  emitLoader(a, withCore ? loaderPlan : null, {
    staleMapKeyOnce: opts.staleMapKeyOnce === true,
    linux: linux.staging,
  });
  emitConsole(a);
  emitDescriptors(a);
  emitPaging(a);
  emitMonitor(a, {
    quantumTicks: config.quantumTicks,
    runQuanta: config.runQuanta,
    exitCode: config.exitCode,
    ioEmit: { lo: io.symbols.get(IO_EMIT.start)!, hi: io.symbols.get(IO_EMIT.end)! },
    probes: config.probes === true,
    ...(opts.xstateSpace !== undefined ? { xstateSpace: opts.xstateSpace } : {}),
    // The ultravisor partition with the database sends the end-of-run summary; the run waits for it (INFO.summaryDone).
    awaitSummary: withCore && parts.some((p) => p.kind === "ultravisor"),
    ...(config.devices?.length ? { pci: true } : {}),
    ...(config.iommu ? { iommu: true } : {}),
    ...(pair ? { pair } : {}),
  });
  emitSmp(a);
  emitSvm(a, linux.loads); // always: the lead monitor's start-up branches to it for FLAG.vm records (set-up happens only then)
  emitLead(a, { quantumTicks: config.quantumTicks, withCore, ui: CORE_DB_PLAN.words[1]!, ...(config.devices?.length ? { devices: true } : {}), ...(config.iommu ? { iommu: true } : {}) });
  emitPci(a, config.devices ?? [], withCore, config.iommu === true);
  if (config.iommu) {
    emitIommu(a);
    a.section(".rdata");
    a.asciz(IOMMU_IMAGE_MARKER); // uvt run: -device intel-iommu and iommu_platform=on (qemu/accel.ts)
    a.section(".text");
  }
  if (pair) emitStoragePair(a, { primary: pair.primary, secondary: pair.secondary, names: [parts[pair.primary]!.name, parts[pair.secondary]!.name] });
  if (coreImage) emitCoreDb(a, coreImage.compiled, CORE_DB_PLAN);
  if (bootDb) emitBootDb(a, bootDb, {
    ui: CORE_DB_PLAN.words[1]!, region: CORE_DB_PLAN.words[8]!, requestOffset: CORE_DB_PLAN.requestOffset,
  });
  return { coreImage, bootDb };
}

/** The tables the ring-0 code reads: image markers, channel templates, schedule, names, definitions, blobs, records. */
function emitHostTables(a: Assembler, t: HostTables, parts: PartitionSpec[], built: BuiltPartition[], channels: ChannelDef[], withCore: boolean, linux: LinuxLoadPlan[]): void {
  const { template, commandTemplate, inputTemplate, storageTemplate } = t;
  const definedAtRunTime = runTimeDefinitions(parts, withCore);
  const L = (n: string) => a.symbol(n);
  a.section(".rdata");
  if (parts.some((p) => p.vm || p.linux)) a.asciz(SVM_IMAGE_MARKER); // uvt run: KVM must offer nested SVM (qemu/accel.ts)
  if (linux.length) a.asciz(`${MEMORY_MARKER}${machineMemoryMiB(linux)}`); // uvt run's default --mem
  a.align(4096);
  a.bind(L("g_chan_template"));
  a.db(template);
  a.bind(L("g_cmd_template"));
  a.db(commandTemplate);
  a.bind(L("g_input_template"));
  a.db(inputTemplate);
  a.bind(L("g_stor_template"));
  a.db(storageTemplate);
  emitScheduleTables(a, t.schedules); // docs/specs/smp.md §2.1 (its first table is g_schedule)
  emitSwapTables(a, t.swap); // a test build's schedule swap (§2.7); none: g_swap_at 0
  a.section(".rdata");
  built.forEach((b, i) => {
    a.align(16);
    a.bind(L(`g_name_${i}`));
    a.asciz(b.spec.name);
    if (b.packed) {
      a.align(16);
      a.bind(L(`g_def_${i}`));
      a.db(definitionBytes(definitionOf(b.spec, b.number)));
      a.align(4096);
      a.bind(L(`g_blob_${i}`));
      a.db(b.packed.blob);
    }
  });
  a.section(".data");
  a.align(64);
  a.bind(L("g_partition_count"));
  a.dq(built.length);
  a.bind(L("g_channel_count"));
  a.dq(channels.length);
  a.align(64);
  a.bind(L("g_partitions"));
  built.forEach((b, i) => {
    const flags = (b.spec.kind === "io" ? (b.spec.pair !== undefined ? FLAG.pairIo : FLAG.com1) : 0) | (b.spec.kind === "command" ? FLAG.command : 0) | (b.spec.kind === "idle" ? FLAG.idle : 0) |
      (b.spec.kind === "ultravisor" && withCore ? FLAG.ultra : 0) | (definedAtRunTime(b.spec) ? FLAG.defined : 0) | (b.spec.vm || b.spec.linux ? FLAG.vm : 0);
    emitRecord(a, PARTITION_RECORD, PARTITION_RECORD_DWORDS, {
      name: addr(L(`g_name_${i}`)),
      blob: b.packed ? addr(L(`g_blob_${i}`)) : 0,
      blobBytes: b.packed ? b.packed.blob.length : 0,
      entry: b.packed ? b.packed.entry : 0n,
      number: b.number,
      flags,
      state: 0, // the state page, filled in by the loader
      allotPages: allotmentPages(b.number - 1, channels, b.spec.linux ? b.spec.linux.layout.memory / PAGE : undefined),
      definition: b.packed ? addr(L(`g_def_${i}`)) : 0,
    });
  });
  a.bind(L("g_channels"));
  for (const c of channels) {
    emitRecord(a, CHANNEL_RECORD, CHANNEL_RECORD_DWORDS, {
      client: c.client, server: c.server, serverSlot: c.serverSlot, clientSlot: c.clientSlot,
      template: addr(L(c.kind === "command" ? "g_cmd_template" : c.kind === "storage" ? "g_stor_template" : c.input ? "g_input_template" : "g_chan_template")),
    });
  }
}

/** The ring-0 object with core's and the boot module's compiled code merged in under their prefixes. */
function mergeCompiled(ring0: ObjectFile, { coreImage, bootDb }: Compiled): ObjectFile {
  let obj = ring0;
  if (coreImage) {
    const c = coreImage.compiled;
    const text = c.object.sections.findIndex((x) => x.name === ".text");
    const thunk = (n: string): number => {
      const e = c.exports.find((x) => x.name === n);
      if (!e || e.thunk < 0) throw new Error(`core.wasm lacks the export ${n}`);
      return e.thunk;
    };
    obj = mergeObjects(obj, c.object, "core$", [
      { name: "core_bootstrap_thunk", section: text, offset: thunk("db_bootstrap") },
      { name: "core_submit_thunk", section: text, offset: thunk("db_submit") },
      { name: "core_truncate_thunk", section: text, offset: thunk("db_log_truncate") },
      { name: "core_owner_thunk", section: text, offset: thunk("db_get_owner") },
      // The storage pair's control block (monitor-gen/storage-pair.ts); unreferenced without a pair.
      { name: "core_pair_init_thunk", section: text, offset: thunk("pair_ctl_init") },
      { name: "core_pair_step_thunk", section: text, offset: thunk("pair_ctl_step") },
      { name: "core_pair_epoch_thunk", section: text, offset: thunk("pair_ctl_epoch") },
      { name: "core_log_event_thunk", section: text, offset: thunk("db_log_event") },
      { name: "core_host_trap", section: text, offset: c.hostTrap },
    ]);
  }
  if (bootDb) {
    const text = bootDb.object.sections.findIndex((x) => x.name === ".text");
    obj = mergeObjects(obj, bootDb.object, "bootdb$", [
      { name: "bootdb_main_thunk", section: text, offset: bootDb.exports.find((e) => e.name === "main")!.thunk },
      { name: "bootdb_create_thunk", section: text, offset: bootDb.exports.find((e) => e.name === "create")!.thunk },
      { name: "bootdb_host_trap", section: text, offset: bootDb.hostTrap },
    ]);
  }
  return obj;
}

/** The object between the TEXT.start and TEXT.end markers (monitor-gen/paging.ts build_kernel_map). */
function withTextMarkers(obj: ObjectFile): ObjectFile {
  // TEXT.start and TEXT.end: empty text sections first and last among the text sections (the PE layout puts text
  // first, in object order, each page-aligned), so they bound exactly the image's code pages (build_kernel_map).
  const marker = (name: string): ObjectFile => {
    const m = new Assembler();
    m.section(".text");
    m.bind(m.symbol(name));
    return m.finish();
  };
  return mergeObjects(mergeObjects(marker(TEXT.start), obj, "image$"), marker(TEXT.end), "text_end$");
}

/**
 * Machine memory (MiB) a host with these Linux partitions needs: the default machine's 256 MiB, which the other
 * partitions, the database and the firmware fit in with room, plus each Linux partition's memory.
 */
export function machineMemoryMiB(linux: readonly LinuxLoadPlan[]): number {
  return 256 + linux.reduce((n, p) => n + Math.ceil(p.memory / (1 << 20)), 0);
}

/** A virtualized guest's blob is its guest-physical image from 0 (docs/specs/svm.md §2), whole pages; no entry. */
function packSvmGuest(image: Uint8Array): PackedPartition {
  const blob = new Uint8Array(Math.ceil(image.length / PAGE) * PAGE);
  blob.set(image);
  if (blob.length > WINDOW_LAYOUT.image + WINDOW_LAYOUT.imageMax) throw new RangeError(`a virtualized guest's image is ${blob.length} bytes, more than its window's ${WINDOW_LAYOUT.image + WINDOW_LAYOUT.imageMax}`);
  return { blob, entry: 0n, symbols: new Map(), image: { start: 0n, end: BigInt(image.length) } };
}

/**
 * Pages of a partition's allotment (docs/specs/image-layout.md): its window (a Linux partition: its memory), then one
 * page for each channel slot up to its highest client slot (the client's memory holds the channel, [0186]).
 */
export function allotmentPages(index: number, channels: readonly ChannelDef[], memPages: number = WINDOW_LAYOUT.pages): number {
  const top = channels.filter((c) => c.client === index).reduce((m, c) => Math.max(m, c.clientSlot + 1), 0);
  return memPages + top;
}

function shortAllotmentNumber(parts: PartitionSpec[], name: string): number {
  const i = parts.findIndex((p) => p.name === name && p.kind === "guest");
  if (i < 0) throw new Error(`shortAllotmentFor: no guest named ${name} in the configuration`);
  return partitionNumber(i);
}

/** Quanta before the end of a finite run at which the ultravisor partition sends its summary (0: at once). It gets
 * 1/16 of the processor and waits for the I/O partition after every 8 of its ~40 lines: 160 quanta proved too few
 * on a loaded host under TCG, where a quantum runs fewer instructions, and 320 too few once the virtualized guest V
 * shares the I/O partition's console throughput (its last summary lines were cut off by the end of the run). */
const SUMMARY_LEAD_QUANTA = 400;
export function summaryQuantum(runQuanta: number): number {
  return Math.max(0, runQuanta - SUMMARY_LEAD_QUANTA);
}

/** The schedule row as summary lines, one per run of one partition: "schedule quanta 0-3: X". */
export function scheduleRuns(names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < names.length; ) {
    let j = i;
    while (j + 1 < names.length && names[j + 1] === names[i]) j++;
    out.push(`schedule quanta ${i}-${j}: ${names[i]}`);
    i = j + 1;
  }
  return out;
}

/**
 * The storage channel's template (docs/specs/storage-channel.md §1): type storage, queue 0 requests and queue 1
 * completions of 256-byte records, as many slots each as fit one page by core's own arithmetic — the geometry the I/O
 * partition and the storage clients check every field against (STORAGE_CHANNEL, partitions/aot-guest.ts).
 */
export function formatStorageTemplate(core: Awaited<ReturnType<typeof loadCore>>): Uint8Array {
  const chan = chanExports(core);
  let slots = 2;
  while (chan.chan_format_bytes(STORAGE.queues, STORAGE.signalSize, slots + 1) <= PAGE) slots++;
  if (slots !== STORAGE.maxSlots) throw new Error(`core's chan_format_bytes fits ${slots} storage slots in one page, but STORAGE (core/storage.ts) says ${STORAGE.maxSlots}`);
  const base = carvePage(core);
  const r = chan.chan_format(base, PAGE, STORAGE.queues, STORAGE.signalSize, slots, ChannelType.storage);
  if (r !== 0) throw new Error(`core.wasm chan_format refused the storage channel geometry (status ${r})`);
  if (chan.chan_server_state_set(base, PAGE, ServerState.ready) !== 0) throw new Error("core.wasm chan_server_state_set refused the storage template");
  return new Uint8Array(core.memory.buffer, base, PAGE).slice();
}

/**
 * The command channel's template (docs/specs/image-layout.md, "The bare-metal command channel"): type command, queue 0
 * requests and queue 1 completions of 128-byte signals, as many slots each as fit one page by core's own arithmetic
 * (chan_format_bytes), which must be the geometry the ultravisor partition's code is specialised on (CMDCHAN). With
 * `type` console, the same geometry is the command partition's console channel: queue 0 its lines to the I/O
 * partition, queue 1 the lines typed on COM1 (image-layout.md, "Typed lines").
 */
export function formatCommandTemplate(core: Awaited<ReturnType<typeof loadCore>>, type: number = ChannelType.command): Uint8Array {
  const chan = chanExports(core);
  let slots = 2;
  while (chan.chan_format_bytes(CMDCHAN.queues, CMDCHAN.signalSize, slots + 1) <= PAGE) slots++;
  if (slots !== CMDCHAN.maxSlots) {
    throw new Error(`core's chan_format_bytes fits ${slots} slots of ${CMDCHAN.signalSize} bytes per queue in one page, but CMDCHAN (monitor-gen/layout.ts) says ${CMDCHAN.maxSlots}: update CMDCHAN and docs/specs/image-layout.md`);
  }
  const base = carvePage(core);
  const r = chan.chan_format(base, PAGE, CMDCHAN.queues, CMDCHAN.signalSize, slots, type);
  if (r !== 0) throw new Error(`core.wasm chan_format refused the command channel geometry (status ${r})`);
  if (chan.chan_server_state_set(base, PAGE, ServerState.ready) !== 0) throw new Error("core.wasm chan_server_state_set refused the command template");
  return new Uint8Array(core.memory.buffer, base, PAGE).slice(); // srv_state READY, as the console template
}

function carvePage(core: Awaited<ReturnType<typeof loadCore>>): number {
  const old = core.memory.grow(1);
  return old * 65536;
}
