// Benchmarks of the resource database in core.wasm (issue 4): single-entry ChangeOwner transactions per second with
// audit logging (request to the log, flushes through the hw.flush import, commit record, a backup whenever the log
// fills), GetMemOwner lookups per second (batched inside wasm, and one JS→wasm call per lookup), and the pages the
// database of a 4 PB host with 1K partitions of 4 TB occupies. Targets: ≥ 1 M transactions/s, ≥ 20 M lookups/s.
import { bestOf, round, type Bench, type Figure } from "./bench.ts";
import { REQUEST_BUFFER } from "../core/database.ts";
import { Host } from "../sim/host.ts";
import { gmk } from "../core/notation.ts";
import { ResourceService } from "../sim/resource-service.ts";

const P = (k: number): number => gmk(0, 1, k);

async function figure8Host(): Promise<Host> {
  return Host.create({ memory: 64n << 30n, reserve: [[P(2), P(17)]], presplit: [{ map: P(0), index: 15, into: P(16) }] });
}

async function changeOwnerRate(): Promise<Figure[]> {
  const h = await figure8Host();
  const rs = new ResourceService(h);
  const x = rs.create({ name: "X", size: 4n << 30n, at: [{ map: P(0), first: 2, last: 2 }] });
  const ui = h.db.indexPage();
  // Two requests that toggle PGM entry 3 between Available and X: every transaction passes its precondition.
  const give = REQUEST_BUFFER;
  const take = REQUEST_BUFFER + 256;
  h.db.encode({ ops: [{ op: "changeOwner", map: P(0), first: 3, last: 3, from: ui.avail, to: x }] }, give);
  h.db.encode({ ops: [{ op: "changeOwner", map: P(0), first: 3, last: 3, from: x, to: ui.avail }] }, take);
  const n = 400_000;
  let backups = 0;
  const run = (): void => {
    for (let i = 0; i < n; i++) {
      let rc = h.db.submitRaw(i & 1 ? take : give);
      if (rc === -16) {
        h.backup();
        backups++;
        rc = h.db.submitRaw(i & 1 ? take : give);
      }
      if (rc !== 0) throw new Error(`ChangeOwner failed with ${rc} at ${i}`);
    }
  };
  run(); // warm-up: tier-up of the wasm and of the JS loop
  backups = 0;
  const t = await bestOf(3, run);
  return [
    { bench: "core.changeowner_tx_per_s", value: round(n / t, 0), unit: "tx/s (single entry, audit-logged)", vs: "target 1000000 tx/s", ratio: round(n / t / 1e6, 2) },
    { bench: "core.changeowner_backups_per_run", value: round(backups / 3, 1), unit: "backups (12 MB copy) per 400k tx" },
  ];
}

async function lookupRate(): Promise<Figure[]> {
  const h = await figure8Host();
  const rs = new ResourceService(h);
  rs.create({ name: "X", size: 4n << 30n, at: [{ map: P(0), first: 2, last: 2 }] });
  rs.create({ name: "Y", size: 1n << 30n, at: [{ map: P(1), first: 768, last: 1023 }] });
  // Scratch for the batch lives in the boot partition's first 4 MB, which the database does not use.
  const addrs = 0x10000;
  const out = 0x20000;
  const n = 4096;
  const v = new DataView(h.memory.buffer);
  let seed = 12345;
  const jsAddrs: bigint[] = [];
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const a = (BigInt(seed) << 4n) % (64n << 30n);
    v.setBigUint64(addrs + 8 * i, a, true);
    jsAddrs.push(a);
  }
  const rounds = 2000;
  const batch = (): void => {
    for (let r = 0; r < rounds; r++) if (h.db.ownerBatch(addrs, n, out) !== n) throw new Error("batch lookup failed");
  };
  batch();
  const tb = await bestOf(3, batch);
  // The owners agree with one-at-a-time lookups.
  for (let i = 0; i < n; i += 97) if (v.getInt32(out + 4 * i, true) !== h.db.owner(jsAddrs[i]!)) throw new Error("batch and single lookup disagree");
  const lo = jsAddrs.map((a) => Number(a & 0xffffffffn) | 0);
  const hi = jsAddrs.map((a) => Number(a >> 32n));
  const get = h.core.exports.db_get_owner as (lo: number, hi: number) => number;
  const single = (): void => {
    let sum = 0;
    for (let r = 0; r < 200; r++) for (let i = 0; i < n; i++) sum += get(lo[i]!, hi[i]!);
    if (sum === 0) throw new Error("no owners");
  };
  single();
  const ts = await bestOf(3, single);
  return [
    { bench: "core.getmemowner_batched_per_s", value: round((rounds * n) / tb, 0), unit: "lookups/s (in wasm, 64 GB host)", vs: "target 20000000 lookups/s", ratio: round((rounds * n) / tb / 2e7, 2) },
    { bench: "core.getmemowner_js_call_per_s", value: round((200 * n) / ts, 0), unit: "lookups/s (one JS→wasm call each)" },
  ];
}

async function fourPetabytePages(): Promise<Figure[]> {
  const h = await Host.create({ memory: 4n << 50n, keepBackup: false });
  const rs = new ResourceService(h);
  for (let i = 0; i < 1023; i++) rs.create({ name: `P${i}`, size: 4n << 40n });
  rs.create({ name: "P1023", size: (4n << 40n) - (4n << 30n) });
  const maps = h.view.maps().length;
  let descriptors = 0;
  for (const m of h.view.maps().filter((x) => x.scale === 1)) {
    for (let i = 0; i < 1024; i++) if (h.view.entry(m.page, i) === Number(m.base / 4096n) + i) descriptors++;
  }
  return [
    { bench: "core.4pb_host_map_pages", value: maps, unit: "map pages (4 PB, 1K partitions of 4 TB)" },
    { bench: "core.4pb_host_database_pages", value: maps + 1 + descriptors, unit: `pages: map pages, the index page and ${descriptors} descriptors` },
    { bench: "core.4pb_host_wasm_memory", value: h.memory.buffer.byteLength / (1 << 20), unit: "MB of linear memory" },
  ];
}

const benches: Bench[] = [
  { name: "core.changeowner", run: changeOwnerRate },
  { name: "core.getmemowner", run: lookupRate },
  { name: "core.4pb", run: fourPetabytePages },
];

export default benches;
