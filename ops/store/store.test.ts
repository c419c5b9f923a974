// The store under power cuts (docs/specs/operations.md §5): a long sequence of commits runs over PowerCutFs, which
// loses every byte and every directory entry that fsync did not make durable; the power is cut at every mutating
// call in turn, the disk is reopened, and the state must be exactly what the last returned commit left — or, for
// the one commit in flight at the cut, either the state before it or after it (its journal fsync may or may not
// have happened). The expected states come from a plain model applying the same batches to maps, not from the
// store. Also: torn appends, a cut during recovery, corrupt files reported with their path, refused names.
// The contract every DefinitionStore keeps (batches land whole, reopening gives the same state, refusals change
// nothing, corruption is reported with its place) runs on both backends: the folder store and the etcd store
// (etcd-store.ts, over a three-member cluster this file starts and stops; a missing `etcd` binary fails the test).
import type { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Estate, PartitionDefinition } from "../model.ts";
import { EtcdCluster } from "./etcd-cluster.ts";
import { EtcdStore, StoreFenced, StoreOutcomeUnknown } from "./etcd-store.ts";
import { batches, def, model } from "./sequence.ts";
import { type Change, type DefinitionStore, FileStore, seal, StoreCorrupt, StoreRefused, type StoreState } from "./store.ts";
import { PowerCut, PowerCutFs } from "./power-cut.ts";

function flat(s: StoreState): { seq: number; estate: Estate | undefined; defs: Map<string, PartitionDefinition> } {
  const defs = new Map<string, PartitionDefinition>();
  for (const [d, m] of s.domains) for (const [g, v] of m) defs.set(`${d}/${g}`, v);
  return { seq: s.seq, estate: s.estate, defs };
}

/** Runs the batches over `fs` until the power cut; returns the last committed batch count and the one in flight. */
function runUntilCut(fs: PowerCutFs, all: Change[][]): { committed: number; inflight: number | undefined } {
  let committed = 0;
  let store: FileStore;
  try {
    store = new FileStore(fs);
  } catch (e) {
    if (e instanceof PowerCut) return { committed, inflight: undefined };
    throw e;
  }
  for (let i = 0; i < all.length; i++) {
    try {
      store.commitSync(all[i]!);
      committed = i + 1;
    } catch (e) {
      if (e instanceof PowerCut) return { committed, inflight: i + 1 };
      throw e;
    }
  }
  return { committed, inflight: undefined };
}

const SEQUENCE = batches(70);

describe("FileStore over a power-cut filesystem", () => {
  const clean = new PowerCutFs();
  const full = runUntilCut(clean, SEQUENCE);
  const total = clean.ops;

  it("without a cut it holds the model's final state, and reopening gives it again", () => {
    expect(full.committed).toBe(SEQUENCE.length);
    expect(total).toBeGreaterThan(400);
    expect(flat(new FileStore(clean).loadSync())).toEqual(model(SEQUENCE, SEQUENCE.length));
    // Reopening from the durable state alone (a cut after the last call) too.
    expect(flat(new FileStore(clean.afterCut()).loadSync())).toEqual(model(SEQUENCE, SEQUENCE.length));
  });

  for (const torn of [false, true]) {
    it(`a cut at every one of the ${total} mutating calls${torn ? ", with torn appends" : ""}: reopening gives exactly the last committed state`, () => {
      const outcomes = { committedOnly: 0, inflightLanded: 0, inflightLost: 0 };
      for (let k = 1; k <= total; k++) {
        const fs = new PowerCutFs();
        fs.torn = torn;
        fs.cutAt(k);
        const { committed, inflight } = runUntilCut(fs, SEQUENCE);
        const after = flat(new FileStore(fs.afterCut()).loadSync());
        const before = model(SEQUENCE, committed);
        if (inflight === undefined) {
          expect(after, `cut at ${k}`).toEqual(before);
          outcomes.committedOnly++;
        } else if (after.seq === inflight) {
          expect(after, `cut at ${k}, batch ${inflight} in flight`).toEqual(model(SEQUENCE, inflight));
          outcomes.inflightLanded++;
        } else {
          expect(after, `cut at ${k}, batch ${inflight} in flight`).toEqual(before);
          outcomes.inflightLost++;
        }
      }
      // Both outcomes of an in-flight commit happen: cuts before its journal fsync lose it, cuts after keep it.
      expect(outcomes.inflightLanded).toBeGreaterThan(100);
      expect(outcomes.inflightLost).toBeGreaterThan(100);
    }, 120_000);
  }

  it("a cut during recovery, at every call of it, then another reopen: still the committed state", () => {
    // Cut the original run mid-commit, then cut the recovery at each of its calls.
    for (const k of [Math.floor(total / 3), Math.floor(total / 2) + 1, total - 3]) {
      const fs = new PowerCutFs();
      fs.cutAt(k);
      const { committed, inflight } = runUntilCut(fs, SEQUENCE);
      const disk = fs.afterCut();
      const probe = disk.afterCut();
      new FileStore(probe);
      const recoveryOps = probe.ops;
      expect(recoveryOps).toBeGreaterThan(0);
      for (let r = 1; r <= recoveryOps; r++) {
        const d = disk.afterCut();
        d.cutAt(r);
        expect(() => new FileStore(d)).toThrow(PowerCut);
        const got = flat(new FileStore(d.afterCut()).loadSync());
        const ok = [model(SEQUENCE, committed), ...(inflight ? [model(SEQUENCE, inflight)] : [])];
        expect(ok.some((m) => JSON.stringify([...m.defs]) === JSON.stringify([...got.defs]) && m.seq === got.seq), `cut ${k}, recovery cut ${r}`).toBe(true);
      }
    }
  }, 60_000);
});

/** A backend under test: how to open a store over the same data again, and how to damage one stored definition. */
interface Backend {
  name: string;
  /** A fresh, empty space; returns its opener. */
  fresh(): Promise<{ open(): Promise<DefinitionStore>; corrupt(domain: string, guid: string): Promise<string> }>;
}

let cluster: EtcdCluster | undefined;
let client: Etcd3 | undefined;
let spaces = 0;

const BACKENDS: Backend[] = [
  {
    name: "folder store",
    async fresh() {
      const fs = new PowerCutFs();
      return {
        open: async () => new FileStore(fs),
        async corrupt(domain, guid) {
          const file = `domains/${domain}/${guid}.json`;
          const bytes = fs.read(file)!;
          bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x01;
          fs.write(file, bytes);
          return file;
        },
      };
    },
  },
  {
    name: "etcd store",
    async fresh() {
      const prefix = `contract-${spaces++}/`;
      return {
        open: async () => new EtcdStore(client!, prefix),
        async corrupt(domain, guid) {
          const key = `${prefix}def/${domain}/${guid}`;
          const text = (await client!.get(key).string())!;
          const at = text.length - 20;
          await client!.put(key).value(text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ 1) + text.slice(at + 1));
          return key;
        },
      };
    },
  },
];

beforeAll(async () => {
  cluster = await EtcdCluster.start();
  client = cluster.client();
}, 60_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
}, 30_000);

for (const backend of BACKENDS) {
  describe(`DefinitionStore contract: ${backend.name}`, () => {
    it("the batches land in order and whole: load equals the model after each of them, and a reopened store too", async () => {
      const space = await backend.fresh();
      const s = await space.open();
      for (let i = 0; i < SEQUENCE.length; i++) {
        expect(await s.commit(SEQUENCE[i]!)).toBe(i + 1);
        if (i % 10 === 9) expect(flat(await s.load()), `after batch ${i + 1}`).toEqual(model(SEQUENCE, i + 1));
      }
      expect(flat(await s.load())).toEqual(model(SEQUENCE, SEQUENCE.length));
      await s.close();
      const again = await space.open();
      expect(flat(await again.load())).toEqual(model(SEQUENCE, SEQUENCE.length));
      // The reopened store goes on from the same sequence number.
      expect(await again.commit([{ put: def(41, 9) }])).toBe(SEQUENCE.length + 1);
    }, 60_000);

    it("load returns a copy: changing it changes nothing stored", async () => {
      const s = await (await backend.fresh()).open();
      await s.commit([{ put: def(3, 1) }]);
      const a = await s.load();
      a.domains.get(def(3, 1).domain)!.get(def(3, 1).guid)!.name = "changed";
      a.domains.clear();
      expect(flat(await s.load()).defs.get(`${def(3, 1).domain}/${def(3, 1).guid}`)).toEqual(def(3, 1));
    });

    it("names that would leave the tree, empty batches and non-changes are refused and nothing is written", async () => {
      const space = await backend.fresh();
      const s = await space.open();
      for (const b of SEQUENCE.slice(0, 10)) await s.commit(b);
      const before = JSON.stringify([...flat(await s.load()).defs]);
      await expect(s.commit([{ put: { ...def(1, 1), domain: "../etc" } }])).rejects.toThrow(StoreRefused);
      await expect(s.commit([{ put: { ...def(1, 1), guid: "../../x" } }])).rejects.toThrow(StoreRefused);
      // A refused change in a batch refuses the whole batch, the good change before it included.
      await expect(s.commit([{ put: def(50, 1) }, { delete: { domain: "a/b", guid: def(2, 1).guid } }])).rejects.toThrow(StoreRefused);
      await expect(s.commit([])).rejects.toThrow(StoreRefused);
      await expect(s.commit([{ nothing: 1 } as unknown as Change])).rejects.toThrow(StoreRefused);
      const after = await (await space.open()).load();
      expect(after.seq).toBe(10);
      expect(JSON.stringify([...flat(after).defs])).toBe(before);
    });

    it("a stored definition with a flipped byte is reported with its place, and the store refuses to load", async () => {
      const space = await backend.fresh();
      const s = await space.open();
      for (const b of SEQUENCE.slice(0, 10)) await s.commit(b);
      const victim = def(40, 3);
      await s.commit([{ put: victim }]);
      const where = await space.corrupt(victim.domain, victim.guid);
      const reopen = async () => (await space.open()).load();
      await expect(reopen()).rejects.toThrow(StoreCorrupt);
      await expect(reopen()).rejects.toThrow(`${where}: corrupt store file: checksum mismatch`);
    });
  });
}

describe("FileStore journal", () => {
  it("a bad journal line followed by good ones is corruption (a torn append can only be the last line)", () => {
    const fs = new PowerCutFs();
    const s = new FileStore(fs);
    s.commitSync(SEQUENCE[0]!);
    s.commitSync(SEQUENCE[1]!);
    const text = new TextDecoder().decode(fs.read("journal")!);
    const lines = text.split("\n");
    lines[1] = lines[1]!.replace(/"seq":2/, '"seq":9');
    fs.write("journal", new TextEncoder().encode(lines.join("\n")));
    expect(() => new FileStore(fs)).toThrow(/journal line 2: corrupt store file: checksum mismatch/);
  });
});

describe("EtcdStore on a three-member cluster", () => {
  it("two stores on one prefix: their batches are serialised by compare-and-swap on the sequence key, none lost", async () => {
    const prefix = `race-${spaces++}/`;
    const a = new EtcdStore(client!, prefix);
    const b = new EtcdStore(client!, prefix);
    const seqs = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).commit([{ put: def(i, 1) }])));
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const st = await new EtcdStore(client!, prefix).load();
    expect(st.seq).toBe(40);
    expect([...st.domains.values()].reduce((n, m) => n + m.size, 0)).toBe(40);
  });

  it("a fenced store commits while it holds the fence key and refuses once the key is re-created by another writer", async () => {
    const prefix = `fence-${spaces++}/`;
    const key = `${prefix}leader`;
    await client!.put(key).value("a");
    const rev = (await client!.get(key).exec()).kvs[0]!.create_revision;
    const s = new EtcdStore(client!, prefix);
    s.fenceWith({ key, createRevision: rev });
    expect(await s.commit([{ put: def(1, 1) }])).toBe(1);
    await client!.delete().key(key);
    await client!.put(key).value("b");
    await expect(s.commit([{ put: def(2, 1) }])).rejects.toThrow(StoreFenced);
    const st = await new EtcdStore(client!, prefix).load();
    expect(st.seq).toBe(1);
    expect(flat(st).defs.size).toBe(1);
  });

  it("a corrupt sequence key or a definition under the wrong key is refused with its key", async () => {
    const prefix = `shape-${spaces++}/`;
    await client!.put(`${prefix}seq`).value("x");
    await expect(new EtcdStore(client!, prefix).load()).rejects.toThrow(`${prefix}seq: corrupt store file: not a sequence number`);
    await client!.put(`${prefix}seq`).value("1 a");
    await client!.put(`${prefix}def/Test/${def(1, 1).guid}`).value(seal({ ...def(1, 1), domain: "Production" }));
    await expect(new EtcdStore(client!, prefix).load()).rejects.toThrow("key does not match");
  });

  it("the leader member killed mid-run: writes continue, and the state is the model's", async () => {
    // Its own cluster: this test kills a member.
    const own = await EtcdCluster.start();
    const c = own.client();
    try {
      const s = new EtcdStore(c, "kill/");
      const all = batches(150);
      let killed = -1;
      for (let i = 0; i < all.length; i++) {
        if (i === 50) {
          // Find the leader through each member's status and kill it.
          for (const m of own.endpoints.keys()) {
            const one = own.clientOf(m);
            try {
              const st = await one.maintenance.status();
              if (st.leader === st.header.member_id) killed = m;
            } finally {
              one.close();
            }
          }
          expect(killed).toBeGreaterThanOrEqual(0);
          await own.kill(killed);
        }
        expect(await s.commit(all[i]!)).toBe(i + 1);
      }
      expect(own.running()).toHaveLength(2);
      expect(flat(await new EtcdStore(c, "kill/").load())).toEqual(model(all, all.length));
    } finally {
      c.close();
      await own.stop();
    }
  }, 90_000);

  it("two members of three lost: a commit ends with StoreOutcomeUnknown; with the majority back the batch is there whole or not at all", async () => {
    const own = await EtcdCluster.start();
    const c = own.client();
    try {
      const s = new EtcdStore(c, "quorum/", 3000);
      const all = batches(30);
      for (let i = 0; i < 20; i++) await s.commit(all[i]!);
      await own.kill(1);
      await own.kill(2);
      const t0 = Date.now();
      await expect(s.commit(all[20]!)).rejects.toThrow(StoreOutcomeUnknown);
      expect(Date.now() - t0).toBeLessThan(30_000);
      own.restart(1);
      own.restart(2);
      // The reopened store's state is the model's after 20 or after 21 batches: never a part of batch 21.
      let st: StoreState | undefined;
      for (let k = 0; k < 100 && !st; k++) {
        st = await new EtcdStore(c, "quorum/").load().catch(() => undefined);
        if (!st) await new Promise((r) => setTimeout(r, 200));
      }
      const got = flat(st!);
      expect([20, 21]).toContain(got.seq);
      expect(got).toEqual(model(all, got.seq));
      // And writing goes on from there.
      const again = new EtcdStore(c, "quorum/");
      await again.load();
      expect(await again.commit(all[21]!)).toBe(got.seq + 1);
    } finally {
      c.close();
      await own.stop();
    }
  }, 90_000);
});
