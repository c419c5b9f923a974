// Tests of the zero page, the low pages and the guest-physical layout (toolchain/linux/boot-params.ts, layout.ts).
// The oracle of every offset is gcc: abi/bootparam_oracle.c declares struct boot_params member by member from the
// documented layout, prints offsetof/sizeof, and reads a zero page we wrote back through the struct. The e820 map is
// checked to cover exactly [0, memory) for many sizes; the page tables are walked as the processor would.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HDR, parseBzImage } from "./bzimage.ts";
import { findLinuxCache } from "./cache.ts";
import { BOOT_CS, BOOT_DS, BP, buildLowPages, buildZeroPage, e820Map } from "./boot-params.ts";
import { LayoutError, linuxLayout, LOW, minimumMemory } from "./layout.ts";

const here = dirname(fileURLToPath(import.meta.url));
let dir: string;
let oracle: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uv-bootparams-"));
  oracle = join(dir, "bootparam_oracle");
  execFileSync("gcc", ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", oracle, join(here, "abi", "bootparam_oracle.c")]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kernel = parseBzImage(new Uint8Array(readFileSync(findLinuxCache().kernel)));
const MiB = 1 << 20;
const CMDLINE = "console=ttyS0 reboot=k panic=-1";

describe("zero-page offsets against gcc's offsetof", () => {
  it("every field we write or read sits where the documented struct puts it", () => {
    const rows = new Map(execFileSync(oracle, ["layout"], { encoding: "utf8" }).trim().split("\n").map((l) => {
      const [name, off, size] = l.split(" ");
      return [name!, [Number(off), Number(size)] as const];
    }));
    expect(rows.get("sizeof")).toEqual([BP.size, BP.e820EntrySize]);
    const want: Array<[string, number, number]> = [
      ["ext_ramdisk_image", BP.extRamdiskImage, 4], ["ext_ramdisk_size", BP.extRamdiskSize, 4], ["ext_cmd_line_ptr", BP.extCmdLinePtr, 4],
      ["e820_entries", BP.e820Entries, 1], ["sentinel", BP.sentinel, 1], ["e820_table", BP.e820Table, BP.e820Max * BP.e820EntrySize],
      ["hdr.setup_sects", HDR.setupSects, 1], ["hdr.boot_flag", HDR.bootFlag, 2], ["hdr.jump", HDR.jump, 2], ["hdr.header", HDR.header, 4],
      ["hdr.version", HDR.version, 2], ["hdr.type_of_loader", HDR.typeOfLoader, 1], ["hdr.loadflags", HDR.loadflags, 1],
      ["hdr.code32_start", HDR.code32Start, 4], ["hdr.ramdisk_image", HDR.ramdiskImage, 4], ["hdr.ramdisk_size", HDR.ramdiskSize, 4],
      ["hdr.cmd_line_ptr", HDR.cmdLinePtr, 4], ["hdr.initrd_addr_max", HDR.initrdAddrMax, 4], ["hdr.kernel_alignment", HDR.kernelAlignment, 4],
      ["hdr.relocatable_kernel", HDR.relocatableKernel, 1], ["hdr.xloadflags", HDR.xloadflags, 2], ["hdr.cmdline_size", HDR.cmdlineSize, 4],
      ["hdr.pref_address", HDR.prefAddress, 8], ["hdr.init_size", HDR.initSize, 4],
    ];
    for (const [name, off, size] of want) expect([name, ...rows.get(name)!]).toEqual([name, off, size]);
  });

  it("a zero page we build reads back through the C struct: header, loader fields, e820", () => {
    const initrd = 3 * MiB + 123;
    const layout = linuxLayout(128 * MiB, kernel, CMDLINE.length, initrd);
    const f = join(dir, "zp.bin");
    writeFileSync(f, buildZeroPage(kernel, layout));
    const out = execFileSync(oracle, ["dump", f], { encoding: "utf8" });
    expect(out).toContain(`header 53726448 version ${kernel.version.toString(16).padStart(4, "0")} boot_flag aa55`);
    expect(out).toContain(`type_of_loader ff loadflags ${(kernel.loadflags & 0x3f).toString(16).padStart(2, "0")}`);
    expect(out).toContain(`ramdisk ${layout.initrdAddr.toString(16).padStart(8, "0")} ${initrd.toString(16).padStart(8, "0")} ext 00000000 00000000`);
    expect(out).toContain(`cmd_line_ptr ${LOW.cmdline.toString(16).padStart(8, "0")} ext 00000000`);
    expect(out).toContain("e820_entries 3\ne820 0 a0000 1\ne820 a0000 60000 2\ne820 100000 7f00000 1\n");
  });
});

describe("the e820 map", () => {
  it("covers exactly [0, memory), every byte once, in order, for many sizes", () => {
    for (let mb = 4; mb <= 4096; mb += mb < 64 ? 4 : 252) {
      const memory = mb * MiB;
      const map = e820Map(memory);
      expect(map.length).toBeGreaterThanOrEqual(2); // the kernel ignores a one-entry map
      let at = 0;
      for (const e of map) {
        expect(e.addr).toBe(at);
        expect(e.size).toBeGreaterThan(0);
        at += e.size;
      }
      expect(at).toBe(memory);
      expect(map.filter((e) => e.type === 1).reduce((s, e) => s + e.size, 0)).toBe(memory - 0x60000);
    }
  });
});

describe("the layout", () => {
  it("puts the kernel at pref_address and the initrd page-aligned at the top, above init_size", () => {
    const l = linuxLayout(128 * MiB, kernel, CMDLINE.length, 1_000_001);
    expect(l.kernelAddr).toBe(kernel.prefAddress);
    expect(l.entry).toBe(kernel.prefAddress + 0x200);
    expect(l.initrdAddr % 4096).toBe(0);
    expect(l.initrdAddr + l.initrdSize).toBeLessThanOrEqual(128 * MiB);
    expect(128 * MiB - (l.initrdAddr + l.initrdSize)).toBeLessThan(4096);
    expect(l.initrdAddr).toBeGreaterThanOrEqual(kernel.prefAddress + kernel.initSize);
  });

  it("refuses a partition too small for pref_address + init_size + the initrd, naming the minimum", () => {
    const min = minimumMemory(kernel, 2 * MiB);
    expect(min % (4 * MiB)).toBe(0);
    expect(() => linuxLayout(min, kernel, 10, 2 * MiB)).not.toThrow();
    let err: unknown;
    try {
      linuxLayout(min - 4 * MiB, kernel, 10, 2 * MiB);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LayoutError);
    expect((err as LayoutError).problem).toBe("too-small");
    expect((err as LayoutError).message).toContain(`give at least ${min / MiB} MiB`);
  });

  it("refuses a command line longer than cmdline_size, and keeps the initrd under initrd_addr_max", () => {
    expect(() => linuxLayout(128 * MiB, kernel, kernel.cmdlineSize + 1, 0)).toThrow(/cmdline_size/);
    const l = linuxLayout(256 * MiB, { ...kernel, initrdAddrMax: 128 * MiB - 1 }, 0, 8192);
    expect(l.initrdAddr + 8192).toBeLessThanOrEqual(128 * MiB);
  });
});

describe("the low pages", () => {
  const layout = linuxLayout(128 * MiB, kernel, CMDLINE.length, 4096);
  const low = buildLowPages(kernel, layout, CMDLINE);
  const v = new DataView(low.buffer);
  const q = (gpa: number): bigint => v.getBigUint64(gpa - LOW.gdt, true);

  it("hold the GDT with the boot protocol's flat __BOOT_CS (64-bit) and __BOOT_DS", () => {
    const cs = q(LOW.gdt + BOOT_CS);
    const ds = q(LOW.gdt + BOOT_DS);
    const bit = (d: bigint, n: number): number => Number((d >> BigInt(n)) & 1n);
    expect([bit(cs, 47), bit(cs, 43), bit(cs, 53), bit(cs, 54)]).toEqual([1, 1, 1, 0]); // present, code, L, not D
    expect([bit(ds, 47), bit(ds, 43), bit(ds, 41)]).toEqual([1, 0, 1]); // present, data, writable
  });

  it("hold the zero page and the NUL-terminated command line", () => {
    expect(low.subarray(LOW.zeroPage - LOW.gdt, LOW.zeroPage - LOW.gdt + 4096)).toEqual(buildZeroPage(kernel, layout));
    const at = LOW.cmdline - LOW.gdt;
    expect(new TextDecoder().decode(low.subarray(at, at + CMDLINE.length))).toBe(CMDLINE);
    expect(low[at + CMDLINE.length]).toBe(0);
  });

  it("identity-map the first 4 GiB: a walk from CR3 = PML4 lands on the same address", () => {
    const walk = (va: number): number => {
      const pml4e = q(LOW.pml4 + ((va / 2 ** 39) & 511) * 8);
      expect(pml4e & 1n).toBe(1n);
      const pdpte = q(Number(pml4e & ~0xfffn) + (Math.floor(va / 2 ** 30) & 511) * 8);
      expect(pdpte & 1n).toBe(1n);
      const pde = q(Number(pdpte & ~0xfffn) + (Math.floor(va / 2 ** 21) & 511) * 8);
      expect(pde & 0x81n).toBe(0x81n); // present, 2 MiB page
      return Number(pde & ~0x1fffffn) + (va % 2 ** 21);
    };
    for (const va of [0, LOW.zeroPage, LOW.cmdline + 5, kernel.prefAddress + 0x200, layout.initrdAddr, 128 * MiB - 1, 2 ** 32 - 1]) expect(walk(va)).toBe(va);
  });
});
