// The boot partition's transactions ([0102]–[0109], Fig. 8), AssemblyScript over core's database layout. One module,
// run by both sides: compiled by toolchain/aot and run at ring 0 right after core's db_bootstrap (loader-efi/uv-boot-
// db.ts builds and calls it), and run by V8 in the simulator (sim/host.ts, through core/boot-module.ts). It reads a
// UEFI memory map and submits, through core's own db_submit: the database's 4 MiB page made Available, each firmware
// range given to Available (usable types) or to the Boot pseudo partition (reserved, ACPI, MMIO, runtime), the first
// 4 MiB given to Boot, then the log emptied (the backup point); after that, the ultravisor region (on the machine the
// loader's allocation the monitor's page allocator hands out: kernel and partition page tables, windows, channel
// pages; in the simulator the pages a host definition reserves) is given from Available to the ultravisor partition,
// so the database no longer lists monitor memory as free; the part of it that holds the partitions' allotments at
// 4 KiB granularity. `create` is the resource service's create-with-memory transaction: the lead monitor calls it at
// boot for the partitions the boot partition creates ([0104]), and the ultravisor partition runs a second instance
// of this module at CPL 3 for each definition the command partition sends. Linear memory is physical memory (base 0
// at ring 0; the database view at CPL 3, where only the database's pages exist; the host's memory in V8), so map
// pages, the UEFI map and the request buffers are all plain addresses. It allocates nothing: no strings, no arrays,
// no runtime calls. Its TypeScript binding and build are core/boot-module.ts (core owns both sides of this wasm as
// of core.wasm: docs/architecture.md, Layers).

@external("env", "db_submit")
declare function dbSubmit(req: u32): i32;

@external("env", "db_log_truncate")
declare function dbLogTruncate(): i32;

// Every layout fact comes from core's own table (core/assembly/lib/layout.ts), the one core.wasm is built from.
import {
  F0, F1, F2, F3, PAGE_SHIFT, PN_MASK, REC_LENGTH, REC_SPLIT, REC_TYPE, REQ_HEADER, REQLEN_CHANGE_OWNER, REQLEN_SPLIT, UI_AVAIL, UI_BOOT, UI_MAP_LOW, UI_MISSING,
  UI_ORDER, UI_ULTRA,
} from "../../assembly/lib/layout";
import { changeOwner, header, rs_alloc_db_page, rs_build_create, rs_created } from "./resource-service";

const PAGE: u64 = <u64>1 << PAGE_SHIFT;
const CO_BYTES: u32 = REQLEN_CHANGE_OWNER;
const SPLIT_BYTES: u32 = REQLEN_SPLIT;
const MAX_PAGE_OPS: u32 = 1000;
// EFI_MEMORY_DESCRIPTOR: type, physical start, number of 4 KiB pages (UEFI 2.x). Checked against core/boot-module.ts
// UEFI_DESCRIPTOR and USABLE_UEFI_TYPES by core/layout.test.ts.
const UEFI_TYPE: u32 = 0;
const UEFI_BASE: u32 = 8;
const UEFI_PAGES: u32 = 24;
/** UEFI types whose memory is installed RAM the host may hand out after ExitBootServices (loader, boot services, conventional). */
function usable(t: u32): bool {
  return t == 1 || t == 2 || t == 3 || t == 4 || t == 7;
}

// Set by main: the index page's fields and the two buffers.
let uiPage: u32 = 0;
let top: u32 = 0;
let order: u32 = 0;
let ultra: u32 = 0;
let avail: u32 = 0;
let missing: u32 = 0;
let boot: u32 = 0;
let reqBuf: u32 = 0;
let opsBuf: u32 = 0;
let txCount: i32 = 0;
let failure: i32 = 0;
/** markRange at 4 KiB granularity: entries of larger pages inside the range are split too, not changed whole. */
let fine: bool = false;

function span(scale: u32): u64 {
  return PAGE << (<u64>(10 * (scale - 1)));
}

function entry(page: u32, i: u32): i32 {
  return load<i32>(page * 4096 + i * 4);
}

/** Submits the request at reqBuf; remembers the first failure. */
function submit(): void {
  if (failure != 0) return;
  const rc = dbSubmit(reqBuf);
  if (rc < 0) failure = rc;
  else txCount++;
}


/** The entry deciding the owner of 4 KiB page p, as (map << 10 | index) with the owner in leafOwner; -1 if not 4 KiB. */
let leafOwner: u32 = 0;
function leaf4k(p: u32): i64 {
  let page = top;
  const addr = <u64>p * PAGE;
  for (let s = order; s >= 1; s--) {
    const index = <u32>((addr / span(s)) % 1024);
    const v = entry(page, index);
    if (v >= 0) {
      if (s != 1) return -1;
      leafOwner = <u32>v;
      return (<i64>page << 10) | index;
    }
    page = <u32>v & PN_MASK;
  }
  return -1;
}

/** Lowest Available page of one PKM (never page 0, never Available's own descriptor), 0 if none. */
function scanPkm(page: u32, base: u64): u32 {
  if (base >= (<u64>1 << 32)) return 0;
  for (let i: u32 = 0; i < 1024; i++) {
    const p = <u32>(base / PAGE) + i;
    if (entry(page, i) == <i32>avail && p != avail && p != 0) return p;
  }
  return 0;
}

/** The other PKMs, depth-first in address order (MapView.maps), skipping the one at `home`. */
function freeElsewhere(page: u32, scale: u32, base: u64, home: u64): u32 {
  if (scale == 1) return base == home ? 0 : scanPkm(page, base);
  for (let i: u32 = 0; i < 1024; i++) {
    const v = entry(page, i);
    if (v < 0) {
      const p = freeElsewhere(<u32>v & PN_MASK, scale - 1, base + <u64>i * span(scale), home);
      if (p != 0) return p;
    }
  }
  return 0;
}

/** Host.freeDbPage: the database's own 4 MiB page (the one holding the index page) first, then the other PKMs. */
function freeDbPage(): u32 {
  const home = (<u64>uiPage >> 10) << 22;
  let page = top;
  for (let s = order; s >= 2; s--) {
    const v = entry(page, <u32>((home / span(s)) % 1024));
    if (v >= 0) return freeElsewhere(top, order, 0, home);
    page = <u32>v & PN_MASK;
  }
  const p = scanPkm(page, home);
  return p != 0 ? p : freeElsewhere(top, order, 0, home);
}

/** Splits entry i of `page` (owned by `owner`) into a fresh map page taken for the ultravisor: [0222]'s two steps. */
function split(page: u32, i: u32, owner: u32): void {
  const into = freeDbPage();
  if (into == 0) {
    if (failure == 0) failure = -1000;
    return;
  }
  const l = leaf4k(into);
  if (l < 0) {
    if (failure == 0) failure = -1001;
    return;
  }
  const r = reqBuf + REQ_HEADER;
  changeOwner(r, <u32>(l >> 10), <u32>(l & 1023), <u32>(l & 1023), leafOwner, ultra);
  // The Split record right after the ChangeOwner.
  store<u32>(r + CO_BYTES + REC_TYPE, REC_SPLIT);
  store<u32>(r + CO_BYTES + REC_LENGTH, SPLIT_BYTES);
  store<u32>(r + CO_BYTES + F0, page);
  store<u32>(r + CO_BYTES + F1, i);
  store<u32>(r + CO_BYTES + F2, into);
  store<u32>(r + CO_BYTES + F3, owner);
  header(reqBuf, REQ_HEADER + CO_BYTES + SPLIT_BYTES, 2);
  submit();
}

/** Host.markRange's visit: every `from` entry inside [start, end) of this page becomes `to`, partial entries split. */
function visit(page: u32, scale: u32, base: u64, start: u64, end: u64, from: u32, to: u32): void {
  const sp = span(scale);
  let ops: u32 = 0;
  let runFirst: i32 = -1;
  let runLast: i32 = -1;
  for (let i: u32 = 0; i < 1024; i++) {
    const eb = base + <u64>i * sp;
    const ee = eb + sp;
    let closeRun = true;
    if (!(ee <= start || eb >= end)) {
      let v = entry(page, i);
      if (scale == 1 && <u64>v == eb / PAGE) v = 0;
      if (v >= 0 && eb >= start && ee <= end && (scale == 1 || !fine)) {
        if (<u32>v == from) {
          closeRun = false;
          if (runFirst >= 0 && runLast == <i32>i - 1) runLast = <i32>i;
          else {
            ops = flushRun(ops, page, runFirst, runLast, from, to);
            runFirst = <i32>i;
            runLast = <i32>i;
          }
        }
      } else if (v >= 0 && <u32>v == from) {
        ops = flushRun(ops, page, runFirst, runLast, from, to);
        runFirst = -1;
        split(page, i, from);
      }
    }
    if (closeRun) {
      ops = flushRun(ops, page, runFirst, runLast, from, to);
      runFirst = -1;
    }
  }
  ops = flushRun(ops, page, runFirst, runLast, from, to);
  if (ops > 0) {
    // The page's runs were gathered in opsBuf (splits used the request buffer meanwhile): one transaction.
    const bytes: u32 = REQ_HEADER + ops * CO_BYTES;
    header(reqBuf, bytes, ops);
    for (let k: u32 = REQ_HEADER; k < bytes; k += 4) store<u32>(reqBuf + k, load<u32>(opsBuf + k));
    submit();
  }
  // Host.markRange descends into the entries that were refs or were split, in index order: after the page's
  // transaction those are exactly the ref entries overlapping the range (ChangeOwner creates no refs).
  if (scale == 1) return;
  for (let i: u32 = 0; i < 1024; i++) {
    const eb = base + <u64>i * sp;
    const ee = eb + sp;
    if (ee <= start || eb >= end) continue;
    const v = entry(page, i);
    if (v < 0) visit(<u32>v & PN_MASK, scale - 1, eb, start, end, from, to);
  }
}

function flushRun(ops: u32, page: u32, first: i32, last: i32, from: u32, to: u32): u32 {
  if (first < 0) return ops;
  if (ops >= MAX_PAGE_OPS) {
    if (failure == 0) failure = -1002;
    return ops;
  }
  changeOwner(opsBuf + REQ_HEADER + ops * CO_BYTES, page, <u32>first, <u32>last, from, to);
  return ops + 1;
}

/**
 * The page freeDbPage would take for a map page now (0 if none): the simulator's allocator for the map pages it adds
 * outside the boot (sim/channel-memory.ts), so that it and the boot take pages by one rule. `ui`: the index page.
 */
export function free_db_page(ui: u32): u32 {
  loadIndex(ui, 0);
  return freeDbPage();
}

function markRange(start: u64, end: u64, from: u32, to: u32): void {
  visit(top, order, 0, start, end, from, to);
}

function loadIndex(ui: u32, req: u32): void {
  uiPage = ui;
  const u = ui * 4096;
  top = load<u32>(u + UI_MAP_LOW);
  order = load<u32>(u + UI_ORDER);
  ultra = load<u32>(u + UI_ULTRA);
  avail = load<u32>(u + UI_AVAIL);
  missing = load<u32>(u + UI_MISSING);
  boot = load<u32>(u + UI_BOOT);
  reqBuf = req;
}

/**
 * ui: page of the Ultravisor Index; map/mapBytes/descSize: the UEFI memory map; region: M of the database's 4 MiB
 * page; req: core's request buffer; ops: 32 KiB of scratch; uvPage/uvPages: the ultravisor region's first 4 KiB page
 * and its length in pages; allotPage/allotPages: the part of the region that holds the partitions' allotments, which
 * is marked at 4 KiB granularity so each allotment can later be given to its partition. Returns the number of
 * committed transactions (the region's included), or the first negative error (core's codes; −1000… this module's:
 * no free page for a map page, a page not at 4 KiB scale, too many runs in one map page).
 */
export function main(ui: u32, map: u32, mapBytes: u32, descSize: u32, region: u32, req: u32, ops: u32, uvPage: u32, uvPages: u32, allotPage: u32, allotPages: u32): i32 {
  loadIndex(ui, req);
  opsBuf = ops;
  const covers = span(order) * 1024;
  const regionStart = <u64>region << 22;
  markRange(regionStart, regionStart + (<u64>1 << 22), missing, avail);
  for (let d: u32 = 0; d + descSize <= mapBytes; d += descSize) {
    const type = load<u32>(map + d + UEFI_TYPE);
    const base = load<u64>(map + d + UEFI_BASE);
    let end = base + load<u64>(map + d + UEFI_PAGES) * PAGE;
    if (base >= covers || end <= base) continue;
    if (end > covers) end = covers;
    markRange(base, end, missing, usable(type) ? avail : boot);
  }
  markRange(0, <u64>1 << 22, avail, boot);
  if (failure != 0) return failure;
  const rc = dbLogTruncate();
  if (rc < 0) return rc;
  // After the backup point, so the boot's own transactions stay exactly the simulator's Host.create.
  if (uvPages != 0) {
    if (allotPages != 0) {
      fine = true;
      markRange(<u64>allotPage * PAGE, <u64>(allotPage + allotPages) * PAGE, avail, ultra);
      fine = false;
    }
    const uvStart = <u64>uvPage * PAGE;
    let uvEnd = uvStart + <u64>uvPages * PAGE;
    if (uvEnd > covers) uvEnd = covers;
    if (uvStart < uvEnd) markRange(uvStart, uvEnd, avail, ultra);
    if (failure != 0) return failure;
  }
  return txCount;
}

/** Where `create` lists the allotment's runs for the builder: the upper half of the request buffer, below the payload. */
const RUNS_OFFSET: u32 = 0x4000;
/** The request `create` builds stays below the runs: at most this many bytes (about 500 runs). */
const CREATE_CAP: u32 = 0x4000;

/**
 * Creates a partition that owns [first, first + pages) — the resource service's create transaction with explicit
 * runs taken from `from`, built by the one builder both sides run (resource-service.ts rs_build_create; the
 * simulator's ResourceService.create calls it too) and submitted here with core's db_submit: a descriptor page (the
 * lowest Available 4 KiB page; one more must be left, as the resource service keeps a spare) taken for the
 * ultravisor, InitializePartition from the 40-byte definition at `payload` (name 16, principal 16, u32 kind), the
 * page handed to the partition, then each run of the allotment (at 4 KiB granularity) from `from` to it. Used at
 * boot for the partitions the boot partition creates and by the ultravisor partition for each definition. Returns the
 * new partition's number (its descriptor page) or a negative error: core's, or −1003 (no free page for the
 * descriptor in the database's own 4 MiB page, or no spare: the ultravisor partition's view holds that page only, so
 * the builders' grow is not used here), −1001 (a page of the allotment is not mapped at 4 KiB granularity), −1002
 * (too many runs for one request).
 */
export function create(ui: u32, req: u32, payload: u32, first: u32, pages: u32, from: u32): i32 {
  loadIndex(ui, req);
  const d = rs_alloc_db_page(ui, 0);
  if (d == 0 || d >> 10 != uiPage >> 10) return -1003;
  const runs = req + RUNS_OFFSET;
  let n: u32 = 0;
  let runMap: i64 = -1;
  let runLast: u32 = 0;
  for (let p = first; p < first + pages; p++) {
    const q = leaf4k(p);
    if (q < 0) return -1001;
    const m = q >> 10;
    const i = <u32>(q & 1023);
    if (m == runMap && i == runLast + 1) {
      runLast = i;
      store<u32>(runs + (n - 1) * 12 + 8, i);
      continue;
    }
    if (runs + (n + 1) * 12 > payload) return -1002;
    store<u32>(runs + n * 12, <u32>m);
    store<u32>(runs + n * 12 + 4, i);
    store<u32>(runs + n * 12 + 8, i);
    n++;
    runMap = m;
    runLast = i;
  }
  const bytes = rs_build_create(ui, req, CREATE_CAP, payload, runs, n, from, 0);
  if (bytes < 0) return bytes;
  const rc = dbSubmit(req);
  return rc < 0 ? rc : <i32>rs_created();
}

// The resource service's transaction builders (docs/specs/command-channel.md, "One resource service"): exported by
// this module so that the simulator and the machine run the one copy.
export { rs_alloc_db_page, rs_build_create, rs_build_destroy, rs_build_grow, rs_created } from "./resource-service";
// The command partition's reading of an operator's console line (command-channel.md, "Run-time definitions").
export { cl_check, cl_parse } from "./command-line";
