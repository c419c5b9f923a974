// The data center against real leases (docs/specs/datacenter.md, docs/specs/operations.md §7; layer: datacenter/):
// the same hosts, placement and re-hosting as the deterministic run, but no simulated heartbeats — each host holds an
// etcd lease with its key PREFIX/hosts/NAME (ops/liveness.ts), a `fail` event stops renewing that lease (the host
// falls silent; nothing tells the operations partition), and the operations partition declares the host failed when
// the watch sees its key deleted by the lease's expiry. Simulated time follows the wall clock (times `scale`), so the
// event log's times vary from run to run: this mode is checked by behaviour (which partitions went where, the expiry
// within the lease's bound), while the deterministic mode keeps its checked-in logs.
import type { Etcd3 } from "etcd3";
import { HostAnnouncement, HostWatcher } from "../ops/liveness.ts";
import { DataCenter } from "./datacenter.ts";
import type { DcScenario } from "./scenario.ts";

export interface LiveOptions {
  /** The hosts' key prefix in the cluster (ends with "/"). */
  prefix: string;
  /** Lease TTL in seconds (default: the scenario's lease, at least 2). */
  ttl?: number;
  /** Simulated ms per wall-clock ms (default 1). */
  scale?: number;
}

export async function runLive(scenario: DcScenario, client: Etcd3, opts: LiveOptions): Promise<DataCenter> {
  const dc = await DataCenter.create(scenario, { liveness: "external" });
  const ttl = opts.ttl ?? Math.max(2, Math.ceil(scenario.heartbeat.lease / 1000));
  const scale = opts.scale ?? 1;
  const held = new Map<string, HostAnnouncement>();
  let watcher: HostWatcher | undefined;
  try {
    for (const name of dc.hosts.keys()) held.set(name, await HostAnnouncement.announce(client, opts.prefix, name, ttl));
    const t0 = Date.now();
    const simNow = (): number => Math.min(scenario.until, Math.floor((Date.now() - t0) * scale));
    dc.onHostFailed = (host) => held.get(host)?.stopRenewing();
    watcher = await HostWatcher.start(client, opts.prefix, (e) => {
      if (e.up) return;
      dc.run(simNow());
      dc.hostLost(e.host, `its etcd lease (TTL ${ttl} s) expired`);
    });
    while (simNow() < scenario.until) {
      dc.run(simNow());
      await new Promise((r) => setTimeout(r, 10));
    }
    dc.run(scenario.until);
    return dc;
  } finally {
    dc.onHostFailed = undefined;
    await watcher?.close();
    // Leave nothing behind in the cluster: every lease still held goes now.
    await Promise.all([...held.values()].map((h) => h.revoke().catch(() => undefined)));
  }
}
