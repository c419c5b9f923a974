// The client side of the storage channel in a guest partition (docs/specs/storage-channel.md §5–6, §8), imported by
// guest.ts: request records built with core's own MDL code (chan_cdb_add_mdl) and inserted with core's queue code
// into queue 0 of the storage channel in the guest's slot STORAGE_SLOT; completions taken from queue 1. Two programs
// use it: the disk workload (each block n it writes starts with "block <n> <name> gen <g>", zero-padded; one console
// line per acknowledged write, which `uvt disk check` reads) and the hostile client of the tests ("storage-mdl"),
// whose requests name memory that is not its own. MDL addresses are the guest's own (window offsets = wasm addresses).

import { chan_insert, chan_remove } from "../../core/assembly/channel";
import { chan_cdb_add_mdl } from "../../core/assembly/channel-cdb";
import { SAMPLES, median, put, sortedMin } from "./samples";
import {
  HC_CLIENT_WRITE, HC_DMA_ADDR, HC_SIGNAL, HC_YIELD, INFO_NAME, LINE, NAME_BYTES, hypercall, putDec, putStr, sendLine, slotChannel,
} from "./partition";

/** The storage client's channel slot (partitions/programs.ts STORAGE_SLOT). */
export const SLOT: u64 = 1;
export const CHANNEL_BYTES: u32 = 4096;
export const SIGNAL: u32 = 256;
export const BLOCK: u32 = 512;
const TO_SERVER: u32 = 1;
const FROM_SERVER: u32 = 2;
export const OP_READ10: u32 = 0x28;
export const OP_WRITE10: u32 = 0x2a;
export const OP_SYNC10: u32 = 0x35;
const OP_READ_CAPACITY10: u32 = 0x25;

export const REQ = memory.data(<i32>SIGNAL, 8);
export const DONE = memory.data(<i32>SIGNAL, 8);
/** Blocks per request of the workload: one MDL entry per block (8 of the 12 a request may carry). */
export const BATCH: u32 = 8;
/** The blocks written and read back: the MDL names these (window offsets of the guest's own pages). */
const WBUF = memory.data(<i32>(BLOCK * BATCH), 4096);
const RBUF = memory.data(<i32>(BLOCK * BATCH), 4096);

/** The tag of the last request built (storage-pair-client.ts reads it). */
export let nextId: u64 = 0;

@external("hw", "rdtsc")
declare function rdtsc(): i64;

/** Builds a READ/WRITE (10) of `blocks` at `lba` (or another opcode with no CDB fields) with no MDL yet. */
export function request(op: u32, lba: u32, blocks: u32): void {
  for (let i: usize = 0; i < <usize>SIGNAL; i += 8) store<u64>(REQ + i, 0);
  store<u32>(REQ, op);
  store<u32>(REQ + 4, op == OP_WRITE10 ? TO_SERVER : op == OP_READ10 || op == OP_READ_CAPACITY10 ? FROM_SERVER : 0);
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

/** Writes the record of block `n`, generation `gen`, at `buf`: "block <n> <name> gen <g>" and zeros. */
export function record(n: u32, gen: u32, buf: usize = WBUF): void {
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

export function same(a: usize, b: usize, n: u32): bool {
  for (let i: usize = 0; i < <usize>n; i += 8) if (load<u64>(a + i) != load<u64>(b + i)) return false;
  return true;
}

/**
 * The disk workload: READ CAPACITY first ("disk: capacity N blocks of 512"), then `passes` passes over blocks
 * [first, first + blocks); pass g writes the records of generation g,
 * up to BATCH blocks per WRITE (10) with one MDL entry per block, prints "disk: acked block n gen g" for each block of
 * a request whose completion is GOOD, then reads the range back the same way and compares; a final SYNCHRONIZE
 * CACHE, then "disk: done". Any failure is one line and the end of the workload.
 */
export function diskWorkload(first: u32, blocks: u32, passes: u32): void {
  sendLine(putStr(LINE, "disk: workload starts"));
  // READ CAPACITY (10): 8 bytes, the last LBA and the block length, big-endian.
  request(OP_READ_CAPACITY10, 0, 0);
  chan_cdb_add_mdl(REQ, SIGNAL, <u64>RBUF, 8);
  const c = transact();
  if (c != 0) {
    fail("read capacity", 0, c);
    return;
  }
  const last = (<u32>load<u8>(RBUF) << 24) | (<u32>load<u8>(RBUF + 1) << 16) | (<u32>load<u8>(RBUF + 2) << 8) | <u32>load<u8>(RBUF + 3);
  const size = (<u32>load<u8>(RBUF + 4) << 24) | (<u32>load<u8>(RBUF + 5) << 16) | (<u32>load<u8>(RBUF + 6) << 8) | <u32>load<u8>(RBUF + 7);
  let at = putStr(LINE, "disk: capacity ");
  at = putDec(at, <u64>last + 1);
  sendLine(putDec(putStr(at, " blocks of "), <u64>size));
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

export function fail(what: string, n: u32, s: i32): void {
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
 * The hostile client ("storage-mdl", test/hw/storage.test.ts): asks the monitor for a bus address and to write into
 * its channel peer's memory (only the I/O partition may either), then sends requests whose MDL names memory that is not its own — a physical address, the window's
 * virtual address, past its memory, its channel page, an entry that wraps — each a WRITE of `lba` or a READ, and
 * prints each completion: "storage-mdl: attack K status S reason -R transferred T". Then one honest write of its own
 * buffer to `lba` + 1, to show the channel still serves it, acknowledged as the workload does ("disk: acked block").
 */
export function hostileStorage(lba: u32): void {
  const d = hypercall(HC_DMA_ADDR, -1, 0x1000);
  const w = hypercall(HC_CLIENT_WRITE, <i64>SLOT, 0x1000);
  const at = putStr(putDec(putStr(LINE, "storage-mdl: dma_addr result -"), <u64>-d), " client_write result -");
  sendLine(putDec(at, <u64>-w));
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

const ROUND_TRIPS = memory.data(<i32>(SAMPLES * 4), 4);
/** Start TSC of each request in flight, by request_id mod 8 (at most DEPTH in flight). */
const STARTS = memory.data(8 * 8, 8);
/** Requests the bench keeps in flight: all but one of queue 0's signals (7 slots, 6 signals). */
const DEPTH: u32 = 6;

/**
 * The storage benchmark's client (bench/storage.bench.ts): SAMPLES READ (10) requests of 8 blocks (4 KiB) from blocks
 * [first, first + blocks), one MDL entry of 4096 bytes into one page of its own, up to DEPTH in flight; each timed from
 * insertion to its completion with the TSC, and the whole run; then "disk: bench round trip min M median D" and
 * "disk: bench N reads in T".
 */
export function diskBench(first: u32, blocks: u32): void {
  const ch = slotChannel(SLOT);
  if (ch == 0) {
    sendLine(putStr(LINE, "disk: bench: no storage channel"));
    return;
  }
  const span = blocks < 8 ? 1 : blocks / 8;
  let sent: u32 = 0;
  let done: u32 = 0;
  const begin = rdtsc();
  while (done < SAMPLES) {
    while (sent < SAMPLES && sent - done < DEPTH) {
      request(OP_READ10, first + (sent % span) * 8, 8);
      chan_cdb_add_mdl(REQ, SIGNAL, <u64>RBUF, BLOCK * BATCH);
      store<i64>(STARTS + <usize>(nextId & 7) * 8, rdtsc());
      const r = chan_insert(ch, CHANNEL_BYTES, 0, REQ);
      if (r == 1) hypercall(HC_SIGNAL, <i64>SLOT, 0);
      if (r < 0) {
        nextId--;
        break;
      }
      sent++;
    }
    const r = chan_remove(ch, CHANNEL_BYTES, 1, DONE);
    if (r < -1) {
      sendLine(putDec(putStr(LINE, "disk: bench: the channel failed core's checks: -"), <u64>-r));
      return;
    }
    if (r == -1) {
      hypercall(HC_YIELD, 0, 0);
      continue;
    }
    put(ROUND_TRIPS, done, <u64>(rdtsc() - load<i64>(STARTS + <usize>(load<u64>(DONE + 8) & 7) * 8)));
    done++;
    if (load<u32>(DONE + 16) != 0) {
      fail("bench read", first, <i32>load<u32>(DONE + 16));
      return;
    }
  }
  const total = <u64>(rdtsc() - begin);
  // Two lines: a console line carries at most 64 characters.
  let at = putStr(LINE, "disk: bench round trip min ");
  const med = median(ROUND_TRIPS, SAMPLES);
  at = putDec(at, <u64>sortedMin(ROUND_TRIPS));
  sendLine(putDec(putStr(at, " median "), <u64>med));
  at = putDec(putStr(LINE, "disk: bench "), <u64>SAMPLES);
  sendLine(putDec(putStr(at, " reads in "), total));
}
