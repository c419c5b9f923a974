// Where the resource database starts in memory — layout facts of core that the simulator and bare metal share: the
// firmware map's regions as the boot partition sees them, the bootstrap's placement of the first database pages
// (Figure 8's, generalised to any order) and the map order a host needs. Part of core's TypeScript bindings (bottom
// layer): sim/host.ts bootstraps with it, the image builder lays out the machine's database with it, and
// loader-efi/uv-boot-db.ts turns a UEFI map into FirmwareRegions.
import { DEFAULT_PRIVATE } from "./database.ts";
import { span } from "./mapview.ts";
import { gmk } from "./notation.ts";

export interface FirmwareRegion {
  base: bigint;
  length: bigint;
  type: "usable" | "reserved";
}

/** Where the bootstrap places the database's first pages (all in the 4 MiB page [0,region,*]). */
export interface Layout {
  region: number;
  top: number;
  /** Map pages of scales order-1 … 1 on the path to the PKM of `region`. */
  chain: number[];
  ui: number;
  missing: number;
  avail: number;
  idle: number;
  boot: number;
  /** M of the ultravisor's private 4 MiB page [0,M,*] (memory-layout.md §5); not 0 and not `region`. */
  private: number;
}

/** Smallest order whose top page covers `bytes`. */
export function orderFor(bytes: bigint): number {
  for (let o = 2; o <= 5; o++) if (bytes <= span(o) * 1024n) return o;
  throw new RangeError(`${bytes} bytes exceed an order-5 map (4 EB)`);
}

/** Figure 8's placement, generalised to any order: maps at [0,1,0..], PKM at [0,1,18], index page at [0,1,23]. */
export function defaultLayout(order: number): Layout {
  return layoutAt(order, 1, DEFAULT_PRIVATE);
}

/**
 * Figure 8's placement moved to the 4 MiB page [0,region,*], with the private page [0,priv,*]: the simulator packs
 * several hosts into one linear memory (sim/arena.ts), each with its database in its own pair of 4 MiB pages.
 */
export function layoutAt(order: number, region: number, priv: number): Layout {
  const chain: number[] = [];
  for (let s = order - 1; s >= 2; s--) chain.push(gmk(0, region, order - s));
  chain.push(gmk(0, region, 18));
  return {
    region, top: gmk(0, region, 0), chain, ui: gmk(0, region, 23), missing: gmk(0, region, 19), avail: gmk(0, region, 20),
    idle: gmk(0, region, 21), boot: gmk(0, region, 22), private: priv,
  };
}
