// The policy service of the operations partition ([0093], [0098], [0179], [0183]–[0189]; docs/specs/operations.md
// §3; layer: ops/): owns the estate's partition definitions in a DefinitionStore, checks every request against the
// life-cycle table and the estate (refusing with a reason and changing nothing), selects a host by zones
// (ChannelZonesAvailable) and free memory, and sends the definition to that host's command partition: each simulated
// host is a booted sim/ Platform whose definePartition is the command partition's resource service, creating the
// partition as transactions over the command channel; stop and save are its STOP_PARTITION ([0186]). Schedules
// ([0308]) fire at simulated times through advanceTo. A host reported lost (its liveness lease expired, §7) is dropped
// and its active partitions placed again elsewhere (hostDown).
import { Platform } from "../sim/platform.ts";
import { formatBytes } from "../core/mapview.ts";
import { ACTIVE, type Action, category, decide } from "./lifecycle.ts";
import {
  channelsOf, type Configuration, DOMAIN_RE, type Estate, GUID_RE, type HostDef, NAME_RE, newGuid, OpsError,
  type PartitionDefinition, type ScheduleEntry, type State, ZONE_TYPES, type ZoneRef, zoneKey,
} from "./model.ts";
import { checkWhen, occurrences } from "./schedule.ts";
import type { DefinitionStore, StoreState } from "./store/store.ts";
import { matchingHosts, missingZones, rankHosts } from "./zones.ts";

const MB4 = 4 * 1048576;
/** Channel types the placed partition gets on its host (the rest only take part in matching, [0289]). */
const PHYSICAL = new Set(["console", "network", "storage"]);
/** The I/O partition each simulated host boots with; it serves the partitions' channels. */
export const HOST_IO = "IOa";
/** Sixteenths of a processor per VCPU when a configuration does not say (decision). */
export const DEFAULT_DUTY = 4;

export interface SimHost {
  def: HostDef;
  platform: Platform;
}

export interface DefineRequest {
  name: string;
  domain: string;
  guid?: string;
  /** Name or GUID of a template to clone ([0311]). */
  template?: string;
  /** "template" to define a template directly; default construction. */
  stage?: "construction" | "template";
  channels?: ZoneRef[];
  configurations?: Configuration[];
  volume?: string;
  schedule?: ScheduleEntry[];
}

export interface HostView {
  name: string;
  memory: number;
  pcpus: number;
  zones: string[];
  /** Bytes per owner on the host's resource database (partitions and pseudo partitions). */
  memoryMap: Array<{ owner: string; partition: number; bytes: number }>;
  /** The schedule in effect: per PCPU, 16 quanta by VCPU label. */
  schedule: Array<{ pcpu: number; busy: number; quanta: string[] }>;
  partitions: string[];
}

export interface PolicyOptions {
  /** Simulated time 0 (UTC). Default 2027-01-01T00:00Z. */
  epoch?: Date;
  /** Lines of what the hosts print (the command partition's work). */
  print?: (line: string) => void;
}

export class PolicyService {
  readonly hosts = new Map<string, SimHost>();
  /** Simulated minutes since the epoch. */
  now = 0;
  readonly epoch: Date;
  /** What schedules did or could not do, in order. */
  readonly log: string[] = [];
  private defs = new Map<string, PartitionDefinition>();
  private estateValue: Estate;

  /** The tail of the chain of requests: one request at a time reaches the store (its commit is awaited). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: DefinitionStore, s: StoreState, opts: PolicyOptions) {
    this.epoch = opts.epoch ?? new Date("2027-01-01T00:00:00Z");
    if (!s.estate) throw new OpsError("the store holds no estate: create it with `uvt ops init` or from an estate file");
    this.estateValue = s.estate;
    for (const m of s.domains.values()) for (const d of m.values()) this.defs.set(d.guid, d);
  }

  /** Opens the service over a store: boots every host of the estate and places again what should be active. */
  static async open(store: DefinitionStore, opts: PolicyOptions = {}): Promise<PolicyService> {
    const ps = new PolicyService(store, await store.load(), opts);
    for (const h of ps.estateValue.hosts) {
      const platform = await Platform.boot({ memory: BigInt(h.memory), keepBackup: false }, { pcpus: h.pcpus }, opts.print ?? (() => {}), {
        system: [
          { name: HOST_IO, kind: "IO", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }] },
          { name: "Command", kind: "Command", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }], channels: [{ type: "command", server: "Ultravisor" }] },
        ],
      });
      ps.hosts.set(h.name, { def: h, platform });
    }
    // [0300], [0307]: a partition outlives its host; the operations partition starts again what should run.
    for (const d of [...ps.defs.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (category(d.state) !== "active") continue;
      try {
        // The store is not written: opening the service changes no definition (a refused request after it must
        // leave the store as it was). The new placement is stored with the definition's next change.
        const placement = ps.place(d, ps.configOf(d));
        ps.defs.set(d.guid, { ...d, placement });
        ps.log.push(`${d.name}: placed again on ${placement.host} as partition ${placement.partition} at start-up`);
      } catch (e) {
        ps.log.push(`${d.name}: could not be placed again at start-up: ${(e as Error).message}`);
        await ps.save({ ...d, state: "stopped", history: [...d.history, { at: ps.now, stage: d.stage, state: "stopped", what: `not placed at start-up: ${(e as Error).message}` }] });
      }
    }
    return ps;
  }

  /**
   * Runs `fn` after every request before it has finished: a request checks the definitions, then awaits the store's
   * commit, and another request must not check against the state in between (two defines of one name).
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  estate(): Estate {
    return structuredClone(this.estateValue);
  }

  definitions(): PartitionDefinition[] {
    return [...this.defs.values()].map((d) => structuredClone(d)).sort((a, b) => a.domain.localeCompare(b.domain) || a.name.localeCompare(b.name));
  }

  /** A definition by GUID or name. */
  get(id: string): PartitionDefinition {
    const d = this.defs.get(id) ?? [...this.defs.values()].find((x) => x.name === id);
    if (!d) throw new OpsError(`no partition definition "${id}" (known: ${[...this.defs.values()].map((x) => x.name).join(", ") || "none"})`);
    return structuredClone(d);
  }

  // ------------------------------------------------------------------------------------------------ checks

  private checkConfig(c: Configuration, template: boolean, where: string): void {
    if (!c || typeof c.name !== "string" || !NAME_RE.test(c.name)) throw new OpsError(`${where}: configuration name "${c?.name}" is not 1–15 letters, digits, _ or -`);
    if (template) {
      if (c.memory || c.vcpus) throw new OpsError(`${where}: a template never has processors or memory assigned ([0311]); configuration ${c.name} gives ${c.memory ? formatBytes(BigInt(c.memory)) : ""}${c.memory && c.vcpus ? " and " : ""}${c.vcpus ? `${c.vcpus} VCPU(s)` : ""}`);
      return;
    }
    if (!Number.isSafeInteger(c.memory) || c.memory <= 0 || c.memory % MB4 !== 0) throw new OpsError(`${where}: configuration ${c.name}: memory ${c.memory} is not a positive multiple of 4 MB`);
    if (!Number.isInteger(c.vcpus) || c.vcpus < 1 || c.vcpus > 64) throw new OpsError(`${where}: configuration ${c.name}: vcpus ${c.vcpus} is not 1–64`);
    for (const k of c.disable ?? []) if (typeof k !== "string") throw new OpsError(`${where}: configuration ${c.name}: disable lists "type:zone" strings`);
  }

  private checkChannels(channels: ZoneRef[], where: string): void {
    for (const c of channels) {
      if (!(ZONE_TYPES as readonly string[]).includes(c?.type)) throw new OpsError(`${where}: channel type "${c?.type}" is not one of ${ZONE_TYPES.join(", ")}`);
      if (!this.estateValue.zones.some((z) => z.type === c.type && z.name === c.zone)) {
        throw new OpsError(`${where}: zone ${zoneKey(c)} is not a zone of the estate (known: ${this.estateValue.zones.map((z) => `${z.type}:${z.name}`).join(", ")})`);
      }
    }
  }

  /** Refuses a definition whose channels (per configuration) no host of its domain offers. */
  private checkHosts(d: PartitionDefinition): void {
    const sets = d.configurations.length ? d.configurations.map((c) => ({ c: c.name, ch: channelsOf(d, c) })) : [{ c: "", ch: d.channels }];
    const domainHosts = this.estateValue.hosts.filter((h) => this.domainOf(d.domain).hosts.includes(h.name));
    for (const { c, ch } of sets) {
      if (matchingHosts(this.estateValue, d.domain, ch).length === 0) {
        const why = domainHosts.map((h) => `${h.name} lacks ${missingZones(ch, h.zones).join(", ")}`).join("; ") || "the domain has no hosts";
        throw new OpsError(`${d.name}${c ? ` (configuration ${c})` : ""}: no host of domain ${d.domain} offers every zone it needs: ${why}`);
      }
    }
  }

  private domainOf(name: string) {
    const dom = this.estateValue.domains.find((x) => x.name === name);
    if (!dom) throw new OpsError(`no domain "${name}" (known: ${this.estateValue.domains.map((x) => x.name).join(", ")})`);
    return dom;
  }

  // ------------------------------------------------------------------------------------------------ requests

  /** Defines a partition ([0305]) or a template, or clones a template ([0311]). */
  define(req: DefineRequest): Promise<PartitionDefinition> {
    return this.exclusive(() => this.defineNow(req));
  }

  private async defineNow(req: DefineRequest): Promise<PartitionDefinition> {
    if (typeof req.name !== "string" || !NAME_RE.test(req.name)) throw new OpsError(`partition name "${req.name}" is not 1–15 letters, digits, _ or - (a host's descriptor holds 16 bytes)`);
    if (typeof req.domain !== "string" || !DOMAIN_RE.test(req.domain)) throw new OpsError(`domain name "${req.domain}" is not valid`);
    const dom = this.domainOf(req.domain);
    if (dom.kind !== "partition") throw new OpsError(`domain ${dom.name} is a system domain: user partitions belong to a partition domain ([0244])`);
    const guid = req.guid ?? newGuid();
    if (!GUID_RE.test(guid)) throw new OpsError(`GUID "${guid}" is not a lower-case version-4 GUID`);
    if (this.defs.has(guid)) throw new OpsError(`GUID ${guid} is already the GUID of ${this.defs.get(guid)!.name} (every definition has its own)`);
    if ([...this.defs.values()].some((x) => x.name === req.name)) throw new OpsError(`a partition named ${req.name} exists already (names are unique in the estate: hosts know partitions by name)`);
    let channels = req.channels ?? [];
    let volume = req.volume;
    if (req.template !== undefined) {
      const t = this.get(req.template);
      if (t.stage !== "template") throw new OpsError(`${t.name} is in stage ${t.stage}, not a template: only templates are cloned ([0311])`);
      if (req.channels) throw new OpsError("a clone takes its template's channels; give none");
      channels = t.channels;
      volume = volume ?? (t.volume ? `${t.volume} (clone for ${req.name})` : undefined);
    }
    const isTemplate = req.stage === "template";
    if (req.stage !== undefined && req.stage !== "construction" && req.stage !== "template") throw new OpsError(`a definition starts in construction or template, not ${req.stage as string}`);
    this.checkChannels(channels, req.name);
    const configurations = req.configurations ?? [];
    const names = new Set<string>();
    for (const c of configurations) {
      this.checkConfig(c, isTemplate, req.name);
      if (names.has(c.name)) throw new OpsError(`${req.name}: two configurations named ${c.name}`);
      names.add(c.name);
    }
    for (const e of req.schedule ?? []) this.checkSchedule(e, configurations);
    const d: PartitionDefinition = {
      guid, name: req.name, domain: req.domain, stage: isTemplate ? "template" : "construction", state: isTemplate ? "disabled" : "uninstalled",
      channels: structuredClone(channels), configurations: structuredClone(configurations),
      ...(volume !== undefined ? { volume } : {}), ...(req.schedule ? { schedule: structuredClone(req.schedule) } : {}),
      history: [{ at: this.now, stage: isTemplate ? "template" : "construction", state: isTemplate ? "disabled" : "uninstalled", what: req.template ? `cloned from template ${req.template}` : "defined" }],
    };
    this.checkHosts(d);
    await this.save(d);
    return structuredClone(d);
  }

  private checkSchedule(e: ScheduleEntry, configurations: Configuration[]): void {
    if (!e || !e.when) throw new OpsError("a schedule entry needs when: { day, time } or { monthday, time }");
    checkWhen(e.when);
    if (!["running", "paused", "stopped"].includes(e.state)) throw new OpsError(`a schedule evaluates to running, paused or stopped ([0308]), not ${e.state as string}`);
    if (e.configuration !== undefined && !configurations.some((c) => c.name === e.configuration)) throw new OpsError(`schedule names configuration ${e.configuration}, which the partition does not have`);
  }

  /** Adds a configuration ([0301]). */
  addConfiguration(id: string, c: Configuration): Promise<PartitionDefinition> {
    return this.exclusive(() => this.addConfigurationNow(id, c));
  }

  private async addConfigurationNow(id: string, c: Configuration): Promise<PartitionDefinition> {
    const d = this.get(id);
    if (d.stage === "decommissioned") throw new OpsError(`${d.name} is decommissioned: its definition is kept for reference only`);
    this.checkConfig(c, d.stage === "template", d.name);
    if (d.configurations.some((x) => x.name === c.name)) throw new OpsError(`${d.name} has a configuration named ${c.name} already`);
    const next = { ...d, configurations: [...d.configurations, structuredClone(c)] };
    this.checkHosts(next);
    await this.save(next);
    return structuredClone(next);
  }

  /** Selects the configuration the next start uses ([0300]). */
  configure(id: string, name: string): Promise<PartitionDefinition> {
    return this.exclusive(() => this.configureNow(id, name));
  }

  private async configureNow(id: string, name: string): Promise<PartitionDefinition> {
    const d = this.get(id);
    if (d.stage === "decommissioned" || d.stage === "template" || d.stage === "construction") throw new OpsError(`${d.name}: a configuration is selected in provisioning, operating, manual or disabled, not ${d.stage}`);
    if (!d.configurations.some((c) => c.name === name)) throw new OpsError(`${d.name} has no configuration ${name} (it has ${d.configurations.map((c) => c.name).join(", ")})`);
    const next = { ...d, next: name };
    await this.save(next);
    return structuredClone(next);
  }

  setSchedule(id: string, schedule: ScheduleEntry[]): Promise<PartitionDefinition> {
    return this.exclusive(() => this.setScheduleNow(id, schedule));
  }

  private async setScheduleNow(id: string, schedule: ScheduleEntry[]): Promise<PartitionDefinition> {
    const d = this.get(id);
    for (const e of schedule) this.checkSchedule(e, d.configurations);
    const next = { ...d, schedule: structuredClone(schedule) };
    await this.save(next);
    return structuredClone(next);
  }

  /** Moves a definition through the life cycle (ops/lifecycle.ts); host effects through the command partition. */
  transition(id: string, action: Action | string): Promise<PartitionDefinition> {
    return this.exclusive(() => this.transitionNow(id, action));
  }

  private async transitionNow(id: string, action: Action | string): Promise<PartitionDefinition> {
    const d = this.get(id);
    const rule = decide(d, action);
    if (typeof rule === "string") throw new OpsError(rule);
    const stage = rule.to ?? d.stage;
    let state: State = rule.toState ?? d.state;
    const history = [...d.history];
    let placement = d.placement;
    let active = d.active;
    let configurations = d.configurations;
    if (rule.host === "place") {
      const config = this.configOf(d);
      history.push({ at: this.now, stage, state: "starting", what: `start with configuration ${config.name}` });
      placement = this.place(d, config);
      active = config.name;
    } else if (rule.host === "release" || (rule.host === "release-if-active" && (ACTIVE as readonly string[]).includes(d.state))) {
      this.release(d);
      placement = undefined;
    }
    if (stage === "template") {
      // [0311]: a template never has processors or memory assigned.
      configurations = configurations.map((c) => ({ ...c, memory: 0, vcpus: 0 }));
    }
    if (rule.toState === undefined) state = d.state;
    history.push({ at: this.now, stage, state, what: `${action}${placement && rule.host === "place" ? ` on ${placement.host} as partition ${placement.partition}` : ""}` });
    const next: PartitionDefinition = { ...d, stage, state, configurations, history };
    if (placement) next.placement = placement;
    else delete next.placement;
    if (active !== undefined) next.active = active;
    if (rule.host === "place") delete next.next;
    try {
      await this.save(next);
    } catch (e) {
      // The store refused: undo the host side so that nothing changed.
      if (rule.host === "place" && placement) this.release({ ...d, placement });
      throw e;
    }
    return structuredClone(next);
  }

  private configOf(d: PartitionDefinition): Configuration {
    const name = d.next ?? d.active ?? d.configurations[0]?.name;
    const c = d.configurations.find((x) => x.name === name);
    if (!c) throw new OpsError(`${d.name} has no configuration to start with`);
    return c;
  }

  private async save(d: PartitionDefinition): Promise<void> {
    await this.store.commit([{ put: d }]);
    this.defs.set(d.guid, structuredClone(d));
  }

  // ------------------------------------------------------------------------------------------------ hosts

  /** Memory of a host not yet given to partitions the policy service placed there. */
  freeMemory(host: string): number {
    const h = this.hosts.get(host);
    if (!h) return 0;
    let used = 0;
    for (const d of this.defs.values()) {
      if (d.placement?.host !== host) continue;
      used += d.configurations.find((c) => c.name === d.active)?.memory ?? 0;
    }
    return h.def.memory - used;
  }

  /** [0098], [0183]: selects a host with the zones and sends the definition to its command partition. */
  private place(d: PartitionDefinition, config: Configuration): { host: string; partition: number } {
    const channels = channelsOf(d, config);
    const candidates = rankHosts(this.estateValue, d.domain, channels, (h) => this.freeMemory(h));
    if (candidates.length === 0) throw new OpsError(`${d.name}: no host of domain ${d.domain} offers ${channels.map(zoneKey).join(", ")}`);
    const refusals: string[] = [];
    for (const h of candidates) {
      const sim = this.hosts.get(h.name);
      if (!sim) {
        refusals.push(`${h.name}: not running`);
        continue;
      }
      try {
        const partition = sim.platform.definePartition({
          name: d.name, kind: "Guest", memory: BigInt(config.memory),
          vcpus: Array.from({ length: config.vcpus }, () => ({ duty: DEFAULT_DUTY })),
          channels: channels.filter((c) => PHYSICAL.has(c.type)).map((c) => ({ type: c.type as "console" | "network" | "storage", server: HOST_IO })),
        });
        // The host's new schedule takes effect when its cycle wraps ([0147]): let one cycle of 16 quanta pass.
        sim.platform.advance(16n);
        return { host: h.name, partition };
      } catch (e) {
        if (e instanceof TypeError || e instanceof ReferenceError) throw e;
        refusals.push(`${h.name}: ${(e as Error).message}`);
      }
    }
    throw new OpsError(`${d.name}: every matching host refused it: ${refusals.join("; ")}`);
  }

  /**
   * A host was lost (its liveness lease expired, ops/liveness.ts; docs/specs/operations.md §7): it is no longer a
   * placement target, and every partition that should be active there is placed again on a host that has its zones
   * and room ([0307]: a partition outlives its host), or, when none has, stopped with the reason. Returns one line
   * per partition it moved or stopped. A host already lost is a no-op.
   */
  hostDown(name: string, why = "its lease expired"): Promise<string[]> {
    return this.exclusive(async () => {
      if (!this.hosts.delete(name)) return [];
      const out: string[] = [];
      const victims = [...this.defs.values()].filter((d) => d.placement?.host === name && category(d.state) === "active").sort((a, b) => a.name.localeCompare(b.name));
      for (const d of victims) {
        const { placement: _gone, ...rest } = d;
        try {
          const placement = this.place(rest, this.configOf(d));
          const what = `re-hosted from ${name} to ${placement.host} as partition ${placement.partition} (${name}: ${why})`;
          await this.save({ ...rest, placement, history: [...d.history, { at: this.now, stage: d.stage, state: d.state, what }] });
          out.push(`${d.name}: ${what}`);
        } catch (e) {
          if (e instanceof TypeError || e instanceof ReferenceError) throw e;
          const what = `stopped: host ${name} lost (${why}) and ${(e as Error).message}`;
          await this.save({ ...rest, state: "stopped", history: [...d.history, { at: this.now, stage: d.stage, state: "stopped", what }] });
          out.push(`${d.name}: ${what}`);
        }
      }
      return out;
    });
  }

  /** [0186]: the stop request goes to the host's command partition; its resources are reclaimed. */
  private release(d: PartitionDefinition): void {
    if (!d.placement) return;
    const sim = this.hosts.get(d.placement.host);
    if (!sim || !sim.platform.rs.names().has(d.name)) return;
    sim.platform.stop(d.name);
    sim.platform.advance(16n);
  }

  hostView(name: string): HostView {
    const sim = this.hosts.get(name);
    if (!sim) throw new OpsError(`no host ${name}`);
    const pf = sim.platform;
    const owned = pf.host.view.ownedBytes();
    const memoryMap = [...owned].map(([p, bytes]) => ({ owner: pf.nameOf(p), partition: p, bytes: Number(bytes) })).sort((a, b) => b.bytes - a.bytes);
    return {
      name, memory: sim.def.memory, pcpus: sim.def.pcpus, zones: sim.def.zones.map(zoneKey), memoryMap,
      schedule: pf.scheduleData().pcpus.map((p) => ({ pcpu: p.pcpu, busy: p.busy, quanta: p.quanta })),
      partitions: [...pf.rs.names().keys()],
    };
  }

  // ------------------------------------------------------------------------------------------------ schedules

  /** Fires every schedule entry of operating partitions up to simulated minute `t`, in time order ([0308]). */
  advanceTo(t: number): Promise<void> {
    return this.exclusive(() => this.advanceToNow(t));
  }

  private async advanceToNow(t: number): Promise<void> {
    if (t < this.now) throw new OpsError(`simulated time runs forward: ${t} < ${this.now}`);
    const due: Array<{ at: number; guid: string; i: number }> = [];
    for (const d of this.defs.values()) {
      if (d.stage !== "operating") continue;
      (d.schedule ?? []).forEach((e, i) => {
        for (const at of occurrences(e.when, this.epoch, this.now, t)) due.push({ at, guid: d.guid, i });
      });
    }
    due.sort((a, b) => a.at - b.at || a.guid.localeCompare(b.guid) || a.i - b.i);
    for (const x of due) {
      this.now = x.at;
      const d = this.defs.get(x.guid)!;
      if (d.stage !== "operating") continue;
      const e = d.schedule![x.i]!;
      try {
        await this.fire(d, e);
      } catch (err) {
        this.log.push(`${this.clock(x.at)} ${d.name}: schedule to ${e.state} refused: ${(err as Error).message}`);
      }
    }
    this.now = t;
  }

  private async fire(d: PartitionDefinition, e: ScheduleEntry): Promise<void> {
    const act = async (a: Action): Promise<void> => {
      await this.transitionNow(d.guid, a);
      this.log.push(`${this.clock(this.now)} ${d.name}: ${a}`);
    };
    if (e.configuration !== undefined && e.configuration !== (this.defs.get(d.guid)!.active) && e.state !== "stopped") {
      const cur = this.defs.get(d.guid)!;
      if (cur.state === "running" || cur.state === "paused") await act("stop");
      await this.configureNow(d.guid, e.configuration);
    } else if (e.configuration !== undefined) {
      await this.configureNow(d.guid, e.configuration);
    }
    const s = this.defs.get(d.guid)!.state;
    if (e.state === "running") {
      if (s === "stopped" || s === "saved") await act("start");
      else if (s === "paused") await act("resume");
    } else if (e.state === "paused") {
      if (s === "stopped" || s === "saved") await act("start");
      if (this.defs.get(d.guid)!.state === "running") await act("pause");
    } else if (s === "running" || s === "paused") await act("stop");
  }

  /** Simulated minute as an ISO-like UTC time. */
  clock(minute: number): string {
    return new Date(this.epoch.getTime() + minute * 60_000).toISOString().slice(0, 16).replace("T", " ");
  }
}
