// The operations partition's data model (docs/specs/operations.md §1; layer: ops/, above sim/): zones, hosts,
// domains, partition definitions with their configurations, channels, schedules and placement. Plain JSON-able
// data: the store persists it as it is, the console serves it as it is. Sizes are byte counts as numbers (partition
// memory stays far below 2^53) so that a definition round-trips through JSON unchanged.
import { randomUUID } from "node:crypto";

export const ZONE_TYPES = ["network", "storage", "console", "firmware", "monitor", "power", "processor", "memory"] as const;
export type ZoneType = (typeof ZONE_TYPES)[number];

export const STAGES = ["construction", "provisioning", "operating", "manual", "disabled", "decommissioned", "template"] as const;
export type Stage = (typeof STAGES)[number];

export const STATES = ["uninstalled", "stopped", "saved", "starting", "running", "paused", "disabled"] as const;
export type State = (typeof STATES)[number];

/** A channel of a definition or a host: it references a zone ([0255], [0287]). */
export interface ZoneRef {
  type: ZoneType;
  zone: string;
}

export interface Zone {
  type: ZoneType;
  name: string;
}

export interface HostDef {
  name: string;
  /** Installed memory, bytes. */
  memory: number;
  pcpus: number;
  /** The host's system domain ([0243]). */
  domain: string;
  /** The channels the host offers: the zones its adapters connect to ([0240], [0287]). */
  zones: ZoneRef[];
}

export interface Domain {
  name: string;
  kind: "partition" | "system";
  /** Hosts this domain's partitions may run on ([0244], [0253]). */
  hosts: string[];
}

export interface Configuration {
  name: string;
  /** Bytes; 0 in a template. */
  memory: number;
  /** Processors; 0 in a template. */
  vcpus: number;
  /** Channels this configuration disables, as "type:zone" ([0252]). */
  disable?: string[];
}

export type When = { day: "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun"; time: string } | { monthday: number; time: string };

export interface ScheduleEntry {
  when: When;
  state: "running" | "paused" | "stopped";
  configuration?: string;
}

export interface Placement {
  host: string;
  /** The partition number the host's resource service gave it ([0180]). */
  partition: number;
}

export interface HistoryEntry {
  /** Simulated minutes since the estate's epoch. */
  at: number;
  stage: Stage;
  state: State;
  what: string;
}

export interface PartitionDefinition {
  guid: string;
  name: string;
  domain: string;
  stage: Stage;
  state: State;
  channels: ZoneRef[];
  configurations: Configuration[];
  /** The configuration in effect (or last in effect). */
  active?: string;
  /** The configuration the next start uses ([0300]). */
  next?: string;
  /** Location of the partition system volume ([0305]). */
  volume?: string;
  schedule?: ScheduleEntry[];
  placement?: Placement;
  history: HistoryEntry[];
}

export interface Estate {
  name: string;
  zones: Zone[];
  hosts: HostDef[];
  domains: Domain[];
}

export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const NAME_RE = /^[A-Za-z0-9_-]{1,15}$/;
export const DOMAIN_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function newGuid(): string {
  return randomUUID();
}

/** A request the operations layer refuses: the reason is the message, and nothing was changed. */
export class OpsError extends Error {
  override name = "OpsError";
}

export function zoneKey(z: ZoneRef): string {
  return `${z.type}:${z.zone}`;
}

/** The channels a configuration keeps: the definition's minus those it disables ([0252]). */
export function channelsOf(def: PartitionDefinition, config?: Configuration): ZoneRef[] {
  const off = new Set(config?.disable ?? []);
  return def.channels.filter((c) => !off.has(zoneKey(c)));
}
