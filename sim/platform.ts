// A booted simulated host with its service partitions: the boot partition builds the database and defines the
// command partition with its command channel to the ultravisor, then designates it ([0090], [0174]); from then on
// the command partition's resource service creates and stops partitions end to end through that channel:
// descriptor and memory (placement with node affinity), channels to their servers ([0132], cardinality checked at
// definition), VCPUs and the schedule ([0134]–[0153]), and the stop sequence of [0186]. I/O partitions are modelled
// by their console servers, which print each guest's text tagged with its name.
import { ChannelDefinitionError, chanExports, ChannelType, checkCardinality, type ChannelTypeName } from "../core/channel.ts";
import { ChannelBus, consoleRequests, consoleText, type Channel } from "./channel-bus.ts";
import { HostChannelMemory } from "./channel-memory.ts";
import {
  CMD, COMMAND_SIGNAL_SIZE, COMMAND_SLOTS, CommandClient, UltravisorCommandServer, type CommandSignal,
} from "./command-channel.ts";
import { DbError, errorName } from "../core/database.ts";
import { CorePanic } from "../core/wasm.ts";
import { Host, type HostConfig } from "./host.ts";
import { formatBytes } from "../core/mapview.ts";
import { CHANNEL_TYPE_NAMES, KIND, kindName, pn, type KindName, type Transaction } from "../core/notation.ts";
import { COMMAND_LINE, COMMAND_LINE_ERRORS, COMMAND_VERBS } from "../core/boot-module.ts";
import { placeMemory } from "./placement.ts";
import { ResourceService } from "./resource-service.ts";
import { NONE, readSchedule, ScheduleControl, Scheduler } from "../core/schedule.ts";
import { choosePcpus, Topology, type NodeConfig } from "./topology.ts";

export interface VcpuDef {
  /** Sixteenths of a physical CPU (1–16). */
  duty: number;
  dedicated?: boolean;
  /** ACPI C-state; only C0 VCPUs are scheduled. */
  cstate?: number;
  /** The processor it prefers ([0148]), when the host has it and it has room. */
  pcpu?: number;
}

export interface ChannelDef {
  type: ChannelTypeName;
  /** Name of the serving partition, or "Ultravisor". */
  server: string;
}

export interface PartitionDef {
  name: string;
  kind?: KindName;
  user?: string;
  memory: bigint;
  /** NUMA node to prefer for memory and processors (default 0). */
  node?: number;
  vcpus: VcpuDef[];
  /** Channels in channel-number order; a control channel to the ultravisor is added first when none is listed. */
  channels?: ChannelDef[];
}

export interface PlatformConfig {
  pcpus: number;
  nodes?: NodeConfig[];
}

/**
 * What the boot partition creates before it designates the command partition: the system partitions in order (I/O
 * and command partitions; the command partition is the one of kind Command, if any), and the ultravisor partition's
 * share of the processors. Default: a command partition "Command" of 64 MB with one VCPU at 4/16.
 */
export interface BootPartitions {
  system: PartitionDef[];
  ultravisor?: { name: string; duty: number };
}

export const DEFAULT_COMMAND: PartitionDef = {
  name: "Command", kind: "Command", user: "System", memory: 64n << 20n, vcpus: [{ duty: 4 }], channels: [{ type: "command", server: "Ultravisor" }],
};

/** A line typed on the serial console that the command partition refused (docs/specs/command-channel.md): nothing changed. */
export class LineRefused extends Error {
  override name = "LineRefused";
  constructor(readonly status: number, readonly code: string, readonly answer: string) {
    super(answer);
  }
}

export class PlatformError extends Error {
  override name = "PlatformError";
}

/** A boot-time partition the host could not create; `platform` is the host as far as it got. */
export class BootFailure extends Error {
  override name = "BootFailure";
  constructor(readonly partition: string, readonly platform: Platform, readonly reason: Error) {
    super(`creating ${partition}: ${reason.message}`);
  }
}

interface VcpuRecord {
  id: number;
  partition: number;
  label: string;
  duty: number;
  dedicated: boolean;
  cstate: number;
  pcpu: number;
}

const IDLE_VCPU_BASE = 0x10000;
/**
 * Quanta without a heartbeat after which the ultravisor restarts a failed partition. The simulator's heartbeat is the
 * partition's running VCPU; one schedule cycle (16 quanta) without it is death here (the machine's rule:
 * command-channel.md, "Recovery of system partitions").
 */
const HEARTBEAT_QUANTA = 16n;
/** Where a typed line and its parsed record lie while the line reader runs: in core's request buffer, below the builders' payload. */
const LINE_SCRATCH = 0x7c00;
const MAX_VCPUS = 4096;

export class Platform {
  readonly rs: ResourceService;
  readonly bus: ChannelBus;
  readonly memory: HostChannelMemory;
  readonly topology: Topology;
  readonly ultravisor: UltravisorCommandServer;
  readonly scheduler: Scheduler;
  readonly control: ScheduleControl;
  /** Current quantum (the simulated timer). */
  now = 0n;
  /** Lines the platform's partitions printed or reported, in order (console text, stop steps). */
  readonly events: string[] = [];
  /** The command partition's name, or undefined on a host whose boot partition creates every partition. */
  readonly commandName: string | undefined;
  private command: CommandClient | undefined;
  private readonly clients = new Map<string, CommandClient>();
  private readonly vcpus = new Map<string, VcpuRecord[]>();
  private nextVcpu = 1;
  /** Servers with in-flight I/O: their disconnects wait for ioComplete ([0182]). */
  private readonly busyServers = new Set<string>();
  private readonly deferred = new Map<string, Channel[]>();
  private readonly stopping = new Set<string>();
  /** Partitions a fault stopped (their heartbeat with them): when, and their VCPUs, for the restart. */
  private readonly failed = new Map<string, { at: bigint; vcpus: VcpuRecord[] }>();
  /** Lines typed while the command partition was down: the I/O partition's queue to it holds them. */
  private readonly pendingLines: string[] = [];
  /** Every definition the platform created a partition from, by name: what `restart` re-creates. */
  private readonly definitions = new Map<string, PartitionDef>();

  private constructor(readonly host: Host, cfg: PlatformConfig, boot: BootPartitions, private readonly print: (line: string) => void) {
    this.rs = new ResourceService(host);
    this.topology = new Topology(host.installed, cfg.pcpus, cfg.nodes);
    const core = host.core;
    this.scheduler = new Scheduler(core, this.topology.pcpus, MAX_VCPUS);
    this.control = new ScheduleControl(this.scheduler.sched, core);
    this.memory = new HostChannelMemory(host, this.rs.names(), (p) => this.evict(p));
    this.bus = new ChannelBus(core, chanExports(core), this.memory);
    this.ultravisor = new UltravisorCommandServer(host, this.bus, { stop: (p) => this.stopRequested(p) });
    this.commandName = boot.system.find((d) => d.kind === "Command")?.name;
    this.memory.onRelease = (client) => this.released(client);
    this.bus.onInterrupt("Ultravisor", (ch, q) => {
      if (q === 0) this.ultravisor.onRequests(ch);
    });
  }

  /**
   * Boots a host: the boot partition's transactions, the system partitions (I/O and command partitions with their
   * channels), SetCommand. Without a command partition the boot partition goes on creating every partition.
   */
  static async boot(hostCfg: HostConfig, cfg: PlatformConfig, print: (line: string) => void = () => {}, boot: BootPartitions = { system: [DEFAULT_COMMAND] }): Promise<Platform> {
    const host = await Host.create(hostCfg);
    const pf = new Platform(host, cfg, boot, print);
    const ui = host.db.indexPage();
    // The boot partition submits through db_submit_as as Boot: core accepts it only while no command partition is set.
    host.transport = (tx) => host.db.trySubmitAs(tx, ui.boot);
    if (boot.ultravisor) pf.runUltravisor(boot.ultravisor.name, boot.ultravisor.duty);
    for (const d of boot.system) {
      try {
        pf.definePartition(d);
      } catch (e) {
        if (e instanceof CorePanic || e instanceof TypeError || e instanceof ReferenceError) throw e;
        throw new BootFailure(d.name, pf, e as Error);
      }
    }
    if (pf.commandName !== undefined) {
      const p = pf.rs.resolve(pf.commandName);
      const command = pf.command;
      if (!command) throw new PlatformError(`the command partition ${pf.commandName} has no command channel to the ultravisor`);
      host.submit({ ops: [{ op: "setCommand", to: p, from: 0 }] }, "designate the command partition");
      // From here on the resource service's requests travel the command channel.
      host.transport = (tx) => command.submit(tx);
    }
    return pf;
  }

  /**
   * The ultravisor partition's VCPU: the resource manager runs deprivileged with its own share of a processor ([0159]),
   * as on the machine. It is the database's Ultravisor pseudo partition; `label` is the host definition's name for it.
   */
  private runUltravisor(label: string, duty: number): void {
    const ui = this.host.db.indexPage();
    const [pcpu] = choosePcpus(this.topology, 0, this.load(), [{ duty, dedicated: false }], label);
    this.vcpus.set("Ultravisor", [{ id: this.nextVcpu++, partition: ui.ultra, label: `${label}.0`, duty, dedicated: false, cstate: 0, pcpu: pcpu! }]);
    this.print(`  VCPUs: ${label}.0 ${duty}/16 on PCPU ${pcpu} (the ultravisor partition)`);
    this.reschedule();
  }

  /** The channel's slot in core's channel table: the number the transactions print. */
  slotOf(ch: Channel): number {
    return this.host.db.channels().find((c) => c.base * 4096 === ch.base)?.slot ?? -1;
  }

  /** Name of a partition number (for printing). */
  nameOf(p: number): string {
    for (const [n, q] of this.rs.names()) if (q === p) return n;
    return pn(p);
  }

  private clientEnd(name: string, ch: Channel): CommandClient {
    const c = new CommandClient(this.bus, ch, name, (e) => this.onEvent(e));
    this.clients.set(name, c);
    return c;
  }

  /** One interrupt handler per partition, dispatching by channel and queue. */
  private listen(name: string): void {
    this.bus.onInterrupt(name, (ch, q) => {
      if (ch.client === name && q === 1) this.clients.get(name)?.onResponses();
      else if (ch.server === name && q === 0) this.serve(name, ch);
    });
  }

  /** A server partition's model: console channels print the client's text tagged with its name. */
  private serve(server: string, ch: Channel): void {
    // A failed server runs no code: the requests stay queued in the client's memory until it is restarted.
    if (this.failed.has(server)) return;
    for (const sig of this.bus.drain(ch, 0)) {
      const check = this.bus.validateRequest(ch, sig);
      if (!check.ok) {
        this.report(`${server}: rejected a request on channel ${this.slotOf(ch)} from ${ch.client}: ${check.name}`);
        continue;
      }
      const text = ch.spec.type === "console" ? consoleText(sig) : null;
      if (text !== null) for (const line of text.replace(/\n$/, "").split("\n")) this.report(`[${ch.client}] ${line}`);
    }
  }

  private report(line: string): void {
    this.events.push(line);
    this.print(`  ${line}`);
  }

  // ------------------------------------------------------------------------------------------ create

  /** Defines and starts a partition end to end (the resource service's work, [0183]); returns its number. */
  definePartition(def: PartitionDef): number {
    if (this.rs.names().has(def.name)) throw new PlatformError(`a partition named "${def.name}" exists already`);
    const kind = def.kind ?? "Guest";
    if (!(kind in KIND) || KIND[kind] <= KIND.Ultravisor) throw new PlatformError(`partition kind ${kind} cannot be defined (Guest, IO, Command or Operations)`);
    const channels = [...(def.channels ?? [])];
    if (!channels.some((c) => c.type === "control")) channels.unshift({ type: "control", server: "Ultravisor" });
    // Everything that can be refused is checked before the first transaction.
    checkCardinality(this.host.core, chanExports(this.host.core), "guest", channels.map((c) => c.type));
    for (const c of channels) {
      if (c.server === def.name) throw new ChannelDefinitionError(`${def.name} cannot serve its own ${c.type} channel`);
      if (c.server !== "Ultravisor" && !this.rs.names().has(c.server)) {
        throw new ChannelDefinitionError(`the ${c.type} channel's server "${c.server}" is not a running partition`);
      }
      if (this.stopping.has(c.server)) throw new ChannelDefinitionError(`the ${c.type} channel's server "${c.server}" is stopping`);
    }
    if (def.vcpus.length === 0) throw new PlatformError(`${def.name} needs at least one VCPU`);
    const node = def.node ?? 0;
    const nodeInfo = this.topology.node(node);
    // Only C0 VCPUs take processor time ([0139]); the others keep a nominal CPU for when they wake.
    const c0 = def.vcpus.filter((v) => !v.cstate);
    const chosen = choosePcpus(this.topology, node, this.load(), c0.map((v) => ({ duty: v.duty, dedicated: !!v.dedicated, ...(v.pcpu !== undefined ? { pcpu: v.pcpu } : {}) })), def.name);
    const nodeCpu = nodeInfo.pcpus[0]!;
    let k = 0;
    const pcpus = def.vcpus.map((v) => (v.cstate ? nodeCpu : chosen[k++]!));
    // Memory: contiguous first, then fewest splits, on the node first.
    const placed = placeMemory(this.host, this.rs, def.memory, { base: nodeInfo.base, end: nodeInfo.end, name: `node ${node}` });
    const p = this.rs.create({ name: def.name, kind: KIND[kind], principal: def.user ?? `User${def.name}`.slice(0, 16), at: placed.runs });
    this.definitions.set(def.name, def);
    this.print(`  memory: ${formatBytes(def.memory)} ${placed.contiguous ? "contiguous" : `in ${placed.runs.length} runs`}, ${placed.splits} split(s), from ${placed.where}`);
    this.listen(def.name);
    try {
      for (const c of channels) {
        const ch = this.bus.create({
          client: def.name, server: c.server, type: c.type,
          ...(c.type === "command" ? { signalSize: COMMAND_SIGNAL_SIZE, slots: COMMAND_SLOTS } : { signalSize: 256, slots: 16 }),
        });
        if (c.server === "Ultravisor") this.clientEnd(def.name, ch);
        if (c.type === "command" && def.name === this.commandName) this.command = this.clients.get(def.name)!;
        this.print(`  channel ${this.slotOf(ch)}: ${c.type} at ${pn(ch.base / 4096)}, ${ch.bytes / 4096} page(s), client ${def.name}, server ${c.server}`);
      }
    } catch (e) {
      this.abandon(def.name, p);
      throw e;
    }
    const recs = def.vcpus.map((v, i): VcpuRecord => ({
      id: this.nextVcpu++, partition: p, label: `${def.name}.${i}`, duty: v.dedicated ? 16 : v.duty, dedicated: !!v.dedicated,
      cstate: v.cstate ?? 0, pcpu: pcpus[i]!,
    }));
    this.vcpus.set(def.name, recs);
    const where = (r: VcpuRecord): string => (r.cstate ? `in C${r.cstate}, not scheduled` : `on PCPU ${r.pcpu}`);
    this.print(`  VCPUs: ${recs.map((r) => `${r.label} ${r.dedicated ? "dedicated" : `${r.duty}/16`} ${where(r)}`).join(", ")}`);
    this.reschedule();
    return p;
  }

  /**
   * Wakes a partition whose VCPUs were defined in a C-state (not scheduled): they are given processors and the
   * schedule is recomputed, taking effect when the cycle wraps ([0147]). The data center defines an incoming migrated
   * partition this way — its memory held on the destination's database, its processors parked — and wakes it at
   * switch-over (docs/specs/datacenter.md §4). Refused, changing nothing, when the processors have no room.
   */
  wake(name: string): void {
    const recs = this.vcpus.get(name);
    if (!recs) throw new PlatformError(`${name} is not a partition with VCPUs on this host`);
    const parked = recs.filter((r) => r.cstate !== 0);
    if (parked.length === 0) return;
    const node = Math.max(0, this.topology.nodeOfPcpu(parked[0]!.pcpu));
    const chosen = choosePcpus(this.topology, node, this.load(), parked.map((r) => ({ duty: r.duty, dedicated: r.dedicated })), name);
    parked.forEach((r, i) => {
      r.cstate = 0;
      r.pcpu = chosen[i]!;
    });
    this.reschedule();
  }

  /**
   * Undoes a definition that failed after its create transaction (a channel could not be made): its channels are
   * disconnected and removed and the partition destroyed in one transaction, so nothing half-made remains.
   */
  private abandon(name: string, p: number): void {
    const channels = this.bus.channelsOf(name).filter((c) => c.client === name);
    for (const ch of channels) if (ch.server !== null) this.bus.disconnect(ch);
    this.rs.destroy(p, this.memory.removeChannelOps(p));
    this.bus.forget(name);
    this.clients.delete(name);
    this.print(`  definition of ${name} abandoned: its channels and memory are given back`);
  }

  /** Quanta per cycle promised on each PCPU by the VCPUs defined so far. */
  private load(): number[] {
    const load = new Array<number>(this.topology.pcpus).fill(0);
    for (const list of this.vcpus.values()) for (const v of list) if (v.cstate === 0) load[v.pcpu]! += v.duty;
    return load;
  }

  /** Computes the schedule of every live VCPU and installs it; it takes effect when the current cycle wraps ([0147]). */
  private reschedule(): void {
    const all = [...this.vcpus.values()].flat();
    const ui = this.host.db.indexPage();
    const { table } = this.scheduler.compute(
      all.map((v) => ({ vcpu: v.id, partition: v.partition, duty: v.duty, cstate: v.cstate, dedicated: v.dedicated, affinity: v.pcpu })),
      this.topology.pcpus, { partition: ui.idle, vcpuBase: IDLE_VCPU_BASE }, this.control,
    );
    const gen = this.control.install(table, this.now);
    const active = this.control.tableAt(this.now) === table;
    this.print(`  schedule generation ${gen} ${active ? "in effect now" : `takes effect at quantum ${(this.now / 16n + 1n) * 16n}`}`);
  }

  /** [0153]: the partition's entries in the tables monitors read are given to the idle VCPUs at once. */
  private evict(p: number): void {
    let n = 0;
    for (const t of this.control.inUse()) n += this.scheduler.sched.sched_evict(t, p);
    this.report(`processors of ${this.nameOf(p)} reclaimed at once: ${n} quanta given to the idle partition`);
  }

  // ------------------------------------------------------------------------------------------ guests' actions

  /** A guest writes text on its console channel. */
  console(from: string, text: string): void {
    const ch = this.bus.channelsOf(from).find((c) => c.client === from && c.spec.type === "console");
    if (!ch) throw new PlatformError(`${from} has no console channel`);
    for (const sig of consoleRequests(text, ch.spec.signalSize)) {
      if (!this.bus.send(ch, 0, from, sig)) throw new PlatformError(`console channel of ${from} is full`);
    }
  }

  /**
   * Sends a transaction to the ultravisor from `from`, over its channel to the ultravisor (the command channel for
   * the command partition, the control channel for anyone else). Returns core's status.
   */
  submitFrom(from: string, tx: Transaction): number {
    const c = this.clients.get(from);
    if (!c) throw new PlatformError(`${from} has no channel to the ultravisor`);
    const rc = c.submit(tx);
    if (rc === 0) this.host.committed(tx);
    return rc;
  }

  // ------------------------------------------------------------------------------------------ stop ([0186])

  /** The operations partition's "stop X": the command partition asks the ultravisor over the command channel. */
  stop(name: string, opts: { inflight?: string[] } = {}): void {
    const p = this.rs.resolve(name);
    if (name === this.commandName) throw new PlatformError("the command partition cannot stop itself");
    if (!this.command) throw new PlatformError("this host has no command partition: the boot partition created every partition and nothing stops one");
    if (this.stopping.has(name)) throw new PlatformError(`${name} is stopping already`);
    for (const s of opts.inflight ?? []) this.busyServers.add(s);
    const rc = this.command.stop(p);
    if (rc < 0) throw new DbError(rc, -1, `stop ${name}`);
  }

  /**
   * A line an operator typed on the serial console, as the command partition takes it from the I/O partition
   * (docs/specs/command-channel.md, "Run-time definitions on the serial console"): read by the machine's own line
   * reader (core/boot/assembly/command-line.ts, run by V8) against the database, then carried out — create (one VCPU
   * at 1/16, a control channel added), stop (the teardown of [0186]; the definition kept), destroy (stop, and the
   * definition forgotten), restart (stop, then create from the kept definition). Returns the command partition's
   * answer line; a refused line throws LineRefused with that answer, and nothing has changed.
   */
  typed(text: string): string {
    if (!this.command) throw new PlatformError("this host has no command partition to read console lines");
    if (this.commandName !== undefined && this.failed.has(this.commandName)) {
      this.pendingLines.push(text);
      const answer = `${this.commandName} is down: the line waits in the I/O partition's queue`;
      this.report(answer);
      return answer;
    }
    return this.answerLine(text);
  }

  /** The command partition reads one line and carries it out (typed). */
  private answerLine(text: string): string {
    const bytes = Buffer.from(text, "latin1");
    const req = this.host.db.requestBuffer();
    const lineAt = req + LINE_SCRATCH;
    const out = lineAt + 128;
    const mem = new Uint8Array(this.host.memory.buffer);
    mem.set(bytes.subarray(0, COMMAND_LINE.maxText + 1), lineAt);
    const reader = this.host.lineReader();
    let status = reader.parse(lineAt, bytes.length, out);
    if (status > 0) status = reader.check(this.host.db.indexPage().index, out, 4 << 20);
    if (status < 0) {
      const e = COMMAND_LINE_ERRORS[status]!;
      const answer = `refused: ${e.text} (status ${status})`;
      this.report(`${this.commandName ?? "Command"}: ${answer}`);
      throw new LineRefused(status, e.name, answer);
    }
    const v = new DataView(this.host.memory.buffer);
    const ascii = (at: number): string => {
      let r = "";
      for (let i = 0; i < 16 && mem[at + i] !== 0; i++) r += String.fromCharCode(mem[at + i]!);
      return r;
    };
    const verb = COMMAND_VERBS[v.getUint32(out + COMMAND_LINE.verb, true)]!;
    const name = ascii(out + COMMAND_LINE.name);
    let answer: string;
    if (verb === "create") {
      const channels: ChannelDef[] = [];
      for (let k = 0; k < v.getUint32(out + COMMAND_LINE.channels, true); k++) {
        const c = out + COMMAND_LINE.channel + k * COMMAND_LINE.channelBytes;
        channels.push({ type: CHANNEL_TYPE_NAMES[v.getUint32(c, true)] as ChannelTypeName, server: ascii(c + 4) });
      }
      const p = this.definePartition({ name, memory: v.getBigUint64(out + COMMAND_LINE.memory, true), vcpus: [{ duty: 1 }], channels });
      answer = `${name}: created partition ${pn(p)}`;
    } else {
      this.stop(name);
      const gone = !this.rs.names().has(name);
      if (verb === "destroy") this.definitions.delete(name);
      if (verb === "restart" && gone) {
        const p = this.definePartition(this.definitions.get(name)!);
        answer = `${name}: restarted partition ${pn(p)}`;
      } else answer = `${name}: ${gone ? (verb === "destroy" ? "destroyed" : "stopped") : "stopping (waits for in-flight I/O)"}`;
    }
    this.report(`${this.commandName ?? "Command"}: ${answer}`);
    return answer;
  }

  /** The ultravisor's side of STOP_PARTITION. */
  private stopRequested(p: number): number {
    const name = this.nameOf(p);
    if (!this.vcpus.has(name)) return -7;
    this.stopping.add(name);
    this.report(`polite shutdown request to ${name}'s operating system (control channel)`);
    // [0182]: a server closes and disconnects the channels it serves first.
    const served = [...this.bus.channelsOf(name)].filter((c) => c.server === name);
    if (served.length) {
      this.bus.stopServer(name);
      this.report(`${name} closed the ${served.length} channel(s) it serves`);
    }
    this.bus.stopClient(name, (ch) => this.askDisconnect(ch));
    // Processors are free now; the schedule without the partition replaces the old one when the cycle wraps.
    this.vcpus.delete(name);
    this.reschedule();
    return 0;
  }

  private askDisconnect(ch: Channel): void {
    const server = ch.server!;
    if (this.busyServers.has(server)) {
      this.deferred.set(server, [...(this.deferred.get(server) ?? []), ch]);
      this.report(`${server} finishes in-flight I/O before disconnecting channel ${this.slotOf(ch)} of ${ch.client}`);
      return;
    }
    this.report(`${server} disconnects channel ${this.slotOf(ch)} (${ch.spec.type}) of ${ch.client}`);
    this.bus.disconnect(ch);
  }

  /** A server's in-flight I/O completed: it disconnects the channels it was asked to. */
  ioComplete(server: string): void {
    this.busyServers.delete(server);
    const list = this.deferred.get(server) ?? [];
    this.deferred.delete(server);
    if (list.length === 0) this.report(`${server} had no disconnect pending`);
    for (const ch of list) {
      this.report(`${server} completed its in-flight I/O and disconnects channel ${this.slotOf(ch)} (${ch.spec.type}) of ${ch.client}`);
      this.bus.disconnect(ch);
    }
  }

  /** The last server disconnected: the ultravisor tells the resource service over the command channel. */
  private released(client: string): void {
    this.report(`last channel of ${client} disconnected: ultravisor sends PARTITION_RELEASED to the resource service`);
    if (this.command) this.ultravisor.notify(this.command.channel, CMD.PARTITION_RELEASED, this.rs.resolve(client));
  }

  /** The resource service's reaction to events from the ultravisor. */
  private onEvent(e: CommandSignal): void {
    if (e.opcode !== CMD.PARTITION_RELEASED) return;
    const name = this.nameOf(e.arg);
    this.rs.destroy(e.arg, this.memory.removeChannelOps(e.arg));
    this.stopping.delete(name);
    this.clients.delete(name);
    this.report(`memory of ${name} reclaimed; partition destroyed`);
  }

  // ------------------------------------------------------------------------------------------ schedule

  advance(quanta: bigint): void {
    this.now += quanta;
    this.control.tableAt(this.now); // the first lookup past the switch point promotes the pending table
    for (const [name, f] of [...this.failed]) {
      if (this.now - f.at >= HEARTBEAT_QUANTA) this.restartFailed(name, f.vcpus);
    }
  }

  /**
   * A fault injected by the host definition (docs/specs/command-channel.md, "Recovery of system partitions"): the
   * partition stops running at once — its VCPUs leave the schedule, and with them its heartbeat — but nothing of it
   * changes in the database: its memory, its descriptor and its channels (which live in their clients' memory) stay,
   * so what its clients send meanwhile waits in their queues. The ultravisor's watchdog restarts it (advance).
   */
  fail(name: string): void {
    const recs = this.vcpus.get(name);
    if (!recs || this.stopping.has(name)) throw new PlatformError(`${name} is not a running partition`);
    this.vcpus.delete(name);
    this.failed.set(name, { at: this.now, vcpus: recs });
    this.report(`${name} failed (fault injected) at quantum ${this.now}: its heartbeat stops`);
    this.reschedule();
  }

  /** The watchdog's restart: the partition from its definition (its window afresh on the machine), same memory and channels. */
  private restartFailed(name: string, vcpus: VcpuRecord[]): void {
    const f = this.failed.get(name)!;
    this.failed.delete(name);
    this.vcpus.set(name, vcpus);
    this.report(`ultravisor: no heartbeat from ${name} for ${this.now - f.at} quanta: restarted from its definition`);
    this.reschedule();
    // What queued while it was down, oldest first: every request of the channels it serves, the lines typed for it.
    for (const ch of this.bus.channelsOf(name)) if (ch.server === name) this.serve(name, ch);
    if (name === this.commandName) for (const line of this.pendingLines.splice(0)) this.answerLine(line);
  }

  /** The per-CPU quanta table in effect now: each PCPU's 16 quanta by VCPU label ("X.0", "idle"), busy count, flags. */
  scheduleData(): { generation: number; quantum: bigint; pcpus: Array<{ pcpu: number; busy: number; dedicated: boolean; idle: boolean; quanta: string[] }> } {
    const table = this.control.tableAt(this.now);
    const t = readSchedule(this.host.memory.buffer, table);
    const labels = new Map<number, string>();
    for (const list of this.vcpus.values()) for (const v of list) labels.set(v.id, v.label);
    // Evicted partitions' VCPUs are no longer listed; a stale id can only be an idle VCPU after sched_evict.
    const label = (vcpu: number): string => (vcpu >= IDLE_VCPU_BASE && vcpu !== NONE ? "idle" : labels.get(vcpu) ?? `v${vcpu}`);
    return {
      generation: t.generation, quantum: this.now,
      pcpus: t.rows.map((r, p) => ({ pcpu: p, busy: r.busy, dedicated: (r.flags & 1) !== 0, idle: (r.flags & 2) !== 0, quanta: r.entries.map((e) => label(e.vcpu)) })),
    };
  }

  /** The per-CPU quanta table in effect now, one line per PCPU. */
  formatSchedule(): string[] {
    const d = this.scheduleData();
    const w = Math.max(4, ...d.pcpus.flatMap((r) => r.quanta).map((c) => c.length));
    const out = [`schedule generation ${d.generation} at quantum ${d.quantum} (cycle of 16 quanta):`];
    out.push(`  PCPU  ${Array.from({ length: 16 }, (_, k) => String(k).padEnd(w)).join(" ")}`.trimEnd());
    for (const r of d.pcpus) {
      const flags = r.dedicated ? " dedicated" : r.idle ? " idle" : "";
      out.push(`  ${String(r.pcpu).padStart(4)}  ${r.quanta.map((c) => c.padEnd(w)).join(" ")}  busy ${r.busy}/16${flags}`);
    }
    return out;
  }

  /** Partition kinds by name, for summaries. */
  describe(name: string): string {
    const d = this.host.db.readDescriptor(this.rs.resolve(name));
    return d ? `${name} ${pn(d.me)} ${kindName(d.kind) ?? d.kind}` : name;
  }

  /** The audit log's refusals, with names. */
  rejections(): string[] {
    return this.host.db.readAudit().rejections.map((r) => `rejected submission from ${this.nameOf(r.submitter)} ${pn(r.submitter)}: ${errorName(r.code)} (before transaction ${r.nextSeq})`);
  }
}

export { ChannelType };
