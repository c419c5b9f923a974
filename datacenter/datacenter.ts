// The virtual data center (docs/specs/datacenter.md; layer: datacenter/, above ops/): every host is a full simulated
// host — its own resource database (core.wasm over its own memory), I/O and command partitions — and the operations
// partition places partitions on them through each host's command partition, as transactions ([0098]). Time is
// simulated in ms by one event queue ordered by (time, sequence); heartbeat jitter comes from the scenario's seed, so
// a run is a pure function of its scenario. A host failure is noticed only through missed heartbeats (a lease that
// expires, [0307]); its partitions are then re-hosted first fit, and those no host can take are reported with why.
// Live migration ([0269]–[0272]) follows the pre-copy plan of precopy.ts: the destination's database holds the
// incoming partition with its processors parked, the switch-over wakes it there and stops it on the source.
import { formatBytes } from "../core/mapview.ts";
import { ARENA_SLOTS, HostArena } from "../sim/arena.ts";
import { Platform } from "../sim/platform.ts";
import { EventQueue } from "./event-queue.ts";
import { FirstFitIndex } from "./first-fit.ts";
import { PAGE_BYTES, planPrecopy, type PrecopyPlan } from "./precopy.ts";
import type { DcHost, DcPartition, DcScenario } from "./scenario.ts";

/** The service partitions every simulated host boots with (the same as the operations layer's hosts). */
const HOST_IO = "IOa";
const DUTY = 4;

/** One line of the event log; `kind` says which fields are set. */
export interface DcEvent {
  t: number;
  kind: "placed" | "unplaced" | "host-failed" | "lease-expired" | "rehosted" | "lost" | "migration-start"
    | "migration-switchover" | "migration-done" | "migration-aborted" | "migration-refused";
  partition?: string;
  host?: string;
  from?: string;
  to?: string;
  /** Pre-copy figures of a migration. */
  rounds?: number;
  stop?: string;
  downtimeMs?: number;
  sentPages?: number;
  reason?: string;
}

export interface MemorySample {
  t: number;
  host: string;
  /** Bytes the host's database gives to owners (partitions, boot, ultravisor; not the available pool). */
  used: number;
  memory: number;
}

interface HostState {
  def: DcHost;
  /** Position in scenario order (first fit's order, the free-capacity index's slot). */
  at: number;
  platform: Platform;
  /** Reality: the host runs. Only failure events change it; the operations partition never reads it. */
  alive: boolean;
  /** What the operations partition believes: its lease has expired. */
  failed: boolean;
  /** Lease expiry, ms: a heartbeat renews it. */
  leaseUntil: number;
}

interface Migration {
  partition: string;
  from: string;
  to: string;
  plan: PrecopyPlan;
  start: number;
  /** The partition is paused on the source (the stop-and-copy). */
  paused: boolean;
}

/** A deterministic 32-bit generator (mulberry32) for heartbeat jitter. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class DataCenter {
  readonly hosts = new Map<string, HostState>();
  readonly events: DcEvent[] = [];
  readonly memory: MemorySample[] = [];
  /** Where the operations partition believes each partition runs (absent: nowhere). */
  readonly placement = new Map<string, string>();
  now = 0;
  private readonly partitions = new Map<string, DcPartition>();
  private readonly migrations = new Map<string, Migration>();
  private readonly queue = new EventQueue();
  private readonly random: () => number;
  /** Live mode (live.ts): told when a host fails, so its real lease stops being renewed. */
  onHostFailed: ((host: string) => void) | undefined;
  /** Hosts in scenario order. */
  private readonly order: HostState[] = [];
  /** Free bytes of each host its database reported after its last change; -1 once the host is believed failed. */
  private readonly index: FirstFitIndex;

  private constructor(readonly scenario: DcScenario) {
    this.random = rng(scenario.seed);
    this.index = new FirstFitIndex(scenario.hosts.length);
    for (const p of scenario.partitions) this.partitions.set(p.name, p);
  }

  /**
   * Boots every host (each its own database and service partitions) and places the partitions first fit. With
   * `liveness: "external"` no heartbeats are simulated: a host is declared failed only through hostLost (live.ts
   * calls it when the host's etcd lease expires).
   */
  static async create(scenario: DcScenario, opts: { liveness?: "simulated" | "external" } = {}): Promise<DataCenter> {
    const dc = new DataCenter(scenario);
    // Hosts boot in arenas of ARENA_SLOTS (sim/arena.ts), all made first while the heap is small: a memory per host
    // makes V8 collect garbage for every few hosts and stops at about 13,000 hosts per process.
    const arenas: HostArena[] = [];
    for (let n = 0; n < scenario.hosts.length; n += ARENA_SLOTS) arenas.push(await HostArena.create(Math.min(ARENA_SLOTS, scenario.hosts.length - n)));
    for (const [i, h] of scenario.hosts.entries()) {
      const arena = arenas[Math.floor(i / ARENA_SLOTS)]!;
      const platform = await Platform.boot({ memory: h.memory, keepBackup: false, arena }, { pcpus: h.pcpus }, () => {}, {
        system: [
          { name: HOST_IO, kind: "IO", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }] },
          { name: "Command", kind: "Command", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }], channels: [{ type: "command", server: "Ultravisor" }] },
        ],
      });
      const state: HostState = { def: h, at: dc.order.length, platform, alive: true, failed: false, leaseUntil: scenario.heartbeat.lease };
      dc.hosts.set(h.name, state);
      dc.order.push(state);
      dc.sample(h.name);
    }
    for (const p of scenario.partitions) {
      const r = dc.place(p, new Set());
      if ("why" in r) dc.log({ kind: "unplaced", partition: p.name, reason: r.why });
      else dc.log({ kind: "placed", partition: p.name, host: r.host });
    }
    if (opts.liveness !== "external") {
      for (const h of dc.hosts.values()) {
        dc.arm(h);
        dc.beat(h, 0);
      }
    }
    for (const e of scenario.events) {
      if ("fail" in e) dc.at(e.at, () => dc.fail(e.fail));
      else dc.at(e.at, () => dc.migrate(e.migrate, e.to));
    }
    return dc;
  }

  // ------------------------------------------------------------------------------------------------ the clock

  private at(t: number, run: () => void): void {
    this.queue.push(t, run); // ordered by (t, order of scheduling): equal times run in the order they were scheduled
  }

  /** Runs every event up to the scenario's end (or `until`). */
  run(until = this.scenario.until): this {
    while (this.queue.length && this.queue.peek()!.t <= until) {
      const e = this.queue.pop()!;
      this.now = e.t;
      e.run();
    }
    this.now = until;
    return this;
  }

  private log(e: Omit<DcEvent, "t">): void {
    this.events.push({ t: this.now, ...e });
  }

  private sample(host: string): void {
    const h = this.hosts.get(host)!;
    const db = h.platform.host.db;
    const { avail, missing } = db.indexPage();
    let used = 0n;
    let free = 0n;
    // Everything given to an owner, but the available pool and the map's entries beyond installed memory.
    for (const [p, bytes] of h.platform.host.view.ownedBytes()) {
      if (p === avail) free = bytes;
      else if (p !== missing) used += bytes;
    }
    // Every change of a host's database is followed by a sample: the first-fit index learns its free memory here.
    if (!h.failed) this.index.set(h.at, Number(free));
    this.memory.push({ t: this.now, host, used: h.alive ? Number(used) : 0, memory: Number(h.def.memory) });
  }

  // ------------------------------------------------------------------------------------------------ heartbeats

  /** A live host's command partition sends a heartbeat every interval (plus up to a tenth of it, seeded jitter). */
  private beat(h: HostState, t: number): void {
    const { interval } = this.scenario.heartbeat;
    const next = t + interval + Math.floor(this.random() * (interval / 10));
    this.at(next, () => {
      if (!h.alive) return; // a dead host sends nothing; nobody tells the operations partition
      this.renew(h);
      this.beat(h, next);
    });
  }

  /** The operations partition receives a heartbeat: the lease runs `lease` ms from now; an expiry check is queued. */
  private renew(h: HostState): void {
    if (h.failed) return; // a host declared failed stays failed (its partitions live elsewhere now)
    h.leaseUntil = this.now + this.scenario.heartbeat.lease;
    this.arm(h);
  }

  /** Queues the check of the host's lease at its expiry (the lease granted at boot is armed the same way). */
  private arm(h: HostState): void {
    const until = h.leaseUntil;
    this.at(until, () => {
      if (h.failed || h.leaseUntil !== until) return; // renewed since
      this.expire(h);
    });
  }

  /** Live mode: the host's lease expired outside (etcd); it is declared failed now, as an expiry would. */
  hostLost(name: string, why: string): void {
    const h = this.hosts.get(name);
    if (!h || h.failed) return;
    this.expire(h, why);
  }

  private expire(h: HostState, why = `no heartbeat for ${this.scenario.heartbeat.lease} ms`): void {
    h.failed = true;
    this.index.set(h.at, -1);
    const lost = [...this.placement].filter(([, host]) => host === h.def.name).map(([p]) => p).sort();
    this.log({ kind: "lease-expired", host: h.def.name, reason: `${why}; ${lost.length} partition(s) to re-host` });
    for (const p of lost) {
      this.placement.delete(p);
      const r = this.place(this.partitions.get(p)!, new Set([h.def.name]));
      if ("why" in r) this.log({ kind: "lost", partition: p, from: h.def.name, reason: r.why });
      else this.log({ kind: "rehosted", partition: p, from: h.def.name, to: r.host });
    }
  }

  // ------------------------------------------------------------------------------------------------ placement

  /** Memory the host's database has not given to any partition. */
  freeBytes(host: string): bigint {
    const h = this.hosts.get(host)!;
    return h.platform.host.view.bytesOwnedBy(h.platform.host.db.indexPage().avail);
  }

  /**
   * First fit over the hosts in scenario order that the operations partition believes up and that the rack allows:
   * the host's command partition defines the partition (transactions on that host's database); a host that refuses
   * (no memory, no processor time) is skipped. Returns the host, or why none took it.
   */
  private place(p: DcPartition, exclude: Set<string>, parked = false): { host: string } | { why: string } {
    // Only hosts with room are visited, first in scenario order (the free-capacity index); the others cannot take it.
    const refused = new Map<string, string>();
    const need = Number(p.memory);
    for (let i = this.index.leftmost(need); i >= 0; i = this.index.leftmost(need, i + 1)) {
      const h = this.order[i]!;
      const name = h.def.name;
      if (h.failed || exclude.has(name) || !h.alive) continue;
      if (p.rack && h.def.rack !== p.rack) continue;
      try {
        h.platform.definePartition({
          name: p.name, kind: "Guest", memory: p.memory,
          vcpus: Array.from({ length: p.vcpus }, () => (parked ? { duty: DUTY, cstate: 1 } : { duty: DUTY })),
        });
        h.platform.advance(16n);
      } catch (e) {
        if (e instanceof TypeError || e instanceof ReferenceError) throw e;
        refused.set(name, (e as Error).message);
        this.index.set(i, Number(this.freeBytes(name))); // a refusal changes nothing; the index reads it again anyway
        continue;
      }
      if (!parked) this.placement.set(p.name, name);
      this.sample(name);
      return { host: name };
    }
    // No host took it: why, host by host in scenario order, as each candidate's own database reports it.
    const why: string[] = [];
    for (const h of this.order) {
      const name = h.def.name;
      if (h.failed || exclude.has(name)) continue;
      if (p.rack && h.def.rack !== p.rack) continue;
      if (!h.alive) why.push(`${name}: does not answer`);
      else if (refused.has(name)) why.push(`${name}: ${refused.get(name)!}`);
      else if (this.freeBytes(name) < p.memory) why.push(`${name}: ${this.freeBytes(name) >> 20n} MB free`);
      else throw new Error(`data center: ${name} has ${this.freeBytes(name)} bytes free but the first-fit index offered it none`);
    }
    const scope = p.rack ? `rack ${p.rack}` : "the data center";
    return { why: `needs ${formatBytes(p.memory)} and ${p.vcpus} VCPU(s); no live host of ${scope} can take it${why.length ? ` (${why.slice(0, 4).join("; ")}${why.length > 4 ? `; ${why.length - 4} more` : ""})` : ""}` };
  }

  /** A host's command partition stops a partition ([0186]) and its memory returns to the host's pool. */
  private stopOn(host: string, partition: string): void {
    const h = this.hosts.get(host)!;
    if (!h.platform.rs.names().has(partition)) return;
    h.platform.stop(partition);
    h.platform.advance(16n);
    this.sample(host);
  }

  // ------------------------------------------------------------------------------------------------ failure

  /** Reality: a host stops. Only the migration streams through it notice at once; the rest waits for its lease. */
  private fail(host: string): void {
    const h = this.hosts.get(host)!;
    if (!h.alive) return;
    h.alive = false;
    this.log({ kind: "host-failed", host });
    this.onHostFailed?.(host);
    this.sample(host);
    for (const m of [...this.migrations.values()]) {
      if (m.to === host) {
        // The destination's half dies with it; the source never stopped serving (or resumes after the pause).
        this.migrations.delete(m.partition);
        this.log({ kind: "migration-aborted", partition: m.partition, from: m.from, to: m.to, reason: `destination ${host} failed${m.paused ? " during the stop-and-copy; the source resumes it" : ""}; it keeps running on ${m.from}` });
      } else if (m.from === host) {
        // The destination holds an incomplete copy: it discards it. The partition is re-hosted when the lease expires.
        this.migrations.delete(m.partition);
        this.stopOn(m.to, m.partition);
        this.log({ kind: "migration-aborted", partition: m.partition, from: m.from, to: m.to, reason: `source ${host} failed; ${m.to} discards the incomplete copy; the partition is re-hosted when ${host}'s lease expires` });
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ migration

  /** Starts a live migration: the destination's database takes the incoming partition with its processors parked. */
  private migrate(partition: string, to?: string): void {
    const p = this.partitions.get(partition)!;
    const from = this.placement.get(partition);
    const refuse = (reason: string): void => this.log({ kind: "migration-refused", partition, from, to, reason });
    if (!from) return refuse("it runs on no host");
    if (this.migrations.has(partition)) return refuse("it is migrating already");
    if (to === from) return refuse(`it runs on ${to} already`);
    if (to) {
      const h = this.hosts.get(to)!;
      if (h.failed) return refuse(`${to} is failed`);
      if (p.rack && h.def.rack !== p.rack) return refuse(`${to} is not in rack ${p.rack}`);
    }
    const exclude = new Set([...this.hosts.keys()].filter((h) => h === from || (to !== undefined && h !== to)));
    const r = this.place(p, exclude, true);
    if ("why" in r) return refuse(r.why);
    const dest = r.host;
    const plan = planPrecopy({ pages: Number(p.memory / BigInt(PAGE_BYTES)), dirtyRate: p.dirtyRate, workingSet: p.workingSet, bandwidth: this.scenario.migration.bandwidth, rules: this.scenario.migration.rules });
    const m: Migration = { partition, from, to: dest, plan, start: this.now, paused: false };
    this.migrations.set(partition, m);
    this.log({ kind: "migration-start", partition, from, to: dest, rounds: plan.rounds.length, stop: plan.stop });
    const live = Math.ceil(plan.totalMs - plan.downtimeMs);
    this.at(this.now + live, () => {
      if (this.migrations.get(partition) !== m) return;
      m.paused = true;
      this.log({ kind: "migration-switchover", partition, from, to: dest, stop: plan.stop, reason: `${plan.finalPages} page(s) left after ${plan.rounds.length} round(s)` });
      this.at(this.now + Math.ceil(plan.downtimeMs), () => this.switchOver(m));
    });
  }

  /** The last pages arrived: the destination wakes the partition, the source stops it; the placement moves. */
  private switchOver(m: Migration): void {
    if (this.migrations.get(m.partition) !== m) return;
    this.migrations.delete(m.partition);
    const dest = this.hosts.get(m.to)!;
    try {
      dest.platform.wake(m.partition);
      dest.platform.advance(16n);
    } catch (e) {
      this.stopOn(m.to, m.partition);
      this.log({ kind: "migration-aborted", partition: m.partition, from: m.from, to: m.to, reason: `${m.to} could not schedule it (${(e as Error).message}); it resumes on ${m.from}` });
      return;
    }
    this.placement.set(m.partition, m.to);
    this.stopOn(m.from, m.partition);
    this.log({ kind: "migration-done", partition: m.partition, from: m.from, to: m.to, rounds: m.plan.rounds.length, stop: m.plan.stop, downtimeMs: round3(m.plan.downtimeMs), sentPages: m.plan.totalSent });
  }

  // ------------------------------------------------------------------------------------------------ views

  /** Hosts whose database holds the partition with processors running, among hosts that are up (the ground truth). */
  runningOn(partition: string): string[] {
    const out: string[] = [];
    for (const h of this.hosts.values()) {
      if (!h.alive || !h.platform.rs.names().has(partition)) continue;
      const parked = h.platform.scheduleData().pcpus.every((c) => !c.quanta.some((q) => q.startsWith(`${partition}.`)));
      if (!parked) out.push(h.def.name);
    }
    return out;
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** One event as a log line: time, kind, then its fields in a fixed order. */
export function formatEvent(e: DcEvent): string {
  const f: string[] = [`${String(e.t).padStart(8)} ms`, e.kind.padEnd(20)];
  if (e.partition) f.push(e.partition);
  if (e.host) f.push(`host=${e.host}`);
  if (e.from) f.push(`from=${e.from}`);
  if (e.to) f.push(`to=${e.to}`);
  if (e.rounds !== undefined) f.push(`rounds=${e.rounds}`);
  if (e.stop) f.push(`stop=${e.stop}`);
  if (e.downtimeMs !== undefined) f.push(`downtime=${e.downtimeMs}ms`);
  if (e.sentPages !== undefined) f.push(`sent=${e.sentPages}p`);
  if (e.reason) f.push(`(${e.reason})`);
  return f.join(" ").trimEnd();
}
