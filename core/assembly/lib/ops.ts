// The five operations of a transaction on log records (docs/specs/memory-layout.md §5.2, §7): structural
// validation of a request record, the precondition check against current bytes, apply, and undo from the
// before-image. Every function returns an error code instead of trapping on bad input.
import { hw_flush } from "./hw";
import {
  E_ADDRESS, E_BAD_PARTITION, E_DESCRIPTOR_OWNER, E_INDEX_RANGE, E_MALFORMED, E_NO_SUCH_PARTITION, E_NOT_MAP_PAGE,
  E_NOT_ULTRAVISOR_PAGE, E_NOT_UNIFORM, E_OWNER_MISMATCH, E_PAGE_IN_USE, E_PARTITION_EXISTS, E_PROTECTED, E_SCALE,
  E_TOO_LARGE, E_UNKNOWN_OP, ENTRIES, KIND_GUEST, PAGE_SHIFT, PD_FLAGS, PD_KIND, PD_MAGIC, PD_ME, PD_RESERVED,
  PD_SIZE, REC_CHANGE_OWNER, REC_DESTROY, REC_INIT, REC_MERGE, REC_SPLIT, REF_BIT, SCRATCH_ENTRIES,
  CHANNEL_SLOTS, CHANNEL_TYPE_MAX, CS_BASE, CS_CLIENT, CS_PAGES, CS_SERVER, CS_TYPE, DB_PAGE_LIMIT, E_CHANNEL_EXISTS,
  E_CHANNEL_IN_USE, E_NO_SUCH_CHANNEL, E_WRONG_KIND, KIND_COMMAND, KIND_ULTRAVISOR, REC_ASSIGN_SERVER,
  REC_DEFINE_CHANNEL, REC_REMOVE_CHANNEL, REC_SET_COMMAND, UI_CHANNELS, UI_COMMAND, F0, F1, F2, F3, F4,
} from "./layout";
import {
  avail, boot, childDir, dirGet, dirLow, dirRegion, dirScale, dirSet, idle, isLive, isPartitionNumber, memoryPages,
  missing, ownerOf, ownerScale, pageAddr, pageInUse, rangeInUse, scratch, uiPage, ultra,
} from "./state";

@inline function f(rec: usize, off: usize): u32 {
  return load<u32>(rec + off);
}

@inline function pageOk(p: u32): bool {
  return p != 0 && p < memoryPages();
}

/** Structural checks of a request record (no state consulted beyond memory size). */
export function validateRequestOp(rec: usize, type: u32): i32 {
  if (type == REC_CHANGE_OWNER) {
    if (f(rec, 28) != 0) return E_MALFORMED;
    if (!pageOk(f(rec, F0))) return E_ADDRESS;
    if (f(rec, F1) > f(rec, F2) || f(rec, F2) >= ENTRIES) return E_INDEX_RANGE;
    if (!isPartitionNumber(f(rec, F3)) || !isPartitionNumber(f(rec, F4))) return E_BAD_PARTITION;
    return 0;
  }
  if (type == REC_INIT) {
    const p = f(rec, F0);
    if (f(rec, F1) != 0) return E_MALFORMED;
    if (!isPartitionNumber(p)) return E_BAD_PARTITION;
    if (!pageOk(p)) return E_ADDRESS;
    const d = rec + F2;
    if (load<u32>(d) != PD_MAGIC || load<u32>(d + PD_ME) != p || load<u32>(d + PD_FLAGS) != 0) return E_MALFORMED;
    const kind = load<u32>(d + PD_KIND);
    if (!((kind >= 1 && kind <= 8) || kind == KIND_GUEST)) return E_MALFORMED;
    for (let o: usize = PD_RESERVED; o < PD_SIZE; o += 4) if (load<u32>(d + o) != 0) return E_MALFORMED;
    return 0;
  }
  if (type == REC_DESTROY) {
    const p = f(rec, F0);
    if (f(rec, F1) != 0) return E_MALFORMED;
    if (!isPartitionNumber(p)) return E_BAD_PARTITION;
    if (!pageOk(p)) return E_ADDRESS;
    return 0;
  }
  if (type == REC_SPLIT || type == REC_MERGE) {
    if (!pageOk(f(rec, F0)) || !pageOk(f(rec, F2))) return E_ADDRESS;
    if (f(rec, F1) >= ENTRIES) return E_INDEX_RANGE;
    if (!isPartitionNumber(f(rec, F3))) return E_BAD_PARTITION;
    return 0;
  }
  if (type == REC_DEFINE_CHANNEL || type == REC_ASSIGN_SERVER || type == REC_REMOVE_CHANNEL) {
    if (f(rec, F0) >= CHANNEL_SLOTS) return E_INDEX_RANGE;
    if (!isPartitionNumber(f(rec, F1))) return E_BAD_PARTITION;
    if (type == REC_DEFINE_CHANNEL) {
      const pages = <u32>load<u16>(rec + 20);
      if (pages == 0 || pages > ENTRIES || <u32>load<u8>(rec + 22) > CHANNEL_TYPE_MAX || load<u8>(rec + 23) != 0) return E_MALFORMED;
      if (f(rec, F2) == 0 || <u64>f(rec, F2) + <u64>pages > <u64>DB_PAGE_LIMIT) return E_ADDRESS;
    } else if (type == REC_ASSIGN_SERVER) {
      const server = f(rec, F2);
      if (server != 0 && !isPartitionNumber(server)) return E_BAD_PARTITION;
      if (f(rec, F3) != 0 && !isPartitionNumber(f(rec, F3))) return E_BAD_PARTITION;
    }
    return 0;
  }
  if (type == REC_SET_COMMAND) {
    if (!isPartitionNumber(f(rec, F0))) return E_BAD_PARTITION;
    if (f(rec, F1) != 0 && !isPartitionNumber(f(rec, F1))) return E_BAD_PARTITION;
    return 0;
  }
  return E_UNKNOWN_OP;
}

// ---- the channel table in the index page (memory-layout.md §11.2) ----
@inline function slotAddr(slot: u32): usize {
  return pageAddr(uiPage) + UI_CHANNELS + (<usize>slot << 4);
}

@inline function commandPartition(): u32 {
  return load<u32>(pageAddr(uiPage) + UI_COMMAND);
}

/** Every page of [base, base+pages) is owned by `client`. */
function pagesOwnedBy(base: u32, pages: u32, client: u32): bool {
  for (let i: u32 = 0; i < pages; i++) if (ownerOf(<u64>(base + i) << PAGE_SHIFT) != <i32>client) return false;
  return true;
}

/**
 * Some page of [base, base+pages) already serves a purpose a channel would destroy: a live descriptor (the client's
 * own: a descriptor page owns itself, so ownership alone does not exclude it; once the server formats the channel
 * the descriptor is gone and the partition can never be destroyed — issue #12), a map, index, log or private page,
 * or a page of another defined channel (two servers would format over each other).
 * Called after pagesOwnedBy(base, pages, client): every page is the client's, and a live descriptor owns itself, so
 * the client's own descriptor is the only one that can lie there (one initialised and handed to the client earlier in
 * the same transaction fails the commit check instead). Only that page is read: reading every page of a new channel
 * was the first touch of each (17 pages for a command channel), the largest cost of a simulated host's boot.
 */
function channelPagesInUse(base: u32, pages: u32, client: u32): bool {
  if (client - base < pages && isLive(client)) return true;
  for (let i: u32 = 0; i < pages; i++) if (pageInUse(base + i)) return true;
  for (let s: u32 = 0; s < CHANNEL_SLOTS; s++) {
    const a = slotAddr(s);
    if (load<u32>(a + CS_CLIENT) == 0) continue;
    const b = load<u32>(a + CS_BASE);
    if (<u64>base < <u64>b + <u64>load<u16>(a + CS_PAGES) && <u64>b < <u64>base + <u64>pages) return true;
  }
  return false;
}

/** A connected channel (server != 0) whose client is p. */
function hasConnectedChannel(p: u32): bool {
  for (let s: u32 = 0; s < CHANNEL_SLOTS; s++) {
    const a = slotAddr(s);
    if (load<u32>(a + CS_CLIENT) == p && load<u32>(a + CS_SERVER) != 0) return true;
  }
  return false;
}

/** p is the client or the server of some channel. */
function inAnyChannel(p: u32): bool {
  for (let s: u32 = 0; s < CHANNEL_SLOTS; s++) {
    const a = slotAddr(s);
    if (load<u32>(a + CS_CLIENT) == p || (load<u32>(a + CS_CLIENT) != 0 && load<u32>(a + CS_SERVER) == p)) return true;
  }
  return false;
}

/** Set when a ChangeOwner of this transaction took memory from a client with a connected channel. */
let channelCheck: bool = false;

// ---- pages whose "live descriptor ⇔ self-owned" rule the commit check re-examines ----
let selfCount: u32 = 0;
let selfOverflow: bool = false;

export function resetSelfPages(): void {
  selfCount = 0;
  selfOverflow = false;
  channelCheck = false;
}

function noteSelfPage(p: u32): void {
  if (selfCount >= SCRATCH_ENTRIES) {
    selfOverflow = true;
    return;
  }
  store<u32>(scratch + (<usize>selfCount << 2), p);
  selfCount++;
}

/** Every noted page: a live descriptor exactly when it owns itself. */
export function commitCheck(): i32 {
  if (selfOverflow) return E_TOO_LARGE;
  for (let i: u32 = 0; i < selfCount; i++) {
    const p = load<u32>(scratch + (<usize>i << 2));
    const selfOwned = ownerOf(<u64>p << PAGE_SHIFT) == <i32>p;
    if (isLive(p) != selfOwned) return E_DESCRIPTOR_OWNER;
  }
  // [0114], [0182]: the memory of a channel with a connected server stays its client's.
  if (channelCheck) {
    for (let s: u32 = 0; s < CHANNEL_SLOTS; s++) {
      const a = slotAddr(s);
      const client = load<u32>(a + CS_CLIENT);
      if (client == 0 || load<u32>(a + CS_SERVER) == 0) continue;
      if (!pagesOwnedBy(load<u32>(a + CS_BASE), <u32>load<u16>(a + CS_PAGES), client)) return E_CHANNEL_IN_USE;
    }
  }
  return 0;
}

function ultravisorSmallPage(p: u32): bool {
  return ownerOf(<u64>p << PAGE_SHIFT) == <i32>ultra && ownerScale(<u64>p) == 1;
}

/** Preconditions of an operation against the current bytes. */
export function checkOp(rec: usize, type: u32): i32 {
  if (type == REC_CHANGE_OWNER) {
    const map = f(rec, F0), first = f(rec, F1), last = f(rec, F2), from = f(rec, F3), to = f(rec, F4);
    const d = dirGet(map);
    if (d == 0) return E_NOT_MAP_PAGE;
    if (!isLive(to)) return E_NO_SUCH_PARTITION;
    const base = pageAddr(map);
    for (let i = first; i <= last; i++) if (load<u32>(base + (<usize>i << 2)) != from) return E_OWNER_MISMATCH;
    const s = dirScale(d);
    if (s == 1) {
      const r = dirRegion(d);
      if (r >= 0) {
        const p0 = <u32>r << 10;
        for (let i = first; i <= last; i++) if (pageInUse(p0 + i)) return E_PAGE_IN_USE;
      }
    } else if (dirLow(d)) {
      const shift = <u64>(10 * (s - 1));
      if (rangeInUse(<u64>first << shift, <u64>(last + 1) << shift)) return E_PAGE_IN_USE;
    }
    return 0;
  }
  if (type == REC_INIT) {
    const p = f(rec, F0);
    if (isLive(p)) return E_PARTITION_EXISTS;
    if (pageInUse(p)) return E_PAGE_IN_USE;
    if (!ultravisorSmallPage(p)) return E_NOT_ULTRAVISOR_PAGE;
    return 0;
  }
  if (type == REC_DESTROY) {
    const p = f(rec, F0);
    if (!isLive(p)) return E_NO_SUCH_PARTITION;
    if (p == ultra || p == avail || p == missing || p == idle || p == boot || p == commandPartition()) return E_PROTECTED;
    if (inAnyChannel(p)) return E_CHANNEL_IN_USE;
    if (ownerOf(<u64>p << PAGE_SHIFT) != <i32>ultra) return E_NOT_ULTRAVISOR_PAGE;
    return 0;
  }
  if (type == REC_DEFINE_CHANNEL) {
    const a = slotAddr(f(rec, F0));
    const client = f(rec, F1);
    if (load<u32>(a + CS_CLIENT) != 0) return E_CHANNEL_EXISTS;
    if (!isLive(client)) return E_NO_SUCH_PARTITION;
    const kind = load<u32>(pageAddr(client) + PD_KIND);
    if (kind <= KIND_ULTRAVISOR) return E_WRONG_KIND;
    if (f(rec, F2) + <u32>load<u16>(rec + 20) > memoryPages()) return E_ADDRESS;
    if (!pagesOwnedBy(f(rec, F2), <u32>load<u16>(rec + 20), client)) return E_OWNER_MISMATCH;
    if (channelPagesInUse(f(rec, F2), <u32>load<u16>(rec + 20), client)) return E_PAGE_IN_USE;
    return 0;
  }
  if (type == REC_ASSIGN_SERVER) {
    const a = slotAddr(f(rec, F0));
    const client = f(rec, F1), server = f(rec, F2);
    if (load<u32>(a + CS_CLIENT) != client) return E_NO_SUCH_CHANNEL;
    if (load<u32>(a + CS_SERVER) != f(rec, F3)) return E_OWNER_MISMATCH;
    if (server != 0) {
      if (server == client) return E_BAD_PARTITION;
      if (!isLive(server)) return E_NO_SUCH_PARTITION;
      if (!pagesOwnedBy(load<u32>(a + CS_BASE), <u32>load<u16>(a + CS_PAGES), client)) return E_OWNER_MISMATCH;
    }
    return 0;
  }
  if (type == REC_REMOVE_CHANNEL) {
    const a = slotAddr(f(rec, F0));
    if (load<u32>(a + CS_CLIENT) != f(rec, F1)) return E_NO_SUCH_CHANNEL;
    if (load<u32>(a + CS_SERVER) != 0) return E_CHANNEL_IN_USE;
    return 0;
  }
  if (type == REC_SET_COMMAND) {
    const to = f(rec, F0);
    if (commandPartition() != f(rec, F1)) return E_OWNER_MISMATCH;
    if (!isLive(to)) return E_NO_SUCH_PARTITION;
    if (load<u32>(pageAddr(to) + PD_KIND) != KIND_COMMAND) return E_WRONG_KIND;
    return 0;
  }
  if (type == REC_SPLIT) {
    const map = f(rec, F0), index = f(rec, F1), into = f(rec, F2), owner = f(rec, F3);
    const d = dirGet(map);
    if (d == 0) return E_NOT_MAP_PAGE;
    if (dirScale(d) < 2) return E_SCALE;
    if (load<u32>(pageAddr(map) + (<usize>index << 2)) != owner) return E_OWNER_MISMATCH;
    if (pageInUse(into) || isLive(into)) return E_PAGE_IN_USE;
    if (!ultravisorSmallPage(into)) return E_NOT_ULTRAVISOR_PAGE;
    return 0;
  }
  if (type == REC_MERGE) {
    const map = f(rec, F0), index = f(rec, F1), from = f(rec, F2), owner = f(rec, F3);
    const d = dirGet(map);
    if (d == 0) return E_NOT_MAP_PAGE;
    if (load<u32>(pageAddr(map) + (<usize>index << 2)) != (REF_BIT | from)) return E_OWNER_MISMATCH;
    const fd = dirGet(from);
    if (fd == 0) return E_NOT_MAP_PAGE;
    const base = pageAddr(from);
    for (let i: u32 = 0; i < ENTRIES; i++) if (load<u32>(base + (<usize>i << 2)) != owner) return E_NOT_UNIFORM;
    // Database structures live in 4 KiB pages; a merge must not fold one into a larger entry, where a later
    // ChangeOwner of that entry could hand it out.
    if (dirScale(fd) >= 2 && dirLow(fd)) return E_PAGE_IN_USE;
    const r = dirRegion(fd);
    if (dirScale(fd) == 1 && r >= 0) {
      const p0 = <u32>r << 10;
      if (owner >> 10 == <u32>r) return E_PAGE_IN_USE; // the owner's own descriptor page is in this 4 MiB
      for (let i: u32 = 0; i < ENTRIES; i++) if (pageInUse(p0 + i)) return E_PAGE_IN_USE;
    }
    return 0;
  }
  return E_UNKNOWN_OP;
}

@inline function copy64(dst: usize, src: usize): void {
  for (let o: usize = 0; o < PD_SIZE; o += 8) store<u64>(dst + o, load<u64>(src + o));
}

/** Copies the state this operation will overwrite into its log record (before the record is marked started). */
export function captureBefore(rec: usize, type: u32): void {
  if (type == REC_INIT) copy64(rec + 80, pageAddr(f(rec, F0)));
  else if (type == REC_DESTROY) copy64(rec + F2, pageAddr(f(rec, F0)));
  else if (type == REC_SPLIT) {
    const src = pageAddr(f(rec, F2));
    for (let o: usize = 0; o < 4096; o += 8) store<u64>(rec + F4 + o, load<u64>(src + o));
  } else if (type == REC_MERGE) store<u32>(rec + F4, dirGet(f(rec, F2)));
  else if (type == REC_REMOVE_CHANNEL) {
    const a = slotAddr(f(rec, F0));
    store<u32>(rec + F2, load<u32>(a + CS_BASE));
    store<u32>(rec + F3, load<u32>(a + CS_PAGES)); // u16 pages, u8 type, u8 0
  }
}

function writeSlot(slot: u32, client: u32, server: u32, base: u32, pagesAndType: u32): void {
  const a = slotAddr(slot);
  store<u32>(a + CS_CLIENT, client);
  store<u32>(a + CS_SERVER, server);
  store<u32>(a + CS_BASE, base);
  store<u32>(a + CS_PAGES, pagesAndType);
  hw_flush(a, 16);
}

function setServer(slot: u32, server: u32): void {
  const a = slotAddr(slot);
  store<u32>(a + CS_SERVER, server);
  hw_flush(a + CS_SERVER, 4);
}

function setCommand(p: u32): void {
  const a = pageAddr(uiPage) + UI_COMMAND;
  store<u32>(a, p);
  hw_flush(a, 4);
}

/** Applies a checked operation and flushes what it changed. */
export function applyOp(rec: usize, type: u32): void {
  if (type == REC_CHANGE_OWNER) {
    const map = f(rec, F0), first = f(rec, F1), last = f(rec, F2), from = f(rec, F3), to = f(rec, F4);
    const base = pageAddr(map);
    for (let i = first; i <= last; i++) store<u32>(base + (<usize>i << 2), to);
    hw_flush(base + (<usize>first << 2), (last - first + 1) << 2);
    const d = dirGet(map);
    const r = dirRegion(d);
    if (dirScale(d) == 1 && r >= 0) {
      const p0 = <u32>r << 10;
      for (let i = first; i <= last; i++) {
        const p = p0 + i;
        if (p == from || p == to) noteSelfPage(p);
      }
    }
    if (!channelCheck && hasConnectedChannel(from)) channelCheck = true;
  } else if (type == REC_DEFINE_CHANNEL) {
    writeSlot(f(rec, F0), f(rec, F1), 0, f(rec, F2), f(rec, F3));
  } else if (type == REC_ASSIGN_SERVER) {
    setServer(f(rec, F0), f(rec, F2));
  } else if (type == REC_REMOVE_CHANNEL) {
    writeSlot(f(rec, F0), 0, 0, 0, 0);
  } else if (type == REC_SET_COMMAND) {
    setCommand(f(rec, F0));
  } else if (type == REC_INIT) {
    const p = f(rec, F0);
    copy64(pageAddr(p), rec + F2);
    hw_flush(pageAddr(p), PD_SIZE);
    noteSelfPage(p);
  } else if (type == REC_DESTROY) {
    const p = f(rec, F0);
    const a = pageAddr(p);
    for (let o: usize = 0; o < PD_SIZE; o += 8) store<u64>(a + o, 0);
    hw_flush(a, PD_SIZE);
    noteSelfPage(p);
  } else if (type == REC_SPLIT) {
    const map = f(rec, F0), index = f(rec, F1), into = f(rec, F2), owner = f(rec, F3);
    const a = pageAddr(into);
    const pair = (<u64>owner << 32) | <u64>owner;
    for (let o: usize = 0; o < 4096; o += 8) store<u64>(a + o, pair);
    hw_flush(a, 4096);
    dirSet(into, childDir(dirGet(map), index));
    const e = pageAddr(map) + (<usize>index << 2);
    store<u32>(e, REF_BIT | into);
    hw_flush(e, 4);
  } else if (type == REC_MERGE) {
    const map = f(rec, F0), index = f(rec, F1), from = f(rec, F2), owner = f(rec, F3);
    const e = pageAddr(map) + (<usize>index << 2);
    store<u32>(e, owner);
    hw_flush(e, 4);
    dirSet(from, 0);
  }
}

/** Restores the before-image of a started operation. */
export function undoOp(rec: usize, type: u32): void {
  if (type == REC_CHANGE_OWNER) {
    const map = f(rec, F0), first = f(rec, F1), last = f(rec, F2), from = f(rec, F3);
    const base = pageAddr(map);
    for (let i = first; i <= last; i++) store<u32>(base + (<usize>i << 2), from);
    hw_flush(base + (<usize>first << 2), (last - first + 1) << 2);
  } else if (type == REC_INIT) {
    const a = pageAddr(f(rec, F0));
    copy64(a, rec + 80);
    hw_flush(a, PD_SIZE);
  } else if (type == REC_DESTROY) {
    const a = pageAddr(f(rec, F0));
    copy64(a, rec + F2);
    hw_flush(a, PD_SIZE);
  } else if (type == REC_SPLIT) {
    const map = f(rec, F0), index = f(rec, F1), into = f(rec, F2), owner = f(rec, F3);
    const e = pageAddr(map) + (<usize>index << 2);
    store<u32>(e, owner);
    hw_flush(e, 4);
    const a = pageAddr(into);
    for (let o: usize = 0; o < 4096; o += 8) store<u64>(a + o, load<u64>(rec + F4 + o));
    hw_flush(a, 4096);
    dirSet(into, 0);
  } else if (type == REC_MERGE) {
    const map = f(rec, F0), index = f(rec, F1), from = f(rec, F2);
    const e = pageAddr(map) + (<usize>index << 2);
    store<u32>(e, REF_BIT | from);
    hw_flush(e, 4);
    dirSet(from, load<u32>(rec + F4));
  } else if (type == REC_DEFINE_CHANNEL) {
    writeSlot(f(rec, F0), 0, 0, 0, 0);
  } else if (type == REC_ASSIGN_SERVER) {
    setServer(f(rec, F0), f(rec, F3));
  } else if (type == REC_REMOVE_CHANNEL) {
    writeSlot(f(rec, F0), f(rec, F1), 0, f(rec, F2), f(rec, F3));
  } else if (type == REC_SET_COMMAND) {
    setCommand(f(rec, F1));
  }
}

