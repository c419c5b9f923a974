// Runs a validated scenario on a simulated host: each operation becomes transactions through the resource service
// (or is given directly in patent notation), the log is printed as the spec prints it ([0222]–[0224]), expected
// outcomes are checked, and the final map is printed per scale.
import { CorePanic } from "../core/wasm.ts";
import { DbError, errorName } from "../core/database.ts";
import { Host } from "./host.ts";
import { formatBytes } from "../core/mapview.ts";
import { formatTransaction, parseLog, pn, type Transaction } from "../core/notation.ts";
import { ResourceService } from "./resource-service.ts";
import type { BootPlan, Operation, Scenario } from "./scenario.ts";
import { ChannelDefinitionError } from "../core/channel.ts";
import { ChannelError } from "./channel-bus.ts";
import { LineRefused } from "./platform.ts";
import { BootFailure, Platform, PlatformError } from "./platform.ts";
import { TopologyError } from "./topology.ts";

export interface RunResult {
  /** Failed expectations, each naming the scenario line. */
  failures: string[];
  host: Host;
  /** Transactions committed by each operation, in order. */
  logs: Transaction[][];
  /** Transactions of the boot (the boot partition's and, on a bootable host, the boot-time partitions'), in order. */
  bootLog: Transaction[];
  /** Each operation's outcome: the error name it ended with (undefined: success). */
  outcomes: Array<string | undefined>;
  /** The booted platform, for hosts with processors or partitions. */
  platform?: Platform;
  /** Partition names by number (the resource service's, and the pseudo partitions'). */
  names: Map<number, string>;
}

function describe(op: Operation): string {
  switch (op.kind) {
    case "create":
      return `create ${op.name}${op.size !== undefined ? ` (${formatBytes(op.size)})` : ""}`;
    case "destroy":
      return `destroy ${op.who}`;
    case "merge":
      return `merge Map${pn(op.map)} Index(${op.index})`;
    case "split":
      return `split Map${pn(op.map)} Index(${op.index})`;
    case "transaction":
      return "transaction";
    case "backup":
      return "backup";
    case "define":
      return `define ${op.def.kind ?? "Guest"} partition ${op.def.name} (${formatBytes(op.def.memory)}, ${op.def.vcpus.length} VCPU(s), ${(op.def.channels ?? []).map((c) => `${c.type}→${c.server}`).join(", ") || "no device channels"})`;
    case "stop":
      return `stop ${op.who}${op.inflight.length ? ` (in-flight I/O at ${op.inflight.join(", ")})` : ""}`;
    case "ioComplete":
      return `${op.server} completes its in-flight I/O`;
    case "console":
      return `${op.from} writes to its console`;
    case "serial":
      return `typed on the serial console: ${op.text}`;
    case "fail":
      return `fault injected into ${op.who}`;
    case "submit":
      return `${op.from} submits a transaction`;
    case "schedule":
      return "schedule";
    case "tick":
      return `advance ${op.quanta} quanta`;
  }
}

/** The name an error is matched by in `expectError:`. */
function codeOf(error: unknown): string | undefined {
  if (!error) return undefined;
  if (error instanceof DbError) return errorName(error.code);
  if (error instanceof ChannelDefinitionError) return "CHANNEL_DEFINITION";
  if (error instanceof LineRefused) return error.code;
  if (error instanceof TopologyError) return "NO_PROCESSOR";
  if (error instanceof PlatformError) return "PLATFORM";
  if (error instanceof ChannelError) return "CHANNEL";
  return "ERROR";
}

/** Names by partition number: the resource service's, which include the pseudo partitions' descriptors. */
function nameTable(rs: ResourceService): Map<number, string> {
  const out = new Map<number, string>();
  for (const [n, p] of rs.names()) out.set(p, n);
  return out;
}

/** The first boot-time partition the platform has not created: the one whose creation failed. */
function bootingName(pf: Platform, b: BootPlan): string | undefined {
  return [...b.system, ...b.guests].find((d) => !pf.rs.names().has(d.name))?.name;
}

/**
 * The rest of a bootable host's start: the guests, created by the command partition's resource service through the
 * command channel (by the boot partition when the host has no command partition), each guest's probe of the command
 * channel (refused and audited, as on the machine), and what the machine's programs do that the simulator does not
 * model. Transactions print as they commit.
 */
function bootGuests(pf: Platform, b: BootPlan, out: (l: string) => void): void {
  const by = pf.commandName !== undefined ? `the command partition ${pf.commandName}` : "the boot partition";
  const print = (tx: Transaction): void => {
    out("");
    for (const l of formatTransaction(tx)) out(l);
  };
  pf.host.listeners.push(print);
  try {
    for (const d of b.guests) {
      out("");
      out(`${by} creates ${d.name}:`);
      pf.definePartition(d);
    }
    for (const name of b.probeCommand) {
      out("");
      out(`${name} tries to submit a transaction over its channel to the ultravisor (behaviour.probeCommand):`);
      const before = pf.host.db.readAudit().rejections.length;
      const rc = pf.submitFrom(name, { ops: [{ op: "destroy", partition: pf.rs.resolve(name) }] });
      out(`  ${rc < 0 ? `refused: ${errorName(rc)}` : "accepted"}`);
      for (const l of pf.rejections().slice(before)) out(`  audit log: ${l}`);
    }
  } finally {
    pf.host.listeners.splice(pf.host.listeners.indexOf(print), 1);
  }
  for (const m of b.machineOnly) out(`${m.name}: on the machine only: ${m.what}`);
  // The schedule with every boot-time partition takes effect when the cycle wraps ([0147]).
  pf.advance(16n - (pf.now % 16n));
  out("");
  for (const l of pf.formatSchedule()) out(l);
}

export async function runScenario(s: Scenario, print: (line: string) => void, opts: { map?: boolean } = {}): Promise<RunResult> {
  const printed: string[] = [];
  const out = (l: string): void => {
    printed.push(l);
    print(l);
  };
  let pf: Platform | undefined;
  let host: Host;
  if (s.platform) {
    out(`Host: ${formatBytes(s.host.memory)}, ${s.platform.pcpus} processor(s)${s.platform.nodes ? ` in ${s.platform.nodes.length} nodes` : ""}${s.name ? ` — ${s.name}` : ""}`);
    out("");
    const b = s.boot;
    out(b
      ? `boot: the boot partition creates ${b.system.map((d) => d.name).join(", ") || "no system partition"}${b.system.some((d) => d.kind === "Command") ? " and designates the command partition" : ""}:`
      : "boot: the boot partition defines the command partition and its command channel, then designates it:");
    try {
      pf = await Platform.boot(s.host, s.platform, out, b ? { system: b.system, ...(b.ultravisor ? { ultravisor: b.ultravisor } : {}) } : undefined);
      host = pf.host;
      for (const tx of host.db.readLog()) {
        out("");
        for (const l of formatTransaction(tx)) out(l);
      }
      if (b) bootGuests(pf, b, out);
    } catch (e) {
      // A boot-time partition the host cannot hold (memory, processors, channels) ends the run: what follows would
      // assume it exists. The failure names the partition's line; a bug (a panic in core) keeps its stack.
      if (e instanceof CorePanic || e instanceof TypeError || e instanceof ReferenceError || !b) throw e;
      const at = e instanceof BootFailure ? e.platform : pf;
      if (!at) throw e;
      const name = e instanceof BootFailure ? e.partition : bootingName(at, b);
      const why = e instanceof BootFailure ? e.reason.message : (e as Error).message;
      const line = name !== undefined ? b.lines.get(name) : undefined;
      const failure = `${s.file}${line ? `:${line}` : ""}: boot${name !== undefined ? `: creating ${name}` : ""} failed: ${why}`;
      out(`  ${failure}`);
      return { failures: [failure], host: at.host, logs: [], bootLog: at.host.db.readLog(), outcomes: [], platform: at, names: nameTable(at.rs) };
    }
  } else {
    host = await Host.create(s.host);
    out(`Host: ${formatBytes(host.installed)} installed, map order ${host.order}${s.name ? ` — ${s.name}` : ""}`);
  }
  const rs = pf ? pf.rs : new ResourceService(host);
  // What the boot committed (the log since its last backup): the operations' transactions are collected below.
  const bootLog = host.db.readLog();
  const failures: string[] = [];
  const logs: Transaction[][] = [];
  const outcomes: Array<string | undefined> = [];
  let current: Transaction[] = [];
  host.listeners.push((tx) => {
    current.push(tx);
    // On a platform, transactions print as they commit, between the steps that cause them (teardown order).
    if (pf) {
      out("");
      for (const l of formatTransaction(tx)) out(l);
    }
  });
  for (const op of s.operations) {
    current = [];
    out("");
    out(`${op.title ?? describe(op)}:`);
    let error: unknown;
    try {
      switch (op.kind) {
        case "create":
          rs.create({
            name: op.name, ...(op.principal ? { principal: op.principal } : {}),
            ...(op.partitionKind ? { kind: op.partitionKind } : {}), ...(op.size !== undefined ? { size: op.size } : {}),
            ...(op.at ? { at: op.at } : {}),
          });
          break;
        case "destroy":
          rs.destroy(op.who);
          break;
        case "merge":
          rs.merge(op.map, op.index);
          break;
        case "split":
          rs.split(op.map, op.index, op.into);
          break;
        case "transaction":
          for (const tx of parseLog(op.text)) host.submit(tx, "transaction");
          break;
        case "backup":
          host.backup();
          break;
        case "define":
          pf!.definePartition(op.def);
          break;
        case "stop":
          pf!.stop(op.who, { inflight: op.inflight });
          break;
        case "ioComplete":
          pf!.ioComplete(op.server);
          break;
        case "console":
          pf!.console(op.from, op.text);
          break;
        case "serial":
          pf!.typed(op.text);
          break;
        case "fail":
          pf!.fail(op.who);
          break;
        case "submit": {
          const before = host.db.readAudit().rejections.length;
          try {
            for (const tx of parseLog(op.text)) {
              const rc = pf!.submitFrom(op.from, tx);
              if (rc < 0) throw new DbError(rc, -1, `submission from ${op.from}`);
            }
          } finally {
            for (const l of pf!.rejections().slice(before)) out(`  audit log: ${l}`);
          }
          break;
        }
        case "schedule":
          for (const l of pf!.formatSchedule()) out(`  ${l}`);
          break;
        case "tick":
          pf!.advance(BigInt(op.quanta));
          out(`  now at quantum ${pf!.now}`);
          break;
      }
    } catch (e) {
      // A panic in core or a TypeError here is a bug, not a rejection of the scenario's request: the database may
      // be half-changed, so nothing after it would mean anything. Stop with the stack.
      if (e instanceof CorePanic || e instanceof TypeError || e instanceof ReferenceError) throw e;
      error = e;
    }
    if (!pf) {
      for (const tx of current) {
        out("");
        for (const l of formatTransaction(tx)) out(l);
      }
    }
    logs.push(current);
    const code = codeOf(error);
    outcomes.push(code);
    if (error) out(`  rejected: ${(error as Error).message}`);
    if (op.expectError !== undefined) {
      if (code !== op.expectError) failures.push(`${s.file}:${op.line}: expected error ${op.expectError}, got ${code ?? "success"}`);
    } else if (error) {
      failures.push(`${s.file}:${op.line}: ${describe(op)} failed: ${(error as Error).message}`);
    }
  }
  for (const o of s.expect.owners) {
    const got = host.db.owner(o.address);
    // The pseudo partitions (Missing, Available, Idle, Boot, Ultravisor) have named descriptors: resolve knows them.
    let want: number | undefined;
    let unknown = "";
    try {
      want = rs.resolve(o.is);
    } catch (e) {
      unknown = (e as Error).message;
    }
    if (want === undefined) failures.push(`${s.file}:${o.line}: expect.owners: ${unknown}`);
    else if (got !== want) failures.push(`${s.file}:${o.line}: owner of ${formatBytes(o.address)} is ${got < 0 ? errorName(got) : pn(got)}, expected ${o.is} ${pn(want)}`);
  }
  if (s.expect.mapPages !== undefined) {
    const n = host.view.maps().length;
    if (n !== s.expect.mapPages) failures.push(`${s.file}:${s.expect.mapPagesLine}: ${n} map pages, expected ${s.expect.mapPages}`);
  }
  if (pf) {
    out("");
    const h = host.db.logHeader();
    out(`audit log since the last backup: ${h.txCount} transaction(s); ${h.rejected} rejected submission(s) in all`);
    for (const l of pf.rejections()) out(`  ${l}`);
    out(`channel table: ${host.db.channels().map((c) => `${c.slot}:${pf!.nameOf(c.client)}→${c.server ? pf!.nameOf(c.server) : "-"}`).join(" ") || "empty"}`);
  }
  if (opts.map !== false) {
    out("");
    out("Resulting memory map:");
    const names = new Map<number, string>();
    for (const [n, p] of rs.names()) names.set(p, n);
    for (const l of host.view.format((p) => names.get(p) ?? host.db.readDescriptor(p)?.name)) out(l);
  }
  let at = 0;
  for (const e of s.expect.output) {
    const i = printed.findIndex((l, k) => k >= at && l.includes(e.text));
    if (i < 0) failures.push(`${s.file}:${e.line}: expected output "${e.text}" ${at > 0 ? "after the previous expected line " : ""}was not printed`);
    else at = i + 1;
  }
  return { failures, host, logs, bootLog, outcomes, ...(pf ? { platform: pf } : {}), names: nameTable(rs) };
}
