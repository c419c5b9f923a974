// The store under power cuts (docs/specs/operations.md §5): a long sequence of commits runs over PowerCutFs, which
// loses every byte and every directory entry that fsync did not make durable; the power is cut at every mutating
// call in turn, the disk is reopened, and the state must be exactly what the last returned commit left — or, for
// the one commit in flight at the cut, either the state before it or after it (its journal fsync may or may not
// have happened). The expected states come from a plain model applying the same batches to maps, not from the
// store. Also: torn appends, a cut during recovery, corrupt files reported with their path, refused names.
import { describe, expect, it } from "vitest";
import type { Estate, PartitionDefinition } from "../model.ts";
import { batches, def, model } from "./sequence.ts";
import { type Change, FileStore, StoreCorrupt, StoreRefused, type StoreState } from "./store.ts";
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
      store.commit(all[i]!);
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
    expect(flat(new FileStore(clean).load())).toEqual(model(SEQUENCE, SEQUENCE.length));
    // Reopening from the durable state alone (a cut after the last call) too.
    expect(flat(new FileStore(clean.afterCut()).load())).toEqual(model(SEQUENCE, SEQUENCE.length));
  });

  for (const torn of [false, true]) {
    it(`a cut at every one of the ${total} mutating calls${torn ? ", with torn appends" : ""}: reopening gives exactly the last committed state`, () => {
      const outcomes = { committedOnly: 0, inflightLanded: 0, inflightLost: 0 };
      for (let k = 1; k <= total; k++) {
        const fs = new PowerCutFs();
        fs.torn = torn;
        fs.cutAt(k);
        const { committed, inflight } = runUntilCut(fs, SEQUENCE);
        const after = flat(new FileStore(fs.afterCut()).load());
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
        const got = flat(new FileStore(d.afterCut()).load());
        const ok = [model(SEQUENCE, committed), ...(inflight ? [model(SEQUENCE, inflight)] : [])];
        expect(ok.some((m) => JSON.stringify([...m.defs]) === JSON.stringify([...got.defs]) && m.seq === got.seq), `cut ${k}, recovery cut ${r}`).toBe(true);
      }
    }
  }, 60_000);
});

describe("FileStore refusals", () => {
  function filled(): PowerCutFs {
    const fs = new PowerCutFs();
    const s = new FileStore(fs);
    for (const b of SEQUENCE.slice(0, 10)) s.commit(b);
    s.commit([{ put: def(40, 3) }]);
    return fs;
  }

  it("a definition file with a flipped byte is reported with its path, and the store refuses to open", () => {
    const fs = filled();
    const dir = fs.list("domains").find((d) => fs.list(`domains/${d}`).length > 0)!;
    const file = `domains/${dir}/${fs.list(`domains/${dir}`)[0]!}`;
    const bytes = fs.read(file)!;
    const at = bytes.length - 20;
    bytes[at] = bytes[at]! ^ 0x01;
    fs.write(file, bytes);
    expect(() => new FileStore(fs)).toThrow(StoreCorrupt);
    try {
      new FileStore(fs);
    } catch (e) {
      expect((e as StoreCorrupt).path).toBe(file);
      expect((e as Error).message).toContain(`${file}: corrupt store file: checksum mismatch`);
    }
  });

  it("a bad journal line followed by good ones is corruption (a torn append can only be the last line)", () => {
    const fs = new PowerCutFs();
    const s = new FileStore(fs);
    s.commit(SEQUENCE[0]!);
    s.commit(SEQUENCE[1]!);
    const text = new TextDecoder().decode(fs.read("journal")!);
    const lines = text.split("\n");
    lines[1] = lines[1]!.replace(/"seq":2/, '"seq":9');
    fs.write("journal", new TextEncoder().encode(lines.join("\n")));
    expect(() => new FileStore(fs)).toThrow(/journal line 2: corrupt store file: checksum mismatch/);
  });

  it("names that would leave the tree are refused and nothing is written", () => {
    const fs = filled();
    const s = new FileStore(fs);
    const before = fs.ops;
    const bad = { ...def(1, 1), domain: "../etc" };
    expect(() => s.commit([{ put: bad }])).toThrow(StoreRefused);
    expect(() => s.commit([{ put: { ...def(1, 1), guid: "../../x" } }])).toThrow(StoreRefused);
    expect(fs.ops).toBe(before);
  });
});
