// A throw-away three-member etcd cluster on loopback ports (layer: ops/store/; used by the etcd tests, the benchmarks
// and the failover example, docs/specs/operations.md §7): each member is Debian's `etcd` binary with its data in a
// fresh temporary folder; start() returns when every member answers a status request and the cluster has a leader;
// stop() kills every member still running, waits for it to exit and removes the folders. A process-exit hook (and
// SIGINT/SIGTERM/SIGHUP) kills the members and removes the folders too, so a crashed run leaves no etcd behind. A
// missing binary is an error, never a skip.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";

export class EtcdMissing extends Error {
  override name = "EtcdMissing";
}

interface Member {
  name: string;
  client: number;
  peer: number;
  dir: string;
  proc?: ChildProcess;
  log: string;
}

/**
 * `n` distinct free TCP ports on 127.0.0.1: the kernel picks each while every listener stays open, so it cannot hand
 * the same port out twice (closing each before asking for the next did, once on CI: two members on one port); all
 * are closed before etcd binds them.
 */
async function freePorts(n: number): Promise<number[]> {
  const servers: ReturnType<typeof createServer>[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = createServer();
      s.unref();
      servers.push(s);
      ports.push(await new Promise<number>((resolve, reject) => {
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => resolve((s.address() as { port: number }).port));
      }));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

const live = new Set<ChildProcess>();
/** Data folders of clusters not yet stopped: removed on exit too. */
const roots = new Set<string>();
let hooked = false;
function cleanUp(): void {
  for (const p of live) p.kill("SIGKILL");
  for (const r of roots) rmSync(r, { recursive: true, force: true });
}
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Synchronous kill on any exit of this process: members must never outlive the run that started them.
  process.on("exit", cleanUp);
  // A signal's default action ends the process without "exit": clean up, then let the signal do what it would have.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      cleanUp();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

export interface ClusterOptions {
  /** Members (default 3). */
  size?: number;
  /** The etcd binary (default `etcd` on PATH; Debian's etcd-server installs /usr/bin/etcd). */
  binary?: string;
  /** Seconds to wait for a healthy cluster (default 30). */
  timeout?: number;
}

export class EtcdCluster {
  private readonly members: Member[] = [];
  private readonly root: string;
  private readonly binary: string;
  /** One token for the whole cluster: members of another cluster on a reused port are refused. */
  private readonly token = `uv-${process.pid}-${Date.now()}`;
  private initial = "";

  private constructor(opts: ClusterOptions) {
    this.binary = opts.binary ?? "etcd";
    this.root = mkdtempSync(join(tmpdir(), "uv-etcd-"));
    roots.add(this.root);
  }

  /** Starts the cluster and waits until it is healthy; on any failure stops what it started and throws. */
  static async start(opts: ClusterOptions = {}): Promise<EtcdCluster> {
    const c = new EtcdCluster(opts);
    try {
      await c.launch(opts.size ?? 3, (opts.timeout ?? 30) * 1000);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  /** Client URLs of every member (also of killed ones: a client fails over between them). */
  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.client}`);
  }

  /** A new client over every member's endpoint. */
  client(): Etcd3 {
    return new Etcd3({ hosts: this.endpoints, dialTimeout: 2000 });
  }

  /** A client of member `i` alone (its status answers for that member). */
  clientOf(i: number): Etcd3 {
    return new Etcd3({ hosts: this.endpoints[i]!, dialTimeout: 2000 });
  }

  /** Members whose process runs. */
  running(): number[] {
    return this.members.flatMap((m, i) => (m.proc && m.proc.exitCode === null && m.proc.signalCode === null ? [i] : []));
  }

  private async launch(size: number, timeoutMs: number): Promise<void> {
    hookExit();
    const ports = await freePorts(2 * size);
    for (let i = 0; i < size; i++) {
      const dir = join(this.root, `m${i}`);
      this.members.push({ name: `m${i}`, client: ports[2 * i]!, peer: ports[2 * i + 1]!, dir, log: "" });
    }
    this.initial = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
    for (const m of this.members) this.spawnMember(m, this.initial);
    // Fail fast when the binary is missing: spawn reports ENOENT through an 'error' event on the next ticks.
    await new Promise((r) => setTimeout(r, 100));
    for (const m of this.members) {
      if (m.log.includes("ENOENT")) {
        throw new EtcdMissing(`${this.binary}: not found: the etcd tests need Debian's etcd-server (run scripts/setup, or apt-get install etcd-server)`);
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (const m of this.members) {
      const one = new Etcd3({ hosts: `http://127.0.0.1:${m.client}`, dialTimeout: 1000 });
      try {
        for (;;) {
          if (m.proc!.exitCode !== null || m.proc!.signalCode !== null) throw new Error(`etcd member ${m.name} exited with ${m.proc!.exitCode} at start: ${m.log.slice(-2000)}`);
          try {
            // The client retries a refused connection without end: bound each probe.
            const st = await withTimeout(one.maintenance.status(), 1000);
            if (st.leader !== "0") break;
          } catch {
            // not up yet
          }
          if (Date.now() > deadline) throw new Error(`etcd member ${m.name} not healthy after ${timeoutMs} ms: ${m.log.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        one.close();
      }
    }
  }

  private spawnMember(m: Member, initial: string): void {
    const url = (p: number) => `http://127.0.0.1:${p}`;
    const args = [
      "--name", m.name, "--data-dir", m.dir,
      "--listen-client-urls", url(m.client), "--advertise-client-urls", url(m.client),
      "--listen-peer-urls", url(m.peer), "--initial-advertise-peer-urls", url(m.peer),
      "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", this.token,
      "--logger", "zap", "--log-level", "error",
    ];
    const p = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    m.proc = p;
    live.add(p);
    const keep = (d: Buffer) => (m.log = (m.log + d.toString()).slice(-8000));
    p.stdout!.on("data", keep);
    p.stderr!.on("data", keep);
    p.on("error", (e) => (m.log += `\n${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`));
    p.on("exit", () => live.delete(p));
  }

  /** Kills member `i` with SIGKILL (a crash) and waits for its exit. */
  async kill(i: number): Promise<void> {
    const p = this.members[i]?.proc;
    if (!p) throw new Error(`no member ${i}`);
    await killAndWait(p);
  }

  /** Starts killed member `i` again over its data folder (it rejoins with its log; the initial flags are ignored). */
  restart(i: number): void {
    const m = this.members[i];
    if (!m?.proc) throw new Error(`no member ${i}`);
    if (m.proc.exitCode === null && m.proc.signalCode === null) throw new Error(`member ${m.name} is running`);
    this.spawnMember(m, this.initial);
  }

  /** Kills every member and removes the data folders; safe to call twice and after a failed start. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => (m.proc ? killAndWait(m.proc) : Promise.resolve())));
    rmSync(this.root, { recursive: true, force: true });
    roots.delete(this.root);
  }
}

/** `p`, or a rejection after `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function killAndWait(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  const done = new Promise<void>((r) => p.once("exit", () => r()));
  p.kill("SIGKILL");
  await done;
}
