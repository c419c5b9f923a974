// Benchmark: partition create + destroy cycles per second on the booted simulated platform, every request travelling
// the command channel (core's queues) to the ultravisor and db_submit_as (issue 6). One cycle defines a guest of
// 64 MB with one VCPU and a console channel to an I/O partition (descriptor + memory, channel memory and definition,
// server assignment, schedule), then stops it per [0186] (eviction, disconnects, the reclaim transaction).
// Figures: cycles per second, and command-channel requests per cycle (to read the first figure against).
import { bestOf, round, type Bench, type Figure } from "./bench.ts";
import { Platform } from "../sim/platform.ts";

const bench: Bench = {
  name: "sim",
  async run(): Promise<Figure[]> {
    const pf = await Platform.boot({ memory: 64n << 30n, keepBackup: false }, { pcpus: 8 });
    pf.definePartition({ name: "IOa", kind: "IO", memory: 256n << 20n, vcpus: [{ duty: 16, dedicated: true }] });
    let n = 0;
    const cycle = (): void => {
      const name = `G${n++ % 1000}`;
      pf.definePartition({ name, memory: 64n << 20n, vcpus: [{ duty: 4 }], channels: [{ type: "console", server: "IOa" }] });
      pf.stop(name);
    };
    for (let i = 0; i < 50; i++) cycle(); // warm up (and let the first backups of the log happen)
    const served0 = pf.ultravisor.served.length;
    const cycles = 500;
    const t = await bestOf(3, () => {
      for (let i = 0; i < cycles; i++) cycle();
    });
    const requests = (pf.ultravisor.served.length - served0) / (3 * cycles);
    return [
      { bench: "sim.partition_create_destroy_per_s", value: Math.round(cycles / t), unit: "cycles/s" },
      { bench: "sim.command_channel_requests_per_cycle", value: round(requests, 2), unit: "requests/cycle" },
    ];
  },
};

export default bench;
