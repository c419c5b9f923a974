// A deterministic sequence of store commits and the model of the state after each (layer: ops/store/, test support):
// shared by the power-cut test (store.test.ts) and the SIGKILL child (kill-child.ts), so the parent can compute the
// state a killed child must have left without trusting the store. The model applies batches to plain maps.
import type { Estate, PartitionDefinition } from "../model.ts";
import type { Change } from "./store.ts";

const DOMAINS = ["Production", "Test", "Mission.Critical"];

function guid(i: number): string {
  const h = i.toString(16).padStart(12, "0");
  return `00000000-0000-4000-8000-${h}`;
}

export function def(i: number, version: number): PartitionDefinition {
  return {
    guid: guid(i), name: `P${i}`, domain: DOMAINS[i % DOMAINS.length]!, stage: version % 2 ? "provisioning" : "construction",
    state: version % 2 ? "stopped" : "uninstalled", channels: [{ type: "network", zone: `NET${i % 3}` }],
    configurations: [{ name: "Default", memory: (version + 1) * 4 * 1048576, vcpus: 1 }], history: [{ at: version, stage: "construction", state: "uninstalled", what: `v${version} ${"x".repeat(i % 7)}` }],
  };
}

/** A deterministic sequence of batches: an estate, puts, updates, deletes and multi-change batches. */
export function batches(n: number): Change[][] {
  const out: Change[][] = [];
  const versions = new Map<number, number>();
  const live = new Set<number>();
  let x = 12345;
  const rnd = (m: number): number => ((x = (x * 1103515245 + 12345) & 0x7fffffff) % m);
  for (let k = 0; k < n; k++) {
    if (k === 0 || k % 17 === 5) {
      const estate: Estate = { name: `estate v${k}`, zones: [{ type: "network", name: "NET0" }], hosts: [], domains: DOMAINS.map((d) => ({ name: d, kind: "partition", hosts: [] })) };
      out.push([{ estate }]);
      continue;
    }
    const size = 1 + rnd(3);
    const batch: Change[] = [];
    const touched = new Set<number>();
    for (let j = 0; j < size; j++) {
      const i = rnd(12);
      if (touched.has(i)) continue;
      touched.add(i);
      if (live.has(i) && rnd(4) === 0) {
        live.delete(i);
        batch.push({ delete: { domain: DOMAINS[i % DOMAINS.length]!, guid: guid(i) } });
      } else {
        const v = (versions.get(i) ?? 0) + 1;
        versions.set(i, v);
        live.add(i);
        batch.push({ put: def(i, v) });
      }
    }
    out.push(batch);
  }
  return out;
}

/** The model: the state after the first `k` batches, computed without the store. */
export function model(all: Change[][], k: number): { seq: number; estate: Estate | undefined; defs: Map<string, PartitionDefinition> } {
  let estate: Estate | undefined;
  const defs = new Map<string, PartitionDefinition>();
  for (const b of all.slice(0, k)) {
    for (const c of b) {
      if ("estate" in c) estate = c.estate;
      else if ("put" in c) defs.set(`${c.put.domain}/${c.put.guid}`, c.put);
      else defs.delete(`${c.delete.domain}/${c.delete.guid}`);
    }
  }
  return { seq: k, estate, defs };
}

