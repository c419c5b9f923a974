// Unit tests of the boot partition's ring-0 side (loader-efi/uv-boot-db.ts): the loader's firmware-map lines read back,
// and the boot module compiling under toolchain/aot with only its two imports. The machine side is checked by
// test/hw/ultravisor.test.ts; the module's UEFI facts by core/boot-module.test.ts.
import { describe, expect, it } from "vitest";
import { bootModuleWasm } from "../core/boot-module.ts";
import { compileBootDb, parseFirmwareMap } from "./uv-boot-db.ts";

describe("the boot partition on the machine", () => {
  it("parses the loader's map lines back, ignoring everything else", () => {
    const d = parseFirmwareMap(["ultravisor: firmware map: type 10 base 0x810000 pages 240", "io: firmware map: type 1 base 0x0 pages 1", "ultravisor: firmware map: type 7 base 0x0 pages 160"]);
    expect(d).toEqual([{ type: 10, base: 0x810000n, pages: 240n }, { type: 7, base: 0n, pages: 160n }]);
  });

  it("compiles core/boot/assembly/boot.ts with toolchain/aot: no static data, imports env.db_submit and env.db_log_truncate only", async () => {
    const c = compileBootDb(await bootModuleWasm());
    expect(c.imports.filter((i) => i.intrinsic === null).map((i) => `${i.module}.${i.name}`).sort()).toEqual(["env.db_log_truncate", "env.db_submit"]);
    expect(c.exports.some((e) => e.name === "main" && e.thunk >= 0)).toBe(true);
  });
});
