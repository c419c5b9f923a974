// The channels a host's boot-time partitions get when their definition lists none: the wiring of the bare-metal
// image (partitions/config.ts checks a listed set against it), which the simulator follows for the same file so that
// both run the same host — every partition but the idle and I/O ones is a client of a console channel served by the
// (first) I/O partition ([0127]), and the command partition also of the command channel served by the ultravisor
// partition ([0090]). A partition defined at run time (an operation) gets only the channels it lists.
import type { ChannelDefinition, PartitionDefinition } from "./host.ts";

/** The wiring for each partition by name (an empty list for the idle and I/O partitions). */
export function defaultChannels(parts: readonly PartitionDefinition[]): Map<string, ChannelDefinition[]> {
  const io = parts.find((p) => p.kind === "io");
  const uv = parts.find((p) => p.kind === "ultravisor");
  const out = new Map<string, ChannelDefinition[]>();
  for (const p of parts) {
    const list: ChannelDefinition[] = [];
    if (p.kind !== "idle" && p.kind !== "io" && io) list.push({ type: "console", server: io.name });
    if (p.kind === "command" && uv) list.push({ type: "command", server: uv.name });
    // The storage workload and its hostile client use a storage channel served by the I/O partition, which drives
    // the disk (docs/specs/storage-channel.md §8).
    if (p.kind === "guest" && io && (p.behaviour?.disk !== undefined || p.behaviour?.fault === "storage-mdl")) list.push({ type: "storage", server: io.name });
    out.set(p.name, list);
  }
  return out;
}

/** The channels each boot-time partition is a client of: its own list, or the wiring when it lists none. */
export function bootChannels(parts: readonly PartitionDefinition[]): Map<string, ChannelDefinition[]> {
  const wired = defaultChannels(parts);
  return new Map(parts.map((p) => [p.name, p.channels ?? wired.get(p.name) ?? []]));
}
