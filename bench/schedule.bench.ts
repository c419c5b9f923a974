// Benchmark: computing a processor schedule for 1,000 VCPUs on 64 physical CPUs with core.wasm's sched_compute
// (2 dedicated I/O VCPUs, 100 VCPUs in C3 left out, the rest at 1/16 and 2/16 duty, some with an affinity).
// Target (issue 6): < 10 ms. Figures: the computation alone, and with encoding the requests from JS.
import { bestOf, round, type Bench, type Figure } from "./bench.ts";
import { loadChannelCore } from "../core/channel.ts";
import { Scheduler, type VcpuRequest } from "../core/schedule.ts";

export function thousandVcpus(): VcpuRequest[] {
  const out: VcpuRequest[] = [
    { vcpu: 0, partition: 16, duty: 16, dedicated: true },
    { vcpu: 1, partition: 18, duty: 16, dedicated: true },
  ];
  for (let i = 2; i < 1000; i++) {
    const partition = 100 + Math.floor(i / 4); // 4 VCPUs per guest
    const v: VcpuRequest = { vcpu: i, partition, duty: i % 20 === 0 ? 2 : 1 };
    if (i % 10 === 0) v.cstate = 3;
    if (i % 7 === 0) v.affinity = (partition * 5) % 64;
    out.push(v);
  }
  return out;
}

const bench: Bench = {
  name: "schedule",
  async run(): Promise<Figure[]> {
    const { core } = await loadChannelCore();
    const s = new Scheduler(core, 64, 1000, 2);
    const vcpus = thousandVcpus();
    s.compute(vcpus, 64, { partition: 3, vcpuBase: 5000 }); // warm up and check it fits
    s.encode(vcpus);
    const compute = await bestOf(20, () => s.computeEncoded(vcpus.length, 64, 3, 5000));
    const full = await bestOf(20, () => s.compute(vcpus, 64, { partition: 3, vcpuBase: 5000 }));
    return [
      { bench: "schedule.1000_vcpus_64_cpus.compute", value: round(compute * 1e3, 4), unit: "ms", vs: "target 10 ms", ratio: round((compute * 1e3) / 10, 4) },
      { bench: "schedule.1000_vcpus_64_cpus.with_encoding", value: round(full * 1e3, 4), unit: "ms", vs: "target 10 ms", ratio: round((full * 1e3) / 10, 4) },
    ];
  },
};

export default bench;
