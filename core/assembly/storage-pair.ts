// Redundant I/O partitions in core.wasm (docs/specs/storage-failover.md): the client's in-flight table, which decides
// which completions a client accepts and what it re-issues after a failover, and the pair's control block, whose
// only transitions are ACTIVE → FENCING → FENCED → ACTIVE (so no client can be told a new server before the old one's
// device is fenced). Run by V8 in the simulator (sim/storage-pair.ts) and, AOT-compiled, by partitions on the
// machine. Every field of a table or block is read as hostile: a bad one is refused before anything is written.

const PAIR_MAGIC: u32 = 0x52494150; // "PAIR"
const CTL_MAGIC: u32 = 0x4c544350; // "PCTL"
const ENTRIES: u32 = 16;
const HEADER: usize = 32;
const ENTRY: usize = 32;

// Table header.
const T_MAGIC: usize = 0;
const T_ENTRIES: usize = 4;
const T_EPOCH: usize = 8;
const T_COUNT: usize = 12;
// Entry fields.
const E_ID: usize = 0;
const E_LBA: usize = 8;
const E_BLOCKS: usize = 16;
const E_EPOCH: usize = 20;
const E_STATE: usize = 24;
const E_WRITE: usize = 28;
const FREE: u32 = 0;
const ISSUED: u32 = 1;
const REISSUE: u32 = 2;

// Control block.
const C_MAGIC: usize = 0;
const C_STATE: usize = 4;
const C_EPOCH: usize = 8;
const C_ACTIVE: usize = 12;
const C_FENCED_AT: usize = 16;
const ACTIVE: u32 = 1;
const FENCING: u32 = 2;
const FENCED: u32 = 3;

@inline function entryAt(t: usize, i: u32): usize {
  return t + HEADER + <usize>i * ENTRY;
}

/**
 * The header and every entry are well formed: the count is the entries in use, and each entry in use has a range
 * that does not wrap (else the overlap rule would not see it), an epoch no later than the table's and a write flag of
 * 0 or 1.
 */
function tableOk(t: usize): bool {
  if (load<u32>(t + T_MAGIC) != PAIR_MAGIC || load<u32>(t + T_ENTRIES) != ENTRIES) return false;
  let used: u32 = 0;
  const epoch = load<u32>(t + T_EPOCH);
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const e = entryAt(t, i);
    const s = load<u32>(e + E_STATE);
    if (s > REISSUE) return false;
    if (s == FREE) continue;
    const lba = load<u64>(e + E_LBA);
    if (lba + <u64>load<u32>(e + E_BLOCKS) < lba || load<u32>(e + E_EPOCH) > epoch || load<u32>(e + E_WRITE) > 1) return false;
    used++;
  }
  return used == load<u32>(t + T_COUNT);
}

export function pair_table_init(t: usize): void {
  store<u32>(t + T_MAGIC, PAIR_MAGIC);
  store<u32>(t + T_ENTRIES, ENTRIES);
  store<u32>(t + T_EPOCH, 0);
  store<u32>(t + T_COUNT, 0);
  for (let o: usize = 16; o < HEADER; o += 8) store<u64>(t + o, 0);
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const e = entryAt(t, i);
    for (let o: usize = 0; o < ENTRY; o += 8) store<u64>(e + o, 0);
  }
}

/** [a, a+n) and [b, b+m) share a block; both ends fit 64 bits (checked by the caller for the new request). */
@inline function overlaps(a: u64, n: u64, b: u64, m: u64): bool {
  return a < b + m && b < a + n;
}

/**
 * Records request `id` issued in the table's epoch. −1 bad table, −2 the tag is in flight, −3 full, −4 it overlaps an
 * in-flight request where either is a write (the client's one rule, storage-failover.md §2), −5 lba + blocks overflows.
 */
export function pair_issue(t: usize, id: u64, lba: u64, blocks: u32, write: u32): i32 {
  if (!tableOk(t)) return -1;
  if (lba + <u64>blocks < lba) return -5;
  let free: i32 = -1;
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const e = entryAt(t, i);
    if (load<u32>(e + E_STATE) == FREE) {
      if (free < 0) free = <i32>i;
      continue;
    }
    if (load<u64>(e + E_ID) == id) return -2;
    const w = load<u32>(e + E_WRITE) != 0 || write != 0;
    if (w && blocks != 0 && overlaps(lba, blocks, load<u64>(e + E_LBA), <u64>load<u32>(e + E_BLOCKS))) return -4;
  }
  if (free < 0) return -3;
  const e = entryAt(t, <u32>free);
  store<u64>(e + E_ID, id);
  store<u64>(e + E_LBA, lba);
  store<u32>(e + E_BLOCKS, blocks);
  store<u32>(e + E_EPOCH, load<u32>(t + T_EPOCH));
  store<u32>(e + E_STATE, ISSUED);
  store<u32>(e + E_WRITE, write != 0 ? 1 : 0);
  store<u32>(t + T_COUNT, load<u32>(t + T_COUNT) + 1);
  return free;
}

/**
 * A completion for `id` from the server of `epoch`: 1 accepted (the entry is freed), 0 ignored — nothing of that tag
 * is issued, or it was issued in another epoch, or it waits for re-issue (a late completion of the old server, a
 * duplicate, or a hostile server) — −1 bad table.
 */
export function pair_complete(t: usize, id: u64, epoch: u32): i32 {
  if (!tableOk(t)) return -1;
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const e = entryAt(t, i);
    if (load<u32>(e + E_STATE) != ISSUED || load<u64>(e + E_ID) != id) continue;
    if (load<u32>(e + E_EPOCH) != epoch) return 0;
    for (let o: usize = 0; o < ENTRY; o += 8) store<u64>(e + o, 0);
    store<u32>(t + T_COUNT, load<u32>(t + T_COUNT) - 1);
    return 1;
  }
  return 0;
}

/** The client learns `epoch` (greater than its own, else −2): every issued entry wants re-issue. Returns how many. */
export function pair_failover(t: usize, epoch: u32): i32 {
  if (!tableOk(t)) return -1;
  if (epoch <= load<u32>(t + T_EPOCH)) return -2;
  store<u32>(t + T_EPOCH, epoch);
  let n: i32 = 0;
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const e = entryAt(t, i);
    if (load<u32>(e + E_STATE) == FREE) continue;
    store<u32>(e + E_STATE, REISSUE);
    n++;
  }
  return n;
}

/** The entry wanting re-issue with the smallest tag, or −1 (none, or a bad table). */
export function pair_next_reissue(t: usize): i32 {
  if (!tableOk(t)) return -1;
  let best: i32 = -1;
  let bestId: u64 = 0;
  for (let i: u32 = 0; i < ENTRIES; i++) {
    const e = entryAt(t, i);
    if (load<u32>(e + E_STATE) != REISSUE) continue;
    const id = load<u64>(e + E_ID);
    if (best < 0 || id < bestId) {
      best = <i32>i;
      bestId = id;
    }
  }
  return best;
}

/** The entry at `slot` was sent to the new server: issued in the table's epoch. −1 bad table or slot, −2 not waiting. */
export function pair_reissued(t: usize, slot: u32): i32 {
  if (!tableOk(t) || slot >= ENTRIES) return -1;
  const e = entryAt(t, slot);
  if (load<u32>(e + E_STATE) != REISSUE) return -2;
  store<u32>(e + E_STATE, ISSUED);
  store<u32>(e + E_EPOCH, load<u32>(t + T_EPOCH));
  return 0;
}

/** The tag of the entry at `slot` (any state), or 0 for a bad table or slot. */
export function pair_entry_id(t: usize, slot: u32): u64 {
  if (!tableOk(t) || slot >= ENTRIES) return 0;
  return load<u64>(entryAt(t, slot) + E_ID);
}

// ---- the pair's control block ----

export function pair_ctl_init(c: usize): void {
  store<u32>(c + C_MAGIC, CTL_MAGIC);
  store<u32>(c + C_STATE, ACTIVE);
  store<u32>(c + C_EPOCH, 0);
  store<u32>(c + C_ACTIVE, 0);
  store<u64>(c + C_FENCED_AT, 0);
  store<u64>(c + 24, 0);
}

function ctlOk(c: usize): bool {
  const s = load<u32>(c + C_STATE);
  return load<u32>(c + C_MAGIC) == CTL_MAGIC && s >= ACTIVE && s <= FENCED && load<u32>(c + C_ACTIVE) <= 1;
}

/** One step of the failover (storage-failover.md §4): 0, or −1 bad block, −3 a step the table does not allow. */
export function pair_ctl_step(c: usize, to: u32, now: u64): i32 {
  if (!ctlOk(c)) return -1;
  const s = load<u32>(c + C_STATE);
  if (s == ACTIVE && to == FENCING) {
    store<u32>(c + C_STATE, FENCING);
    return 0;
  }
  if (s == FENCING && to == FENCED) {
    store<u32>(c + C_STATE, FENCED);
    return 0;
  }
  if (s == FENCED && to == ACTIVE) {
    store<u32>(c + C_EPOCH, load<u32>(c + C_EPOCH) + 1);
    store<u32>(c + C_ACTIVE, load<u32>(c + C_ACTIVE) ^ 1);
    store<u64>(c + C_FENCED_AT, now);
    store<u32>(c + C_STATE, ACTIVE);
    return 0;
  }
  return -3;
}

/** The epoch clients may be told: only while ACTIVE (−3 during a failover), −1 for a bad block. */
export function pair_ctl_epoch(c: usize): i64 {
  if (!ctlOk(c)) return -1;
  if (load<u32>(c + C_STATE) != ACTIVE) return -3;
  return <i64>load<u32>(c + C_EPOCH);
}
