// A hostile I/O partition, for test builds only (behaviour fault "fuzz-server"; test/hw/fuzz-server.test.ts): first,
// while the boot-time definitions are applied, every channel it serves is kept looking full; then the real I/O
// partition's program (io.ts) with, before every serving pass, a random value written at a random place of
// the first 512 bytes (channel header, queue header, first slots) of a random channel it serves — the server side of
// every console channel, the ultravisor partition's included, whose window also maps the resource database. Its
// clients must validate every field the server can write (docs/specs/channel-abi.md) and keep running with nothing
// outside their channel pages changed. The default image never holds this program (partitions/aot-guest.ts builds it
// only when the host definition asks for it). The PRNG is xorshift64 from the build's seed, printed first.

import { serve, io_emit } from "./io";
import { HC_POLL, HC_YIELD, INFO_NAME, INFO_SLOTS, LINE, MAX_SLOTS, hypercall, putDec, putStr, slotChannel } from "./partition";

export { io_emit, trapped } from "./io";

let state: u64 = 1;

/** Queue 0's header in a console channel, and its head (client-written) and tail (server-written) indices. */
const Q0: usize = 128;
const HEAD: usize = 60;
const TAIL: usize = 72;
const CONSOLE_SLOTS: u32 = 16;

/** xorshift64 (Marsaglia 2003). */
function rand(): u64 {
  let x = state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  state = x;
  return x;
}

function putHex64(at: usize, v: u64): usize {
  at = putStr(at, "0x");
  for (let i = 15; i >= 0; i--) {
    const d = <u32>((v >> (<u64>i * 4)) & 15);
    store<u8>(at, <u8>(d < 10 ? 0x30 + d : 0x57 + d));
    at++;
  }
  return at;
}

/**
 * One scribble: a random channel slot the info page lists (live ones only: slotChannel refuses an address that is not
 * the slot's place), a random 4-byte-aligned offset below 512 and a random width (4 or 8 bytes, so a field can change
 * alone or with its neighbour), and a value that is a quarter of the time a plausible index (below 32), a quarter of
 * the time small (plausible geometry, the values that get past naive checks), else any bits.
 */
function scribble(): bool {
  let n = load<u64>(INFO_SLOTS);
  if (n > MAX_SLOTS) n = MAX_SLOTS;
  if (n == 0) return false;
  const r = rand();
  const ch = slotChannel(r % n);
  if (ch == 0) return false;
  let at = ch + <usize>((r >> 8) & 0x1fc);
  let wide = ((r >> 22) & 1) != 0 && (at & 7) == 0;
  if ((r >> 24) & 1) {
    // Half the time the attacker is smarter: it restores the geometry a client checks (the console template's) and
    // changes one field alone, so that each of the client's checks is what stands between it and the value.
    repair(ch);
    const f = <i32>((r >> 25) % <u64>AIMED.length);
    at = ch + AIMED[f];
    wide = AIMED_WIDE[f];
  }
  let v = rand();
  const kind = (r >> 20) & 3;
  if (kind == 0) v &= 31;
  else if (kind == 1) v &= 0xfff;
  if (wide) store<u64>(at, v);
  else store<u32>(at, <u32>v);
  return true;
}

/**
 * The fields a client reads, one of which the smarter attacker changes alone (channel offsets; 8-byte fields marked in
 * AIMED_WIDE): signature, header_size, ch_space_offset, and queue 0's size, sig_base_offset, num_sent, num_overflows,
 * signal_size, max_slots, max_signals, head, num_received and tail.
 */
const AIMED: StaticArray<usize> = [0, 12, 64, Q0 + 8, Q0 + 16, Q0 + 32, Q0 + 40, Q0 + 48, Q0 + 52, Q0 + 56, Q0 + 60, Q0 + 64, Q0 + 72];
const AIMED_WIDE: StaticArray<bool> = [true, false, true, true, true, true, true, false, false, false, false, true, false];

/** Writes the console template's geometry back (channel-abi.md, "Fixed geometry"; io.ts consoleGeometry) and empties the queue. */
function repair(ch: usize): void {
  store<u64>(ch, 0x4c4e4345); // signature "ECNL"
  store<u32>(ch + 12, 128);
  store<u64>(ch + 64, 128);
  store<u64>(ch + Q0 + 8, <u64>CONSOLE_SLOTS * 128);
  store<u64>(ch + Q0 + 16, 128);
  store<u32>(ch + Q0 + 48, 128);
  store<u32>(ch + Q0 + 52, CONSOLE_SLOTS);
  store<u32>(ch + Q0 + 56, CONSOLE_SLOTS - 1);
  // And an empty queue with valid indices, so that the client's next line is written, whatever it was before.
  const head = load<u32>(ch + Q0 + HEAD) % CONSOLE_SLOTS;
  store<u32>(ch + Q0 + HEAD, head);
  store<u32>(ch + Q0 + TAIL, head);
}

/** Passes of the first phase, in which every channel is kept full (`stall`) and nothing is served. */
const STALL_PASSES: u64 = 64;

/**
 * The stalled queue: every live channel's tail is set one past its head, so the queue looks full for ever — a client
 * that waits for its server to catch up must give up (the ultravisor partition's line writer once waited without end,
 * and so never applied the command partition's definitions).
 */
function stall(): void {
  let n = load<u64>(INFO_SLOTS);
  if (n > MAX_SLOTS) n = MAX_SLOTS;
  for (let k: u64 = 0; k < n; k++) {
    const ch = slotChannel(k);
    if (ch == 0) continue;
    store<u32>(ch + Q0 + TAIL, (load<u32>(ch + Q0 + HEAD) + 1) % CONSOLE_SLOTS);
  }
}

/**
 * Announces itself and the seed; stalls every channel for STALL_PASSES passes while the command partition's
 * definitions are being applied, then scribbles and serves for ever, as io.ts's main does without the scribbling.
 */
export function main(seed: u64): void {
  state = seed == 0 ? 1 : seed;
  let at = putStr(LINE, "fuzz-server seed ");
  at = putHex64(at, state);
  io_emit(INFO_NAME, LINE, <u32>(at - LINE));
  let passes: u64 = 0;
  while (passes < STALL_PASSES) {
    stall();
    passes++;
    hypercall(HC_YIELD, 0, 0);
  }
  // Scribbles that wrote something (a pass finds no live channel before the monitor has filled the slots in).
  let scribbles: u64 = 0;
  while (true) {
    if (scribble()) scribbles++;
    const served = serve();
    passes++;
    if ((passes & 127) == 0) {
      at = putStr(LINE, "scribbled ");
      at = putDec(at, scribbles);
      at = putStr(at, " times in ");
      at = putDec(at, passes);
      at = putStr(at, " passes");
      io_emit(INFO_NAME, LINE, <u32>(at - LINE));
    }
    hypercall(HC_POLL, 0, 0);
    if (served == 0) hypercall(HC_YIELD, 0, 0);
  }
}
