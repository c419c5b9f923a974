// Entry module of core.wasm for the resource database ([0192]–[0224]): bootstrap, attach, transactions written to
// the audit log before they are applied ([0156]), rollback, replay since the last backup, and GetMemOwner.
// Layout and protocol: docs/specs/memory-layout.md. Exports are prefixed db_.
import { hw_flush } from "./lib/hw";
import {
  E_ADDRESS, E_CORRUPT, E_LOG_CORRUPT, E_LOG_FULL, E_MALFORMED, E_NOT_ATTACHED,
  E_TOO_LARGE, E_UNKNOWN_OP, ENTRIES, KIND_AVAILABLE, KIND_BOOT, KIND_IDLE, KIND_MISSING, KIND_ULTRAVISOR, LAYOUT_VERSION,
  LH_BASESEQ, LH_CAPACITY, LH_COMMITTED, LH_HEAD, LH_NEXTSEQ, LH_STATE, LH_TXCOUNT, LOG_HEADER, LOG_MAGIC, logLength,
  MAX_OPS, PD_KIND, PD_MAGIC, PD_ME, PD_NAME, PD_SIZE, PRIVATE_PAGES, PRIVATE_SPAN_PAGES, REC_BEGIN, REC_COMMIT, REF_BIT,
  REQ_HEADER, REQ_MAGIC, REQUEST_MAX, requestLength, UI_AVAIL, UI_BOOT, UI_HOST_BYTES, UI_IDLE, UI_INDEX, UI_LOG_BASE,
  UI_LOG_PAGES, UI_MAGIC, UI_MAGIC_OFF, UI_MAP_HIGH, UI_MAP_LOW, UI_MISSING, UI_ORDER, UI_ULTRA, UI_VERSION,
  E_NOT_COMMAND, EVENT_LENGTH, LH_REJECTED, REC_EVENT, REC_REJECTED, REJECTED_LENGTH, UI_COMMAND, UI_PRIVATE,
} from "./lib/layout";
import { capacity, committedEnd, flushHeader, head, inFlight, lh, logHeader, records, setLh } from "./lib/log";
import { applyOp, captureBefore, checkOp, commitCheck, resetSelfPages, undoOp, validateRequestOp } from "./lib/ops";
import {
  attached, clearDirectory, dbPageOk, detach, isLive, memoryPages, order, ownerOf, pageAddr, privFirst, rebuildDirectory,
  setAttached, uiPage, boot,
} from "./lib/state";

/**
 * The private 4 MiB page [0,pm,*] and the log in it (memory-layout.md §5, §10): pm names a 4 MiB page of the first
 * 4 GiB that linear memory holds, other than the first (page 0 is never a database page) and the database's own
 * `region`; the log lies in the private page after its first PRIVATE_PAGES pages.
 */
function privateOk(pm: u32, region: u32, lb: u32, lp: u32): bool {
  if (pm == 0 || pm == region || pm >= 1024 || (pm + 1) << 10 > memoryPages()) return false;
  const first = pm << 10;
  return lb >= first + PRIVATE_PAGES && lp >= 2 && lb + lp <= first + PRIVATE_SPAN_PAGES;
}

/** Bytes of db_bootstrap's parameter block: seventeen u32 with hostBytes as the u64 at 56 (memory-layout.md §10). */
const PARAMS_BYTES: u64 = 68;

let failedOp: i32 = -1;

@inline function memoryBytes(): u64 {
  return <u64>memory.size() << 16;
}

/** Index of the operation that failed in the last db_submit or db_replay, or -1. */
export function db_failed_op(): i32 {
  return failedOp;
}

/** Address of the attached Ultravisor Index page, or 0. */
export function db_ui_address(): usize {
  return attached ? pageAddr(uiPage) : 0;
}

/** Address of the ultravisor's private 4 MiB page (its request buffer is at +0x8000), or 0. */
export function db_private_address(): usize {
  return attached ? pageAddr(privFirst) : 0;
}

/** Address of the audit log's header (records follow at +64), or 0. */
export function db_log_address(): usize {
  return attached ? logHeader() : 0;
}

// ---------------------------------------------------------------------------------------------- attach

export function db_attach(ui: u32): i32 {
  detach();
  if (!dbPageOk(ui) || ui + 1 >= memoryPages()) return E_NOT_ATTACHED;
  const a = pageAddr(ui);
  if (load<u32>(a + UI_MAGIC_OFF) != UI_MAGIC || load<u32>(a + UI_VERSION) != LAYOUT_VERSION) return E_NOT_ATTACHED;
  if (load<u32>(a + UI_INDEX) != ui || load<u32>(a + UI_MAP_HIGH) != 0) return E_NOT_ATTACHED;
  const ord = load<u32>(a + UI_ORDER);
  const top = load<u32>(a + UI_MAP_LOW);
  const ultra = load<u32>(a + UI_ULTRA);
  if (ord < 2 || ord > 5 || !dbPageOk(top) || ultra != ui + 1) return E_NOT_ATTACHED;
  const lb = load<u32>(a + UI_LOG_BASE);
  const lp = load<u32>(a + UI_LOG_PAGES);
  const pm = load<u32>(a + UI_PRIVATE);
  if (!privateOk(pm, ui >> 10, lb, lp)) return E_NOT_ATTACHED;
  const l = pageAddr(lb);
  const cap = load<u32>(l + LH_CAPACITY);
  if (load<u32>(l) != LOG_MAGIC || cap != lp * 4096 - LOG_HEADER) return E_NOT_ATTACHED;
  if (load<u32>(l + LH_HEAD) > cap || load<u32>(l + LH_COMMITTED) > load<u32>(l + LH_HEAD)) return E_NOT_ATTACHED;
  const av = load<u32>(a + UI_AVAIL), mi = load<u32>(a + UI_MISSING);
  const id = load<u32>(a + UI_IDLE), bo = load<u32>(a + UI_BOOT);
  if (!isLive(ultra) || !isLive(av) || !isLive(mi) || !isLive(id) || !isLive(bo)) return E_NOT_ATTACHED;
  setAttached(ui, top, ord, ultra, av, mi, id, bo, lb, lp, pm);
  clearDirectory();
  if (rebuildDirectory(top, ord, ord | 8) < 0) {
    clearDirectory();
    detach();
    return E_CORRUPT;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------- bootstrap

// The pseudo partitions' names as the 16 NUL-padded ASCII bytes of the descriptor, little-endian u64 halves: a
// string literal would be static data at a fixed physical address, which core does not have (core-wasm.md).
const NAME_MISSING: u64 = 0x0067_6e69_7373_694d; // "Missing"
const NAME_AVAILABLE: u64 = 0x6c62_616c_6961_7641; // "Availabl" + "e" below
const NAME_AVAILABLE_HI: u64 = 0x65;
const NAME_IDLE: u64 = 0x656c_6449; // "Idle"
const NAME_BOOT: u64 = 0x746f_6f42; // "Boot"
const NAME_ULTRAVISOR: u64 = 0x7369_7661_7274_6c55; // "Ultravis" + "or" below
const NAME_ULTRAVISOR_HI: u64 = 0x726f;

function writePseudo(p: u32, kind: u32, nameLo: u64, nameHi: u64): void {
  const a = pageAddr(p);
  for (let o: usize = 0; o < PD_SIZE; o += 8) store<u64>(a + o, 0);
  store<u32>(a, PD_MAGIC);
  store<u32>(a + PD_ME, p);
  store<u32>(a + PD_KIND, kind);
  store<u64>(a + PD_NAME, nameLo);
  store<u64>(a + PD_NAME + 8, nameHi);
  hw_flush(a, PD_SIZE);
}

/** Builds the minimal database of docs/specs/memory-layout.md §10 and attaches it. */
export function db_bootstrap(params: usize): i32 {
  detach();
  if (<u64>params + PARAMS_BYTES > memoryBytes()) return E_ADDRESS;
  const ord = load<u32>(params), ui = load<u32>(params + 4), mi = load<u32>(params + 8);
  const av = load<u32>(params + 12), id = load<u32>(params + 16), bo = load<u32>(params + 20);
  const lb = load<u32>(params + 24), lp = load<u32>(params + 28), r = load<u32>(params + 32);
  const top = load<u32>(params + 36);
  const hostBytes = load<u64>(params + 56);
  const pm = load<u32>(params + 64);
  const ultra = ui + 1;
  if (ord < 2 || ord > 5) return E_MALFORMED;
  if (r == 0 || r >= 1024 || (r + 1) << 10 > memoryPages()) return E_ADDRESS;
  if (!privateOk(pm, r, lb, lp)) return E_ADDRESS;
  // chain[j] is the map page of scale ord-j on the path from the top to the PKM of region r.
  const chain = params + 36;
  for (let j: u32 = ord; j < 5; j++) if (load<u32>(chain + (<usize>j << 2)) != 0) return E_MALFORMED;
  // All bootstrap pages must be distinct pages of region r.
  const pages = params;
  const count: u32 = 6 + ord;
  for (let i: u32 = 0; i < count; i++) {
    const p = bootPage(pages, i, ultra);
    if (p >> 10 != r) return E_ADDRESS;
    for (let j: u32 = 0; j < i; j++) if (bootPage(pages, j, ultra) == p) return E_MALFORMED;
  }
  // Map pages: everything Missing, then the chain of Refs.
  for (let j: u32 = 0; j < ord; j++) {
    const a = pageAddr(load<u32>(chain + (<usize>j << 2)));
    for (let i: u32 = 0; i < ENTRIES; i++) store<u32>(a + (<usize>i << 2), mi);
  }
  for (let j: u32 = 0; j + 1 < ord; j++) {
    const s = ord - j;
    const idx: u32 = s == 2 ? r : 0;
    store<u32>(pageAddr(load<u32>(chain + (<usize>j << 2))) + (<usize>idx << 2), REF_BIT | load<u32>(chain + (<usize>(j + 1) << 2)));
  }
  const pmm = pageAddr(load<u32>(chain + (<usize>(ord - 2) << 2)));
  store<u32>(pmm + (<usize>pm << 2), ultra); // [0,pm,*]: the ultravisor's private page and log
  const pkm = pageAddr(load<u32>(chain + (<usize>(ord - 1) << 2)));
  for (let j: u32 = 0; j < ord; j++) store<u32>(pkm + (<usize>(load<u32>(chain + (<usize>j << 2)) & 1023) << 2), ultra);
  store<u32>(pkm + (<usize>(ui & 1023) << 2), ultra);
  store<u32>(pkm + (<usize>(ultra & 1023) << 2), ultra);
  store<u32>(pkm + (<usize>(mi & 1023) << 2), mi);
  store<u32>(pkm + (<usize>(av & 1023) << 2), av);
  store<u32>(pkm + (<usize>(id & 1023) << 2), id);
  store<u32>(pkm + (<usize>(bo & 1023) << 2), bo);
  for (let j: u32 = 0; j < ord; j++) hw_flush(pageAddr(load<u32>(chain + (<usize>j << 2))), 4096);
  writePseudo(mi, KIND_MISSING, NAME_MISSING, 0);
  writePseudo(av, KIND_AVAILABLE, NAME_AVAILABLE, NAME_AVAILABLE_HI);
  writePseudo(id, KIND_IDLE, NAME_IDLE, 0);
  writePseudo(bo, KIND_BOOT, NAME_BOOT, 0);
  writePseudo(ultra, KIND_ULTRAVISOR, NAME_ULTRAVISOR, NAME_ULTRAVISOR_HI);
  const u = pageAddr(ui);
  for (let o: usize = 0; o < 4096; o += 8) store<u64>(u + o, 0);
  store<u32>(u + UI_MAGIC_OFF, UI_MAGIC);
  store<u32>(u + UI_VERSION, LAYOUT_VERSION);
  store<u32>(u + UI_MAP_HIGH, 0);
  store<u32>(u + UI_MAP_LOW, top);
  store<u32>(u + UI_ORDER, ord);
  store<u32>(u + UI_INDEX, ui);
  store<u32>(u + UI_ULTRA, ultra);
  store<u32>(u + UI_AVAIL, av);
  store<u32>(u + UI_MISSING, mi);
  store<u32>(u + UI_IDLE, id);
  store<u32>(u + UI_BOOT, bo);
  store<u32>(u + UI_LOG_BASE, lb);
  store<u32>(u + UI_LOG_PAGES, lp);
  store<u64>(u + UI_HOST_BYTES, hostBytes);
  store<u32>(u + UI_PRIVATE, pm);
  hw_flush(u, 4096);
  const l = pageAddr(lb);
  for (let o: usize = 0; o < LOG_HEADER; o += 8) store<u64>(l + o, 0);
  store<u32>(l, LOG_MAGIC);
  store<u32>(l + LH_CAPACITY, lp * 4096 - LOG_HEADER);
  store<u32>(l + LH_NEXTSEQ, 1);
  store<u32>(l + LH_BASESEQ, 1);
  hw_flush(l, LOG_HEADER);
  return db_attach(ui);
}

/** The i-th page the bootstrap places: ui, ultra, missing, avail, idle, boot, then the map chain. */
function bootPage(params: usize, i: u32, ultra: u32): u32 {
  if (i == 0) return load<u32>(params + 4);
  if (i == 1) return ultra;
  if (i < 6) return load<u32>(params + 8 + (<usize>(i - 2) << 2));
  return load<u32>(params + 36 + (<usize>(i - 6) << 2));
}

// ---------------------------------------------------------------------------------------------- transactions

/** Address of the n-th operation record of the transaction whose BEGIN is at begin. */
function opRecord(begin: usize, n: u32): usize {
  let rec = begin + 16;
  for (let k: u32 = 0; k < n; k++) rec += load<u32>(rec + 4);
  return rec;
}

/** Undoes, newest first, every started operation among the first n of the transaction at begin. */
function undoStarted(begin: usize, n: u32): u32 {
  let undone: u32 = 0;
  for (let k = <i32>n - 1; k >= 0; k--) {
    const rec = opRecord(begin, <u32>k);
    if (load<u8>(rec + 1) != 0) {
      undoOp(rec, load<u8>(rec));
      undone++;
    }
  }
  return undone;
}

/** Checks and applies n operations; on failure undoes the started ones (when logging) and returns the code. */
function runOps(begin: usize, n: u32, logging: bool): i32 {
  resetSelfPages();
  let rec = begin + 16;
  for (let k: u32 = 0; k < n; k++) {
    const type = <u32>load<u8>(rec);
    const rc = checkOp(rec, type);
    if (rc < 0) {
      failedOp = <i32>k;
      if (logging) undoStarted(begin, k);
      return rc;
    }
    if (logging) {
      captureBefore(rec, type);
      store<u8>(rec + 1, 1);
      hw_flush(rec, load<u32>(rec + 4));
    }
    applyOp(rec, type);
    rec += load<u32>(rec + 4);
  }
  const rc = commitCheck();
  if (rc < 0) {
    failedOp = -1;
    if (logging) undoStarted(begin, n);
    return rc;
  }
  return 0;
}

function abandon(): void {
  setLh(LH_HEAD, committedEnd());
  setLh(LH_STATE, 0);
  flushHeader();
}

/** Runs the request at address req as one transaction (memory-layout.md §5.4). 0 or a negative error code. */
export function db_submit(req: usize): i32 {
  failedOp = -1;
  if (!attached) return E_NOT_ATTACHED;
  if (inFlight()) {
    const rc = db_recover();
    if (rc < 0) return rc;
  }
  const mem = memoryBytes();
  if (<u64>req + REQ_HEADER > mem) return E_ADDRESS;
  const len = load<u32>(req + 4), n = load<u32>(req + 8);
  if (load<u32>(req) != REQ_MAGIC || load<u32>(req + 12) != 0) return E_MALFORMED;
  if (len > REQUEST_MAX || n > MAX_OPS) return E_TOO_LARGE;
  if (len < REQ_HEADER || n == 0 || (len & 7) != 0) return E_MALFORMED;
  if (<u64>req + <u64>len > mem) return E_ADDRESS;
  // Pass 1: structure, and the room the log needs.
  let off: u32 = REQ_HEADER;
  let need: u32 = 32;
  for (let k: u32 = 0; k < n; k++) {
    failedOp = <i32>k;
    if (off + 8 > len) return E_MALFORMED;
    const rec = req + off;
    const type = <u32>load<u8>(rec);
    const rl = requestLength(type);
    if (rl == 0) return E_UNKNOWN_OP;
    if (load<u8>(rec + 1) != 0 || load<u16>(rec + 2) != 0 || load<u32>(rec + 4) != rl || off + rl > len) return E_MALFORMED;
    const rc = validateRequestOp(rec, type);
    if (rc < 0) return rc;
    need += logLength(type);
    off += rl;
  }
  failedOp = -1;
  if (off != len) return E_MALFORMED;
  if (<u64>head() + <u64>need > <u64>capacity()) return E_LOG_FULL;
  // Pass 2: the request goes to the log before anything is applied.
  const begin = records() + head();
  const seq = lh(LH_NEXTSEQ);
  store<u32>(begin, REC_BEGIN);
  store<u32>(begin + 4, 16);
  store<u32>(begin + 8, seq);
  store<u32>(begin + 12, n);
  let w = begin + 16;
  off = REQ_HEADER;
  for (let k: u32 = 0; k < n; k++) {
    const rec = req + off;
    const type = <u32>load<u8>(rec);
    const rl = requestLength(type);
    store<u32>(w, type);
    store<u32>(w + 4, logLength(type));
    for (let o: u32 = 8; o < rl; o += 8) store<u64>(w + o, load<u64>(rec + o));
    w += logLength(type);
    off += rl;
  }
  hw_flush(begin, need - 16);
  setLh(LH_HEAD, head() + need - 16);
  setLh(LH_STATE, 1);
  flushHeader();
  // Pass 3: check and apply each operation in order.
  const rc = runOps(begin, n, true);
  if (rc < 0) {
    abandon();
    return rc;
  }
  store<u32>(w, REC_COMMIT);
  store<u32>(w + 4, 16);
  store<u32>(w + 8, seq);
  store<u32>(w + 12, n);
  hw_flush(w, 16);
  const end = committedEnd() + need;
  setLh(LH_HEAD, end);
  setLh(LH_COMMITTED, end);
  setLh(LH_TXCOUNT, lh(LH_TXCOUNT) + 1);
  setLh(LH_NEXTSEQ, seq + 1);
  setLh(LH_STATE, 0);
  flushHeader();
  return 0;
}

/** Checks the records of the transaction at offset `at` of the record area; returns its op count or an error. */
function scanTransaction(at: u32, limit: u32, needCommit: bool): i32 {
  const base = records();
  if (at + 16 > limit) return E_LOG_CORRUPT;
  const begin = base + at;
  if (load<u32>(begin) != REC_BEGIN || load<u32>(begin + 4) != 16) return E_LOG_CORRUPT;
  const n = load<u32>(begin + 12);
  if (n == 0 || n > MAX_OPS) return E_LOG_CORRUPT;
  let off = at + 16;
  for (let k: u32 = 0; k < n; k++) {
    if (off + 8 > limit) return E_LOG_CORRUPT;
    const rec = base + off;
    const type = <u32>load<u8>(rec);
    const ll = logLength(type);
    if (ll == 0 || load<u32>(rec + 4) != ll || load<u16>(rec + 2) != 0 || off + ll > limit) return E_LOG_CORRUPT;
    if (validateRequestOp(rec, type) < 0) return E_LOG_CORRUPT;
    off += ll;
  }
  if (needCommit) {
    if (off + 16 > limit) return E_LOG_CORRUPT;
    const c = base + off;
    if (load<u32>(c) != REC_COMMIT || load<u32>(c + 4) != 16 || load<u32>(c + 8) != load<u32>(begin + 8)) return E_LOG_CORRUPT;
  }
  return <i32>n;
}

/** Rolls back a transaction interrupted in flight; returns how many operations were undone (0 if none). */
export function db_recover(): i32 {
  if (!attached) return E_NOT_ATTACHED;
  if (!inFlight()) return 0;
  const at = committedEnd();
  const n = scanTransaction(at, head(), false);
  if (n < 0) return n;
  const undone = undoStarted(records() + at, <u32>n);
  abandon();
  return <i32>undone;
}

/** Empties the log once the host has saved a backup of the database ([0099]). */
export function db_log_truncate(): i32 {
  if (!attached) return E_NOT_ATTACHED;
  if (inFlight()) {
    const rc = db_recover();
    if (rc < 0) return rc;
  }
  setLh(LH_HEAD, 0);
  setLh(LH_COMMITTED, 0);
  setLh(LH_TXCOUNT, 0);
  setLh(LH_BASESEQ, lh(LH_NEXTSEQ));
  flushHeader();
  return 0;
}

/**
 * Re-applies the committed transactions of the log to a database restored from a backup; transactions with a
 * sequence number below fromSeq are already in that backup and are skipped. Returns how many were applied.
 */
export function db_replay(fromSeq: u32): i32 {
  failedOp = -1;
  if (!attached) return E_NOT_ATTACHED;
  const end = committedEnd();
  let at: u32 = 0;
  let count: i32 = 0;
  while (at < end) {
    const r = records() + at;
    if (<u32>load<u8>(r) == REC_REJECTED || <u32>load<u8>(r) == REC_EVENT) {
      // An audited refusal or an event between transactions (§11.1, §11.3): nothing to apply (both are 24 bytes).
      if (load<u32>(r + 4) != REJECTED_LENGTH || at + REJECTED_LENGTH > end) return E_LOG_CORRUPT;
      at += REJECTED_LENGTH;
      continue;
    }
    const n = scanTransaction(at, end, true);
    if (n < 0) return n;
    const begin = records() + at;
    if (load<u32>(begin + 8) >= fromSeq) {
      const rc = runOps(begin, <u32>n, false);
      if (rc < 0) return rc;
      count++;
    }
    at = <u32>(opRecord(begin, <u32>n) - records()) + 16;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------- command channel

/** The index page's Command field: the partition whose submissions db_submit_as accepts (0 while booting). */
export function db_command(): i32 {
  if (!attached) return E_NOT_ATTACHED;
  return <i32>load<u32>(pageAddr(uiPage) + UI_COMMAND);
}

/**
 * Records an event of the ultravisor's between transactions (memory-layout.md §11.3): an EVENT record at the committed
 * end. 0, or NOT_ATTACHED, MALFORMED (kind 0, or a transaction in flight), LOG_FULL (nothing written).
 */
export function db_log_event(kind: u32, a: u32, b: u32): i32 {
  if (!attached) return E_NOT_ATTACHED;
  if (kind == 0 || inFlight()) return E_MALFORMED;
  return appendBetween(REC_EVENT, kind, a, b, lh(LH_NEXTSEQ), false);
}

/**
 * Appends a 24-byte record that is not a transaction (REJECTED, EVENT: both are 24 bytes, EVENT_LENGTH ==
 * REJECTED_LENGTH) at the committed end, moving committedEnd and head past it; 0 or LOG_FULL with nothing written.
 */
function appendBetween(type: u32, f0: u32, f1: u32, f2: u32, f3: u32, countRejected: bool): i32 {
  if (head() + EVENT_LENGTH > capacity()) return E_LOG_FULL;
  const at = committedEnd();
  const r = records() + at;
  store<u32>(r, type);
  store<u32>(r + 4, EVENT_LENGTH);
  store<u32>(r + 8, f0);
  store<u32>(r + 12, f1);
  store<u32>(r + 16, f2);
  store<u32>(r + 20, f3);
  hw_flush(r, EVENT_LENGTH);
  setLh(LH_COMMITTED, at + EVENT_LENGTH);
  setLh(LH_HEAD, at + EVENT_LENGTH);
  if (countRejected) setLh(LH_REJECTED, lh(LH_REJECTED) + 1);
  flushHeader();
  return 0;
}

/** Appends a REJECTED record at the committed end (memory-layout.md §11.1); 0 or LOG_FULL. */
function logRejection(submitter: u32, code: i32): i32 {
  return appendBetween(REC_REJECTED, submitter, <u32>code, lh(LH_NEXTSEQ), 0, true);
}

/**
 * The command channel's entry ([0090], [0174]): runs the request as db_submit does when `submitter` is the command
 * partition (the boot partition while none is designated); anyone else is refused with NOT_COMMAND and audited.
 */
export function db_submit_as(req: usize, submitter: u32): i32 {
  failedOp = -1;
  if (!attached) return E_NOT_ATTACHED;
  const cmd = load<u32>(pageAddr(uiPage) + UI_COMMAND);
  const allowed = cmd != 0 ? cmd : boot;
  if (submitter != allowed) {
    if (inFlight()) {
      const rc = db_recover();
      if (rc < 0) return rc;
    }
    const rc = logRejection(submitter, E_NOT_COMMAND);
    return rc < 0 ? rc : E_NOT_COMMAND;
  }
  return db_submit(req);
}

// ---------------------------------------------------------------------------------------------- GetMemOwner

/** GetMemOwner ([0210]) for the 64-bit byte address hi:lo. */
export function db_get_owner(lo: u32, hi: u32): i32 {
  if (!attached) return E_NOT_ATTACHED;
  return ownerOf((<u64>hi << 32) | <u64>lo);
}

/** Looks up n u64 addresses at addrs, writing n i32 owners at out; returns n or an error code. */
export function db_get_owner_batch(addrs: usize, n: u32, out: usize): i32 {
  if (!attached) return E_NOT_ATTACHED;
  const mem = memoryBytes();
  if (<u64>addrs + (<u64>n << 3) > mem || <u64>out + (<u64>n << 2) > mem) return E_ADDRESS;
  for (let i: u32 = 0; i < n; i++) store<i32>(out + (<usize>i << 2), ownerOf(load<u64>(addrs + (<usize>i << 3))));
  return <i32>n;
}

/** The order of the attached map (2–5), or an error code. */
export function db_order(): i32 {
  return attached ? <i32>order : E_NOT_ATTACHED;
}

