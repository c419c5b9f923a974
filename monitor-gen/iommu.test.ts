// Unit tests of monitor-gen/iommu.ts's constants against their public definitions: the ACPI 2.0 GUID as the UEFI
// specification writes it (its in-memory byte order: three little-endian fields, then eight bytes), the ACPI
// signatures as ASCII, and the routines assembling with their tables page-aligned.
import { describe, expect, it } from "vitest";
import { Assembler } from "../toolchain/x64/index.ts";
import { ACPI20_GUID, DMAR_SIG, emitIommu, IOMMU_POOL_PAGES, RSDP_SIG, XSDT_SIG } from "./iommu.ts";
import { emitPci } from "./pci.ts";

/** A GUID "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" as the 16 bytes EFI keeps in memory. */
function guidBytes(text: string): Buffer {
  const [a, b, c, d, e] = text.split("-");
  const out = Buffer.alloc(16);
  out.writeUInt32LE(parseInt(a!, 16), 0);
  out.writeUInt16LE(parseInt(b!, 16), 4);
  out.writeUInt16LE(parseInt(c!, 16), 6);
  Buffer.from(d! + e!, "hex").copy(out, 8);
  return out;
}

describe("the IOMMU's constants", () => {
  it("match the ACPI 2.0 table GUID of the UEFI specification (EFI_ACPI_20_TABLE_GUID)", () => {
    const b = guidBytes("8868e871-e4f1-11d3-bc22-0080c73c8881");
    expect([b.readBigUInt64LE(0), b.readBigUInt64LE(8)]).toEqual([...ACPI20_GUID]);
  });

  it("match the ACPI signatures as text", () => {
    const q = Buffer.alloc(8);
    q.writeBigUInt64LE(RSDP_SIG);
    expect(q.toString("latin1")).toBe("RSD PTR ");
    const d = Buffer.alloc(4);
    d.writeUInt32LE(XSDT_SIG);
    expect(d.toString("latin1")).toBe("XSDT");
    d.writeUInt32LE(DMAR_SIG);
    expect(d.toString("latin1")).toBe("DMAR");
  });

  it("assemble, with the root, context and pool tables on page boundaries", () => {
    const a = new Assembler();
    emitPci(a, [], false, true);
    emitIommu(a);
    const obj = a.finish();
    const sym = (n: string): bigint => {
      const s = obj.symbols.find((x) => x.name === n);
      if (!s) throw new Error(`no symbol ${n}`);
      expect(obj.sections[s.section]!.name).toBe(".bss");
      return BigInt(s.offset);
    };
    // Offsets in .bss, whose alignment is at least a page (it holds the device list's pages too).
    expect(obj.sections.find((x) => x.name === ".bss")!.align).toBeGreaterThanOrEqual(4096);
    for (const n of ["g_iommu_root", "g_iommu_ctx", "g_iommu_pool"]) expect(sym(n) % 4096n).toBe(0n);
    expect(sym("g_iommu_pool") - sym("g_iommu_ctx")).toBe(4096n);
    expect(IOMMU_POOL_PAGES).toBeGreaterThan(0);
  });
});
