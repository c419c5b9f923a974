// One table of hypercall numbers: every `HC_*` constant the AssemblyScript partitions declare (all in
// partitions/assembly/partition.ts) equals monitor-gen/layout.ts's HYPERCALL entry of the same name, and no other
// partition source declares its own. Two branches once both took number 7 (CLIENT_WRITE, PAIR_EPOCH) in private copies.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HYPERCALL } from "../monitor-gen/layout.ts";

const DIR = join(import.meta.dirname, "assembly");
const camel = (s: string): string => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

describe("hypercall numbers in the AssemblyScript partitions", () => {
  it("partition.ts declares every one of HYPERCALL's numbers, each equal to the monitor's", () => {
    const text = readFileSync(join(DIR, "partition.ts"), "utf8");
    const declared = Object.fromEntries([...text.matchAll(/^export const HC_([A-Z_]+): i64 = (\d+);/gm)].map((m) => [camel(m[1]!), Number(m[2])]));
    expect(declared).toEqual({ ...HYPERCALL });
  });

  it("no other partition source declares a hypercall number of its own", () => {
    const own = readdirSync(DIR).filter((f) => f.endsWith(".ts") && f !== "partition.ts")
      .filter((f) => /^(export )?const HC_[A-Z_]+\s*:/m.test(readFileSync(join(DIR, f), "utf8")));
    expect(own).toEqual([]);
  });
});
