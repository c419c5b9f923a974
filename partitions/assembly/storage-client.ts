// The client side of the storage channel in a guest partition (docs/specs/storage-channel.md §5–6, §8), imported by
// guest.ts: request records built with core's own MDL code (chan_cdb_add_mdl) and inserted with core's queue code
// into queue 0 of the storage channel in the guest's slot STORAGE_SLOT; completions taken from queue 1. Two programs
// use it: the disk workload (each block n it writes starts with "block <n> <name> gen <g>", zero-padded; one console
// line per acknowledged write, which `uvt disk check` reads) and the hostile client of the tests ("storage-mdl"),
// whose requests name memory that is not its own. MDL addresses are the guest's own (window offsets = wasm addresses).

import { chan_insert, chan_remove } from "../../core/assembly/channel";
import { chan_cdb_add_mdl } from "../../core/assembly/channel-cdb";
import { pair_complete, pair_entry_id, pair_failover, pair_issue, pair_next_reissue, pair_reissued, pair_table_init } from "../../core/assembly/storage-pair";
import {
  HC_SIGNAL, HC_TIME, HC_YIELD, INFO_NAME, LINE, NAME_BYTES, hypercall, putDec, putStr, sendLine, slotChannel,
} from "./partition";

/** The storage client's channel slot (partitions/programs.ts STORAGE_SLOT). */
const SLOT: u64 = 1;
const CHANNEL_BYTES: u32 = 4096;
const SIGNAL: u32 = 256;
const BLOCK: u32 = 512;
const HC_DMA_ADDR: i64 = 6;
const TO_SERVER: u32 = 1;
const FROM_SERVER: u32 = 2;
const OP_READ10: u32 = 0x28;
const OP_WRITE10: u32 = 0x2a;
const OP_SYNC10: u32 = 0x35;

const REQ = memory.data(<i32>SIGNAL, 8);
const DONE = memory.data(<i32>SIGNAL, 8);
/** Blocks per request of the workload: one MDL entry per block (8 of the 12 a request may carry). */
const BATCH: u32 = 8;
/** The blocks written and read back: the MDL names these (window offsets of the guest's own pages). */
const WBUF = memory.data(<i32>(BLOCK * BATCH), 4096);
const RBUF = memory.data(<i32>(BLOCK * BATCH), 4096);

let nextId: u64 = 0;

// ---- the storage pair (docs/specs/storage-failover.md §7.3) ----
const HC_PAIR_EPOCH: i64 = 7;
/** Core's in-flight table (storage-failover.md §3): 32-byte header and 16 entries of 32 bytes, in this guest's memory. */
const TABLE = memory.data(32 + 16 * 32, 8);
/** The record sent for each table entry: a re-issue sends exactly what was sent, never a record rebuilt. */
const SAVED = memory.data(16 * <i32>SIGNAL, 8);
let pairMode = false;
/** The epoch this client knows: its requests go to slot SLOT + (epoch & 1), the primary's then the secondary's. */
let epoch: u32 = 0;
let firstOfEpoch = false;
/** Per epoch (0, 1): requests and blocks accepted, quanta of the first and last acceptance (the bench's throughput). */
const STATS = memory.data(2 * 32, 8);

/** The workload goes to the storage pair: channels in slots 1 (primary) and 2 (secondary), core's in-flight table. */
export function usePair(): void {
  pairMode = true;
  pair_table_init(TABLE);
}

/** Builds a READ/WRITE (10) of `blocks` at `lba` (or another opcode with no CDB fields) with no MDL yet. */
function request(op: u32, lba: u32, blocks: u32): void {
  for (let i: usize = 0; i < <usize>SIGNAL; i += 8) store<u64>(REQ + i, 0);
  store<u32>(REQ, op);
  store<u32>(REQ + 4, op == OP_WRITE10 ? TO_SERVER : op == OP_READ10 ? FROM_SERVER : 0);
  nextId++;
  store<u64>(REQ + 8, nextId);
  store<u8>(REQ + 24, 10);
  store<u8>(REQ + 32, <u8>op);
  if (op == OP_READ10 || op == OP_WRITE10) {
    store<u8>(REQ + 34, <u8>(lba >> 24));
    store<u8>(REQ + 35, <u8>(lba >> 16));
    store<u8>(REQ + 36, <u8>(lba >> 8));
    store<u8>(REQ + 37, <u8>lba);
    store<u8>(REQ + 39, <u8>(blocks >> 8));
    store<u8>(REQ + 40, <u8>blocks);
  }
}

/**
 * Sends REQ and waits for its completion in DONE: inserted (signalling the server on the empty → non-empty
 * transition, [0120]), then queue 1 polled, yielding the rest of the quantum while it is empty. Returns the SCSI status
 * (0 GOOD, 2 CHECK CONDITION), or −1 when the channel is not there or failed core's checks.
 */
function transact(): i32 {
  if (pairMode) return transactPair();
  const ch = slotChannel(SLOT);
  if (ch == 0) return -1;
  while (true) {
    const r = chan_insert(ch, CHANNEL_BYTES, 0, REQ);
    if (r == 1) hypercall(HC_SIGNAL, <i64>SLOT, 0);
    if (r >= 0) break;
    if (r < -1) return -1;
    hypercall(HC_YIELD, 0, 0);
  }
  while (true) {
    const r = chan_remove(ch, CHANNEL_BYTES, 1, DONE);
    if (r < -1) return -1;
    if (r >= 0 && load<u64>(DONE + 8) == nextId) return <i32>load<u32>(DONE + 16);
    if (r == -1) hypercall(HC_YIELD, 0, 0);
  }
}

/** Inserts the record at `rec` into queue 0 of the channel in `slot`, waiting for room; 0, or −1 (channel gone or broken). */
function sendTo(slot: u64, rec: usize): i32 {
  const ch = slotChannel(slot);
  if (ch == 0) return -1;
  while (true) {
    const r = chan_insert(ch, CHANNEL_BYTES, 0, rec);
    if (r == 1) hypercall(HC_SIGNAL, <i64>slot, 0);
    if (r >= 0) return 0;
    if (r < -1) return -1;
    hypercall(HC_YIELD, 0, 0);
  }
}

/**
 * Issues REQ to the storage pair: recorded in core's in-flight table (pair_issue; a refusal is a line and −1), its
 * record saved beside its entry (a re-issue sends exactly this record), sent to the server of the client's epoch.
 */
function pairIssue(): i32 {
  const op = load<u32>(REQ);
  const rw = op == OP_READ10 || op == OP_WRITE10;
  const lba: u64 = rw ? (<u64>load<u8>(REQ + 34) << 24) | (<u64>load<u8>(REQ + 35) << 16) | (<u64>load<u8>(REQ + 36) << 8) | <u64>load<u8>(REQ + 37) : 0;
  const blocks: u32 = rw ? (<u32>load<u8>(REQ + 39) << 8) | <u32>load<u8>(REQ + 40) : 0;
  const slot = pair_issue(TABLE, nextId, lba, blocks, op == OP_WRITE10 ? 1 : 0);
  if (slot < 0) {
    sendLine(putDec(putStr(LINE, "disk: core's in-flight table refused the request: -"), <u64>-slot));
    return -1;
  }
  memory.copy(SAVED + <usize>slot * <usize>SIGNAL, REQ, <usize>SIGNAL);
  return sendTo(SLOT + <u64>(epoch & 1), SAVED + <usize>slot * <usize>SIGNAL);
}

/**
 * Waits for the next completion core accepts (pair_complete for the client's epoch) and returns its tag, the
 * completion in DONE; 0 when the channel is gone or broken. While the epoch's completion queue is empty the client
 * asks the monitor for the pair's epoch (PAIR_EPOCH) and, when it grew (the primary failed and its device was
 * fenced), tells core (pair_failover) and re-issues every saved record core names (pair_next_reissue), in tag order, to
 * the secondary. Completions of another epoch, of tags not in flight, or duplicates are ignored.
 */
function pairAwait(): u64 {
  while (true) {
    const ch = slotChannel(SLOT + <u64>(epoch & 1));
    if (ch == 0) return 0;
    const r = chan_remove(ch, CHANNEL_BYTES, 1, DONE);
    if (r < -1) return 0;
    if (r >= 0) {
      const id = load<u64>(DONE + 8);
      if (id != 0 && pair_complete(TABLE, id, epoch) == 1) {
        if (firstOfEpoch) {
          firstOfEpoch = false;
          const at = putDec(putStr(LINE, "disk: first completion in epoch "), <u64>epoch);
          sendLine(putDec(putStr(at, " at quantum "), <u64>hypercall(HC_TIME, 0, 0)));
        }
        return id;
      }
      continue;
    }
    const e = hypercall(HC_PAIR_EPOCH, 0, 0);
    if (e > <i64>epoch) {
      const n = pair_failover(TABLE, <u32>e);
      if (n < 0) return 0;
      epoch = <u32>e;
      firstOfEpoch = true;
      let at = putDec(putStr(LINE, "disk: failover to epoch "), <u64>epoch);
      at = putStr(putDec(putStr(at, ": re-issuing "), <u64>n), " request(s) to slot ");
      sendLine(putDec(at, SLOT + <u64>(epoch & 1)));
      for (let s = pair_next_reissue(TABLE); s >= 0; s = pair_next_reissue(TABLE)) {
        const tag = pair_entry_id(TABLE, <u32>s);
        if (sendTo(SLOT + <u64>(epoch & 1), SAVED + <usize>s * <usize>SIGNAL) < 0) return 0;
        if (pair_reissued(TABLE, <u32>s) != 0) return 0;
        sendLine(putDec(putStr(LINE, "disk: re-issued tag "), tag));
      }
      continue;
    }
    hypercall(HC_YIELD, 0, 0);
  }
}

/** Counts an accepted completion of `blocks` blocks in the client's epoch (the per-epoch line the bench reads). */
function pairCount(blocks: u32): void {
  const now = <u64>hypercall(HC_TIME, 0, 0);
  const st = STATS + <usize>(epoch & 1) * 32;
  if (load<u64>(st) == 0) store<u64>(st + 16, now);
  store<u64>(st, load<u64>(st) + 1);
  store<u64>(st + 8, load<u64>(st + 8) + <u64>blocks);
  store<u64>(st + 24, now);
}

/** transact() with the storage pair, one request: issued, then its completion awaited (SCSI status, or −1). */
function transactPair(): i32 {
  const want = nextId;
  if (pairIssue() < 0) return -1;
  while (true) {
    const id = pairAwait();
    if (id == 0) return -1;
    if (id == want) {
      pairCount(0);
      return <i32>load<u32>(DONE + 16);
    }
  }
}

/** Requests the pipelined pair workload keeps in flight (non-overlapping batches: core's rule holds). */
const DEPTH: u32 = 3;
const LANE_BYTES: u32 = BLOCK * BATCH;
const PWBUF = memory.data(<i32>(DEPTH * LANE_BYTES), 4096);
const PRBUF = memory.data(<i32>(DEPTH * LANE_BYTES), 4096);
const EXPECT = memory.data(<i32>BLOCK, 8);
/** Per lane: u64 tag (0 free), u32 first block, u32 count. */
const LANES = memory.data(<i32>(DEPTH * 16), 8);

function laneOf(id: u64): i32 {
  for (let l: u32 = 0; l < DEPTH; l++) if (load<u64>(LANES + <usize>l * 16) == id) return <i32>l;
  return -1;
}

/**
 * One phase of a pass of the pipelined pair workload: every batch of [first, end) written (`write`) or read back and
 * compared, up to DEPTH requests in flight, each completion handled as it comes ("disk: acked block" lines for a
 * write's blocks). Returns false after a failure line.
 */
function pairPhase(first: u32, end: u32, g: u32, write: bool): bool {
  let next = first;
  let inFlight: u32 = 0;
  while (next < end || inFlight > 0) {
    if (next < end && inFlight < DEPTH) {
      const l = laneOf(0);
      const count = end - next < BATCH ? end - next : BATCH;
      const buf = (write ? PWBUF : PRBUF) + <usize>(<u32>l * LANE_BYTES);
      request(write ? OP_WRITE10 : OP_READ10, next, count);
      for (let i: u32 = 0; i < count; i++) {
        if (write) record(next + i, g, buf + <usize>(i * BLOCK));
        chan_cdb_add_mdl(REQ, SIGNAL, <u64>(buf + <usize>(i * BLOCK)), BLOCK);
      }
      if (pairIssue() < 0) {
        fail(write ? "write" : "read back", next, -1);
        return false;
      }
      const lane = LANES + <usize>l * 16;
      store<u64>(lane, nextId);
      store<u32>(lane + 8, next);
      store<u32>(lane + 12, count);
      next += count;
      inFlight++;
      continue;
    }
    const id = pairAwait();
    const l = id == 0 ? -1 : laneOf(id);
    if (l < 0) {
      fail(write ? "write" : "read back", next, -1);
      return false;
    }
    const lane = LANES + <usize>l * 16;
    const n = load<u32>(lane + 8);
    const count = load<u32>(lane + 12);
    store<u64>(lane, 0);
    inFlight--;
    const status = <i32>load<u32>(DONE + 16);
    if (status != 0) {
      fail(write ? "write" : "read back", n, status);
      return false;
    }
    pairCount(count);
    if (write) {
      for (let i: u32 = 0; i < count; i++) {
        let at = putStr(LINE, "disk: acked block ");
        at = putDec(at, <u64>(n + i));
        at = putStr(at, " gen ");
        sendLine(putDec(at, <u64>g));
      }
    } else {
      const buf = PRBUF + <usize>(<u32>l * LANE_BYTES);
      for (let i: u32 = 0; i < count; i++) {
        record(n + i, g, EXPECT);
        if (!same(EXPECT, buf + <usize>(i * BLOCK), BLOCK)) {
          fail("read back", n + i, 0);
          return false;
        }
      }
    }
  }
  return true;
}

/**
 * The disk workload through the storage pair (docs/specs/storage-failover.md §7.3): as diskWorkload, but each phase
 * of a pass keeps up to DEPTH requests in flight — a write phase over the range, then a read-back phase — so that a
 * failover finds several outstanding requests to re-issue; then SYNCHRONIZE CACHE and the per-epoch lines.
 */
function pairWorkload(first: u32, blocks: u32, passes: u32): void {
  sendLine(putStr(LINE, "disk: workload starts"));
  const end = first + blocks;
  for (let g: u32 = 1; g <= passes; g++) {
    if (!pairPhase(first, end, g, true) || !pairPhase(first, end, g, false)) return;
    const at = putStr(LINE, "disk: pass ");
    sendLine(putStr(putDec(at, <u64>g), " read back"));
  }
  request(OP_SYNC10, 0, 0);
  const s = transact();
  sendLine(putDec(putStr(LINE, "disk: done; synchronize cache status "), <u64>s));
  pairStats();
}

/** "disk: pair: epoch E: R requests B blocks quanta Q0-Q1" for epochs 0 and 1 (bench/storage-pair.bench.ts reads it). */
function pairStats(): void {
  for (let e: u32 = 0; e < 2; e++) {
    const st = STATS + <usize>e * 32;
    let at = putDec(putStr(LINE, "disk: pair: epoch "), <u64>e);
    at = putDec(putStr(at, ": "), load<u64>(st));
    at = putDec(putStr(at, " requests "), load<u64>(st + 8));
    at = putDec(putStr(at, " blocks quanta "), load<u64>(st + 16));
    sendLine(putDec(putStr(at, "-"), load<u64>(st + 24)));
  }
}

/** Writes the record of block `n`, generation `gen`, at `buf`: "block <n> <name> gen <g>" and zeros. */
function record(n: u32, gen: u32, buf: usize = WBUF): void {
  for (let i: usize = 0; i < <usize>BLOCK; i += 8) store<u64>(buf + i, 0);
  let at = putStr(buf, "block ");
  at = putDec(at, <u64>n);
  store<u8>(at++, 0x20);
  for (let i: usize = 0; i < NAME_BYTES; i++) {
    const c = load<u8>(INFO_NAME + i);
    if (c == 0) break;
    store<u8>(at++, c);
  }
  at = putStr(at, " gen ");
  putDec(at, <u64>gen);
}

function same(a: usize, b: usize, n: u32): bool {
  for (let i: usize = 0; i < <usize>n; i += 8) if (load<u64>(a + i) != load<u64>(b + i)) return false;
  return true;
}

/**
 * The disk workload: `passes` passes over blocks [first, first + blocks); pass g writes the records of generation g,
 * up to BATCH blocks per WRITE (10) with one MDL entry per block, prints "disk: acked block n gen g" for each block of
 * a request whose completion is GOOD, then reads the range back the same way and compares; a final SYNCHRONIZE
 * CACHE, then "disk: done". Any failure is one line and the end of the workload.
 */
export function diskWorkload(first: u32, blocks: u32, passes: u32): void {
  if (pairMode) {
    pairWorkload(first, blocks, passes);
    return;
  }
  sendLine(putStr(LINE, "disk: workload starts"));
  const end = first + blocks;
  for (let g: u32 = 1; g <= passes; g++) {
    for (let n = first; n < end; n += BATCH) {
      const count = end - n < BATCH ? end - n : BATCH;
      request(OP_WRITE10, n, count);
      for (let i: u32 = 0; i < count; i++) {
        record(n + i, g, WBUF + <usize>(i * BLOCK));
        chan_cdb_add_mdl(REQ, SIGNAL, <u64>(WBUF + <usize>(i * BLOCK)), BLOCK);
      }
      const s = transact();
      if (s != 0) {
        fail("write", n, s);
        return;
      }
      for (let i: u32 = 0; i < count; i++) {
        let at = putStr(LINE, "disk: acked block ");
        at = putDec(at, <u64>(n + i));
        at = putStr(at, " gen ");
        sendLine(putDec(at, <u64>g));
      }
      request(OP_READ10, n, count);
      for (let i: u32 = 0; i < count; i++) chan_cdb_add_mdl(REQ, SIGNAL, <u64>(RBUF + <usize>(i * BLOCK)), BLOCK);
      const r = transact();
      if (r != 0 || !same(WBUF, RBUF, count * BLOCK)) {
        fail("read back", n, r);
        return;
      }
    }
    const at = putStr(LINE, "disk: pass ");
    sendLine(putStr(putDec(at, <u64>g), " read back"));
  }
  request(OP_SYNC10, 0, 0);
  const s = transact();
  sendLine(putDec(putStr(LINE, "disk: done; synchronize cache status "), <u64>s));
}

function fail(what: string, n: u32, s: i32): void {
  let at = putStr(LINE, "disk: ");
  at = putStr(at, what);
  at = putStr(at, " of block ");
  at = putDec(at, <u64>n);
  at = putStr(at, " failed: status ");
  at = putDec(at, <u64>(s < 0 ? 255 : s));
  at = putStr(at, " reason -");
  sendLine(putDec(at, <u64>(-load<i32>(DONE + 24))));
}

const ATTACKS: u32 = 6;
/** MDL addresses that are not the client's memory: 1 MiB (a physical address), its window's own virtual address, the
 * first byte past its memory, a block crossing its end, its storage channel page, a block that wraps. */
function attack(k: u32): u64 {
  if (k == 0) return 0x100000;
  if (k == 1) return 0x0000_0080_0000_1000;
  if (k == 2) return 0x34000;
  if (k == 3) return 0x33f00;
  if (k == 4) return 0x41000;
  return 0xffff_ffff_ffff_ff00;
}

/**
 * The hostile client ("storage-mdl", test/hw/storage.test.ts): asks the monitor for a bus address (only the I/O
 * partition may), then sends requests whose MDL names memory that is not its own — a physical address, the window's
 * virtual address, past its memory, its channel page, an entry that wraps — each a WRITE of `lba` or a READ, and
 * prints each completion: "storage-mdl: attack K status S reason -R transferred T". Then one honest write of its own
 * buffer to `lba` + 1, to show the channel still serves it, acknowledged as the workload does ("disk: acked block").
 */
export function hostileStorage(lba: u32): void {
  const d = hypercall(HC_DMA_ADDR, -1, 0x1000);
  sendLine(putDec(putStr(LINE, "storage-mdl: dma_addr result -"), <u64>-d));
  for (let k: u32 = 0; k < ATTACKS; k++) {
    record(lba, 99);
    request(k % 2 == 0 ? OP_WRITE10 : OP_READ10, lba, 1);
    chan_cdb_add_mdl(REQ, SIGNAL, attack(k), BLOCK);
    const s = transact();
    let at = putStr(LINE, "storage-mdl: attack ");
    at = putDec(at, <u64>k);
    at = putStr(at, " status ");
    at = putDec(at, <u64>(s < 0 ? 255 : s));
    at = putStr(at, " reason -");
    at = putDec(at, <u64>(-load<i32>(DONE + 24)));
    at = putStr(at, " transferred ");
    sendLine(putDec(at, load<u64>(DONE + 32)));
  }
  record(lba + 1, 1);
  request(OP_WRITE10, lba + 1, 1);
  chan_cdb_add_mdl(REQ, SIGNAL, <u64>WBUF, BLOCK);
  const s = transact();
  sendLine(putDec(putStr(LINE, "storage-mdl: own write status "), <u64>(s < 0 ? 255 : s)));
  if (s == 0) {
    const at = putStr(putDec(putStr(LINE, "disk: acked block "), <u64>(lba + 1)), " gen 1");
    sendLine(at);
  }
}
