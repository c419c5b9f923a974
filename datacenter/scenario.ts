// The data-center scenario (docs/specs/datacenter.md §2; layer: datacenter/): racks of hosts, partitions with memory,
// processors and dirty-page rates, timed events (a host failing, a partition migrating), heartbeat and migration
// settings and the seed that makes a run repeatable. Read from YAML or JSON and checked whole before anything runs:
// a refused file names every problem as `path: what is wrong (what is allowed)` and nothing is simulated.
import { parse } from "yaml";
import { parseBytes } from "../core/mapview.ts";
import { DEFAULT_BANDWIDTH, DEFAULT_RULES, type StopRules } from "./precopy.ts";

export const NAME_RE = /^[A-Za-z0-9_-]{1,15}$/;
const MB4 = 4n << 20n;

export interface DcHost {
  name: string;
  rack: string;
  memory: bigint;
  pcpus: number;
}

export interface DcPartition {
  name: string;
  memory: bigint;
  vcpus: number;
  /** Pages dirtied per second while running (the pre-copy model's input). */
  dirtyRate: number;
  /** Writable working set in pages (default: all its pages). */
  workingSet?: number;
  /** Only hosts of this rack may run it (a zone of the data center). */
  rack?: string;
}

export type DcEventDef = { at: number; fail: string } | { at: number; migrate: string; to?: string };

export interface DcScenario {
  seed: number;
  /** Simulated ms at which the run ends. */
  until: number;
  heartbeat: { interval: number; lease: number };
  migration: { bandwidth: number; rules: StopRules };
  hosts: DcHost[];
  partitions: DcPartition[];
  events: DcEventDef[];
}

export class ScenarioError extends Error {
  override name = "ScenarioError";
  constructor(readonly problems: string[], readonly file?: string) {
    super(problems.map((p) => (file ? `${file}: ${p}` : p)).join("\n"));
  }
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

/** Checks a parsed document; returns the scenario or throws ScenarioError with every problem found. */
export function checkScenario(doc: unknown, file?: string): DcScenario {
  const bad: string[] = [];
  const keys = (o: Obj, path: string, allowed: string[]): void => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) bad.push(`${path}${path ? "." : ""}${k}: unknown key (allowed: ${allowed.join(", ")})`);
  };
  const int = (v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
      bad.push(`${path}: ${JSON.stringify(v)} is not a whole number in ${min}..${max}`);
      return min;
    }
    return v;
  };
  const size = (v: unknown, path: string): bigint => {
    try {
      const b = parseBytes(v as string | number);
      if (b <= 0n || b % MB4 !== 0n) throw new RangeError(`${JSON.stringify(v)} is not a positive multiple of 4 MB`);
      return b;
    } catch (e) {
      bad.push(`${path}: ${(e as Error).message} (a size such as 512 MB, 4 GB)`);
      return MB4;
    }
  };
  const name = (v: unknown, path: string): string => {
    if (typeof v !== "string" || !NAME_RE.test(v)) {
      bad.push(`${path}: ${JSON.stringify(v)} is not a name of 1–15 letters, digits, _ or -`);
      return "?";
    }
    return v;
  };
  if (!isObj(doc)) throw new ScenarioError(["the file is not a mapping (a data-center scenario starts with `datacenter: 1`)"], file);
  keys(doc, "", ["datacenter", "seed", "until", "heartbeat", "migration", "racks", "partitions", "events"]);
  if (doc.datacenter !== 1) bad.push(`datacenter: ${JSON.stringify(doc.datacenter)} is not a known revision (1)`);
  const seed = int(doc.seed, "seed", 0, 2 ** 32 - 1);
  const until = int(doc.until, "until", 1);
  const hb = isObj(doc.heartbeat) ? doc.heartbeat : {};
  if (doc.heartbeat !== undefined && !isObj(doc.heartbeat)) bad.push("heartbeat: is not a mapping { interval, lease }");
  keys(hb, "heartbeat", ["interval", "lease"]);
  const interval = hb.interval === undefined ? 1000 : int(hb.interval, "heartbeat.interval", 1);
  const lease = hb.lease === undefined ? 3 * interval : int(hb.lease, "heartbeat.lease", 1);
  if (lease <= interval) bad.push(`heartbeat.lease: ${lease} ms must be longer than the interval (${interval} ms), or every host expires between two beats`);
  const mg = isObj(doc.migration) ? doc.migration : {};
  if (doc.migration !== undefined && !isObj(doc.migration)) bad.push("migration: is not a mapping");
  const ruleKeys = ["downtimeMs", "dirtyThreshold", "maxIterations", "maxFactor"] as const;
  keys(mg, "migration", ["bandwidth", ...ruleKeys]);
  const bandwidth = mg.bandwidth === undefined ? DEFAULT_BANDWIDTH : int(mg.bandwidth, "migration.bandwidth", 1);
  const rules: StopRules = {};
  for (const k of ruleKeys) {
    // null switches a rule off; absent takes the cited default.
    if (mg[k] === null) continue;
    rules[k] = mg[k] === undefined ? DEFAULT_RULES[k] : int(mg[k], `migration.${k}`, 0);
  }
  if (!(rules.maxIterations! >= 1) && !(rules.maxFactor! > 0)) bad.push("migration: needs maxIterations ≥ 1 or maxFactor > 0, or a migration that does not converge never ends");

  const hosts: DcHost[] = [];
  const racks = new Set<string>();
  if (!Array.isArray(doc.racks) || doc.racks.length === 0) bad.push("racks: is not a non-empty list of { name, hosts }");
  else doc.racks.forEach((r: unknown, i: number) => {
    const p = `racks[${i}]`;
    if (!isObj(r)) return void bad.push(`${p}: is not a mapping { name, hosts }`);
    keys(r, p, ["name", "hosts"]);
    const rack = name(r.name, `${p}.name`);
    if (racks.has(rack)) bad.push(`${p}.name: rack ${rack} is listed twice`);
    racks.add(rack);
    if (!Array.isArray(r.hosts) || r.hosts.length === 0) return void bad.push(`${p}.hosts: is not a non-empty list`);
    r.hosts.forEach((h: unknown, j: number) => {
      const q = `${p}.hosts[${j}]`;
      if (!isObj(h)) return void bad.push(`${q}: is not a mapping { name, memory, pcpus }`);
      keys(h, q, ["name", "memory", "pcpus"]);
      const host = { name: name(h.name, `${q}.name`), rack, memory: size(h.memory, `${q}.memory`), pcpus: int(h.pcpus, `${q}.pcpus`, 1, 64) };
      if (host.memory < 1n << 30n) bad.push(`${q}.memory: a host needs at least 1 GB (its database and service partitions take 128 MB and more)`);
      if (hosts.some((x) => x.name === host.name)) bad.push(`${q}.name: host ${host.name} is listed twice`);
      hosts.push(host);
    });
  });
  const partitions: DcPartition[] = [];
  if (!Array.isArray(doc.partitions)) bad.push("partitions: is not a list of { name, memory, vcpus, dirtyRate }");
  else doc.partitions.forEach((x: unknown, i: number) => {
    const p = `partitions[${i}]`;
    if (!isObj(x)) return void bad.push(`${p}: is not a mapping`);
    keys(x, p, ["name", "memory", "vcpus", "dirtyRate", "workingSet", "rack"]);
    const part: DcPartition = { name: name(x.name, `${p}.name`), memory: size(x.memory, `${p}.memory`), vcpus: int(x.vcpus, `${p}.vcpus`, 1, 16), dirtyRate: x.dirtyRate === undefined ? 0 : int(x.dirtyRate, `${p}.dirtyRate`, 0) };
    if (x.workingSet !== undefined) {
      part.workingSet = int(x.workingSet, `${p}.workingSet`, 0);
      if (BigInt(part.workingSet) * 4096n > part.memory) bad.push(`${p}.workingSet: ${part.workingSet} pages is more than the partition's memory`);
    }
    if (x.rack !== undefined) {
      part.rack = name(x.rack, `${p}.rack`);
      if (!racks.has(part.rack)) bad.push(`${p}.rack: no rack ${part.rack} (racks: ${[...racks].join(", ")})`);
    }
    if (partitions.some((y) => y.name === part.name) || hosts.some((h) => h.name === part.name)) bad.push(`${p}.name: ${part.name} is already a partition or host name`);
    if (["IOa", "Command"].includes(part.name)) bad.push(`${p}.name: ${part.name} is the name of a host's service partition`);
    partitions.push(part);
  });
  const events: DcEventDef[] = [];
  if (doc.events !== undefined && !Array.isArray(doc.events)) bad.push("events: is not a list");
  else (doc.events as unknown[] | undefined ?? []).forEach((e: unknown, i: number) => {
    const p = `events[${i}]`;
    if (!isObj(e)) return void bad.push(`${p}: is not a mapping { at, fail } or { at, migrate, to }`);
    const at = int(e.at, `${p}.at`, 0, until);
    if ("fail" in e) {
      keys(e, p, ["at", "fail"]);
      const h = name(e.fail, `${p}.fail`);
      if (!hosts.some((x) => x.name === h)) bad.push(`${p}.fail: no host ${h}`);
      events.push({ at, fail: h });
    } else if ("migrate" in e) {
      keys(e, p, ["at", "migrate", "to"]);
      const m = name(e.migrate, `${p}.migrate`);
      if (!partitions.some((x) => x.name === m)) bad.push(`${p}.migrate: no partition ${m}`);
      const ev: DcEventDef = { at, migrate: m };
      if (e.to !== undefined) {
        ev.to = name(e.to, `${p}.to`);
        if (!hosts.some((x) => x.name === ev.to)) bad.push(`${p}.to: no host ${ev.to}`);
      }
      events.push(ev);
    } else bad.push(`${p}: names no event (fail: HOST or migrate: PARTITION)`);
  });
  if (bad.length) throw new ScenarioError(bad, file);
  return { seed, until, heartbeat: { interval, lease }, migration: { bandwidth, rules }, hosts, partitions, events };
}

/** Parses YAML or JSON text (JSON is YAML) and checks it. */
export function parseScenario(text: string, file?: string): DcScenario {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new ScenarioError([`not YAML or JSON: ${(e as Error).message.split("\n")[0]}`], file);
  }
  return checkScenario(doc, file);
}
