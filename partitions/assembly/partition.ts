// What every AssemblyScript partition program shares (guest.ts, io.ts, command.ts; built by
// partitions/aot-guest.ts): the window seen as linear memory, hypercalls, console lines through the partition's
// console channel with core's own queue code, and text formatting. The linear-memory base is the partition window,
// so a wasm address is a window offset: the info page is address 0 and channel slot k is at 0x40000 + 0x1000·k
// (docs/specs/image-layout.md, AssemblyScript partitions). Nothing here allocates: no strings are built at run time,
// only bytes stored into static buffers.

import { chan_insert } from "../../core/assembly/channel";

@external("hw", "hypercall")
export declare function hypercall(nr: i64, a: i64, b: i64): i64;

// Hypercall numbers (docs/specs/hypercall-abi.md): the only AssemblyScript copy of monitor-gen/layout.ts's HYPERCALL,
// which partitions/hypercall-numbers.test.ts holds equal to it (every AssemblyScript partition file takes them from here).
export const HC_YIELD: i64 = 0;
export const HC_SIGNAL: i64 = 1;
export const HC_TIME: i64 = 2;
export const HC_COMMAND: i64 = 3;
export const HC_POLL: i64 = 4;
export const HC_START: i64 = 5;
export const HC_DMA_ADDR: i64 = 6;
export const HC_CLIENT_WRITE: i64 = 7;
export const HC_PAIR_EPOCH: i64 = 8;
export const HC_DMA_DONE: i64 = 9;

// The window (docs/specs/image-layout.md): its virtual base, the info page's fields, the channel slots.
export const WINDOW: u64 = 0x0000_0080_0000_0000;
export const INFO_SLOTS: usize = 8;
export const INFO_NAME: usize = 16;
/** Non-zero when the monitor mapped a view of the database for this partition (monitor-gen/layout.ts INFO.database). */
export const INFO_DATABASE: usize = 40;
export const NAME_BYTES: usize = 16;
export const MAX_SLOTS: u64 = 16;
export const ROLE_SERVER: u8 = 1;
export const ROLE_CLOSED: u8 = 2;
const INFO_SLOT: usize = 64;
const SLOT_RECORD: usize = 32;
const SLOT_BASE: u64 = 0x40000;
export const CHANNEL_BYTES: u32 = 4096;

// Requests (docs/specs/channel-abi.md section 4): the 64-byte header, then the inline bytes.
export const SIGNAL_BYTES: usize = 128;
export const MAX_TEXT: u32 = 64;
export const OP_TEXT: u32 = 1;
export const OP_DEFINE: u32 = 2;
const TO_SERVER: u32 = 1;
/** flags bit 3 (core/channel-layout.ts SIGNAL_FLAGS.more): the TEXT continues in the client's next request. */
export const FLAG_MORE: u32 = 8;
export const SIG_FLAGS: usize = 4;
const SIG_REQUEST_ID: usize = 8;
const SIG_INLINE_LEN: usize = 20;
export const SIG_INLINE: usize = 64;

/** Wasm address of the info page's record of slot k. */
export function slotRecord(k: u64): usize {
  return INFO_SLOT + <usize>k * SLOT_RECORD;
}

/**
 * Wasm address of the channel in slot k, or 0 when the slot is not live: its record's window address is 0 (the
 * monitor has not filled it in yet) or is not slot k's place in the window (never touch what that would point at).
 */
export function slotChannel(k: u64): usize {
  const at = load<u64>(slotRecord(k));
  if (at != WINDOW + SLOT_BASE + k * <u64>CHANNEL_BYTES) return 0;
  return <usize>(at - WINDOW);
}

/** A window address given by the build, as a wasm address. */
export function wasmAddress(windowAddress: u64): usize {
  return <usize>(windowAddress - WINDOW);
}

let requestId: u64 = 0;
/** The request_id of the last request `send` built (a completion echoes it). */
export function lastRequestId(): u64 {
  return requestId;
}
const OUT_SIGNAL = memory.data(<i32>SIGNAL_BYTES);

/**
 * Inserts one request (opcode, `len` ≤ 64 inline bytes from `src`) into queue 0 of the channel in slot k. Returns
 * core's status: 1 inserted into an empty queue (the caller tells the peer: [0120] signals only that transition),
 * 0 inserted, −1 full (dropped, num_overflows counted), < −1 the channel failed core's checks or is not live.
 */
export function send(k: u64, opcode: u32, src: usize, len: u32): i32 {
  const ch = slotChannel(k);
  if (ch == 0) return -4;
  if (len > MAX_TEXT) len = MAX_TEXT;
  for (let i: usize = 0; i < SIGNAL_BYTES; i += 8) store<u64>(OUT_SIGNAL + i, 0);
  store<u32>(OUT_SIGNAL, opcode);
  store<u32>(OUT_SIGNAL + 4, TO_SERVER);
  requestId++;
  store<u64>(OUT_SIGNAL + SIG_REQUEST_ID, requestId);
  store<u16>(OUT_SIGNAL + SIG_INLINE_LEN, <u16>len);
  for (let i: u32 = 0; i < len; i++) store<u8>(OUT_SIGNAL + SIG_INLINE + <usize>i, load<u8>(src + <usize>i));
  return chan_insert(ch, CHANNEL_BYTES, 0, OUT_SIGNAL);
}

/** The console channel is slot 0 of every partition but the I/O partition (image/ultravisor.ts). */
const CONSOLE_SLOT: u64 = 0;
/** Line buffer: formatting functions append at `at` and return the new end. */
export const LINE = memory.data(256);

/**
 * Writes LINE … `end` as one console line and waits for room: a full queue yields the quantum and tries again (lines
 * that must not be lost, such as the storage workload's acknowledgements, which `uvt disk check` reads).
 */
export function sendLine(end: usize): void {
  while (true) {
    const r = send(CONSOLE_SLOT, OP_TEXT, LINE, <u32>(end - LINE));
    if (r == 1) hypercall(HC_SIGNAL, <i64>CONSOLE_SLOT, 0);
    if (r != -1) return;
    hypercall(HC_YIELD, 0, 0);
  }
}

/** Writes LINE … `end` as one console line (a full queue drops it: the I/O partition is behind). */
export function consoleLine(end: usize): void {
  if (send(CONSOLE_SLOT, OP_TEXT, LINE, <u32>(end - LINE)) == 1) hypercall(HC_SIGNAL, <i64>CONSOLE_SLOT, 0);
}

export function putStr(at: usize, s: string): usize {
  for (let i = 0; i < s.length; i++) store<u8>(at + <usize>i, <u8>s.charCodeAt(i));
  return at + <usize>s.length;
}

export function putDec(at: usize, v: u64): usize {
  let digits: i32 = 1;
  for (let t = v / 10; t > 0; t /= 10) digits++;
  for (let i = digits - 1; i >= 0; i--) {
    store<u8>(at + <usize>i, <u8>(0x30 + <u32>(v % 10)));
    v /= 10;
  }
  return at + <usize>digits;
}

/** "0x" and eight hex digits (checksums are 32-bit). */
export function putHex(at: usize, v: u32): usize {
  at = putStr(at, "0x");
  for (let i = 7; i >= 0; i--) {
    const d = (v >> (<u32>i * 4)) & 15;
    store<u8>(at, <u8>(d < 10 ? 0x30 + d : 0x57 + d));
    at++;
  }
  return at;
}

/** The line every partition but the I/O partition prints when a wasm trap ended `main`. */
export function trapLine(code: i32): void {
  let at = putStr(LINE, "wasm trap ");
  at = putDec(at, <u64>code);
  at = putStr(at, "; stopping with #UD");
  consoleLine(at);
}
