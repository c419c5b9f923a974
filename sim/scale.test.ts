// Scale of the fractal map ([0197]–[0198], [0211]): a 4 PB host with 1K partitions of 4 TB needs only a handful of
// map pages (order 4 and order 5), and a 1 TB host carries 100,000 partitions of 4 MB pages.
import { describe, expect, it } from "vitest";
import { Host } from "./host.ts";
import { ResourceService } from "./resource-service.ts";
import { span } from "../core/mapview.ts";

const TB = 1n << 40n;
const PB = 1n << 50n;

async function fourPetabyteHost(order: number) {
  const h = await Host.create({ memory: 4n * PB, order });
  const rs = new ResourceService(h);
  const parts: number[] = [];
  // 1023 partitions take whole 4 TB entries; the 1024th gets the rest of the first 4 TB that the database and
  // the boot and ultravisor pages leave: 1023 × 4 GB.
  for (let i = 0; i < 1023; i++) parts.push(rs.create({ name: `P${i}`, size: 4n * TB }));
  parts.push(rs.create({ name: "P1023", size: 4n * TB - 4n * (1n << 30n) }));
  return { h, parts };
}

describe("map scale", () => {
  for (const order of [4, 5]) {
    it(`4 PB host, order ${order}: 1K partitions of 4 TB in a handful of map pages`, async () => {
      const { h, parts } = await fourPetabyteHost(order);
      const maps = h.view.maps();
      // One page per scale on the path to the database's PKM, plus one PKM for the descriptors beyond 1024.
      expect(maps.length).toBe(order + 1);
      const sizes = h.view.ownedBytes();
      for (const p of parts.slice(0, 1023)) expect(sizes.get(p)).toBe(4n * TB + 4096n);
      // Every 4 TB boundary lands in the partition the map says.
      for (let i = 1; i < 1024; i += 97) {
        const owner = h.db.owner(BigInt(i) * 4n * TB + 12345n);
        expect(parts).toContain(owner);
      }
      const acc = h.view.accounting();
      expect(acc.installed).toBe(4n * PB);
      expect(acc.missing).toBe(span(order) * 1024n - 4n * PB);
      // The wasm memory stays small: the database lives in a few low 4 MB pages.
      expect(h.memory.buffer.byteLength).toBeLessThanOrEqual(16 << 20);
    });
  }

  it("1 TB host with 100,000 partitions of one 4 MB page each", async () => {
    // Backups are still taken whenever the log fills, but not kept: a copy of ~400 MB of descriptors is not needed here.
    const h = await Host.create({ memory: 1n * TB, keepBackup: false });
    const rs = new ResourceService(h);
    const parts: number[] = [];
    for (let i = 0; i < 100_000; i++) parts.push(rs.create({ name: `p${i}`, size: 4n << 20n }));
    expect(new Set(parts).size).toBe(100_000);
    const sizes = h.view.ownedBytes();
    for (let i = 0; i < parts.length; i += 9973) expect(sizes.get(parts[i]!)).toBe((4n << 20n) + 4096n);
    expect(h.view.accounting().installed).toBe(TB);
    // The database (map pages and descriptors) sits in low memory: ~100 4 MB pages of descriptors.
    expect(h.view.maps().length).toBeLessThan(400);
  }, 120_000);
});
