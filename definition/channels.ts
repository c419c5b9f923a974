// The channels a host's boot-time partitions get when their definition lists none: the wiring of the bare-metal
// image (partitions/config.ts checks a listed set against it), which the simulator follows for the same file so that
// both run the same host — every partition but the idle and I/O ones is a client of a console channel served by the
// (first) I/O partition ([0127]), and the command partition also of the command channel served by the ultravisor
// partition ([0090]). A partition defined at run time (an operation) gets only the channels it lists.
import type { ChannelDefinition, PartitionDefinition } from "./host.ts";

/** The wiring for each partition by name (an empty list for the idle and I/O partitions). */
export function defaultChannels(parts: readonly PartitionDefinition[]): Map<string, ChannelDefinition[]> {
  // The console I/O partition is the first io partition that is not a member of the storage pair; the members are
  // its console clients like any partition (docs/specs/storage-failover.md §7).
  const io = parts.find((p) => p.kind === "io" && p.behaviour?.pair === undefined);
  const uv = parts.find((p) => p.kind === "ultravisor");
  const pair = [parts.find((p) => p.behaviour?.pair === "primary"), parts.find((p) => p.behaviour?.pair === "secondary")];
  const out = new Map<string, ChannelDefinition[]>();
  for (const p of parts) {
    const list: ChannelDefinition[] = [];
    if (p.kind !== "idle" && (p.kind !== "io" || p.behaviour?.pair !== undefined) && io) list.push({ type: "console", server: io.name });
    if (p.kind === "command" && uv) list.push({ type: "command", server: uv.name });
    // The storage workload and its hostile client use a storage channel served by the I/O partition, which drives
    // the disk (docs/specs/storage-channel.md §8).
    // With a storage pair, a channel to each member: slot 1 the primary's, slot 2 the secondary's.
    if (p.kind === "guest" && io && (p.behaviour?.disk !== undefined || p.behaviour?.fault === "storage-mdl")) {
      if (pair[0] && pair[1]) list.push({ type: "storage", server: pair[0].name }, { type: "storage", server: pair[1].name });
      else list.push({ type: "storage", server: io.name });
    }
    out.set(p.name, list);
  }
  return out;
}

/** The channels each boot-time partition is a client of: its own list, or the wiring when it lists none. */
export function bootChannels(parts: readonly PartitionDefinition[]): Map<string, ChannelDefinition[]> {
  const wired = defaultChannels(parts);
  return new Map(parts.map((p) => [p.name, p.channels ?? wired.get(p.name) ?? []]));
}
