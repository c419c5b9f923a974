// The command partition's reading of an operator's console line (docs/specs/command-channel.md, "Run-time
// definitions on the serial console"; ADR 0017), AssemblyScript beside the resource service's builders and exported
// by the same boot module: V8 runs it in the simulator (sim/platform.ts `typed`), our AOT compiles it with the boot
// module for the machine. `cl_parse` checks the line's form only; `cl_check` checks it against a read-only view of
// the database (names of live partitions, Available memory). Both write nothing but their output record, and a line
// is refused whole: nothing is changed before both have accepted it. No allocation, no runtime calls.

import { PD_MAGIC, PD_ME, PD_NAME, PN_MASK, PAGE_SHIFT, UI_AVAIL, UI_MAP_LOW, UI_ORDER } from "../../assembly/lib/layout";

/** Verbs (the record's field VERB). */
export const CL_CREATE: i32 = 1;
export const CL_STOP: i32 = 2;
export const CL_DESTROY: i32 = 3;
export const CL_RESTART: i32 = 4;

/** Statuses (command-channel.md's table; beside core's and the builders' −1000…). */
export const CL_MALFORMED: i32 = -2001;
export const CL_TOO_MUCH_MEMORY: i32 = -2002;
export const CL_UNKNOWN_CHANNEL: i32 = -2003;
export const CL_NAME: i32 = -2004;
export const CL_NO_SERVER: i32 = -2005;

/**
 * The output record (core/boot-module.ts COMMAND_LINE owns it for TypeScript): u32 verb, u32 channel count, u64
 * memory bytes, name 16 bytes NUL-padded, then per channel u32 type code and the server's name (16 bytes).
 */
const OUT_VERB: u32 = 0;
const OUT_CHANNELS: u32 = 4;
const OUT_MEMORY: u32 = 8;
const OUT_NAME: u32 = 16;
const OUT_CHANNEL: u32 = 32;
const CHANNEL_BYTES: u32 = 20;
/** Channels a line may list. */
export const CL_MAX_CHANNELS: u32 = 8;
/** Longest line read (the console signal's inline text is at most 63 bytes; longer lines are refused). */
const MAX_LINE: u32 = 63;
const NAME_MAX: u32 = 15;

let end: u32 = 0;
let pos: u32 = 0;
let wordAt: u32 = 0;
let wordLen: u32 = 0;

/** The next space-separated word in [wordAt, wordAt + wordLen); false at the line's end. */
function nextWord(): bool {
  while (pos < end && load<u8>(pos) == 0x20) pos++;
  wordAt = pos;
  while (pos < end && load<u8>(pos) != 0x20) pos++;
  wordLen = pos - wordAt;
  return wordLen > 0;
}

/**
 * A word of at most 8 bytes as a little-endian u64 (0 when longer): keywords are compared as numbers, since this
 * module may hold no static data (its linear memory is physical memory on the machine: core/boot-module.ts).
 */
function packed(at: u32, len: u32): u64 {
  if (len > 8) return 0;
  let v: u64 = 0;
  for (let i: u32 = 0; i < len; i++) v |= (<u64>load<u8>(at + i)) << (<u64>(8 * i));
  return v;
}
// The keywords, packed ("create" = 63 72 65 61 74 65 read little-endian).
const W_CREATE: u64 = 0x657461657263;
const W_STOP: u64 = 0x706f7473;
const W_DESTROY: u64 = 0x796f7274736564;
const W_RESTART: u64 = 0x74726174736572;
const W_CONTROL: u64 = 0x6c6f72746e6f63;
const W_CONSOLE: u64 = 0x656c6f736e6f63;
const W_STORAGE: u64 = 0x656761726f7473;
const W_NETWORK: u64 = 0x6b726f7774656e;

function nameChar(c: u32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d;
}

/** Copies [from, from + len) as a 16-byte NUL-padded name to `to`; false unless 1–15 name characters. */
function copyName(from: u32, len: u32, to: u32): bool {
  if (len == 0 || len > NAME_MAX) return false;
  for (let i: u32 = 0; i < 16; i++) store<u8>(to + i, 0);
  for (let i: u32 = 0; i < len; i++) {
    const c = <u32>load<u8>(from + i);
    if (!nameChar(c)) return false;
    store<u8>(to + i, <u8>c);
  }
  return true;
}

/** MEMORY: decimal digits and one unit K, M or G; 0 when malformed, zero or beyond 2^48 bytes. */
function memoryBytes(): u64 {
  if (wordLen < 2 || wordLen > 12) return 0;
  let n: u64 = 0;
  for (let i: u32 = 0; i + 1 < wordLen; i++) {
    const c = <u32>load<u8>(wordAt + i);
    if (c < 0x30 || c > 0x39) return 0;
    n = n * 10 + <u64>(c - 0x30);
  }
  const unit = <u32>load<u8>(wordAt + wordLen - 1);
  const shift: u64 = unit == 0x4b ? 10 : unit == 0x4d ? 20 : unit == 0x47 ? 30 : 64;
  if (shift == 64 || n == 0 || n > (<u64>1 << (48 - shift))) return 0;
  return n << shift;
}

/** A channel type the line may name: control 0, console 3, storage 4, network 5 (core/channel.ts's codes); −1 otherwise. */
function channelType(at: u32, len: u32): i32 {
  const w = packed(at, len);
  return w == W_CONTROL ? 0 : w == W_CONSOLE ? 3 : w == W_STORAGE ? 4 : w == W_NETWORK ? 5 : -1;
}

/**
 * Parses the `len` bytes at `text` into the record at `out`. Returns the verb (CL_CREATE…CL_RESTART) or
 * CL_MALFORMED / CL_UNKNOWN_CHANNEL. Forms: `create NAME MEMORY [TYPE:SERVER]…`, `stop NAME`, `destroy NAME`,
 * `restart NAME`.
 */
export function cl_parse(text: u32, len: u32, out: u32): i32 {
  for (let i: u32 = 0; i < OUT_CHANNEL + CL_MAX_CHANNELS * CHANNEL_BYTES; i += 4) store<u32>(out + i, 0);
  if (len == 0 || len > MAX_LINE) return CL_MALFORMED;
  for (let i: u32 = 0; i < len; i++) {
    const c = <u32>load<u8>(text + i);
    if (c < 0x20 || c > 0x7e) return CL_MALFORMED;
  }
  end = text + len;
  pos = text;
  if (!nextWord()) return CL_MALFORMED;
  const w = packed(wordAt, wordLen);
  const verb = w == W_CREATE ? CL_CREATE : w == W_STOP ? CL_STOP : w == W_DESTROY ? CL_DESTROY : w == W_RESTART ? CL_RESTART : 0;
  if (verb == 0) return CL_MALFORMED;
  if (!nextWord() || !copyName(wordAt, wordLen, out + OUT_NAME)) return CL_MALFORMED;
  if (verb == CL_CREATE) {
    if (!nextWord()) return CL_MALFORMED;
    const bytes = memoryBytes();
    if (bytes == 0) return CL_MALFORMED;
    store<u64>(out + OUT_MEMORY, bytes);
    let n: u32 = 0;
    while (nextWord()) {
      if (n == CL_MAX_CHANNELS) return CL_MALFORMED;
      let colon: u32 = 0;
      while (colon < wordLen && load<u8>(wordAt + colon) != 0x3a) colon++;
      if (colon == 0 || colon + 1 >= wordLen) return CL_MALFORMED;
      const c = out + OUT_CHANNEL + n * CHANNEL_BYTES;
      if (!copyName(wordAt + colon + 1, wordLen - colon - 1, c + 4)) return CL_MALFORMED;
      const t = channelType(wordAt, colon);
      if (t < 0) return CL_UNKNOWN_CHANNEL;
      store<u32>(c, <u32>t);
      n++;
    }
    store<u32>(out + OUT_CHANNELS, n);
  } else if (nextWord()) return CL_MALFORMED;
  store<u32>(out + OUT_VERB, <u32>verb);
  return verb;
}

// ---------------------------------------------------------------------------------------------- the view's checks

const PAGE: u64 = <u64>1 << PAGE_SHIFT;
let avail: u32 = 0;
let found: bool = false;
let wanted: u32 = 0;
let availBytes: u64 = 0;
/** The partition number (descriptor page) the last name lookup found, 0 if none. */
let foundPage: u32 = 0;

function span(scale: u32): u64 {
  return PAGE << (<u64>(10 * (scale - 1)));
}

function sameName(p: u32, name: u32): bool {
  const d = p * 4096;
  if (load<u32>(d) != PD_MAGIC || load<u32>(d + PD_ME) != p) return false;
  for (let i: u32 = 0; i < 16; i += 4) if (load<u32>(d + PD_NAME + i) != load<u32>(name + i)) return false;
  return true;
}

/** Map pages the walk may still visit: a well-formed view visits each of its pages once at most. */
let budget: u32 = 0;

/**
 * Counts Available bytes and looks for a live descriptor named `wanted` (an entry of a PKM that holds its own page).
 * The view is read as hostile: a map entry below 4 KiB scale, a map page outside this module's memory, or more map
 * pages than the memory holds end the walk there (so a map pointing back at itself is neither an endless recursion
 * nor an endless loop); the line is then refused on what was seen.
 */
function walk(page: u32, scale: u32, base: u64): void {
  if (scale < 1 || budget == 0 || (<u64>page + 1) * PAGE > (<u64>memory.size() << 16)) return;
  budget--;
  for (let i: u32 = 0; i < 1024; i++) {
    const v = load<i32>(page * 4096 + i * 4);
    const eb = base + <u64>i * span(scale);
    if (v < 0) walk(<u32>v & PN_MASK, scale - 1, eb);
    else if (<u32>v == avail && !(scale == 1 && eb / PAGE == <u64>avail)) availBytes += span(scale);
    else if (scale == 1 && <u64>v == eb / PAGE && wanted != 0 && !found && sameName(<u32>v, wanted)) {
      found = true;
      foundPage = <u32>v;
    }
  }
}

/** Whether a live partition (a descriptor page that owns itself) is named by the 16 bytes at `name`. */
function live(ui: u32, name: u32): bool {
  const u = ui * 4096;
  avail = load<u32>(u + UI_AVAIL);
  wanted = name;
  found = false;
  foundPage = 0;
  availBytes = 0;
  const order = load<u32>(u + UI_ORDER);
  budget = <u32>memory.size() << 4; // the 4 KiB pages of this module's memory
  if (order >= 2 && order <= 5) walk(load<u32>(u + UI_MAP_LOW), order, 0); // core's db_attach accepts 2–5 only
  return found;
}

let named: u32 = 0;
/** After cl_check of stop, destroy or restart: the named partition's number (its descriptor page); 0 otherwise. */
export function cl_partition(): u32 {
  return named;
}

/**
 * Checks a parsed record against the database whose index page is `ui` (read only): create — the name not live,
 * MEMORY a multiple of `granule` bytes and at most the Available bytes, every server live; stop, destroy, restart —
 * the name live. Returns 0 or CL_NAME, CL_TOO_MUCH_MEMORY, CL_NO_SERVER.
 */
export function cl_check(ui: u32, out: u32, granule: u32): i32 {
  const verb = <i32>load<u32>(out + OUT_VERB);
  const exists = live(ui, out + OUT_NAME);
  named = foundPage;
  if (verb != CL_CREATE) return exists ? 0 : CL_NAME;
  if (exists) return CL_NAME;
  const bytes = load<u64>(out + OUT_MEMORY);
  if (granule == 0 || bytes % <u64>granule != 0 || bytes > availBytes) return CL_TOO_MUCH_MEMORY;
  const n = load<u32>(out + OUT_CHANNELS);
  for (let k: u32 = 0; k < n && k < CL_MAX_CHANNELS; k++) {
    if (!live(ui, out + OUT_CHANNEL + k * CHANNEL_BYTES + 4)) return CL_NO_SERVER;
  }
  return 0;
}
