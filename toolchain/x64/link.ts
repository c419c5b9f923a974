// Applies an ObjectFile's relocations once section base addresses are chosen: the only place where fixups are patched
// into section bytes. Returns the patched section bytes and the abs64 sites, which the PE writer turns into DIR64 base
// relocations (an image loaded elsewhere than its preferred base must re-patch exactly those).
import type { ObjectFile, Relocation } from "./object.ts";

export interface LinkedSite {
  section: number;
  offset: number;
}

export interface Linked {
  /** Patched copies of the section bytes (bss sections are returned as they are). */
  sections: Uint8Array[];
  /** Every abs64 field, for base relocations. */
  abs64: LinkedSite[];
  /** Absolute address of every symbol, by name. */
  symbols: Map<string, bigint>;
}

export class LinkError extends Error {
  override name = "LinkError";
}

/**
 * Links `obj` with section i placed at `bases[i]`. `externals` gives addresses of symbols defined outside the object.
 * Throws LinkError for undefined symbols and out-of-range fields.
 */
export function link(obj: ObjectFile, bases: readonly (bigint | number)[], externals?: ReadonlyMap<string, bigint | number>): Linked {
  if (bases.length !== obj.sections.length) {
    throw new LinkError(`link: ${obj.sections.length} sections but ${bases.length} base addresses`);
  }
  const base = bases.map((b) => BigInt(b));
  for (const s of obj.symbols) {
    if (s.section < 0 || s.section >= base.length) throw new LinkError(`link: symbol ${s.name} names section ${s.section}, which does not exist`);
  }
  // The full symbol table is built on first use: a flat link of a big program with no relocations should not pay for it.
  let table: Map<string, bigint> | null = null;
  const symbolTable = (): Map<string, bigint> => {
    if (table) return table;
    table = new Map<string, bigint>();
    for (const [name, v] of externals ?? []) table.set(name, BigInt(v));
    for (const s of obj.symbols) table.set(s.name, base[s.section]! + BigInt(s.offset));
    return table;
  };
  const sections = obj.sections.map((s) => (s.kind === "bss" ? s.bytes : s.bytes.slice()));
  const abs64: LinkedSite[] = [];
  const where = (r: Relocation) => `${obj.sections[r.section]?.name ?? `section ${r.section}`}+0x${r.offset.toString(16)}`;
  for (const r of obj.relocations) {
    const target = symbolTable().get(r.target);
    if (target === undefined) throw new LinkError(`link: undefined symbol '${r.target}' referenced at ${where(r)}`);
    const bytes = sections[r.section];
    if (!bytes) throw new LinkError(`link: relocation at ${where(r)} names a section that does not exist`);
    const width = r.kind === "abs64" ? 8 : 4;
    if (r.offset < 0 || r.offset + width > bytes.length) throw new LinkError(`link: relocation at ${where(r)} lies outside the section`);
    const s = target + BigInt(r.addend);
    let value: bigint;
    if (r.kind === "abs64") {
      value = BigInt.asUintN(64, s);
      abs64.push({ section: r.section, offset: r.offset });
    } else if (r.kind === "abs32") {
      if (s < 0n || s > 0xffffffffn) throw new LinkError(`link: abs32 value 0x${s.toString(16)} for '${r.target}' at ${where(r)} does not fit in 32 bits`);
      value = s;
    } else {
      const p = base[r.section]! + BigInt(r.offset) + 4n + BigInt(r.tail ?? 0);
      const d = s - p;
      if (d < -(1n << 31n) || d >= 1n << 31n) throw new LinkError(`link: rel32 to '${r.target}' at ${where(r)} is out of range (${d})`);
      value = BigInt.asUintN(32, d);
    }
    for (let i = 0; i < width; i++) {
      bytes[r.offset + i] = Number(value & 0xffn);
      value >>= 8n;
    }
  }
  return {
    sections,
    abs64,
    get symbols() {
      return symbolTable();
    },
  };
}
