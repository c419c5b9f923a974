// Memory-channel signal queues of core.wasm, on the s-Par/visorbus layout of docs/specs/channel-abi.md: formatting a
// channel, inserting and removing signals with the barrier order of the spec, transition reporting and the client
// state machine. Channels sit in host physical memory (= linear memory); every export takes the channel base.

@external("hw", "mfence")
declare function hw_mfence(): void;

import { chan_type_guid, chan_type_known } from "./channel-types";

// ---- layout (docs/specs/channel-abi.md, sections 1-2) ----
const CH_SIGNATURE: u64 = 0x4c4e4345; // 'L'<<24 | 'N'<<16 | 'C'<<8 | 'E'
const CH_HEADER_SIZE: u32 = 128;
const Q_HEADER_SIZE: u32 = 128;

// channel header
const CH_SIG: u32 = 0;
const CH_LEGACY: u32 = 8;
const CH_HDRSIZE: u32 = 12;
const CH_SIZE: u32 = 16;
const CH_FEATURES: u32 = 24;
const CH_TYPE: u32 = 32;
const CH_PARTITION: u32 = 48;
const CH_HANDLE: u32 = 56;
const CH_SPACE: u32 = 64;
const CH_VERSION: u32 = 72;
const CH_PINDEX: u32 = 76;
const CH_ZONE: u32 = 80;
const CH_CLI_STR: u32 = 96;
const CH_CLI_BOOT: u32 = 100;
const CH_CMD_CLI: u32 = 104;
const CH_CLI_OS: u32 = 108;
const CH_CHARACTERISTIC: u32 = 112;
const CH_CMD_SRV: u32 = 116;
const CH_SRV_STATE: u32 = 120;
const CH_ERR_BOOT: u32 = 124;
const CH_RECOVER: u32 = 127;

// signal-queue header
const Q_VERSION: u32 = 0;
const Q_CHTYPE: u32 = 4;
const Q_SIZE: u32 = 8;
const Q_SIG_BASE: u32 = 16;
const Q_FEATURES: u32 = 24;
const Q_NUM_SENT: u32 = 32;
const Q_NUM_OVERFLOWS: u32 = 40;
const Q_SIGNAL_SIZE: u32 = 48;
const Q_MAX_SLOTS: u32 = 52;
const Q_MAX_SIGNALS: u32 = 56;
const Q_HEAD: u32 = 60;
const Q_NUM_RECEIVED: u32 = 64;
const Q_TAIL: u32 = 72;
const Q_NUM_IRQ: u32 = 96;
const Q_NUM_EMPTY: u32 = 104;

const MAX_SIGNAL_SIZE: u32 = 65536;
const MAX_SLOTS: u32 = 65536;

// ---- status codes (section 3) ----
const CH_TRANSITION: i32 = 1;
const CH_OK: i32 = 0;
const CH_FULL_OR_EMPTY: i32 = -1;
const CH_BAD_CHANNEL: i32 = -2;
const CH_BAD_QUEUE: i32 = -3;
const CH_BAD_ARGUMENT: i32 = -4;

const SRV_UNINITIALIZED: u32 = 0;
const SRV_READY: u32 = 1;
const CLI_DETACHED: u32 = 0;
const CLI_DISABLED: u32 = 1;
const CLI_ATTACHING: u32 = 2;
const CLI_ATTACHED: u32 = 3;
const CLI_BUSY: u32 = 4;
const CLI_OWNED: u32 = 5;

/** Bytes `chan_format` needs for `nqueues` queues of `maxSlots` slots of `signalSize` bytes; 0 when over 4 GB. */
export function chan_format_bytes(nqueues: u32, signalSize: u32, maxSlots: u32): u32 {
  const bytes: u64 = <u64>CH_HEADER_SIZE + <u64>nqueues * (<u64>Q_HEADER_SIZE + <u64>maxSlots * <u64>signalSize);
  return bytes > 0xffff_ffff ? 0 : <u32>bytes;
}

function zero(p: usize, n: u32): void {
  // No bulk memory in core.wasm (docs/specs/core-wasm.md), so clear with word stores.
  let i: u32 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(p + i, 0);
  for (; i < n; i++) store<u8>(p + i, 0);
}

function copy(dst: usize, src: usize, n: u32): void {
  let i: u32 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(dst + i, load<u64>(src + i));
  for (; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
}

/**
 * Writes a fresh channel of `size` bytes at `base`: header, `nqueues` queue headers from offset 128, then the slot
 * areas queue after queue (layout in section 2). `type` is a channel type code (channel-types.ts) whose GUID goes in
 * `chtype`. Queue q gets role q (0 request, 1 response, 2 error, ...). Nothing is written when the geometry fails.
 */
export function chan_format(base: usize, size: u32, nqueues: u32, signalSize: u32, maxSlots: u32, type: u32): i32 {
  if (<u64>base + <u64>size > (<u64>memory.size() << 16)) return CH_BAD_ARGUMENT;
  if (size < CH_HEADER_SIZE || signalSize == 0 || signalSize > MAX_SIGNAL_SIZE) return CH_BAD_ARGUMENT;
  if (maxSlots < 2 || maxSlots > MAX_SLOTS || nqueues > 1024) return CH_BAD_ARGUMENT;
  if (!chan_type_known(type)) return CH_BAD_ARGUMENT;
  const need = chan_format_bytes(nqueues, signalSize, maxSlots);
  if (need == 0 || need > size) return CH_BAD_ARGUMENT;
  zero(base, CH_HEADER_SIZE + nqueues * Q_HEADER_SIZE);
  store<u64>(base + CH_SIG, CH_SIGNATURE);
  store<u32>(base + CH_LEGACY, 0);
  store<u32>(base + CH_HDRSIZE, CH_HEADER_SIZE);
  store<u64>(base + CH_SIZE, <u64>size);
  store<u64>(base + CH_SPACE, <u64>CH_HEADER_SIZE);
  store<u32>(base + CH_VERSION, 1);
  chan_type_guid(type, base + CH_TYPE);
  store<u32>(base + CH_SRV_STATE, SRV_UNINITIALIZED);
  const area: u64 = <u64>maxSlots * <u64>signalSize;
  for (let q: u32 = 0; q < nqueues; q++) {
    const sigBase: u64 = <u64>(nqueues - q) * Q_HEADER_SIZE + <u64>q * area;
    writeQueue(base + CH_HEADER_SIZE + q * Q_HEADER_SIZE, sigBase, signalSize, maxSlots, q);
  }
  return CH_OK;
}

function writeQueue(qh: usize, sigBase: u64, signalSize: u32, maxSlots: u32, role: u32): void {
  zero(qh, Q_HEADER_SIZE);
  store<u32>(qh + Q_VERSION, 1);
  store<u32>(qh + Q_CHTYPE, role);
  store<u64>(qh + Q_SIZE, <u64>maxSlots * <u64>signalSize);
  store<u64>(qh + Q_SIG_BASE, sigBase);
  store<u64>(qh + Q_FEATURES, 0);
  store<u32>(qh + Q_SIGNAL_SIZE, signalSize);
  store<u32>(qh + Q_MAX_SLOTS, maxSlots);
  store<u32>(qh + Q_MAX_SIGNALS, maxSlots - 1);
  store<u32>(qh + Q_HEAD, 0);
  store<u32>(qh + Q_TAIL, 0);
}

/** Initialises queue `q` of an existing channel with any geometry (type-specific layouts). */
export function chan_queue_init(base: usize, len: u32, q: u32, sigBase: u64, signalSize: u32, maxSlots: u32, role: u32): i32 {
  const hdr = checkChannel(base, len);
  if (hdr < 0) return hdr;
  if (signalSize == 0 || signalSize > MAX_SIGNAL_SIZE || maxSlots < 2 || maxSlots > MAX_SLOTS) return CH_BAD_ARGUMENT;
  const size = load<u64>(base + CH_SIZE);
  const qoff: u64 = load<u64>(base + CH_SPACE) + <u64>q * Q_HEADER_SIZE;
  if (qoff + Q_HEADER_SIZE > size) return CH_BAD_ARGUMENT;
  if (sigBase < Q_HEADER_SIZE || sigBase > size) return CH_BAD_ARGUMENT;
  const end: u64 = qoff + sigBase + <u64>maxSlots * <u64>signalSize;
  if (end > size) return CH_BAD_ARGUMENT;
  writeQueue(base + <usize>qoff, sigBase, signalSize, maxSlots, role);
  return CH_OK;
}

/**
 * Checks the channel header; returns CH_OK or CH_BAD_CHANNEL. `len` is the length of the caller's own mapping of the
 * channel (the ultravisor's channel record, never a field the peer can write): the header's `size` may not exceed
 * it, so a client that rewrites `size` cannot stretch the channel over the server's other memory.
 */
function checkChannel(base: usize, len: u32): i32 {
  if (len < CH_HEADER_SIZE || <u64>base + <u64>len > (<u64>memory.size() << 16)) return CH_BAD_CHANNEL;
  if (load<u64>(base + CH_SIG) != CH_SIGNATURE) return CH_BAD_CHANNEL;
  if (load<u32>(base + CH_HDRSIZE) != CH_HEADER_SIZE) return CH_BAD_CHANNEL;
  const size = load<u64>(base + CH_SIZE);
  if (size < <u64>CH_HEADER_SIZE || size > <u64>len) return CH_BAD_CHANNEL;
  const space = load<u64>(base + CH_SPACE);
  if (space < <u64>CH_HEADER_SIZE || space > size) return CH_BAD_CHANNEL;
  return CH_OK;
}

export function chan_check(base: usize, len: u32): i32 {
  return checkChannel(base, len);
}

// Queue header address of a validated queue, or BAD_CHANNEL_ADDR / BAD_QUEUE_ADDR (a queue header is never below
// channel offset 128, so small values cannot be addresses; no global error slot, so several processors may call
// in at once). Everything the peer could have written is checked here, so the copy loops below cannot leave the
// channel whatever is in shared memory.
const BAD_CHANNEL_ADDR: usize = 2;
const BAD_QUEUE_ADDR: usize = 3;

function queue(base: usize, len: u32, q: u32): usize {
  if (checkChannel(base, len) < 0) return BAD_CHANNEL_ADDR;
  const size = load<u64>(base + CH_SIZE);
  const qoff: u64 = load<u64>(base + CH_SPACE) + <u64>q * Q_HEADER_SIZE;
  if (qoff + Q_HEADER_SIZE > size) return BAD_QUEUE_ADDR;
  const qh = base + <usize>qoff;
  const slots = load<u32>(qh + Q_MAX_SLOTS);
  const sigSize = load<u32>(qh + Q_SIGNAL_SIZE);
  const sigBase = load<u64>(qh + Q_SIG_BASE);
  if (
    slots < 2 ||
    slots > MAX_SLOTS ||
    load<u32>(qh + Q_MAX_SIGNALS) != slots - 1 ||
    sigSize == 0 ||
    sigSize > MAX_SIGNAL_SIZE ||
    sigBase > size ||
    qoff + sigBase + <u64>slots * <u64>sigSize > size ||
    load<u32>(qh + Q_HEAD) >= slots ||
    load<u32>(qh + Q_TAIL) >= slots
  )
    return BAD_QUEUE_ADDR;
  return qh;
}

/**
 * The geometry the copy will use, read ONCE into locals by the caller: the peer may rewrite the header between
 * queue()'s check and the copy (a timer interrupt can let it run in between), so the values used are checked again
 * here, against the caller's own mapping length `len`, which the peer cannot write (channel-abi.md, "Fixed geometry").
 */
// @ts-ignore: decorator
@inline function geometryOk(base: usize, len: u32, qh: usize, slots: u32, sigSize: u32, sigBase: u64, head: u32, tail: u32): bool {
  return slots >= 2 && slots <= MAX_SLOTS && sigSize != 0 && sigSize <= MAX_SIGNAL_SIZE && sigBase <= <u64>len &&
    <u64>(qh - base) + sigBase + <u64>slots * <u64>sigSize <= <u64>len && head < slots && tail < slots;
}

/**
 * Inserts the `signal_size` bytes at `src` into queue `q`. Returns 1 when the queue was empty (the caller signals
 * the other side: that is the only time it should), 0 when it was not, -1 when full (num_overflows counted).
 */
export function chan_insert(base: usize, len: u32, q: u32, src: usize): i32 {
  const qh = queue(base, len, q);
  if (qh < CH_HEADER_SIZE) return -<i32>qh;
  const slots = load<u32>(qh + Q_MAX_SLOTS);
  const head = load<u32>(qh + Q_HEAD);
  const tail = load<u32>(qh + Q_TAIL);
  const sigSize = load<u32>(qh + Q_SIGNAL_SIZE);
  const sigBase = load<u64>(qh + Q_SIG_BASE);
  if (!geometryOk(base, len, qh, slots, sigSize, sigBase, head, tail)) return -<i32>BAD_QUEUE_ADDR;
  let next = head + 1;
  if (next == slots) next = 0;
  if (next == tail) {
    store<u64>(qh + Q_NUM_OVERFLOWS, load<u64>(qh + Q_NUM_OVERFLOWS) + 1);
    return CH_FULL_OR_EMPTY;
  }
  copy(qh + <usize>sigBase + next * sigSize, src, sigSize);
  hw_mfence(); // the slot is visible before the head that publishes it
  store<u64>(qh + Q_NUM_SENT, load<u64>(qh + Q_NUM_SENT) + 1);
  store<u32>(qh + Q_HEAD, next);
  return head == tail ? CH_TRANSITION : CH_OK;
}

/**
 * Removes the oldest signal of queue `q` into `dst` (`signal_size` bytes). Returns 1 when this drained the queue,
 * 0 when signals remain, -1 when it was empty (num_empty counted).
 */
export function chan_remove(base: usize, len: u32, q: u32, dst: usize): i32 {
  const qh = queue(base, len, q);
  if (qh < CH_HEADER_SIZE) return -<i32>qh;
  const slots = load<u32>(qh + Q_MAX_SLOTS);
  const head = load<u32>(qh + Q_HEAD);
  const tail = load<u32>(qh + Q_TAIL);
  const sigSize = load<u32>(qh + Q_SIGNAL_SIZE);
  const sigBase = load<u64>(qh + Q_SIG_BASE);
  if (!geometryOk(base, len, qh, slots, sigSize, sigBase, head, tail)) return -<i32>BAD_QUEUE_ADDR;
  if (head == tail) {
    store<u64>(qh + Q_NUM_EMPTY, load<u64>(qh + Q_NUM_EMPTY) + 1);
    return CH_FULL_OR_EMPTY;
  }
  let next = tail + 1;
  if (next == slots) next = 0;
  copy(dst, qh + <usize>sigBase + next * sigSize, sigSize);
  hw_mfence(); // the slot has been read before it is handed back
  store<u64>(qh + Q_NUM_RECEIVED, load<u64>(qh + Q_NUM_RECEIVED) + 1);
  store<u32>(qh + Q_TAIL, next);
  return next == head ? CH_TRANSITION : CH_OK;
}

/** Signals waiting in queue `q`, or a negative status for an invalid channel. */
export function chan_pending(base: usize, len: u32, q: u32): i32 {
  const qh = queue(base, len, q);
  if (qh < CH_HEADER_SIZE) return -<i32>qh;
  const slots = load<u32>(qh + Q_MAX_SLOTS);
  const head = load<u32>(qh + Q_HEAD);
  const tail = load<u32>(qh + Q_TAIL);
  if (slots < 2 || slots > MAX_SLOTS || head >= slots || tail >= slots) return -<i32>BAD_QUEUE_ADDR;
  return <i32>(head >= tail ? head - tail : head + slots - tail);
}

/** The receiving side took an interrupt for queue `q` (num_irq_received += 1). */
export function chan_irq_received(base: usize, len: u32, q: u32): i32 {
  const qh = queue(base, len, q);
  if (qh < CH_HEADER_SIZE) return -<i32>qh;
  store<u64>(qh + Q_NUM_IRQ, load<u64>(qh + Q_NUM_IRQ) + 1);
  return CH_OK;
}

/**
 * `n` insert + remove pairs on queue `q` inside the module (one JS call for the lot): the benchmark's path and a
 * model of a server draining a busy queue. Returns the number of pairs that completed.
 */
export function chan_pump(base: usize, len: u32, q: u32, src: usize, dst: usize, n: u32): u32 {
  let done: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    if (chan_insert(base, len, q, src) < 0) break;
    if (chan_remove(base, len, q, dst) < 0) break;
    done++;
  }
  return done;
}

// ---- identity and states (section 1) ----

/** Fills the identity fields the ultravisor owns. `zone` points at 16 GUID bytes, or is 0 for none. */
export function chan_set_identity(base: usize, len: u32, partition: u64, handle: u64, partitionIndex: u32, zone: usize): i32 {
  const e = checkChannel(base, len);
  if (e < 0) return e;
  store<u64>(base + CH_PARTITION, partition);
  store<u64>(base + CH_HANDLE, handle);
  store<u32>(base + CH_PINDEX, partitionIndex);
  if (zone != 0) copy(base + CH_ZONE, zone, 16);
  else zero(base + CH_ZONE, 16);
  return CH_OK;
}

export function chan_set_features(base: usize, len: u32, features: u64): i32 {
  const e = checkChannel(base, len);
  if (e < 0) return e;
  store<u64>(base + CH_FEATURES, features);
  return CH_OK;
}

/** Sets the client-string offset (a NUL-terminated string inside the channel), the characteristic and command states. */
export function chan_set_misc(base: usize, len: u32, cliStr: u32, characteristic: u32, cmdCli: u32, cmdSrv: u32): i32 {
  const e = checkChannel(base, len);
  if (e < 0) return e;
  if (<u64>cliStr >= load<u64>(base + CH_SIZE)) return CH_BAD_ARGUMENT;
  store<u32>(base + CH_CLI_STR, cliStr);
  store<u32>(base + CH_CHARACTERISTIC, characteristic);
  store<u32>(base + CH_CMD_CLI, cmdCli);
  store<u32>(base + CH_CMD_SRV, cmdSrv);
  return CH_OK;
}

/** Error bits of the boot (which = 0) or OS (which = 1) client, and the recovery flag. */
export function chan_set_errors(base: usize, len: u32, errBoot: u32, errOs: u32, recover: u32): i32 {
  const e = checkChannel(base, len);
  if (e < 0) return e;
  if (errBoot > 255 || errOs > 255 || recover > 1) return CH_BAD_ARGUMENT;
  store<u8>(base + CH_ERR_BOOT, <u8>errBoot);
  store<u8>(base + CH_ERR_BOOT + 1, <u8>errOs);
  store<u8>(base + CH_RECOVER, <u8>recover);
  return CH_OK;
}

export function chan_server_state_set(base: usize, len: u32, state: u32): i32 {
  const e = checkChannel(base, len);
  if (e < 0) return e;
  if (state > SRV_READY) return CH_BAD_ARGUMENT;
  hw_mfence(); // queue initialisation is visible before READY
  store<u32>(base + CH_SRV_STATE, state);
  return CH_OK;
}

/** Whether the client-state transition old → new is one visorbus accepts (section 1). */
export function chan_client_transition_ok(o: u32, n: u32): bool {
  if (o > CLI_OWNED || n > CLI_OWNED) return false;
  if (o == n) return true;
  if (n == CLI_DISABLED) return o == CLI_DETACHED || o == CLI_ATTACHING || o == CLI_ATTACHED;
  if (n == CLI_DETACHED) return o == CLI_ATTACHING || o == CLI_ATTACHED;
  if (n == CLI_ATTACHING) return o == CLI_DETACHED;
  if (n == CLI_ATTACHED) return o == CLI_ATTACHING || o == CLI_DETACHED || o == CLI_BUSY;
  if (n == CLI_BUSY) return o == CLI_ATTACHED;
  // n == OWNED
  return o != CLI_OWNED;
}

/** Moves the boot client (which = 0) or the OS client (which = 1) to `state` if the transition is allowed. */
export function chan_client_state_set(base: usize, len: u32, which: u32, state: u32): i32 {
  const e = checkChannel(base, len);
  if (e < 0) return e;
  if (which > 1) return CH_BAD_ARGUMENT;
  const at = base + (which == 0 ? CH_CLI_BOOT : CH_CLI_OS);
  if (!chan_client_transition_ok(load<u32>(at), state)) return CH_BAD_ARGUMENT;
  store<u32>(at, state);
  return CH_OK;
}
