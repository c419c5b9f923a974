// The storage pair in the image, without booting (docs/specs/storage-failover.md §7.1–7.2, §7.5): each storage client
// of examples/storage-pair.yaml has a channel to the primary in slot 1 and to the secondary in slot 2, each member
// serves from its slot 1 and is a console client in slot 0 of the console I/O partition, and the
// failover's ring-0 code is linked only into an image with a pair. The booted
// failover is test/hw/storage-pair.test.ts.
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildUltravisorImage, type UltravisorImage } from "./ultravisor.ts";
import { loadConfig } from "../partitions/config.ts";

const examples = join(import.meta.dirname, "..", "examples");
let pair: UltravisorImage;
let single: UltravisorImage;
beforeAll(async () => {
  pair = await buildUltravisorImage({ config: loadConfig(join(examples, "storage-pair.yaml")) });
  single = await buildUltravisorImage({ config: loadConfig(join(examples, "storage.yaml")) });
}, 120_000);

const names = (img: UltravisorImage): Set<string> => new Set(img.symbols.map((s) => s.name));

describe("the storage pair in the image", () => {
  it("wires each storage client to both members, slot 1 the primary's and slot 2 the secondary's", () => {
    const idx = (n: string): number => pair.config.partitions.findIndex((p) => p.name === n);
    const storage = pair.channels.filter((c) => c.kind === "storage").map((c) => [pair.config.partitions[c.client]!.name, c.clientSlot, pair.config.partitions[c.server]!.name, c.serverSlot]);
    expect(storage).toEqual([["A", 1, "sa", 1], ["A", 2, "sb", 1], ["B", 1, "sa", 2], ["B", 2, "sb", 2]]);
    const consoles = pair.channels.filter((c) => c.kind === "console");
    for (const m of ["sa", "sb"]) expect(consoles).toContainEqual(expect.objectContaining({ client: idx(m), server: idx("io"), clientSlot: 0 }));
    expect(consoles.every((c) => c.server === idx("io"))).toBe(true);
  });

  it("links the failover and core's control-block thunks only when the host has a pair", () => {
    for (const s of ["pair_on_fault", "pair_epoch_call", "pair_signal_note", "g_pair_ctl"]) {
      expect(names(pair).has(s), s).toBe(true);
      expect(names(single).has(s), s).toBe(false);
    }
  });
});
