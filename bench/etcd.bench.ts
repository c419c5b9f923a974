// Benchmarks of the operations state on etcd (issue 21; docs/specs/operations.md §7): definitions written per second
// through the etcd store (one transaction per definition, compare-and-swap on the sequence key, on a three-member
// cluster on loopback started here), beside the embedded folder store (fsync'd journal and atomic replace on the real
// disk) measured in the same run (`ratio` = etcd / folder); and the failover time of the redundant operations service
// (the active process SIGKILLed, lease TTL 2 s: milliseconds until the standby holds the leader key), beside the TTL.
import { def } from "./ops-fixtures.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { round, type Bench, type Figure } from "./bench.ts";
import { runFailover } from "../ops/failover.ts";
import { EtcdCluster } from "../ops/store/etcd-cluster.ts";
import { EtcdStore } from "../ops/store/etcd-store.ts";
import { NodeFs } from "../ops/store/fs.ts";
import { type DefinitionStore, FileStore } from "../ops/store/store.ts";


/** Definitions per second, one commit per definition, each awaited before the next (as the policy service does). */
async function rate(store: DefinitionStore, n: number): Promise<number> {
  for (let i = 0; i < 20; i++) await store.commit([{ put: def(i) }]); // warm up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await store.commit([{ put: def(1000 + i) }]);
  return n / ((performance.now() - t0) / 1000);
}

const bench: Bench[] = [{
  name: "etcd-store",
  async run(): Promise<Figure[]> {
    const n = 300;
    const dir = mkdtempSync(join(tmpdir(), "uv-etcd-bench-"));
    const cluster = await EtcdCluster.start();
    const client = cluster.client();
    try {
      const folder = await rate(new FileStore(new NodeFs(join(dir, "store"))), n);
      const etcd = await rate(new EtcdStore(client, "bench/"), n);
      return [
        { bench: "ops.store.folder_definitions_per_s", value: round(folder, 1), unit: "definitions/s (folder store, fsync'd, real disk)" },
        { bench: "ops.store.etcd_definitions_per_s", value: round(etcd, 1), unit: "definitions/s (etcd store, 3 members on loopback)", vs: "ops.store.folder_definitions_per_s", ratio: round(etcd / folder, 3) },
      ];
    } finally {
      client.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
}, {
  name: "etcd-failover",
  async run(): Promise<Figure[]> {
    const r = await runFailover({ count: 12, ttl: 2, how: "kill" });
    if (r.definitions.length !== 12) throw new Error(`bench: failover left ${r.definitions.length} of 12 definitions`);
    return [
      { bench: "ops.failover.takeover_ms", value: r.takeoverMs, unit: "ms from SIGKILL of the active service to the standby holding the leader key", vs: "lease TTL", ratio: round(r.takeoverMs / (r.ttl * 1000), 3) },
      { bench: "ops.failover.open_ms", value: r.openedMs, unit: "ms from SIGKILL to the standby's policy service open (definitions loaded, hosts booted)" },
    ];
  },
}];
export default bench;
