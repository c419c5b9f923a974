// Definitions the operations benchmarks write (bench/ops.bench.ts, bench/etcd.bench.ts): partition i of four domains,
// one network and one storage channel, a 64 MB configuration, in the construction stage.
import type { PartitionDefinition } from "../ops/model.ts";

/** Partition definition number i (GUID and name from i). */
export function def(i: number): PartitionDefinition {
  const h = i.toString(16).padStart(12, "0");
  return {
    guid: `00000000-0000-4000-8000-${h}`, name: `P${i}`, domain: `D${i % 4}`, stage: "construction", state: "uninstalled",
    channels: [{ type: "network", zone: "NET1" }, { type: "storage", zone: "SAN1" }],
    configurations: [{ name: "Default", memory: 64 << 20, vcpus: 1 }], history: [{ at: 0, stage: "construction", state: "uninstalled", what: "defined" }],
  };
}
