// Unit tests of the boot partition's TypeScript statements (loader-efi/uv-boot-db.ts): how UEFI descriptors become the
// simulator's firmware regions, which ranges are not RAM the database may give the ultravisor, and that the boot module
// compiles under toolchain/aot with only its two imports. The machine side is checked by test/hw/ultravisor.test.ts.
import { describe, expect, it } from "vitest";
import { bootDbWasm, compileBootDb, firmwareRegions, nonRamOverlaps, parseFirmwareMap } from "./uv-boot-db.ts";

const G = 1n << 30n;

describe("boot partition's view of the UEFI map", () => {
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

  it("parses the loader's map lines back, ignoring everything else", () => {
    const d = parseFirmwareMap(["ultravisor: firmware map: type 10 base 0x810000 pages 240", "io: firmware map: type 1 base 0x0 pages 1", "ultravisor: firmware map: type 7 base 0x0 pages 160"]);
    expect(d).toEqual([{ type: 10, base: 0x810000n, pages: 240n }, { type: 7, base: 0n, pages: 160n }]);
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

  it("compiles loader-efi/assembly/boot.ts with toolchain/aot: no static data, imports env.db_submit and env.db_log_truncate only", async () => {
    const c = compileBootDb(await bootDbWasm());
    expect(c.imports.filter((i) => i.intrinsic === null).map((i) => `${i.module}.${i.name}`).sort()).toEqual(["env.db_log_truncate", "env.db_submit"]);
    expect(c.exports.some((e) => e.name === "main" && e.thunk >= 0)).toBe(true);
  });
});
