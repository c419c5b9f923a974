// The host definition the ultravisor image is built from: which partitions exist, their role and their share of
// the processor (sixteenths, docs/specs/schedule.md), plus the run parameters. The default is the spec's Figure 1
// host (boot, idle, ultravisor, I/O, command, guests X, Y, Z); a YAML file (examples/ultravisor*.yaml) can replace it.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { FAULT_KINDS, type FaultKind } from "./programs.ts";
import { WIN } from "../monitor-gen/layout.ts";

export type PartitionKind = "idle" | "io" | "ultravisor" | "command" | "guest";

export interface PartitionSpec {
  name: string;
  kind: PartitionKind;
  /** Quanta per 16-quantum cycle (0 for the idle partition: it gets what nobody else uses). */
  duty: number;
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
}

export interface UltravisorConfig {
  revision: number;
  partitions: PartitionSpec[];
  /** Local APIC timer count per quantum (QEMU's APIC timer counts at 1 GHz: 2,000,000 = 2 ms). */
  quantumTicks: number;
  /** Stop after this many quanta with a summary and an isa-debug-exit; 0 = run until powered off. */
  runQuanta: number;
  /** Quanta between two lines of a guest. */
  guestPeriod: number;
  exitCode: number;
  /** Time-stamp probes on the monitor's timer → switch path (bench builds). */
  probes?: boolean;
}

export function figure1Config(): UltravisorConfig {
  return {
    revision: 1,
    partitions: [
      { name: "idle", kind: "idle", duty: 0 },
      { name: "uv-partition", kind: "ultravisor", duty: 1 },
      { name: "io", kind: "io", duty: 2 },
      { name: "command", kind: "command", duty: 1 },
      { name: "X", kind: "guest", duty: 4, lang: "as", probeCommand: true },
      { name: "Y", kind: "guest", duty: 3, lang: "as" },
      { name: "Z", kind: "guest", duty: 2, lang: "as" },
    ],
    quantumTicks: 2_000_000,
    runQuanta: 800,
    guestPeriod: 8,
    exitCode: 0x21,
  };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Checks a configuration; errors name the partition and the field, and say what is allowed. */
export function validateConfig(c: UltravisorConfig, where = "configuration"): UltravisorConfig {
  const fail = (m: string): never => {
    throw new ConfigError(`${where}: ${m}`);
  };
  if (c.revision !== 1) fail(`revision ${String(c.revision)} is not supported (this build reads revision 1)`);
  if (!Array.isArray(c.partitions) || c.partitions.length === 0) fail("partitions: a non-empty list is required");
  const names = new Set<string>();
  let busy = 0;
  for (const [i, p] of c.partitions.entries()) {
    const at = `partitions[${i}] (${String(p.name)})`;
    if (typeof p.name !== "string" || !/^[\x21-\x7e]{1,15}$/.test(p.name)) fail(`${at}: name must be 1–15 printable ASCII characters without spaces`);
    if (names.has(p.name)) fail(`${at}: duplicate name`);
    names.add(p.name);
    if (!["idle", "io", "ultravisor", "command", "guest"].includes(p.kind)) fail(`${at}: kind '${String(p.kind)}' is not one of idle, io, ultravisor, command, guest`);
    if (p.kind === "idle") {
      if (p.duty !== 0) fail(`${at}: the idle partition's duty must be 0 (it runs in every quantum nobody else uses)`);
    } else if (!Number.isInteger(p.duty) || p.duty < 1 || p.duty > 16) fail(`${at}: duty must be 1–16 sixteenths of the processor`);
    busy += p.duty;
    if (p.fault !== undefined && (p.kind !== "guest" || !FAULT_KINDS.includes(p.fault))) fail(`${at}: fault must be one of ${FAULT_KINDS.join(", ")} and only on a guest`);
    if (p.lang !== undefined && (p.kind !== "guest" || (p.lang !== "asm" && p.lang !== "as"))) fail(`${at}: lang must be asm or as, and only on a guest`);
    if (p.lang === "as" && p.benchHypercalls) fail(`${at}: benchHypercalls exists only for asm guests (lang: asm)`);
    if ((p.fault === "wasm-oob") !== (p.fault !== undefined && p.lang === "as")) fail(`${at}: an AssemblyScript guest's only fault is wasm-oob, and wasm-oob needs lang: as`);
  }
  for (const k of ["idle", "io"] as const) if (c.partitions.filter((p) => p.kind === k).length !== 1) fail(`exactly one partition of kind '${k}' is required`);
  for (const k of ["ultravisor", "command"] as const) if (c.partitions.filter((p) => p.kind === k).length > 1) fail(`at most one partition of kind '${k}'`);
  if (c.partitions.some((p) => p.kind === "command") !== c.partitions.some((p) => p.kind === "ultravisor")) fail("the command partition and the ultravisor partition come together (the command channel joins them)");
  if (busy > 16) fail(`the duties add up to ${busy} sixteenths, more than one processor (16)`);
  if (c.partitions.length - 2 > WIN.maxSlots) fail(`${c.partitions.length - 2} partitions need console channels; the I/O partition serves at most ${WIN.maxSlots}`);
  if (!Number.isInteger(c.quantumTicks) || c.quantumTicks < 10_000 || c.quantumTicks > 0xffff_ffff) fail("quantumTicks must be an integer from 10000 to 4294967295");
  if (!Number.isInteger(c.runQuanta) || c.runQuanta < 0) fail("runQuanta must be a non-negative integer (0 = run for ever)");
  if (!Number.isInteger(c.guestPeriod) || c.guestPeriod < 1) fail("guestPeriod must be a positive integer");
  if (!Number.isInteger(c.exitCode) || c.exitCode < 0 || c.exitCode > 127) fail("exitCode must be 0–127");
  return c;
}

/** Reads a YAML (or JSON) host definition; fields left out take the Figure 1 defaults. */
export function loadConfig(path: string): UltravisorConfig {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(`${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof raw !== "object" || raw === null) throw new ConfigError(`${path}: expected a mapping with 'revision' and 'partitions'`);
  return validateConfig({ ...figure1Config(), ...(raw as Partial<UltravisorConfig>) }, path);
}
