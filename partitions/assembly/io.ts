// The I/O partition ([0089], [0113]–[0120]) in AssemblyScript, compiled by asc and toolchain/aot (partitions/
// aot-guest.ts): it owns COM1 — the only partition whose TSS I/O bitmap grants ports 0x3F8–0x3FF, reached through
// the inline hw.inb/hw.outb intrinsics at CPL 3 — and serves every console channel: each request's text (or the
// requests of one line joined, flag MORE) becomes one line "NAME: text" on COM1, NAME being the client's name from the info page;
// and every line typed on COM1 goes, unread, to the command partition on queue 1 of its console channel (the slot
// main is given; docs/specs/image-layout.md, "Typed lines"). The queue code is core's own
// (core/assembly/channel.ts), run on the channel pages that lie in this partition's linear memory (the linear memory
// is the window: docs/specs/image-layout.md, AssemblyScript partitions, which also states the pass below). When the
// host gives it a disk it also drives that virtio-blk (virtio-blk.ts) and serves the storage channels of its slots
// typed storage (storage-server.ts; docs/specs/storage-channel.md §8).

import { chan_insert, chan_remove } from "../../core/assembly/channel";
import { CHANNEL_SAMPLES, channelSamples, serveStorage, setFailAt } from "./storage-server";
import { T_IN, accessPlatform, bdf, blkAdd, blkBegin, blkInit, blkSubmit, capacity, deviceStatus, QSIZE, waited } from "./virtio-blk";
import { SAMPLES, median, put, sortedMin } from "./samples";

@external("hw", "rdtsc")
declare function rdtsc(): i64;
import {
  CHANNEL_BYTES, FLAG_MORE, HC_CLIENT_WRITE, HC_DMA_ADDR, HC_DMA_DONE, HC_PAIR_EPOCH, HC_POLL, HC_SIGNAL, HC_YIELD, INFO_NAME, INFO_SLOTS, LINE, MAX_SLOTS, MAX_TEXT, NAME_BYTES, ROLE_CLOSED, ROLE_SERVER,
  SIG_FLAGS, SIG_INLINE, SIGNAL_BYTES, hypercall, putDec, putStr, sendLine, slotChannel, slotRecord,
} from "./partition";

@external("hw", "inb")
declare function inb(port: u32): u32;

@external("hw", "outb")
declare function outb(port: u32, value: u32): void;

const COM1: u32 = 0x3f8;
/** Line status register; bit 5: the transmit holding register is empty; bit 0: a received byte waits in RBR (COM1 + 0). */
const COM1_LSR: u32 = COM1 + 5;
const THR_EMPTY: u32 = 0x20;
const DATA_READY: u32 = 0x01;
const SIG_INLINE_LEN: usize = 20;
const RECORD_ROLE: usize = 8;
/** The slot record's channel type byte (partitions/pack.ts): 4 for a storage channel, 0 for the console's. */
const RECORD_TYPE: usize = 9;
const TYPE_STORAGE: u8 = 4;
const RECORD_PEER: usize = 16;
/** Removed requests land here: a whole channel page, since core copies the queue's signal_size, which the client wrote. */
const IN_SIGNAL = memory.data(<i32>CHANNEL_BYTES);
/**
 * A line that arrives in several TEXT requests (flag MORE on all but the last: a virtualized guest's lines longer than
 * one request) is joined here, per slot, and printed whole when its last part comes; at PENDING_MAX bytes what is
 * there goes out as a line of its own, so a client that never ends its line costs this buffer and nothing else.
 */
const PENDING_MAX: u32 = 256;
const PENDING = memory.data(<i32>(PENDING_MAX * <u32>MAX_SLOTS));
const PENDING_LEN = memory.data(<i32>(4 * MAX_SLOTS));

/**
 * A typed line: at most TYPED_MAX bytes are kept (the inline text of one 128-byte signal, less one); a longer line is
 * sent as its first TYPED_MAX bytes with CDB byte 0 = 1 (truncated), which the command partition refuses.
 */
const TYPED_MAX: u32 = 63;
const TYPED = memory.data(64);
let typedLen: u32 = 0;
let typedLong: bool = false;
/** The slot whose channel takes typed lines (the command partition's console channel), from main; NO_INPUT: none. */
const NO_INPUT: u64 = 0xffff_ffff_ffff_ffff;
let inputSlot: u64 = NO_INPUT;
const TYPED_SIGNAL = memory.data(<i32>SIGNAL_BYTES);
/** Bytes read per pass at most: a flood of input cannot keep this partition from its consoles. */
const RECEIVE_BUDGET: i32 = 256;
/** The input channel's geometry: the command template's, type console (2 queues of 14 slots of 128 bytes). */
const INPUT_SLOTS: u32 = 14;
const Q1: usize = 256;

/**
 * The console channel's geometry as the image's template lays it out (chan_format: 1 queue of CONSOLE_SLOTS slots of
 * SIGNAL_BYTES; image-layout.md and monitor-gen/layout.ts CHAN, which partitions/aot-partitions.test.ts pins).
 */
const CONSOLE_SLOTS: u32 = 16;
const CH_SPACE: u64 = 128;
const Q0: usize = 128;

/**
 * Every geometry field of the channel and of its queue 0 equals the console template's (channel-abi.md, "Fixed
 * geometry"). Core's own checks accept any self-consistent geometry, and a client that shrank signal_size made core
 * copy less than a signal, leaving the rest of IN_SIGNAL — another client's line — to be printed under its name.
 */
function consoleGeometry(ch: usize): bool {
  if (load<u32>(ch + 12) != 128 || load<u64>(ch + 64) != CH_SPACE) return false; // header_size, ch_space_offset
  const q = ch + Q0;
  return load<u64>(q + 8) == <u64>CONSOLE_SLOTS * <u64>SIGNAL_BYTES // size
    && load<u64>(q + 16) == CH_SPACE // sig_base_offset: slot 0 right after the one queue header
    && load<u32>(q + 48) == <u32>SIGNAL_BYTES // signal_size
    && load<u32>(q + 52) == CONSOLE_SLOTS // max_slots
    && load<u32>(q + 56) == CONSOLE_SLOTS - 1; // max_signals
}

/**
 * The input channel's geometry, checked like consoleGeometry before every queue operation: two queues of INPUT_SLOTS
 * slots of SIGNAL_BYTES each, queue 0's slots after both queue headers, queue 1's after queue 0's.
 */
function inputGeometry(ch: usize): bool {
  if (load<u32>(ch + 12) != 128 || load<u64>(ch + 64) != CH_SPACE) return false;
  const q0 = ch + Q0;
  const q1 = ch + Q1;
  const size = <u64>INPUT_SLOTS * <u64>SIGNAL_BYTES;
  return load<u64>(q0 + 8) == size && load<u64>(q0 + 16) == 2 * CH_SPACE && load<u32>(q0 + 48) == <u32>SIGNAL_BYTES
    && load<u32>(q0 + 52) == INPUT_SLOTS && load<u32>(q0 + 56) == INPUT_SLOTS - 1
    && load<u64>(q1 + 8) == size && load<u64>(q1 + 16) == CH_SPACE + size && load<u32>(q1 + 48) == <u32>SIGNAL_BYTES
    && load<u32>(q1 + 52) == INPUT_SLOTS && load<u32>(q1 + 56) == INPUT_SLOTS - 1;
}

/**
 * One byte typed on COM1, or −1 when none waits. With io_emit the only function of this program that touches a
 * port (image/ultravisor.test.ts checks it).
 */
export function io_receive(): i32 {
  if ((inb(COM1_LSR) & DATA_READY) == 0) return -1;
  return <i32>(inb(COM1) & 0xff);
}

/**
 * Reads what was typed (at most RECEIVE_BUDGET bytes a pass); each line ended by CR or LF goes to the command partition
 * as one signal on queue 1 of its console channel. Bytes outside 0x20–0x7E are dropped. A line the channel cannot take
 * (full, or it failed the checks) is lost, and the I/O partition says so on COM1.
 */
function receive(): void {
  for (let n = 0; n < RECEIVE_BUDGET; n++) {
    const c = io_receive();
    if (c < 0) return;
    if (c == 13 || c == 10) {
      if (typedLen > 0 || typedLong) forwardTyped();
      typedLen = 0;
      typedLong = false;
    } else if (c >= 0x20 && c <= 0x7e) {
      if (typedLen < TYPED_MAX) {
        store<u8>(TYPED + <usize>typedLen, <u8>c);
        typedLen++;
      } else typedLong = true;
    }
  }
}

function forwardTyped(): void {
  const ch = inputSlot == NO_INPUT ? 0 : slotChannel(inputSlot);
  let r: i32 = -4;
  if (ch != 0 && inputGeometry(ch)) {
    for (let o: usize = 0; o < SIGNAL_BYTES; o += 8) store<u64>(TYPED_SIGNAL + o, 0);
    store<u32>(TYPED_SIGNAL, 1); // opcode: a typed line
    store<u32>(TYPED_SIGNAL + SIG_FLAGS, 2); // FROM_SERVER
    store<u16>(TYPED_SIGNAL + SIG_INLINE_LEN, <u16>typedLen);
    store<u8>(TYPED_SIGNAL + 24, 1); // cdb_len
    store<u8>(TYPED_SIGNAL + 32, typedLong ? 1 : 0); // CDB byte 0: truncated
    memory.copy(TYPED_SIGNAL + SIG_INLINE, TYPED, <usize>typedLen);
    r = chan_insert(ch, CHANNEL_BYTES, 1, TYPED_SIGNAL);
    if (r == 1) hypercall(HC_SIGNAL, <i64>inputSlot, 0);
  }
  if (r < 0) {
    let at = putStr(LINE, "typed line not delivered to the command partition: status -");
    at = putDec(at, <u64>-r);
    emitOwn(at);
  }
}

@inline
function putc(c: u32): void {
  while ((inb(COM1_LSR) & THR_EMPTY) == 0) {}
  outb(COM1, c);
}

/**
 * Writes "NAME: text" + CR LF to COM1: NAME from `name` (NUL-terminated, at most 16 bytes), `len` bytes of text
 * from `text`, each byte outside 0x20–0x7E as '.'. Every port access of this program is in this one function (the
 * monitor holds its own log while the I/O partition's rip is inside it; the image test checks that).
 */
export function io_emit(name: usize, text: usize, len: u32): void {
  for (let i: usize = 0; i < NAME_BYTES; i++) {
    const c = <u32>load<u8>(name + i);
    if (c == 0) break;
    putc(c);
  }
  putc(0x3a);
  putc(0x20);
  for (let i: u32 = 0; i < len; i++) {
    let c = <u32>load<u8>(text + <usize>i);
    if (c < 0x20 || c > 0x7e) c = 0x2e;
    putc(c);
  }
  putc(13);
  putc(10);
}

function hexDigit(at: usize, d: u32): usize {
  store<u8>(at, <u8>(d < 10 ? 0x30 + d : 0x57 + d));
  return at + 1;
}

/**
 * A member of the storage pair (docs/specs/storage-failover.md §7.1): no COM1 (its port access would be a #GP), its own
 * lines through its console channel (slot 0) to the console I/O partition, storage channels only.
 */
let member = false;

function emitOwn(end: usize): void {
  if (member) sendLine(end);
  else io_emit(INFO_NAME, LINE, <u32>(end - LINE));
}

/**
 * One pass over the console channels: the slot count and every slot's record are read afresh (a slot becomes live
 * when the monitor writes its window address), each live server slot is drained. Returns 1 when a line was written.
 */
export function serve(): i32 {
  let served: i32 = 0;
  let n = load<u64>(INFO_SLOTS);
  if (n > MAX_SLOTS) n = MAX_SLOTS;
  for (let k: u64 = 0; k < n; k++) {
    const rec = slotRecord(k);
    if (load<u8>(rec + RECORD_ROLE) != ROLE_SERVER) continue;
    const ch = slotChannel(k);
    if (ch == 0) continue;
    if (member && load<u8>(rec + RECORD_TYPE) != TYPE_STORAGE) continue; // a member serves storage channels only
    if (load<u8>(rec + RECORD_TYPE) == TYPE_STORAGE) {
      const s = serveStorage(k, ch);
      if (s < 0) {
        store<u8>(rec + RECORD_ROLE, ROLE_CLOSED);
        if (member) {
          const at = putStr(LINE, "storage channel of slot ");
          emitOwn(putStr(putDec(at, k), " failed the server's checks: closed"));
        } else {
          const end = putStr(LINE, "<storage channel failed the server's checks: closed>");
          io_emit(rec + RECORD_PEER, LINE, <u32>(end - LINE));
        }
      } else if (s > 0) served = 1;
      continue;
    }
    while (true) {
      // The client may rewrite its header at any time, even while this partition is preempted between the check and
      // core's copy: the buffer is cleared first, so whatever core copies, nothing but the client's own bytes shows.
      for (let o: usize = 0; o < SIGNAL_BYTES; o += 8) store<u64>(IN_SIGNAL + o, 0);
      const r = (k == inputSlot ? inputGeometry(ch) : consoleGeometry(ch)) ? chan_remove(ch, CHANNEL_BYTES, 0, IN_SIGNAL) : -3;
      if (r == -1) break; // empty
      if (r < -1) {
        // The client broke the channel: never read it again.
        store<u8>(rec + RECORD_ROLE, ROLE_CLOSED);
        const end = putStr(LINE, "<channel failed the server's checks: closed>");
        io_emit(rec + RECORD_PEER, LINE, <u32>(end - LINE));
        break;
      }
      let len = <u32>load<u16>(IN_SIGNAL + SIG_INLINE_LEN);
      if (len > MAX_TEXT) len = MAX_TEXT;
      const more = (load<u32>(IN_SIGNAL + SIG_FLAGS) & FLAG_MORE) != 0;
      const held = PENDING_LEN + <usize>k * 4;
      let have = load<u32>(held);
      if (have > PENDING_MAX) have = 0; // only this program writes it; kept in bounds all the same
      if (!more && have == 0) {
        io_emit(rec + RECORD_PEER, IN_SIGNAL + SIG_INLINE, len);
      } else {
        const line = PENDING + <usize>k * <usize>PENDING_MAX;
        if (have + len > PENDING_MAX) {
          io_emit(rec + RECORD_PEER, line, have);
          have = 0;
        }
        memory.copy(line + <usize>have, IN_SIGNAL + SIG_INLINE, <usize>len);
        have += len;
        if (!more) {
          io_emit(rec + RECORD_PEER, line, have);
          have = 0;
        }
      }
      store<u32>(held, have);
      served = 1;
    }
  }
  return served;
}

/**
 * Announces itself, brings up its virtio-blk disk when the host gives it devices (`flags` bit 0: the device list is
 * mapped), with bit 1 (bench builds) times SAMPLES 4 KiB reads of its own (the direct path) and, once it has served as
 * many 4 KiB reads through the channel, reports both; then serves for ever: POLL after every pass, YIELD after a pass
 * that found nothing. `input`: the slot of the command partition's console channel, which takes the lines typed on
 * COM1 (NO_INPUT: none). `pair` ≠ 0: a member of the storage pair (no COM1, storage only); `failAt` ≠ 0: the pair's
 * primary fails at that request (docs/specs/storage-failover.md §7.4).
 */
export function main(flags: i64, input: u64, pair: i64, failAt: i64): void {
  inputSlot = input;
  const devices = flags & 1;
  const bench = (flags & 2) != 0;
  const rogue = (flags & 4) != 0;
  member = pair != 0;
  if (member) {
    setFailAt(<u64>failAt);
    emitOwn(putStr(LINE, "serving storage channels as a member of the storage pair"));
    // The pair's epoch is its clients' to ask (PAIR_EPOCH): a member is refused, which this line shows on every boot.
    emitOwn(putDec(putStr(LINE, "storage: PAIR_EPOCH refused to a member: result -"), <u64>-hypercall(HC_PAIR_EPOCH, 0, 0)));
  } else {
    emitOwn(putStr(LINE, "serving console channels; COM1 granted by the TSS I/O bitmap"));
  }
  if (devices != 0) {
    const r = blkInit(<u32>load<u64>(0));
    let at: usize;
    if (r == 0) {
      at = putStr(LINE, "storage: virtio-blk 00:");
      at = hexDigit(hexDigit(at, (bdf >> 7) & 1), (bdf >> 3) & 15);
      at = putDec(putStr(at, "."), <u64>(bdf & 7));
      at = putStr(at, " capacity ");
      at = putDec(at, capacity);
      at = putStr(at, " sectors queue ");
      at = putDec(at, <u64>QSIZE);
    } else {
      at = putStr(LINE, "storage: no disk driven (step -");
      at = putDec(at, <u64>-r);
      at = putStr(at, ")");
    }
    emitOwn(at);
    if (r == 0) {
      // The monitor's bounds on DMA_ADDR, asked once at start (test/hw/storage.test.ts reads the line): a byte past
      // this partition's memory pages, and a slot that holds no channel, are refused (−2).
      at = putStr(LINE, "storage: dma_addr past memory -");
      at = putDec(at, <u64>-hypercall(HC_DMA_ADDR, -1, 0x34000));
      at = putStr(at, " empty slot -");
      emitOwn(putDec(at, <u64>-hypercall(HC_DMA_ADDR, 15, 0x1000)));
      consoleSlotProbe();
    }
    if (r == 0 && bench) directBench();
    if (r == 0 && rogue) rogueDma();
  }
  let reported = false;
  while (true) {
    if (inputSlot != NO_INPUT) receive();
    const served = serve();
    if (bench && !reported && channelSamples >= SAMPLES) {
      reported = true;
      report("channel", CHANNEL_SAMPLES, 0);
    }
    hypercall(HC_POLL, 0, 0);
    if (served == 0) hypercall(HC_YIELD, 0, 0);
  }
}

/** Yields between announcing the rogue READ and submitting it: time for test/hw/iommu.test.ts to read the page. */
const ROGUE_WAIT: u32 = 60;

/**
 * The rogue-dma test build (docs/specs/storage-channel.md §9): DMA_ADDR answers for byte 0 of the first channel peer
 * it knows (so that page is validated and mapped), and the device is then told to READ the disk's last 4 KiB into the
 * peer's NEXT page, which DMA_ADDR never validated — the address computed here, as a compromised I/O partition would.
 * Behind the IOMMU, DMA_DONE then unmaps the validated page and a second READ aims at it. Each of the device's writes
 * faults and the pages stay as they were; without the IOMMU they would be overwritten. Then the device is brought up
 * again if it stopped, and the partition serves as always.
 */
function rogueDma(): void {
  let base: i64 = -1;
  let slot: i64 = 0;
  for (; slot < <i64>MAX_SLOTS; slot++) {
    base = hypercall(HC_DMA_ADDR, slot, 0);
    if (base >= 0) break;
  }
  if (base < 0 || capacity < 16) {
    emitOwn(putStr(LINE, "rogue-dma: no peer to aim at"));
    return;
  }
  let at = putStr(LINE, "rogue-dma: READ into bus address ");
  at = putDec(at, <u64>base + 4096);
  at = putStr(at, " (slot ");
  at = putDec(at, <u64>slot);
  emitOwn(putStr(at, "'s peer, page 1: never validated)"));
  rogueRead(<u64>base + 4096);
  if (!accessPlatform) return;
  at = putStr(LINE, "rogue-dma: DMA_DONE unmapped ");
  at = putDec(at, <u64>hypercall(HC_DMA_DONE, 0, 0));
  at = putStr(at, "; READ into bus address ");
  at = putDec(at, <u64>base);
  emitOwn(putStr(at, " (page 0: validated, then done)"));
  rogueRead(<u64>base);
}

/** One rogue READ of the disk's last 4 KiB to `target`, after ROGUE_WAIT yields (the test reads the page meanwhile). */
function rogueRead(target: u64): void {
  for (let i: u32 = 0; i < ROGUE_WAIT; i++) hypercall(HC_YIELD, 0, 0);
  emitOwn(putStr(LINE, "rogue-dma: submitted"));
  blkBegin();
  blkAdd(target, 4096, true);
  const ok = blkSubmit(T_IN, capacity - 8);
  let at = putStr(LINE, "rogue-dma: device status ");
  at = putDec(at, <u64>deviceStatus());
  at = putStr(at, ok ? ", request status OK" : ", request failed");
  emitOwn(at);
  if ((deviceStatus() & 0x40) != 0) {
    const r = blkInit(<u32>load<u64>(0));
    at = putStr(LINE, "rogue-dma: device reset and brought up again: ");
    emitOwn(putDec(at, <u64>-r));
  }
}

/** A CLIENT_WRITE descriptor for the probe below: offset 0x1000 of the peer, length 0 (nothing would be written). */
const PROBE_CW = memory.data(80, 8);

/**
 * DMA_ADDR and CLIENT_WRITE on the first console channel this partition serves, asked once at start
 * (test/hw/storage.test.ts reads the line): that peer granted no memory to a device or to this partition, so both
 * are refused (−2); the monitor answered a bus address and 0 before it checked the slot's channel type.
 */
function consoleSlotProbe(): void {
  let n = load<u64>(INFO_SLOTS);
  if (n > MAX_SLOTS) n = MAX_SLOTS;
  for (let k: u64 = 0; k < n; k++) {
    const rec = slotRecord(k);
    if (load<u8>(rec + RECORD_ROLE) != ROLE_SERVER || load<u8>(rec + RECORD_TYPE) == TYPE_STORAGE || slotChannel(k) == 0) continue;
    store<u64>(PROBE_CW, 0x1000);
    store<u64>(PROBE_CW + 8, 0);
    const dma = hypercall(HC_DMA_ADDR, <i64>k, 0x1000);
    const cw = hypercall(HC_CLIENT_WRITE, <i64>k, <i64>PROBE_CW);
    let at = putDec(putStr(LINE, "storage: console slot "), k);
    at = dma < 0 ? putDec(putStr(at, " dma_addr -"), <u64>-dma) : putStr(at, " dma_addr granted");
    at = cw < 0 ? putDec(putStr(at, " client_write -"), <u64>-cw) : putDec(putStr(at, " client_write granted "), <u64>cw);
    emitOwn(at);
    return;
  }
}

const DIRECT_SAMPLES = memory.data(<i32>(SAMPLES * 4), 4);
const DIRECT_TOTAL = memory.data(<i32>(SAMPLES * 4), 4);
/** The direct path's buffer: one page of this partition's own memory. */
const DBUF = memory.data(4096, 4096);

/**
 * The direct path of the storage benchmark: SAMPLES 4 KiB reads into this partition's own page, each timed with the
 * TSC (an instruction count under -icount) without the device's time, and with it.
 */
function directBench(): void {
  const bus = hypercall(HC_DMA_ADDR, -1, <i64>DBUF);
  if (bus < 0 || capacity < 16) return;
  for (let i: u32 = 0; i < SAMPLES; i++) {
    const w0 = waited;
    const t0 = rdtsc();
    blkBegin();
    blkAdd(<u64>bus, 4096, true);
    blkSubmit(T_IN, (<u64>i * 8) % (capacity - 8));
    const t = <u64>(rdtsc() - t0);
    put(DIRECT_SAMPLES, i, t - (waited - w0));
    put(DIRECT_TOTAL, i, t);
  }
  report("direct", DIRECT_SAMPLES, DIRECT_TOTAL);
}

/** "storage: bench WHAT 4k read: min M median D [total median T] over N" on COM1. */
function report(what: string, buf: usize, total: usize): void {
  let at = putStr(LINE, "storage: bench ");
  at = putStr(at, what);
  at = putStr(at, " 4k read: min ");
  const med = median(buf, SAMPLES);
  at = putDec(at, <u64>sortedMin(buf));
  at = putStr(at, " median ");
  at = putDec(at, <u64>med);
  if (total != 0) {
    at = putStr(at, " total median ");
    at = putDec(at, <u64>median(total, SAMPLES));
  }
  at = putStr(at, " over ");
  emitOwn(putDec(at, <u64>SAMPLES));
}

/** Entered after a wasm trap ended `main`: the console I/O partition has no console channel, so the line goes to COM1
 * (a member of the pair sends it through its console channel). */
export function trapped(code: i32): void {
  let at = putStr(LINE, "wasm trap ");
  at = putDec(at, <u64>code);
  emitOwn(putStr(at, "; stopping with #UD"));
}
