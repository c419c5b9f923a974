// Process entry of one data-center shard (bench/dc.bench.ts starts it with `node --import tsx`): reads its ShardSpec
// as JSON from argv[2] (sizes as strings), runs datacenter/shard.ts and prints the ShardResult as one JSON line.
import { runShard } from "../datacenter/shard.ts";

const raw = JSON.parse(process.argv[2] ?? "{}") as { hosts: number; hostMemory: string; pcpus: number; partitions: number; partitionMemory: string; vcpus: number };
const r = await runShard({
  hosts: raw.hosts, hostMemory: BigInt(raw.hostMemory), pcpus: raw.pcpus,
  partitions: Array.from({ length: raw.partitions }, () => ({ memory: BigInt(raw.partitionMemory), vcpus: raw.vcpus })),
});
const cpu = process.cpuUsage();
console.log(JSON.stringify({
  ...r, perHost: undefined, rssMB: Math.round(process.memoryUsage().rss / 1048576), heapMB: Math.round(process.memoryUsage().heapUsed / 1048576),
  // Processor time of this process from its start (module loading included): on a shared machine wall time also
  // counts the waits for a processor; this does not.
  cpuMs: (cpu.user + cpu.system) / 1000, sysMs: cpu.system / 1000,
}));
