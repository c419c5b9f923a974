// Unit tests of the boot module's UEFI facts (core/boot-module.ts): how UEFI descriptors become the simulator's
// firmware regions and back, and which ranges are not RAM the database may give the ultravisor. That the simulator and
// the machine run the same module is shown by sim/boot-module.test.ts and test/hw/ultravisor.test.ts.
import { describe, expect, it } from "vitest";
import { firmwareRegions, nonRamOverlaps, uefiDescriptors } from "./boot-module.ts";

const G = 1n << 30n;

describe("boot module's view of the UEFI map", () => {
  it("maps usable types to usable and every other type to reserved, in map order, clipped to the map's coverage", () => {
    const regions = firmwareRegions([
      { type: 7, base: 0n, pages: 160n },
      { type: 10, base: 0x806000n, pages: 2n },
      { type: 4, base: 0x900000n, pages: 3072n },
      { type: 11, base: 0xffc00000n, pages: 1024n },
      { type: 0, base: 4n * G - 4096n, pages: 4n }, // crosses 4 GiB: clipped
      { type: 7, base: 5n * G, pages: 16n }, // above the order-2 map: dropped
      { type: 7, base: 0x200000n, pages: 0n }, // empty: dropped
    ]);
    expect(regions).toEqual([
      { base: 0n, length: 160n * 4096n, type: "usable" },
      { base: 0x806000n, length: 0x2000n, type: "reserved" },
      { base: 0x900000n, length: 3072n * 4096n, type: "usable" },
      { base: 0xffc00000n, length: 0x400000n, type: "reserved" },
      { base: 4n * G - 4096n, length: 4096n, type: "reserved" },
    ]);
  });

  it("finds exactly the non-usable parts of the map inside a range", () => {
    const d = [{ type: 10, base: 0x806000n, pages: 2n }, { type: 7, base: 0x808000n, pages: 8n }, { type: 10, base: 0x810000n, pages: 240n }, { type: 0, base: 0xbf0000n, pages: 32n }, { type: 2, base: 0xc10000n, pages: 16n }];
    expect(nonRamOverlaps(d, 0x800000n, 0xc00000n)).toEqual([
      { type: 10, lo: 0x806000n, hi: 0x808000n },
      { type: 10, lo: 0x810000n, hi: 0x900000n },
      { type: 0, lo: 0xbf0000n, hi: 0xc00000n },
    ]);
    expect(nonRamOverlaps(d, 0xc00000n, 0x1000000n)).toEqual([{ type: 0, lo: 0xc00000n, hi: 0xc10000n }]);
    expect(nonRamOverlaps(d, 0x808000n, 0x810000n)).toEqual([]);
  });

  it("writes the simulator's regions as conventional (7) or reserved (0) descriptors, refusing partial pages", () => {
    expect(uefiDescriptors([{ base: 0n, length: 0xa0000n, type: "usable" }, { base: 0xa0000n, length: 0x60000n, type: "reserved" }])).toEqual([
      { type: 7, base: 0n, pages: 160n },
      { type: 0, base: 0xa0000n, pages: 96n },
    ]);
    expect(() => uefiDescriptors([{ base: 0n, length: 100n, type: "usable" }])).toThrow(/whole 4 KiB pages/);
  });
});
