// The resource service's memory placement for a new partition ([0199]–[0204] leave policy to the command partition):
// on the partition's NUMA node first, contiguous memory first, then the placement that needs the fewest splits;
// only when no contiguous placement exists anywhere does it fall back to the largest-pages-first gathering of
// ResourceService.allocMemory. Splits are real transactions (sent by the caller's ResourceService).
import type { Host } from "./host.ts";
import { span } from "../core/mapview.ts";
import { checkPartitionSize, type ResourceService, type Run } from "./resource-service.ts";

export interface Placement {
  runs: Run[];
  /** Splits performed to make the memory contiguous. */
  splits: number;
  contiguous: boolean;
  /** The node range the memory came from ("node 1", "any node"). */
  where: string;
}

interface Range {
  base: bigint;
  end: bigint;
  name: string;
}

/** Largest scale whose pages tile `bytes` in at most 1024 entries (one map page), or 0. */
function tileScale(bytes: bigint, order: number): number {
  for (let s = order; s >= 2; s--) if (bytes % span(s) === 0n && bytes / span(s) <= 1024n && bytes >= span(s)) return s;
  return 0;
}

/** Highest run of n Available entries of scale s inside the range: { map, first } or undefined. */
function findRun(host: Host, s: number, n: number, r: Range): { map: number; first: number } | undefined {
  const avail = host.db.indexPage().avail;
  const mem = host.db.i32();
  const sp = span(s);
  for (const m of host.view.mapsOfScaleDesc(s)) {
    if (m.base + sp * 1024n <= r.base || m.base >= r.end) continue;
    const at = m.page * 1024;
    // Entries wholly inside the range are lo..hi (computed once; a BigInt per entry made this a hot spot).
    const lo = r.base <= m.base ? 0 : Number((r.base - m.base + sp - 1n) / sp);
    const hi = r.end >= m.base + sp * 1024n ? 1023 : Number((r.end - m.base) / sp) - 1;
    let len = 0;
    for (let i = 1023; i >= 0; i--) {
      len = i >= lo && i <= hi && mem[at + i] === avail ? len + 1 : 0;
      if (len === n) return { map: m.page, first: i };
    }
  }
  return undefined;
}

/**
 * Chooses and prepares memory for `bytes` (a multiple of 4 MiB): returns the runs to give the partition in its create
 * transaction. `preferred` is the node range tried first; the whole host is tried next.
 */
export function placeMemory(host: Host, rs: ResourceService, bytes: bigint, preferred?: Range): Placement {
  checkPartitionSize(bytes);
  const whole: Range = { base: 0n, end: span(host.order) * 1024n, name: "any node" };
  const ranges = preferred ? [preferred, whole] : [whole];
  const t = tileScale(bytes, host.order);
  if (t) {
    const n = Number(bytes / span(t));
    // Node first: remote memory costs every access, a split costs one transaction.
    for (const r of ranges) {
      // 1. contiguous without a split: a run of equal pages, the largest pages that tile the size.
      for (let s = t; s >= 2; s--) {
        const k = bytes / span(s);
        if (k > 1024n) break;
        const run = findRun(host, s, Number(k), r);
        if (run) return { runs: [{ map: run.map, first: run.first, last: run.first + Number(k) - 1 }], splits: 0, contiguous: true, where: r.name };
      }
      // 2. contiguous after splitting one larger page, fewest splits first (scale t+1 needs one, t+2 two, …).
      for (let s = t + 1; s <= host.order; s++) {
        const big = findRun(host, s, 1, r);
        if (!big) continue;
        let map = big.map;
        let index = big.first;
        for (let level = s; level > t; level--) {
          map = rs.split(map, index);
          index = 1023; // keep to the top of the divided page, like the rest of the policy
        }
        return { runs: [{ map, first: 1024 - n, last: 1023 }], splits: s - t, contiguous: true, where: r.name };
      }
    }
  }
  // 3. no contiguous placement anywhere: gather the largest Available pages.
  return { runs: rs.allocMemory(bytes), splits: 0, contiguous: false, where: "any node" };
}
