// The resource service's transaction builders ([0090], [0202], [0222]–[0224]; docs/specs/command-channel.md, "One
// resource service"; ADR 0017), AssemblyScript over core's database layout. One source for both sides: the boot
// module (boot.ts) re-exports them, so V8 runs them in the simulator (sim/resource-service.ts, through
// core/boot-module.ts) and toolchain/aot compiles them wherever the boot module is compiled for the machine. They read
// the map only — a read-only view or snapshot of the database is all they need — and write one request
// (memory-layout.md §5.3) at `req`; they submit nothing, so the caller picks the path (the command channel and
// db_submit_as, or the boot partition's db_submit). Linear memory is physical memory, as in boot.ts. No allocation,
// no runtime calls.

import {
  F0, F1, F2, F3, F4, PAGE_SHIFT, PD_KIND, PD_MAGIC, PD_ME, PD_NAME, PN_MASK, REC_CHANGE_OWNER, REC_DESTROY, REC_INIT,
  REC_LENGTH, REC_SPLIT, REC_TYPE, REQ_BYTES, REQ_HEADER, REQ_MAGIC, REQ_OPS, REQ_RESERVED, REQLEN_CHANGE_OWNER,
  REQLEN_INIT, REQLEN_SPLIT, UI_AVAIL, UI_MAP_LOW, UI_ORDER, UI_ULTRA,
} from "../../assembly/lib/layout";

const PAGE: u64 = <u64>1 << PAGE_SHIFT;
const FOUR_GIB: u64 = <u64>1 << 32;
/** A DestroyPartition request record: type, length, partition, reserved (memory-layout.md §5.3). */
const REQLEN_DESTROY: u32 = 16;
/** A run as the caller passes it: u32 map page, u32 first index, u32 last index. */
const RUN_BYTES: u32 = 12;
/** The 40-byte payload: name 16, principal 16, u32 kind (core/boot-module.ts CREATE_PAYLOAD). */
const PAYLOAD_NAME: u32 = 0;
const PAYLOAD_KIND: u32 = 32;

/** No Available 4 KiB page for a database page (or no entry to grow into). */
export const RS_NO_PAGE: i32 = -1000;
/** A page that must be at 4 KiB granularity is not. */
export const RS_NOT_4K: i32 = -1001;
/** The request would pass `cap` bytes. */
export const RS_TOO_BIG: i32 = -1002;
/** Not a live partition (its descriptor page is not a 4 KiB page it owns). */
export const RS_NOT_LIVE: i32 = -1004;

// The index page's fields, read by loadIndex.
let top: u32 = 0;
let order: u32 = 0;
let ultra: u32 = 0;
let avail: u32 = 0;

function loadIndex(ui: u32): void {
  const u = ui * 4096;
  top = load<u32>(u + UI_MAP_LOW);
  order = load<u32>(u + UI_ORDER);
  ultra = load<u32>(u + UI_ULTRA);
  avail = load<u32>(u + UI_AVAIL);
}

function span(scale: u32): u64 {
  return PAGE << (<u64>(10 * (scale - 1)));
}

function entry(page: u32, i: u32): i32 {
  // A map page outside this module's memory (a hostile or torn view) reads as owner 0: nothing to take or give back.
  if ((<u64>page + 1) * 4096 > (<u64>memory.size() << 16)) return 0;
  return load<i32>(page * 4096 + i * 4);
}

/** The PKM and index deciding the owner of 4 KiB page p, as (map << 10 | index); −1 if p is not at 4 KiB scale. */
function leaf4k(p: u32): i64 {
  let page = top;
  const addr = <u64>p * PAGE;
  for (let s = order; s >= 1; s--) {
    const index = <u32>((addr / span(s)) % 1024);
    const v = entry(page, index);
    if (v >= 0) return s == 1 ? (<i64>page << 10) | index : -1;
    page = <u32>v & PN_MASK;
  }
  return -1;
}

/**
 * Available 4 KiB pages from page `scanFrom` up to 4 GiB in address order, counted up to `want`; the first one in
 * `firstFree`. `scanFrom` is the caller's hint (0, or a page below which it knows nothing is Available): it only
 * saves the scan, never changes the answer.
 */
let firstFree: u32 = 0;
let scanFrom: u32 = 0;
function countFree(page: u32, scale: u32, base: u64, found: u32, want: u32): u32 {
  if (found >= want || base >= FOUR_GIB) return found;
  if (base + span(scale) * 1024 <= <u64>scanFrom * PAGE) return found;
  if (scale == 1) {
    for (let i: u32 = 0; i < 1024 && found < want; i++) {
      const p = <u32>(base / PAGE) + i;
      if (p >= scanFrom && entry(page, i) == <i32>avail && p != avail && p != 0) {
        if (found == 0) firstFree = p;
        found++;
      }
    }
    return found;
  }
  for (let i: u32 = 0; i < 1024 && found < want; i++) {
    const v = entry(page, i);
    if (v < 0) found = countFree(<u32>v & PN_MASK, scale - 1, base + <u64>i * span(scale), found, want);
  }
  return found;
}

/**
 * The page a descriptor or map page is taken from: the lowest Available 4 KiB page in the PKMs below 4 GiB, in
 * address order (never page 0, never Available's own number). 0 when fewer than two are left: one is kept as the
 * spare the grow transaction turns into a new PKM. `hint`: see scanFrom (every builder takes one; 0 always works).
 */
export function rs_alloc_db_page(ui: u32, hint: u32): u32 {
  loadIndex(ui);
  firstFree = 0;
  scanFrom = hint;
  return countFree(top, order, 0, 0, 2) >= 2 ? firstFree : 0;
}

/** A request's header (memory-layout.md §5.3); also the boot transactions' (boot.ts). */
export function header(req: u32, bytes: u32, ops: u32): void {
  store<u32>(req, REQ_MAGIC);
  store<u32>(req + REQ_BYTES, bytes);
  store<u32>(req + REQ_OPS, ops);
  store<u32>(req + REQ_RESERVED, 0);
}

/** A CHANGE_OWNER request record at `at` (memory-layout.md §5.2); also the boot transactions' (boot.ts). */
export function changeOwner(at: u32, map: u32, first: u32, last: u32, from: u32, to: u32): void {
  store<u32>(at + REC_TYPE, REC_CHANGE_OWNER);
  store<u32>(at + REC_LENGTH, REQLEN_CHANGE_OWNER);
  store<u32>(at + F0, map);
  store<u32>(at + F1, first);
  store<u32>(at + F2, last);
  store<u32>(at + F3, from);
  store<u32>(at + F4, to);
  store<u32>(at + F4 + 4, 0);
}

/**
 * The grow transaction ([0202]: large pages are divided into small pages for the ultravisor's data structures), built
 * at `req` when exactly one Available 4 KiB page is left below 4 GiB: that page taken for the ultravisor, then a
 * Split of the lowest Available entry of the scale-2 map at address 0 into it, owner Available. Returns the
 * request's bytes, 0 when no grow is needed (two or more pages left), or RS_NO_PAGE (no page at all, or no Available
 * 4 MiB entry in the first 4 GiB).
 */
export function rs_build_grow(ui: u32, req: u32, hint: u32): i32 {
  loadIndex(ui);
  firstFree = 0;
  scanFrom = hint;
  const n = countFree(top, order, 0, 0, 2);
  if (n >= 2) return 0;
  if (n == 0 || order < 2) return RS_NO_PAGE;
  const into = firstFree;
  // The scale-2 map at address 0: follow entry 0 down from the top.
  let low = top;
  for (let s = order; s > 2; s--) {
    const v = entry(low, 0);
    if (v >= 0) return RS_NO_PAGE;
    low = <u32>v & PN_MASK;
  }
  let j: i32 = -1;
  for (let i: u32 = 0; i < 1024 && j < 0; i++) if (entry(low, i) == <i32>avail) j = <i32>i;
  if (j < 0) return RS_NO_PAGE;
  const l = leaf4k(into);
  if (l < 0) return RS_NOT_4K;
  const at = req + REQ_HEADER;
  changeOwner(at, <u32>(l >> 10), <u32>(l & 1023), <u32>(l & 1023), avail, ultra);
  const s = at + REQLEN_CHANGE_OWNER;
  store<u32>(s + REC_TYPE, REC_SPLIT);
  store<u32>(s + REC_LENGTH, REQLEN_SPLIT);
  store<u32>(s + F0, low);
  store<u32>(s + F1, <u32>j);
  store<u32>(s + F2, into);
  store<u32>(s + F3, avail);
  const bytes = REQ_HEADER + REQLEN_CHANGE_OWNER + REQLEN_SPLIT;
  header(req, bytes, 2);
  return <i32>bytes;
}

/**
 * The create transaction of [0223] at `req` (at most `cap` bytes): the descriptor page d (rs_alloc_db_page) taken for
 * the ultravisor, InitializePartition(d) from the 40-byte payload at `payload`, d handed to the partition, then each
 * of the `nruns` runs at `runs` (u32 map, first, last) from `from` to d. Returns the request's bytes, RS_NO_PAGE
 * (build a grow first), RS_NOT_4K or RS_TOO_BIG. The new partition's number is d: rs_created() after a success.
 */
export function rs_build_create(ui: u32, req: u32, cap: u32, payload: u32, runs: u32, nruns: u32, from: u32, hint: u32): i32 {
  const d = rs_alloc_db_page(ui, hint);
  if (d == 0) return RS_NO_PAGE;
  const l = leaf4k(d);
  if (l < 0) return RS_NOT_4K;
  const bytes: u64 = <u64>REQ_HEADER + 2 * <u64>REQLEN_CHANGE_OWNER + <u64>REQLEN_INIT + <u64>nruns * <u64>REQLEN_CHANGE_OWNER;
  if (bytes > <u64>cap) return RS_TOO_BIG;
  // The runs are read before any record is written: they may lie where the request's tail goes.
  const dMap = <u32>(l >> 10);
  const dIdx = <u32>(l & 1023);
  let at = req + REQ_HEADER + 2 * REQLEN_CHANGE_OWNER + REQLEN_INIT;
  for (let k: u32 = 0; k < nruns; k++) {
    const r = runs + k * RUN_BYTES;
    const map = load<u32>(r);
    const first = load<u32>(r + 4);
    const last = load<u32>(r + 8);
    changeOwner(at, map, first, last, from, d);
    at += REQLEN_CHANGE_OWNER;
  }
  at = req + REQ_HEADER;
  changeOwner(at, dMap, dIdx, dIdx, avail, ultra);
  at += REQLEN_CHANGE_OWNER;
  for (let k: u32 = 0; k < REQLEN_INIT; k += 4) store<u32>(at + k, 0);
  store<u32>(at + REC_TYPE, REC_INIT);
  store<u32>(at + REC_LENGTH, REQLEN_INIT);
  store<u32>(at + F0, d);
  // The record's descriptor (at F2) in the partition descriptor's own layout: magic, Me, kind, name and principal.
  store<u32>(at + F2, PD_MAGIC);
  store<u32>(at + F2 + PD_ME, d);
  store<u32>(at + F2 + PD_KIND, load<u32>(payload + PAYLOAD_KIND));
  for (let k: u32 = 0; k < 32; k += 4) store<u32>(at + F2 + PD_NAME + k, load<u32>(payload + PAYLOAD_NAME + k));
  at += REQLEN_INIT;
  changeOwner(at, dMap, dIdx, dIdx, ultra, d);
  header(req, <u32>bytes, 3 + nruns);
  created = d;
  return <i32>bytes;
}

let created: u32 = 0;
/** The partition number (descriptor page) of the last successful rs_build_create. */
export function rs_created(): u32 {
  return created;
}

// rs_build_destroy's walk state.
let dAt: u32 = 0;
let dEnd: u32 = 0;
let dOps: u32 = 0;
let dP: u32 = 0;
let dMap: u32 = 0;
let dIdx: u32 = 0;
let dFail: i32 = 0;

function giveBack(map: u32, first: u32, last: u32): void {
  if (dAt + REQLEN_CHANGE_OWNER > dEnd) {
    dFail = RS_TOO_BIG;
    return;
  }
  changeOwner(dAt, map, first, last, dP, avail);
  dAt += REQLEN_CHANGE_OWNER;
  dOps++;
}

/** Every run of entries owned by dP, this map page first, then its sub-maps in index order (MapView.maps's order). */
function walkOwned(page: u32, scale: u32): void {
  for (let i: u32 = 0; i < 1024; i++) {
    if (entry(page, i) != <i32>dP) continue;
    let j = i;
    while (j + 1 < 1024 && entry(page, j + 1) == <i32>dP) j++;
    if (page == dMap && i <= dIdx && dIdx <= j) {
      if (i < dIdx) giveBack(page, i, dIdx - 1);
      if (dIdx < j) giveBack(page, dIdx + 1, j);
    } else giveBack(page, i, j);
    i = j;
  }
  if (scale == 1) return;
  for (let i: u32 = 0; i < 1024; i++) {
    const v = entry(page, i);
    if (v < 0) walkOwned(<u32>v & PN_MASK, scale - 1);
  }
}

/**
 * The destroy transaction of [0224] at `req` (at most `cap` bytes): the `nprefix` records already at req + 16
 * (`prefix` bytes; RemoveChannel of each of p's channels, [0186]), then every run p owns back to Available, the
 * descriptor page taken for the ultravisor, DestroyPartition(p), the descriptor page made Available. Returns the
 * request's bytes, RS_NOT_LIVE or RS_TOO_BIG.
 */
export function rs_build_destroy(ui: u32, req: u32, cap: u32, p: u32, prefix: u32, nprefix: u32): i32 {
  loadIndex(ui);
  const l = leaf4k(p);
  if (l < 0 || entry(<u32>(l >> 10), <u32>(l & 1023)) != <i32>p) return RS_NOT_LIVE;
  dP = p;
  dMap = <u32>(l >> 10);
  dIdx = <u32>(l & 1023);
  dFail = 0;
  dOps = nprefix;
  // In 64 bits: a prefix or cap whose 32-bit sums wrap would put the records outside [req, req + cap).
  const fixed: u64 = <u64>REQ_HEADER + <u64>prefix + 2 * <u64>REQLEN_CHANGE_OWNER + <u64>REQLEN_DESTROY;
  if (fixed > <u64>cap || <u64>req + <u64>cap > <u64>0xffff_ffff) return RS_TOO_BIG;
  dAt = req + REQ_HEADER + prefix;
  dEnd = req + cap - 2 * REQLEN_CHANGE_OWNER - REQLEN_DESTROY;
  walkOwned(top, order);
  if (dFail != 0) return dFail;
  changeOwner(dAt, dMap, dIdx, dIdx, p, ultra);
  dAt += REQLEN_CHANGE_OWNER;
  store<u32>(dAt + REC_TYPE, REC_DESTROY);
  store<u32>(dAt + REC_LENGTH, REQLEN_DESTROY);
  store<u32>(dAt + F0, p);
  store<u32>(dAt + F1, 0);
  dAt += REQLEN_DESTROY;
  changeOwner(dAt, dMap, dIdx, dIdx, ultra, avail);
  dAt += REQLEN_CHANGE_OWNER;
  header(req, dAt - req, dOps + 3);
  return <i32>(dAt - req);
}
