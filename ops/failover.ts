// The failover run of the redundant operations service (claim 47; docs/specs/operations.md §7; layer: ops/): starts a
// three-member etcd cluster, writes a small estate into it, starts two operations-service processes
// (failover-child.ts) that work through the same list of partitions (define, provision, start; each step skipped when
// the store shows it done), kills the active one mid-run (SIGKILL, or SIGSTOP for a service that only lost its
// lease), and measures how long the standby takes to become active. It then reads the store itself: every
// partition present, each started once. Used by ops/failover.test.ts, bench/etcd.bench.ts and `uvt ops failover`.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { type EstateFile, loadEstate } from "./estate.ts";
import type { PartitionDefinition } from "./model.ts";
import { EtcdCluster } from "./store/etcd-cluster.ts";
import { EtcdStore } from "./store/etcd-store.ts";

export const WORK_DOMAIN = "Lab";
export const WORK_ZONE = "LAN";
export const workName = (i: number): string => `W${i}`;
export const workGuid = (i: number): string => `00000000-0000-4000-8000-${(0xf00000 + i).toString(16).padStart(12, "0")}`;

/** Two hosts with room for the whole list on either one. */
export const FAILOVER_ESTATE: EstateFile = {
  estate: 1, name: "failover", zones: [{ type: "network", name: WORK_ZONE }],
  hosts: [
    { name: "A", memory: 1 << 30, pcpus: 16, domain: "System", zones: [{ type: "network", zone: WORK_ZONE }] },
    { name: "B", memory: 1 << 30, pcpus: 16, domain: "System", zones: [{ type: "network", zone: WORK_ZONE }] },
  ],
  domains: [{ name: "System", kind: "system", hosts: ["A", "B"] }, { name: WORK_DOMAIN, kind: "partition", hosts: ["A", "B"] }],
  partitions: [],
};

const CHILD = join(import.meta.dirname, "failover-child.ts");
const ROOT = join(import.meta.dirname, "..");

/** A child process whose stdout lines are kept and can be waited for. */
export class Proc {
  readonly lines: string[] = [];
  err = "";
  private waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(readonly proc: ChildProcess) {
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const l of parts) this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr!.on("data", (d: Buffer) => (this.err = (this.err + d.toString()).slice(-4000)));
    this.exited = new Promise((r) => proc.on("exit", (code, signal) => {
      for (const w of this.waiters.splice(0)) w();
      r({ code, signal });
    }));
  }

  /** Waits for a line matching `re` (already printed or to come); rejects after `ms` or when the process exits. */
  async waitFor(re: RegExp, ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return hit;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`process exited (${this.proc.exitCode ?? this.proc.signalCode}) before printing ${re}: ${this.err}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line ${re} within ${ms} ms; it printed: ${this.lines.slice(-5).join(" | ")} ${this.err}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (signal === "SIGKILL") {
      this.proc.kill("SIGCONT");
      this.proc.kill("SIGKILL");
      await this.exited;
    } else this.proc.kill(signal);
  }
}

export function spawnChild(args: string[]): Proc {
  return new Proc(spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
}

export interface FailoverOptions {
  /** Partitions in the list (default 24). */
  count?: number;
  /** Lease TTL of the services, seconds (default 2). */
  ttl?: number;
  /** Pause between steps, ms (default 40): the kill lands mid-run. */
  stepMs?: number;
  /** Kill the active service after it printed this many starts (default count / 3). */
  killAfter?: number;
  /** SIGKILL (a crash) or SIGSTOP (alive but its lease lost; resumed after the takeover). */
  how?: "kill" | "pause";
  print?: (line: string) => void;
}

export interface FailoverResult {
  /** From the kill to the standby's `active` line, ms. */
  takeoverMs: number;
  /** From the kill to the standby's `opened` line (policy service open, hosts booted), ms. */
  openedMs: number;
  /** Starts the first service did before the kill, and the second after. */
  startsBefore: number;
  startsAfter: number;
  /** Every start line of both services: who started what where. */
  starts: Array<{ by: string; name: string; host: string; partition: number }>;
  /** The store read after the run. */
  definitions: PartitionDefinition[];
  /** For how="pause": how the resumed first service ended. */
  resumed?: { code: number | null; lines: string[] };
  ttl: number;
}

export async function runFailover(opts: FailoverOptions = {}): Promise<FailoverResult> {
  const count = opts.count ?? 24;
  const ttl = opts.ttl ?? 2;
  const stepMs = opts.stepMs ?? 40;
  const killAfter = opts.killAfter ?? Math.floor(count / 3);
  const print = opts.print ?? (() => {});
  const prefix = "failover/";
  const cluster = await EtcdCluster.start();
  const client = cluster.client();
  const procs: Proc[] = [];
  try {
    print(`etcd: three members at ${cluster.endpoints.join(" ")}`);
    await loadEstate(new EtcdStore(client, prefix), FAILOVER_ESTATE);
    const args = (id: string) => ["service", cluster.endpoints.join(","), prefix, id, String(count), String(stepMs), String(ttl)];
    const a = spawnChild(args("ops-1"));
    procs.push(a);
    await a.waitFor(/^active ops-1/, 30_000);
    const b = spawnChild(args("ops-2"));
    procs.push(b);
    await b.waitFor(/^standby ops-2/, 30_000);
    print("ops-1 is active, ops-2 is standing by");
    await client.put(`${prefix}go`).value("1");
    await a.waitFor(new RegExp(`^start ops-1 ${workName(killAfter - 1)} `), 60_000);
    const t0 = Date.now();
    if (opts.how === "pause") a.proc.kill("SIGSTOP");
    else await a.kill("SIGKILL");
    print(`ops-1 ${opts.how === "pause" ? "stopped (SIGSTOP)" : "killed (SIGKILL)"} after ${a.lines.filter((l) => l.startsWith("start ")).length} starts`);
    await b.waitFor(/^active ops-2/, (ttl + 20) * 1000);
    const takeoverMs = Date.now() - t0;
    await b.waitFor(/^opened ops-2/, 30_000);
    const openedMs = Date.now() - t0;
    print(`ops-2 active after ${takeoverMs} ms (lease TTL ${ttl} s), policy service open after ${openedMs} ms`);
    let resumed: FailoverResult["resumed"];
    if (opts.how === "pause") {
      const before = a.lines.length;
      a.proc.kill("SIGCONT");
      const { code } = await a.exited;
      resumed = { code, lines: a.lines.slice(before) };
      print(`ops-1 resumed: ${resumed.lines.join(" | ")} (exit ${code})`);
    }
    await b.waitFor(/^done ops-2/, 60_000);
    const st = await new EtcdStore(client, prefix).load();
    const definitions = [...st.domains.values()].flatMap((m) => [...m.values()]);
    const startsBefore = a.lines.filter((l) => l.startsWith("start ")).length;
    const startsAfter = b.lines.filter((l) => l.startsWith("start ")).length;
    print(`store: ${definitions.length} definitions, ${definitions.filter((d) => d.state === "running").length} running; starts by ops-1 ${startsBefore}, by ops-2 ${startsAfter}`);
    const starts = [...a.lines, ...b.lines].filter((l) => l.startsWith("start ")).map((l) => {
      const [, by, name, host, partition] = l.split(" ");
      return { by: by!, name: name!, host: host!, partition: Number(partition) };
    });
    return { takeoverMs, openedMs, startsBefore, startsAfter, starts, definitions, ttl, ...(resumed ? { resumed } : {}) };
  } finally {
    for (const p of procs) await p.kill("SIGKILL");
    client.close();
    await cluster.stop();
  }
}
