// Benchmarks of the virtual data center (issue 20): the CloudSim Plus placement run — 20,000 hosts and 40,000
// partitions, first fit, every placement through the chosen host's own transactional database — in two worker
// processes of at most 10,000 hosts (one per core; the hosts of a process share linear memories in arenas of 16,
// sim/arena.ts), compared with the reference of about 1.3 minutes for CloudSim Plus on a dual-core laptop
// (not measured here); and live migrations simulated per second on full simulated hosts. UV_DC_HOSTS=N runs the
// placement at another size (partitions = 2 N) — the full size needs about 0.33 MB of resident memory per host.
import { execa } from "execa";
import { join } from "node:path";
import { round, type Bench, type Figure } from "./bench.ts";
import { DataCenter } from "../datacenter/datacenter.ts";
import { checkScenario } from "../datacenter/scenario.ts";

const here = import.meta.dirname;
const CLOUDSIM_S = 78; // "about 1.3 minutes" (issue 20)
const PER_SHARD = 10_000;

const bench: Bench[] = [{
  name: "dc-20000_hosts",
  async run(): Promise<Figure[]> {
    const hosts = Number(process.env.UV_DC_HOSTS ?? 20_000);
    const shards = Math.max(2, Math.ceil(hosts / PER_SHARD));
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: shards }, (_, s) => {
      const n = Math.floor(hosts / shards) + (s < hosts % shards ? 1 : 0);
      const spec = { hosts: n, hostMemory: String(16n << 30n), pcpus: 8, partitions: 2 * n, partitionMemory: String(4n << 30n), vcpus: 2 };
      // One GC thread: the shards already keep both of the machine's cores busy.
      return execa("node", ["--single-threaded-gc", "--max-semi-space-size=64", "--import", "tsx", join(here, "dc-shard.ts"), JSON.stringify(spec)], { cwd: join(here, "..") });
    }));
    const wall = (performance.now() - t0) / 1000;
    const rs = results.map((r) => JSON.parse(r.stdout.trim().split("\n").pop()!) as { placed: number; unplaced: number; bootMs: number; placeMs: number; transactions: number; rssMB: number; cpuMs: number; sysMs: number });
    const placed = rs.reduce((a, r) => a + r.placed, 0);
    if (placed !== 2 * hosts) throw new Error(`bench: ${2 * hosts - placed} partitions found no host`);
    const tag = `${hosts}_hosts`; // 20000_hosts unless UV_DC_HOSTS says otherwise
    return [
      { bench: `dc.${tag}.wall_s`, value: round(wall, 2), unit: `s wall (${hosts} hosts, ${2 * hosts} partitions, ${shards} processes)`, vs: "CloudSim Plus, 40,000 VMs on 20,000 hosts, ~78 s (issue 20, not measured here)", ratio: round(wall / CLOUDSIM_S, 3) },
      { bench: `dc.${tag}.boot_ms_per_host`, value: round(rs.reduce((a, r) => a + r.bootMs, 0) / hosts, 3), unit: "ms per host booted, summed over shards (own database, I/O and command partitions)" },
      { bench: `dc.${tag}.place_ms_per_partition`, value: round(rs.reduce((a, r) => a + r.placeMs, 0) / placed, 3), unit: `ms per placement, summed over shards (${rs.reduce((a, r) => a + r.transactions, 0)} transactions committed)` },
      { bench: `dc.${tag}.cpu_s`, value: round(rs.reduce((a, r) => a + r.cpuMs, 0) / 1000, 2), unit: `s of processor time, summed over shards (${round(rs.reduce((a, r) => a + r.sysMs, 0) / 1000, 1)} s of it in the kernel: first touches of memory); wall ≥ this / 2 on 2 cores` },
      { bench: `dc.${tag}.rss_mb_per_shard`, value: Math.max(...rs.map((r) => r.rssMB)), unit: "MB resident, largest shard" },
    ];
  },
}, {
  name: "dc-migrations",
  async run(): Promise<Figure[]> {
    // 4 hosts of 64 GB; 32 partitions of 1 GB move first fit elsewhere, one every 100 simulated ms, for 200 s.
    const n = 2000;
    const s = checkScenario({
      datacenter: 1, seed: 1, until: n * 100 + 60_000, migration: { bandwidth: 10 * 2 ** 30 },
      racks: [{ name: "R", hosts: Array.from({ length: 4 }, (_, i) => ({ name: `H${i}`, memory: "64 GB", pcpus: 16 })) }],
      partitions: Array.from({ length: 32 }, (_, i) => ({ name: `P${i}`, memory: "1 GB", vcpus: 1, dirtyRate: 1000 * (i % 8) })),
      events: Array.from({ length: n }, (_, i) => ({ at: i * 100, migrate: `P${i % 32}` })),
    });
    const dc = await DataCenter.create(s);
    const t0 = performance.now();
    dc.run();
    const secs = (performance.now() - t0) / 1000;
    const done = dc.events.filter((e) => e.kind === "migration-done").length;
    if (done < n / 2) throw new Error(`bench: only ${done} of ${n} migrations completed`);
    return [{ bench: "dc.migrations_per_s", value: round(done / secs, 1), unit: `migrations/s (${done} pre-copy migrations between full simulated hosts, both databases changed)` }];
  },
}];
export default bench;
