// One shard of a large data center (docs/specs/datacenter.md §6; layer: datacenter/): boots `hosts` full simulated
// hosts in this process (each its own resource database, I/O and command partitions; 16 hosts share
// one linear memory, sim/arena.ts) and places partitions first fit, each through the chosen host's command partition
// as transactions. The 20,000-host run is two shards in worker processes, one per core (bench/dc-shard.ts is the
// process entry; bench/dc.bench.ts the coordinator).
import { ARENA_SLOTS, HostArena } from "../sim/arena.ts";
import { Platform } from "../sim/platform.ts";

export interface ShardSpec {
  hosts: number;
  hostMemory: bigint;
  pcpus: number;
  /** Partitions to place, in order. */
  partitions: Array<{ memory: bigint; vcpus: number }>;
}

export interface ShardResult {
  hosts: number;
  placed: number;
  unplaced: number;
  bootMs: number;
  placeMs: number;
  /** Transactions the hosts' databases committed while placing (each database's log sequence numbers). */
  transactions: number;
  /** Partitions per host, as each host's resource service names them (its database, not this shard's count). */
  perHost: number[];
}

export async function runShard(spec: ShardSpec): Promise<ShardResult> {
  const t0 = performance.now();
  const hosts: Platform[] = [];
  // Every arena is made before the first host boots, while the heap is small: each new memory makes V8 collect.
  const arenas: HostArena[] = [];
  for (let n = 0; n < spec.hosts; n += ARENA_SLOTS) arenas.push(await HostArena.create(Math.min(ARENA_SLOTS, spec.hosts - n)));
  // Each host's log sequence number and free bytes are read right after its boot and after each placement on it,
  // while its database is the one its arena's core has attached: reading them for all hosts afterwards would
  // attach every database once more (db_attach, ~10–40 µs each).
  const seq0: number[] = [];
  const seq: number[] = [];
  const free: bigint[] = [];
  for (let i = 0; i < spec.hosts; i++) {
    const arena = arenas[Math.floor(i / ARENA_SLOTS)]!;
    hosts.push(await Platform.boot({ memory: spec.hostMemory, keepBackup: false, arena }, { pcpus: spec.pcpus }, () => {}, {
      system: [
        { name: "IOa", kind: "IO", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }] },
        { name: "Command", kind: "Command", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }], channels: [{ type: "command", server: "Ultravisor" }] },
      ],
    }));
    const h = hosts[i]!;
    // Transactions committed while placing: each database's own sequence counter (its log header's next sequence
    // number), before and after; cheaper than a listener that decodes every audit record.
    seq0.push(h.host.db.logHeader().nextSeq);
    seq.push(seq0[i]!);
    // Free bytes as the host's database reports them, refreshed after each placement on it.
    free.push(h.host.view.bytesOwnedBy(h.host.db.indexPage().avail));
  }
  const t1 = performance.now();
  let first = 0; // hosts before `first` cannot take the smallest partition (first fit skips them)
  const smallest = spec.partitions.reduce((m, p) => (p.memory < m ? p.memory : m), spec.partitions[0]?.memory ?? 0n);
  let placed = 0;
  spec.partitions.forEach((p, i) => {
    while (first < hosts.length && free[first]! < smallest) first++;
    for (let k = first; k < hosts.length; k++) {
      if (free[k]! < p.memory) continue;
      const h = hosts[k]!;
      try {
        h.definePartition({ name: `V${i}`, kind: "Guest", memory: p.memory, vcpus: Array.from({ length: p.vcpus }, () => ({ duty: 2 })) });
      } catch {
        free[k] = 0n; // the host's database or schedule refused: first fit moves on
        seq[k] = h.host.db.logHeader().nextSeq; // a refused create may still have committed its first steps
        continue;
      }
      free[k] = h.host.view.bytesOwnedBy(h.host.db.indexPage().avail);
      seq[k] = h.host.db.logHeader().nextSeq;
      placed++;
      return;
    }
  });
  const t2 = performance.now();
  const transactions = seq.reduce((n, q, k) => n + q - seq0[k]!, 0);
  const perHost = hosts.map((h) => [...h.rs.names().keys()].filter((n) => /^V\d+$/.test(n)).length);
  return { hosts: spec.hosts, placed, unplaced: spec.partitions.length - placed, bootMs: t1 - t0, placeMs: t2 - t1, transactions, perHost };
}
