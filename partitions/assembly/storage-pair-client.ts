// The storage workload through the storage pair (docs/specs/storage-failover.md §7.3), imported by guest.ts: the
// client of two storage channels, slot 1 to the primary and slot 2 to the secondary, with core's in-flight table
// (core/assembly/storage-pair.ts, the code the simulator runs) deciding which completions count and what is
// re-issued after a failover; the epoch, which names the server, comes from the monitor (PAIR_EPOCH). The records,
// requests and lines are the workload's own (storage-client.ts), so `uvt disk check` reads this run as any other.

import { chan_insert, chan_remove } from "../../core/assembly/channel";
import { chan_cdb_add_mdl } from "../../core/assembly/channel-cdb";
import { pair_complete, pair_entry_id, pair_failover, pair_issue, pair_next_reissue, pair_reissued, pair_table_init } from "../../core/assembly/storage-pair";
import { HC_PAIR_EPOCH, HC_SIGNAL, HC_TIME, HC_YIELD, LINE, hypercall, putDec, putStr, sendLine, slotChannel } from "./partition";
import {
  BATCH, BLOCK, CHANNEL_BYTES, DONE, OP_READ10, OP_SYNC10, OP_WRITE10, REQ, SIGNAL, SLOT, fail, nextId, record, request, same,
} from "./storage-client";

/** Core's in-flight table (storage-failover.md §3): 32-byte header and 16 entries of 32 bytes, in this guest's memory. */
const TABLE = memory.data(32 + 16 * 32, 8);
/** The record sent for each table entry: a re-issue sends exactly what was sent, never a record rebuilt. */
const SAVED = memory.data(16 * <i32>SIGNAL, 8);
/** The epoch this client knows: its requests go to slot SLOT + (epoch & 1), the primary's then the secondary's. */
let epoch: u32 = 0;
let firstOfEpoch = false;
/** Per epoch (0, 1): requests and blocks accepted, quanta of the first and last acceptance (the bench's throughput). */
const STATS = memory.data(2 * 32, 8);

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
export function pairWorkload(first: u32, blocks: u32, passes: u32): void {
  pair_table_init(TABLE);
  sendLine(putStr(LINE, "disk: workload starts"));
  const end = first + blocks;
  for (let g: u32 = 1; g <= passes; g++) {
    if (!pairPhase(first, end, g, true) || !pairPhase(first, end, g, false)) return;
    const at = putStr(LINE, "disk: pass ");
    sendLine(putStr(putDec(at, <u64>g), " read back"));
  }
  request(OP_SYNC10, 0, 0);
  const s = transactPair();
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
