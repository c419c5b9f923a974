// The attached database: values read from the Ultravisor Index page at attach time, linear-memory bounds, and the
// map directory (a derived u16 per page saying "live map page of scale s"), per docs/specs/memory-layout.md §6.
import {
  DB_PAGE_LIMIT, ENTRIES, PAGE_SHIFT, PD_MAGIC, PD_ME, PN_MASK, PRIV_DIRECTORY, PRIV_SCRATCH, PRIVATE_PAGES, REF_BIT,
  US_BIT,
} from "./layout";

export let attached: bool = false;
export let uiPage: u32 = 0;
export let topMap: u32 = 0;
export let order: u32 = 0;
export let ultra: u32 = 0;
export let avail: u32 = 0;
export let missing: u32 = 0;
export let idle: u32 = 0;
export let boot: u32 = 0;
export let logBase: u32 = 0;
export let logPages: u32 = 0;
/** First page of the ultravisor's private 4 MiB page [0,M,*] (the index page's Private field, M << 10). */
export let privFirst: u32 = 0;
/** Addresses inside it: the commit check's scratch and the map directory (memory-layout.md §5, §6). */
export let scratch: usize = 0;
export let directory: usize = 0;

export function setAttached(
  ui: u32, top: u32, ord: u32, u: u32, a: u32, m: u32, i: u32, b: u32, lb: u32, lp: u32, pm: u32,
): void {
  uiPage = ui; topMap = top; order = ord; ultra = u; avail = a; missing = m; idle = i; boot = b;
  logBase = lb; logPages = lp;
  privFirst = pm << 10;
  scratch = pageAddr(privFirst) + PRIV_SCRATCH;
  directory = pageAddr(privFirst) + PRIV_DIRECTORY;
  attached = true;
}

export function detach(): void {
  attached = false;
}

/** Pages of 4 KiB that linear memory currently holds (capped at the 4 GiB database limit). */
@inline export function memoryPages(): u32 {
  const p = <u32>memory.size() << 4;
  return p > DB_PAGE_LIMIT ? DB_PAGE_LIMIT : p;
}

@inline export function pageAddr(p: u32): usize {
  return <usize>p << PAGE_SHIFT;
}

/** A page number that can hold database structures right now. */
@inline export function dbPageOk(p: u32): bool {
  return p != 0 && p < memoryPages();
}

/** The form of a partition number: sign and U/S bits clear, not zero. */
@inline export function isPartitionNumber(v: u32): bool {
  return v != 0 && (v & (REF_BIT | US_BIT)) == 0;
}

/** A live descriptor sits at page p: magic and Me are right. */
export function isLive(p: u32): bool {
  if (!isPartitionNumber(p) || p >= memoryPages()) return false;
  const a = pageAddr(p);
  return load<u32>(a) == PD_MAGIC && load<u32>(a + PD_ME) == p;
}

// ---- map directory ----
@inline export function dirGet(p: u32): u32 {
  return p < DB_PAGE_LIMIT ? <u32>load<u16>(directory + (<usize>p << 1)) : 0;
}
@inline export function dirSet(p: u32, v: u32): void {
  store<u16>(directory + (<usize>p << 1), <u16>v);
}
@inline export function dirScale(d: u32): u32 {
  return d & 7;
}
@inline export function dirLow(d: u32): bool {
  return (d & 8) != 0;
}
/** For a PKM inside the first 4 GiB: the number of the 4 MiB page it divides, else -1. */
@inline export function dirRegion(d: u32): i32 {
  return <i32>(d >> 4) - 1;
}

/** Directory value of the map page that divides entry i of a map page whose directory value is pd. */
export function childDir(pd: u32, i: u32): u32 {
  const cs = dirScale(pd) - 1;
  if (cs >= 2) return cs | (dirLow(pd) && i == 0 ? 8 : 0);
  return 1 | (dirLow(pd) ? (i + 1) << 4 : 0);
}

/**
 * Zeroes the directory. Only words that are not zero are written: a directory is mostly zeros (a few map pages), and
 * in the simulator an arena's memory is fresh, so reading a page never written maps the zero page while writing it
 * would make the host commit a page — about 16 of them per simulated host (docs/specs/datacenter.md §6.2).
 */
export function clearDirectory(): void {
  const n = memoryPages();
  const end = directory + (<usize>n << 1);
  for (let a = directory; a < end; a += 8) {
    if (load<u64>(a) != 0) store<u64>(a, 0);
  }
}

/** The page holds a live map page, the index page, the log or core's private pages. */
export function pageInUse(p: u32): bool {
  if (dirGet(p) != 0) return true;
  if (p == uiPage) return true;
  if (p >= privFirst && p < privFirst + PRIVATE_PAGES) return true;
  return p >= logBase && p < logBase + logPages;
}

/** Does the page range [first, end) (64-bit page numbers) hold protected ultravisor structures? */
export function rangeInUse(first: u64, end: u64): bool {
  if (overlaps(first, end, privFirst, privFirst + PRIVATE_PAGES)) return true;
  if (overlaps(first, end, logBase, logBase + logPages)) return true;
  return overlaps(first, end, uiPage, uiPage + 1);
}

@inline function overlaps(a: u64, b: u64, c: u32, d: u32): bool {
  return a < <u64>d && <u64>c < b;
}

/** Walks the map from the top and records every map page in the directory; E_CORRUPT-style code on damage. */
export function rebuildDirectory(page: u32, scale: u32, dir: u32): i32 {
  if (!dbPageOk(page) || dirGet(page) != 0 || page == uiPage) return -20;
  dirSet(page, dir);
  const base = pageAddr(page);
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const v = load<u32>(base + (<usize>i << 2));
    if ((v & REF_BIT) == 0) {
      if ((v & US_BIT) != 0 || v == 0) return -20;
      continue;
    }
    if (scale == 1 || (v & US_BIT) != 0) return -20;
    const rc = rebuildDirectory(v & PN_MASK, scale - 1, childDir(dir, i));
    if (rc < 0) return rc;
  }
  return 0;
}

/** GetMemOwner ([0210]): owner of the byte at addr, or a negative error code. */
export function ownerOf(addr: u64): i32 {
  let s = order;
  if ((addr >> (<u64>(12 + 10 * s))) != 0) return -4;
  let page = topMap;
  const limit = memoryPages();
  while (true) {
    const idx = <u32>(addr >> (<u64>(2 + 10 * s))) & (ENTRIES - 1);
    const v = load<i32>(pageAddr(page) + (<usize>idx << 2));
    if (v >= 0) return v;
    s--;
    page = <u32>v & PN_MASK;
    if (s == 0 || page >= limit) return -20;
  }
}

/** Scale of the map entry that decides the owner of page p (1 = a PKM entry), or 0 on error. */
export function ownerScale(p: u64): u32 {
  const addr = p << PAGE_SHIFT;
  let s = order;
  if ((addr >> (<u64>(12 + 10 * s))) != 0) return 0;
  let page = topMap;
  while (true) {
    const idx = <u32>(addr >> (<u64>(2 + 10 * s))) & (ENTRIES - 1);
    const v = load<i32>(pageAddr(page) + (<usize>idx << 2));
    if (v >= 0) return s;
    s--;
    page = <u32>v & PN_MASK;
    if (s == 0 || page >= memoryPages()) return 0;
  }
}
