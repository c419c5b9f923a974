// The I/O partition's storage-channel server (docs/specs/storage-channel.md §3–5, §8), imported by io.ts: each
// request is removed from queue 0 into this partition's own memory (the client may rewrite its slot at any time),
// checked by core's stor_check — the same code the simulator runs in V8 (sim/storage-server.ts) — against the disk's
// capacity and the client's memory range, every MDL page then translated and checked again against the resource
// database by the monitor (DMA_ADDR) before anything moves, the transfer done by the virtio-blk device straight
// between the disk and the client's pages (no copy, [0166]), and the completion written by core's stor_complete into
// queue 1, with a signal only when queue 1 goes from empty to non-empty ([0120]).

import { chan_insert, chan_pending, chan_remove } from "../../core/assembly/channel";
import { stor_check, stor_complete, stor_response } from "../../core/assembly/storage";
import { T_FLUSH, T_IN, T_OUT, accessPlatform, blkAdd, blkBegin, blkSubmit, capacity, maxData, stopAfterNextNotify, waited } from "./virtio-blk";
import { HC_CLIENT_WRITE, HC_DMA_ADDR, HC_DMA_DONE, HC_SIGNAL, LINE, putDec, putStr, sendLine } from "./partition";
import { SAMPLES, put } from "./samples";

@external("hw", "rdtsc")
declare function rdtsc(): i64;

@external("hw", "hypercall")
declare function hypercall(nr: i64, a: i64, b: i64): i64;

/** CLIENT_WRITE's descriptor (monitor-gen/pci.ts CLIENT_WRITE): u64 client offset, u32 length, u32 0, 64 bytes. */
const CW = memory.data(80, 8);
/** The response data of INQUIRY / READ CAPACITY (at most 36 bytes, core's stor_response). */
const RESP = memory.data(64, 8);
const CHANNEL_BYTES: u32 = 4096;
const SIGNAL: u32 = 256;
/** The storage channel's geometry (storage-channel.md §1; image/ultravisor.ts formatStorageTemplate, checked against core in partitions/aot-partitions.test.ts). */
const SLOTS: u32 = 7;
const QUEUE_HEADER: u64 = 128;
/** The client's memory in its own address space: window offsets [0, 0x34000) (image-layout.md; DMA_ADDR's bound). */
const CLIENT_MEMORY: u64 = 0x34000;

const REQ = memory.data(<i32>SIGNAL, 8);
const DONE = memory.data(<i32>SIGNAL, 8);
const PLAN = memory.data(32, 8);
const RANGES = memory.data(16, 8);
const PAGE: u64 = 4096;
const P_KIND: usize = 0;
const P_BLOCKS: usize = 4;
const P_LBA: usize = 8;
const P_REASON: usize = 24;
const P_MDL_INDEX: usize = 28;
const KIND_NONE: u32 = 0;
const KIND_READ: u32 = 1;
const KIND_WRITE: u32 = 2;
const OP_SYNC10: u32 = 0x35;
/** The outside-the-client reason (−10 − CDB_OUTSIDE_CLIENT, storage-channel.md §4), also for DMA_ADDR's refusals. */
const R_OUTSIDE: i32 = -14;

/** Requests served and refused since boot. */
export let served: u64 = 0;
export let refused: u64 = 0;
/** The storage pair's primary: the request (counted from 1 over all channels) at which it fails; 0 never (§7.4 of storage-failover.md). */
export let failAtRequest: u64 = 0;
let taken: u64 = 0;
let dying = false;
export function setFailAt(n: u64): void {
  failAtRequest = n;
}
/**
 * The storage benchmark (bench/storage.bench.ts): the TSC from a request's removal to its completion's insertion, less
 * the device's time (`waited`), of each 4 KiB READ, the first SAMPLES of them.
 */
export const CHANNEL_SAMPLES = memory.data(<i32>(SAMPLES * 4), 4);
export let channelSamples: u32 = 0;

/** Every geometry field of the channel and its two queues equals the storage template's. */
function storageGeometry(ch: usize): bool {
  if (load<u32>(ch + 12) != 128 || load<u64>(ch + 64) != 128) return false;
  for (let q: u64 = 0; q < 2; q++) {
    const h = ch + <usize>(128 + q * QUEUE_HEADER);
    const base = (2 - q) * QUEUE_HEADER + q * <u64>SLOTS * <u64>SIGNAL;
    if (load<u64>(h + 8) != <u64>SLOTS * <u64>SIGNAL || load<u64>(h + 16) != base || load<u32>(h + 48) != SIGNAL
      || load<u32>(h + 52) != SLOTS || load<u32>(h + 56) != SLOTS - 1) return false;
  }
  return true;
}

function mdlCount(): u32 {
  return <u32>load<u16>(REQ + 22);
}

function mdlAddress(i: u32): u64 {
  return load<u64>(REQ + 64 + <usize>i * 16);
}

function mdlLength(i: u32): u32 {
  return load<u32>(REQ + 64 + <usize>i * 16 + 8);
}

/** The bus address of each page the MDL touches, in the order the transfer visits them: the first BUS_MAX of them. */
const BUS_MAX: u32 = 64;
const BUS = memory.data(<i32>(BUS_MAX * 8), 8);

/**
 * The monitor's check of every page the MDL touches (the client owns it in the database now), keeping the first
 * BUS_MAX bus addresses for the transfer; returns the failing entry, or −1.
 */
function translateAll(slot: u64): i32 {
  let k: u32 = 0;
  for (let i: u32 = 0; i < mdlCount(); i++) {
    const a = mdlAddress(i);
    const end = a + <u64>mdlLength(i);
    for (let p = a & ~(PAGE - 1); p < end; p += PAGE) {
      const bus = hypercall(HC_DMA_ADDR, <i64>slot, <i64>(p < a ? a : p));
      if (bus < 0) return <i32>i;
      if (k < BUS_MAX) store<u64>(BUS + <usize>k * 8, (<u64>bus) & ~(PAGE - 1));
      k++;
    }
  }
  return -1;
}

/**
 * Moves the planned blocks between the disk and the client's pages named by the MDL, in device requests of at most
 * maxData() descriptors, each piece inside one client page, each request a whole number of sectors. Returns false
 * when a translation or the device failed (the caller completes with MEDIUM ERROR and transferred 0).
 */
function transfer(slot: u64, write: bool): bool {
  let sector = load<u64>(PLAN + P_LBA);
  const soft = maxData() / 2;
  let pieces: u32 = 0;
  let bytes: u64 = 0;
  // The page the transfer is in, counted as translateAll counted them (a new entry starts a new page).
  let pageIdx: i32 = -1;
  let curPage: u64 = 0;
  blkBegin();
  for (let i: u32 = 0; i < mdlCount(); i++) {
    let a = mdlAddress(i);
    let left = <u64>mdlLength(i);
    let fresh = true;
    while (left > 0) {
      let n = PAGE - (a & (PAGE - 1));
      if (n > left) n = left;
      // Past `soft` pieces, cut the next piece where the request reaches a sector boundary.
      const over = <u64>(bytes & 511);
      if (pieces >= soft && over != 0 && n > 512 - over) n = 512 - over;
      if (fresh || (a & ~(PAGE - 1)) != curPage) {
        pageIdx++;
        curPage = a & ~(PAGE - 1);
        fresh = false;
      }
      let bus: i64;
      if (<u32>pageIdx < BUS_MAX) bus = <i64>(load<u64>(BUS + <usize>pageIdx * 8) + (a & (PAGE - 1)));
      else bus = hypercall(HC_DMA_ADDR, <i64>slot, <i64>a); // past the kept ones: asked again
      if (bus < 0) return false;
      blkAdd(<u64>bus, <u32>n, !write);
      pieces++;
      bytes += n;
      a += n;
      left -= n;
      if ((pieces >= soft && (bytes & 511) == 0) || pieces >= maxData()) {
        if ((bytes & 511) != 0) return false; // cannot happen with at most 12 entries; refuse rather than misalign
        if (!blkSubmit(write ? T_OUT : T_IN, sector)) return false;
        sector += bytes >> 9;
        pieces = 0;
        bytes = 0;
        blkBegin();
      }
    }
  }
  if (pieces > 0 && !blkSubmit(write ? T_OUT : T_IN, sector)) return false;
  return true;
}

/** Writes the first `n` bytes of RESP through the MDL entries in order; false when the monitor refused a piece. */
function dataIn(slot: u64, n: u32): bool {
  let off: u32 = 0;
  for (let i: u32 = 0; i < mdlCount() && off < n; i++) {
    let a = mdlAddress(i);
    let left = <u64>mdlLength(i);
    while (left > 0 && off < n) {
      let piece = PAGE - (a & (PAGE - 1));
      if (piece > left) piece = left;
      if (piece > <u64>(n - off)) piece = <u64>(n - off);
      store<u64>(CW, a);
      store<u32>(CW + 8, <u32>piece);
      store<u32>(CW + 12, 0);
      memory.copy(CW + 16, RESP + <usize>off, <usize>piece);
      if (hypercall(HC_CLIENT_WRITE, <i64>slot, <i64>CW) != <i64>piece) return false;
      off += <u32>piece;
      a += piece;
      left -= piece;
    }
  }
  return true;
}

/**
 * Serves the storage channel in `slot` (its wasm address `ch`) until queue 0 is empty or queue 1 is full. Returns
 * 1 when it served a request, 0 when it found none, −1 when the channel failed the checks (the caller closes it).
 */
export function serveStorage(slot: u64, ch: usize): i32 {
  if (!storageGeometry(ch)) return -1;
  store<u64>(RANGES, 0);
  store<u64>(RANGES + 8, CLIENT_MEMORY);
  let any: i32 = 0;
  while (true) {
    // Room for the completion first: a client that never takes its completions stalls only its own channel.
    const waiting = chan_pending(ch, CHANNEL_BYTES, 1);
    if (waiting < 0) return -1;
    if (<u32>waiting >= SLOTS - 1) return any;
    for (let o: usize = 0; o < <usize>SIGNAL; o += 8) store<u64>(REQ + o, 0);
    const t0 = rdtsc();
    const w0 = waited;
    const r = chan_remove(ch, CHANNEL_BYTES, 0, REQ);
    if (r == -1) return any;
    if (r < -1) return -1;
    any = 1;
    taken++;
    if (failAtRequest != 0 && taken == failAtRequest) {
      // The host definition's fault (failAtRequest): say so, then die with this request's first device request in
      // flight (virtio-blk.ts stopAfterNotify), or before its completion when it moves nothing.
      sendLine(putStr(putDec(putStr(LINE, "storage: failing at request "), taken), " (host definition failAtRequest)"));
      stopAfterNextNotify();
      dying = true;
    }
    let moved: u64 = 0;
    let medium: i32 = 0;
    if (stor_check(REQ, SIGNAL, capacity, RANGES, 1, PLAN) == 0 && load<i32>(PLAN + P_REASON) == 0) {
      const kind = load<u32>(PLAN + P_KIND);
      const bad = translateAll(slot);
      if (bad >= 0) {
        store<i32>(PLAN + P_REASON, R_OUTSIDE);
        store<i32>(PLAN + P_MDL_INDEX, bad);
        store<u8>(PLAN + 20, 5);
        store<u8>(PLAN + 21, 0x24);
      } else if (capacity == 0) {
        medium = 1;
      } else if (kind == KIND_READ || kind == KIND_WRITE) {
        if (load<u32>(PLAN + P_BLOCKS) != 0) {
          if (transfer(slot, kind == KIND_WRITE)) moved = <u64>load<u32>(PLAN + P_BLOCKS) << 9;
          else medium = 1;
        }
      } else if (kind == KIND_NONE) {
        if (load<u32>(REQ) == OP_SYNC10) {
          blkBegin();
          if (!blkSubmit(T_FLUSH, 0)) medium = 1;
        }
      } else {
        // Data-in (INQUIRY, READ CAPACITY): core's response, written into the client's MDL pages by the monitor
        // (CLIENT_WRITE: this partition maps no client page), piece by piece within a page.
        const n = stor_response(REQ, PLAN, capacity, RESP);
        if (!dataIn(slot, n)) medium = 1;
        else moved = <u64>n;
      }
    }
    if (dying) unreachable(); // the failing primary's request moved nothing: no completion either
    if (load<i32>(PLAN + P_REASON) != 0) refused++;
    else served++;
    // Behind the IOMMU, the client pages this request had mapped are unmapped before it completes (§9).
    if (accessPlatform) hypercall(HC_DMA_DONE, 0, 0);
    stor_complete(REQ, PLAN, moved, medium, DONE);
    const w = chan_insert(ch, CHANNEL_BYTES, 1, DONE);
    if (w == 1) hypercall(HC_SIGNAL, <i64>slot, 0);
    if (load<u32>(PLAN + P_KIND) == KIND_READ && load<u32>(PLAN + P_BLOCKS) == 8 && moved == 4096) {
      put(CHANNEL_SAMPLES, channelSamples++, <u64>(rdtsc() - t0) - (waited - w0));
    }
    if (w < -1) return -1;
  }
  return any;
}
