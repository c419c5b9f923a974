// Benchmarks of the operations partition (issue 19): definitions written per second through the crash-safe store on
// the real disk (journal append + fsync, atomic replace with fsync of file and folder, checkpoints), beside the
// floor of one fsync'd append per definition measured in the same run (`ratio` = store / floor); and placement
// decisions per second (ops/zones.ts rankHosts: zone matching over a domain's hosts, then free memory) with 1,000
// hosts offering 10 zones each, beside the same decisions through the zone index (hosts by zone).
import { def } from "./ops-fixtures.ts";
import { appendFileSync, closeSync, fsyncSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { round, type Bench, type Figure } from "./bench.ts";
import type { Estate, HostDef, ZoneRef, ZoneType } from "../ops/model.ts";
import { FileStore } from "../ops/store/store.ts";
import { NodeFs } from "../ops/store/fs.ts";
import { rankHosts, ZoneIndex } from "../ops/zones.ts";


function storeRate(n: number): { perSecond: number; floor: number } {
  const dir = mkdtempSync(join(tmpdir(), "uv-ops-bench-"));
  try {
    const store = new FileStore(new NodeFs(join(dir, "store")));
    for (let i = 0; i < 20; i++) store.commitSync([{ put: def(i) }]); // warm up
    const t0 = performance.now();
    for (let i = 0; i < n; i++) store.commitSync([{ put: def(1000 + i) }]);
    const perSecond = n / ((performance.now() - t0) / 1000);
    // The floor: one fsync'd append of the same bytes per definition.
    const f = join(dir, "floor");
    const line = `${JSON.stringify(def(1))}\n`;
    const t1 = performance.now();
    for (let i = 0; i < n; i++) {
      appendFileSync(f, line);
      const fd = openSync(f, "r+");
      fsyncSync(fd);
      closeSync(fd);
    }
    const floor = n / ((performance.now() - t1) / 1000);
    return { perSecond, floor };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TYPES: ZoneType[] = ["network", "storage", "console", "firmware", "monitor", "power", "processor", "memory"];

/** 1,000 hosts, 10 zones each from a pool of 8 types × 12 zones, one partition domain over all of them. */
function bigEstate(): { estate: Estate; guests: ZoneRef[][] } {
  let x = 7;
  const rnd = (m: number): number => ((x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) % m);
  const hosts: HostDef[] = [];
  for (let i = 0; i < 1000; i++) {
    const zones = new Map<string, ZoneRef>();
    while (zones.size < 10) {
      const z: ZoneRef = { type: TYPES[rnd(TYPES.length)]!, zone: `Z${rnd(12)}` };
      zones.set(`${z.type}:${z.zone}`, z);
    }
    hosts.push({ name: `H${i}`, memory: (16 + rnd(48)) * 2 ** 30, pcpus: 8, domain: "System", zones: [...zones.values()] });
  }
  // Guests ask for 2 of the zones of some host (so most decisions find candidates).
  const guests: ZoneRef[][] = Array.from({ length: 256 }, () => {
    const h = hosts[rnd(hosts.length)]!;
    return [h.zones[rnd(5)]!, h.zones[5 + rnd(5)]!];
  });
  const estate: Estate = { name: "bench", zones: [], hosts, domains: [{ name: "System", kind: "system", hosts: hosts.map((h) => h.name) }, { name: "D", kind: "partition", hosts: hosts.map((h) => h.name) }] };
  return { estate, guests };
}

const bench: Bench[] = [{
  name: "ops-store",
  async run(): Promise<Figure[]> {
    const r = storeRate(200);
    return [{ bench: "ops.store.definitions_per_s", value: round(r.perSecond, 1), unit: "definitions/s (fsync'd, real disk)", vs: "one fsync'd append per definition", ratio: round(r.perSecond / r.floor, 3) }];
  },
}, {
  name: "ops-placement",
  async run(): Promise<Figure[]> {
    const { estate, guests } = bigEstate();
    const free = new Map(estate.hosts.map((h) => [h.name, h.memory]));
    let found = 0;
    const n = 2000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const best = rankHosts(estate, "D", guests[i % guests.length]!, (h) => free.get(h)!)[0];
      if (best) {
        found++;
        free.set(best.name, free.get(best.name)! - (64 << 20));
      }
    }
    const scan = n / ((performance.now() - t0) / 1000);
    const index = new ZoneIndex(estate.hosts);
    const t1 = performance.now();
    let found2 = 0;
    for (let i = 0; i < n; i++) if (index.candidates(guests[i % guests.length]!).length) found2++;
    const indexed = n / ((performance.now() - t1) / 1000);
    if (found !== n || found2 !== n) throw new Error(`bench: ${n - found} decisions found no host`);
    return [
      { bench: "ops.placement.decisions_per_s", value: round(scan, 1), unit: "decisions/s (1,000 hosts × 10 zones, scan + rank)" },
      { bench: "ops.placement.indexed_candidates_per_s", value: round(indexed, 1), unit: "candidate sets/s (zone index)", vs: "ops.placement.decisions_per_s", ratio: round(indexed / scan, 2) },
    ];
  },
}];
export default bench;
