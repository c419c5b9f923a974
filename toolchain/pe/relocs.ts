// The .reloc section contents: IMAGE_BASE_RELOCATION blocks, one per 4 KiB page holding absolute 64-bit addresses,
// each listing IMAGE_REL_BASED_DIR64 entries for the firmware's loader to add its load delta to. Built by the PE
// writer (write.ts) from the abs64 sites the linker reports; decoded again by the reader (read.ts).
import { REL_BASED_ABSOLUTE, REL_BASED_DIR64 } from "./format.ts";

const PAGE = 0x1000;

/** Encodes sorted, distinct site RVAs as base relocation blocks; an empty list gives an empty table. */
export function encodeBaseRelocations(sortedRvas: readonly number[]): Uint8Array {
  const blocks: { page: number; offsets: number[] }[] = [];
  for (const rva of sortedRvas) {
    const page = rva - (rva % PAGE);
    const last = blocks[blocks.length - 1];
    if (last && last.page === page) last.offsets.push(rva - page);
    else blocks.push({ page, offsets: [rva - page] });
  }
  // Each block is an 8-byte header plus 2 bytes per entry, padded by one ABSOLUTE entry to a 4-byte multiple
  // (the spec requires every block to start on a 32-bit boundary).
  const sizes = blocks.map((b) => 8 + 2 * (b.offsets.length + (b.offsets.length & 1)));
  const out = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  blocks.forEach((b, i) => {
    view.setUint32(at, b.page, true);
    view.setUint32(at + 4, sizes[i]!, true);
    let p = at + 8;
    for (const off of b.offsets) {
      view.setUint16(p, (REL_BASED_DIR64 << 12) | off, true);
      p += 2;
    }
    if (b.offsets.length & 1) view.setUint16(p, REL_BASED_ABSOLUTE << 12, true);
    at += sizes[i]!;
  });
  return out;
}

export interface BaseRelocation {
  rva: number;
  /** IMAGE_REL_BASED_* type; padding ABSOLUTE entries are dropped by the decoder. */
  type: number;
}

/** Decodes a base relocation table; throws on a block whose size runs past the table or is not a 4-byte multiple. */
export function decodeBaseRelocations(table: Uint8Array): BaseRelocation[] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: BaseRelocation[] = [];
  let at = 0;
  while (at + 8 <= table.length) {
    const page = view.getUint32(at, true);
    const size = view.getUint32(at + 4, true);
    if (size < 8 || size % 4 !== 0 || at + size > table.length)
      throw new Error(`base relocation block at table offset ${at} has size ${size}: not a 4-byte multiple ≥ 8 inside the table`);
    for (let p = at + 8; p < at + size; p += 2) {
      const e = view.getUint16(p, true);
      const type = e >>> 12;
      if (type !== REL_BASED_ABSOLUTE) out.push({ rva: page + (e & 0xfff), type });
    }
    at += size;
  }
  if (at !== table.length) throw new Error(`base relocation table has ${table.length - at} trailing bytes after its last block`);
  return out;
}
