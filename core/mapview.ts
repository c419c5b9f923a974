// A read-only view of the fractal memory map ([0197], [0215]–[0221]) for TypeScript (the simulator, the hardware
// test): walks the map pages in linear memory, answers "which entry decides this address", and prints the map per
// scale with runs compressed; byte sizes in units. Core owns every write; this only reads bytes. Part of core's
// TypeScript bindings (bottom layer).
import type { Database } from "./database.ts";
import { PAGE, PN_MASK } from "./database.ts";
import { entryText, pn } from "./notation.ts";

export const SCALE_NAMES = ["", "PKM", "PMM", "PGM", "PTM", "PPM"] as const;

/** Bytes one entry of a scale-s map page describes: 4 KiB · 1024^(s-1). */
export function span(scale: number): bigint {
  return 4096n << BigInt(10 * (scale - 1));
}

export interface MapPage {
  page: number;
  scale: number;
  /** First byte address this page describes. */
  base: bigint;
  /** The entry that refers to this page (undefined for the top page). */
  parent?: { page: number; index: number };
}

export interface Leaf {
  map: number;
  index: number;
  scale: number;
  owner: number;
}

export class MapView {
  private cache: MapPage[] | undefined;
  private byScale: Map<number, MapPage[]> | undefined;

  constructor(readonly db: Database) {}

  /** Forget the cached walk: call after a transaction that may split or merge. */
  invalidate(): void {
    this.cache = undefined;
    this.byScale = undefined;
  }

  /** Map pages of one scale, highest address first (cached with the walk). */
  mapsOfScaleDesc(scale: number): MapPage[] {
    if (!this.byScale) {
      this.byScale = new Map();
      for (const m of this.maps()) this.byScale.set(m.scale, [...(this.byScale.get(m.scale) ?? []), m]);
      for (const list of this.byScale.values()) list.sort((a, b) => (a.base < b.base ? 1 : a.base > b.base ? -1 : 0));
    }
    return this.byScale.get(scale) ?? [];
  }

  /** Every live map page, depth-first from the top, in address order. */
  maps(): MapPage[] {
    if (this.cache) return this.cache;
    const ui = this.db.indexPage();
    const mem = this.db.i32();
    const out: MapPage[] = [];
    const walk = (m: MapPage): void => {
      out.push(m);
      if (m.scale === 1) return;
      const at = (m.page * PAGE) / 4;
      for (let i = 0; i < 1024; i++) {
        const v = mem[at + i]!;
        if (v < 0) walk({ page: v & PN_MASK, scale: m.scale - 1, base: m.base + BigInt(i) * span(m.scale), parent: { page: m.page, index: i } });
      }
    };
    walk({ page: ui.top, scale: ui.order, base: 0n });
    this.cache = out;
    return out;
  }

  entry(map: number, index: number): number {
    return this.db.i32()[(map * PAGE) / 4 + index]!;
  }

  /** The map entry that decides the owner of a byte address. */
  leaf(addr: bigint): Leaf {
    const ui = this.db.indexPage();
    const mem = this.db.i32();
    let page = ui.top;
    for (let s = ui.order; s >= 1; s--) {
      const index = Number((addr / span(s)) % 1024n);
      const v = mem[(page * PAGE) / 4 + index]!;
      if (v >= 0) return { map: page, index, scale: s, owner: v };
      page = v & PN_MASK;
    }
    throw new Error(`map is inconsistent at address ${addr}`);
  }

  /** Bytes owned by each partition number (the whole range the map's order covers). */
  ownedBytes(): Map<number, bigint> {
    const sizes = new Map<number, bigint>();
    const mem = this.db.i32();
    // Entries are counted per map page as numbers and turned into bytes once per owner and page (a BigInt sum per
    // entry made this a hot spot of the data center's placements); owners keep their order of first appearance.
    const count = new Map<number, number>();
    for (const m of this.maps()) {
      const at = (m.page * PAGE) / 4;
      count.clear();
      for (let i = 0; i < 1024; i++) {
        const v = mem[at + i]!;
        if (v >= 0) count.set(v, (count.get(v) ?? 0) + 1);
      }
      const sp = span(m.scale);
      for (const [v, n] of count) sizes.set(v, (sizes.get(v) ?? 0n) + BigInt(n) * sp);
    }
    return sizes;
  }

  /** Bytes owned by one partition number: ownedBytes().get(p) ?? 0n without the other owners' sums. */
  bytesOwnedBy(p: number): bigint {
    const mem = this.db.i32();
    let bytes = 0n;
    for (const m of this.maps()) {
      const at = (m.page * PAGE) / 4;
      let n = 0;
      for (let i = 0; i < 1024; i++) if (mem[at + i] === p) n++;
      if (n) bytes += BigInt(n) * span(m.scale);
    }
    return bytes;
  }

  /**
   * Installed and missing bytes by the map: everything not owned by Missing is installed, and so is the Missing
   * pseudo partition's own descriptor page (it owns itself, so its entry holds Missing's number).
   */
  accounting(): { installed: bigint; missing: bigint } {
    const ui = this.db.indexPage();
    const sizes = this.ownedBytes();
    let installed = 0n;
    for (const [p, b] of sizes) if (p !== ui.missing) installed += b;
    const missing = (sizes.get(ui.missing) ?? 0n) - 4096n;
    return { installed: installed + 4096n, missing };
  }

  /** Runs of entries owned by partition p, in address order: what a destroy must give back. */
  runsOwnedBy(p: number): Array<{ map: number; first: number; last: number }> {
    const runs: Array<{ map: number; first: number; last: number }> = [];
    const mem = this.db.i32();
    for (const m of this.maps()) {
      const at = (m.page * PAGE) / 4;
      for (let i = 0; i < 1024; i++) {
        if (mem[at + i] !== p) continue;
        let j = i;
        while (j + 1 < 1024 && mem[at + j + 1] === p) j++;
        runs.push({ map: m.page, first: i, last: j });
        i = j;
      }
    }
    return runs;
  }

  /** The map printed per scale, each page's entries as compressed runs ("16-1023  [0,1,19] Missing"). */
  /**
   * Every map page, top scale first, with its entries as runs of equal values: an owner's partition number (≥ 0) or a
   * reference to a map page of the scale below (< 0, never merged). What `format` prints, as data for other readers
   * (`uvt sim --format json`, the pictures).
   */
  runs(): Array<MapPage & { entries: Array<{ first: number; last: number; value: number }> }> {
    const ui = this.db.indexPage();
    const mem = this.db.i32();
    const maps = this.maps();
    const out: Array<MapPage & { entries: Array<{ first: number; last: number; value: number }> }> = [];
    for (let s = ui.order; s >= 1; s--) {
      for (const m of maps.filter((x) => x.scale === s)) {
        const at = (m.page * PAGE) / 4;
        const entries: Array<{ first: number; last: number; value: number }> = [];
        for (let i = 0; i < 1024; i++) {
          const v = mem[at + i]!;
          let j = i;
          while (v >= 0 && j + 1 < 1024 && mem[at + j + 1] === v) j++;
          entries.push({ first: i, last: j, value: v });
          i = j;
        }
        out.push({ ...m, entries });
      }
    }
    return out;
  }

  format(names: (p: number) => string | undefined = () => undefined): string[] {
    const ui = this.db.indexPage();
    const lines: string[] = [];
    lines.push(
      `Ultravisor Index at Mem${pn(ui.index)}: MapHigh [0,0,0], MapLow ${pn(ui.top)}, Order ${ui.order}, ` +
        `Index ${pn(ui.index)}, Ultra ${pn(ui.ultra)}, Avail ${pn(ui.avail)}`,
    );
    for (const m of this.runs()) {
      const s = m.scale;
      lines.push(`${SCALE_NAMES[s]} at Mem${pn(m.page)}: ${formatBytes(m.base)} .. ${formatBytes(m.base + span(s) * 1024n)}, entries of ${formatBytes(span(s))}`);
      for (const { first, last, value: v } of m.entries) {
        const idx = first === last ? `${first}` : `${first}-${last}`;
        const label = v >= 0 ? names(v) : `${SCALE_NAMES[s - 1]} below`;
        lines.push(`  ${idx.padEnd(10)}${entryText(v)}${label ? `  ${label}` : ""}`);
      }
    }
    return lines;
  }
}

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];

/** "4 GB", "64 GB", "3 GB + 1020 MB" style binary sizes (the spec's SI prefixes are base-two, [0208]). */
export function formatBytes(n: bigint): string {
  if (n === 0n) return "0";
  if (n % 1024n !== 0n || n >= 1n << 30n) {
    // Not a whole number of some unit that reads well: largest unit with two decimals, plus the exact count.
    let u = 0;
    let scaled = Number(n);
    while (u < UNITS.length - 1 && scaled >= 1024) {
      scaled /= 1024;
      u++;
    }
    const exact = exactUnit(n);
    if (exact) return exact;
    return `${scaled.toFixed(2)} ${UNITS[u]} (${n} bytes)`;
  }
  return exactUnit(n) ?? `${n} B`;
}

function exactUnit(n: bigint): string | undefined {
  let u = 0;
  while (u < UNITS.length - 1 && n % 1024n === 0n && n >= 1024n) {
    n /= 1024n;
    u++;
  }
  // "2088972 KB" is exact but unreadable; callers fall back to a decimal form for such values.
  return n < 4096n || u === UNITS.length - 1 ? `${n} ${UNITS[u]}` : undefined;
}

/** Parses "64 GB", "4TB", "1 GiB", "4096" (bytes) into bytes; throws RangeError. */
export function parseBytes(text: string | number): bigint {
  if (typeof text === "number") {
    if (!Number.isSafeInteger(text) || text < 0) throw new RangeError(`${text} is not a byte count`);
    return BigInt(text);
  }
  const m = /^\s*(\d+)\s*([KMGTPE]?)(i?B)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a size (examples: 4 GB, 64GB, 4 MB, 4096)`);
  const p = m[2] ? "KMGTPE".indexOf(m[2].toUpperCase()) + 1 : 0;
  return BigInt(m[1]!) << BigInt(10 * p);
}
