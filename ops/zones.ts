// Matching guests to hosts through zones (docs/specs/operations.md §3; layer: ops/): ChannelZonesAvailable of
// [0279]/[0290] — every channel a guest needs must be offered by the host with the same type and the same zone,
// cardinality ignored as the spec's simplified function does — and the hosts of a domain that can take a guest.
import type { Estate, HostDef, ZoneRef } from "./model.ts";
import { zoneKey } from "./model.ts";

/** [0290]: true when the host offers every (type, zone) the guest's channels reference. */
export function channelZonesAvailable(guest: readonly ZoneRef[], host: readonly ZoneRef[]): boolean {
  for (const g of guest) {
    let found = false;
    for (const h of host) {
      if (g.type === h.type && g.zone === h.zone) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

/** The guest's channels that the host does not offer (for refusals). */
export function missingZones(guest: readonly ZoneRef[], host: readonly ZoneRef[]): string[] {
  const offered = new Set(host.map(zoneKey));
  return guest.map(zoneKey).filter((k) => !offered.has(k));
}

/** A domain's hosts as a set, built once per hosts list (placement runs often; an estate's lists are replaced, never edited). */
const domainHosts = new WeakMap<object, Set<string>>();

/** Hosts a domain's partition may run on ([0244], [0253]) that offer every zone it needs ([0240], [0287]). */
export function matchingHosts(estate: Estate, domain: string, channels: readonly ZoneRef[]): HostDef[] {
  const d = estate.domains.find((x) => x.name === domain);
  if (!d) return [];
  let allowed = domainHosts.get(d.hosts);
  if (!allowed) domainHosts.set(d.hosts, (allowed = new Set(d.hosts)));
  return estate.hosts.filter((h) => allowed.has(h.name) && channelZonesAvailable(channels, h.zones));
}

/**
 * The policy service's placement decision (docs/specs/operations.md §3): the domain's hosts offering every zone, the
 * one with the most free memory first, then by name. `free` answers a host's memory not yet given to partitions.
 */
export function rankHosts(estate: Estate, domain: string, channels: readonly ZoneRef[], free: (host: string) => number): HostDef[] {
  return matchingHosts(estate, domain, channels).sort((a, b) => free(b.name) - free(a.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Index for many placements (bench: 1,000 hosts): hosts by zone key, so a guest's candidates are the intersection of
 * its zones' host sets instead of a scan of every host's channels. Same answer as channelZonesAvailable per host.
 */
export class ZoneIndex {
  private readonly byZone = new Map<string, Set<string>>();
  private readonly all: string[];

  constructor(hosts: readonly HostDef[]) {
    this.all = hosts.map((h) => h.name);
    for (const h of hosts) for (const z of h.zones) {
      const k = zoneKey(z);
      let s = this.byZone.get(k);
      if (!s) this.byZone.set(k, (s = new Set()));
      s.add(h.name);
    }
  }

  candidates(channels: readonly ZoneRef[]): string[] {
    if (channels.length === 0) return [...this.all];
    const sets = channels.map((c) => this.byZone.get(zoneKey(c)) ?? new Set<string>()).sort((a, b) => a.size - b.size);
    const [first, ...rest] = sets;
    return [...first!].filter((h) => rest.every((s) => s.has(h)));
  }
}
