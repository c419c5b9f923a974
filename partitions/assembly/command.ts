// The command partition ([0090], [0162]) in AssemblyScript, compiled by asc and toolchain/aot (partitions/
// aot-guest.ts): it sends the boot-time partition definitions to the ultravisor partition through the command
// channel, submits the channel with the COMMAND hypercall (the call only this partition may make), then waits for the
// ultravisor partition's completions on the channel's queue 1 and prints one line per definition: started, or refused
// with the error and whose it is (docs/specs/image-layout.md, "The bare-metal command channel and its completions").
// The payloads are made at build time and reach it as a table of (length, bytes) records; the program reads nothing
// of a payload but its first 16 bytes, the name, for its lines. Then it reads the lines typed on COM1, which the I/O
// partition puts on queue 1 of this partition's console channel, with the machine's own line reader
// (core/boot/assembly/command-line.ts, the code the simulator runs in V8), and answers each with one console line
// (docs/specs/command-channel.md, "Run-time definitions on the serial console"; "Status" says what is not carried
// out on the machine yet).

import { chan_pending, chan_remove } from "../../core/assembly/channel";
import { cl_check, cl_parse, cl_partition } from "../../core/boot/assembly/command-line";
import { rs_build_destroy } from "../../core/boot/assembly/resource-service";
import {
  CHANNEL_BYTES, HC_COMMAND, HC_POLL, HC_TIME, HC_YIELD, INFO_DATABASE, LINE, MAX_TEXT, OP_DEFINE, SIG_INLINE, consoleLine, hypercall, lastRequestId, putDec,
  putHex, putStr, send, slotChannel, trapLine, wasmAddress,
} from "./partition";

/** Records the table may hold (partitions/aot-guest.ts refuses more). */
const MAX_DEFINITIONS: i32 = 64;
/** Quanta a batch waits for its completions after COMMAND before the partition gives up. */
const WAIT_QUANTA: i64 = 2000;
const CONSOLE_SLOT: u64 = 0;
const REQUESTS: u32 = 0;
const COMPLETIONS: u32 = 1;
// Signal header fields (docs/specs/channel-abi.md section 4) and the completion's (image-layout.md).
const SIG_FLAGS: usize = 4;
const SIG_REQUEST_ID: usize = 8;
const SIG_STATUS: usize = 16;
const SIG_SOURCE: usize = 32;
const SIG_INLINE_LEN: usize = 20;
/** CDB byte 0 of a typed line: 1 when the I/O partition cut it at 63 bytes. */
const SIG_CDB: usize = 32;
const FLAG_COMPLETION: u32 = 4;
/** max_signals of queue 1: its header is the second after the channel header (channel offset 256 + 56). */
const Q1_MAX_SIGNALS: usize = 128 + 128 + 56;
/** Console lines left waiting for the I/O partition before this program yields to let it drain (the queue holds 15). */
const CONSOLE_BACKLOG: i32 = 8;
/** Name bytes printed: a console line is at most 64 bytes, and 15-character names must fit every line. */
const NAME_CHARS: u32 = 15;

// The batch in flight: request_id (0 once answered) and record address of each definition sent.
const PENDING_ID = memory.data(8 * MAX_DEFINITIONS);
const PENDING_RECORD = memory.data(8 * MAX_DEFINITIONS);
/** Removed completions land here: a whole channel page, since core copies the signal_size the queue header states. */
const IN_SIGNAL = memory.data(<i32>CHANNEL_BYTES);

/** Page of the Ultravisor Index in the read-only view of the database (0: no view); from main. */
let indexPage: u32 = 0;

/**
 * Sends the `count` records of the table at window address `table` on the command channel in slot `slot`, in batches
 * of at most queue 1's capacity, each submitted with COMMAND and awaited; then reads typed lines. `ui`: the page of the
 * Ultravisor Index, read through the view of the database the monitor maps (linear address p = physical page p).
 */
export function main(table: u64, count: i64, slot: i64, ui: u64): void {
  indexPage = <u32>ui;
  let at = putStr(LINE, "applying ");
  at = putDec(at, <u64>count);
  consoleLine(putStr(at, " boot-time partition definitions"));
  const ch = slotChannel(<u64>slot);
  // One completion per request must fit queue 1 (the ultravisor partition never waits for room there).
  let batchMax: i32 = ch == 0 ? 1 : <i32>load<u32>(ch + Q1_MAX_SIGNALS);
  if (batchMax < 1) batchMax = 1;
  if (batchMax > MAX_DEFINITIONS) batchMax = MAX_DEFINITIONS;
  let rec = wasmAddress(table);
  let i: i64 = 0;
  while (i < count) {
    let n: i32 = 0;
    while (i < count && n < batchMax) {
      const len = load<u32>(rec);
      const r = len == 0 || len > MAX_TEXT ? -4 : send(<u64>slot, OP_DEFINE, rec + 4, len);
      if (r == -1 && n > 0) break; // queue 0 full: this batch first, then this record again
      if (r < 0) {
        // A refused insert (queue full, channel failed the checks, or a record the build should have refused).
        at = putStr(LINE, "definition ");
        at = putDec(at, <u64>(i + 1));
        at = putStr(at, " not sent: status -");
        consoleLine(putDec(at, <u64>-r));
      } else {
        store<u64>(PENDING_ID + 8 * <usize>n, lastRequestId());
        store<u64>(PENDING_RECORD + 8 * <usize>n, <u64>rec);
        n++;
      }
      rec = (rec + 4 + <usize>len + 7) & ~(<usize>7);
      i++;
    }
    if (n == 0) continue;
    const result = hypercall(HC_COMMAND, slot, 0);
    at = putStr(LINE, "command channel submitted, hypercall result ");
    if (result < 0) at = putStr(at, "-");
    consoleLine(putDec(at, <u64>(result < 0 ? -result : result)));
    // Refused: the ultravisor partition was not told, so nothing will answer.
    if (result < 0 || !awaitCompletions(<u64>slot, n)) break;
  }
  serveTyped();
}

/** Queue 1 of the console channel: the lines typed on COM1, from the I/O partition. */
const TYPED: u32 = 1;
/** Queue 0's sig_base_offset (queue header at channel offset 128, field at +16): 256 when a second queue header follows. */
const Q0_SIG_BASE: usize = 128 + 16;
const INPUT_SIG_BASE: u64 = 256;
/** The line reader's output record (core/boot-module.ts COMMAND_LINE: 32 bytes + 8 channels of 20). */
const PARSED = memory.data(32 + 8 * 20);
/** A line was read but needs what this partition does not have yet: a view of the database (command-channel.md). */
const NOT_ON_THIS_MACHINE: i32 = -2006;

/**
 * Reads typed lines for ever: POLL when none waits, YIELD unless the I/O partition signalled meanwhile. A console
 * channel with one queue (queue 0's slots right after its own header: a build without typed lines) is never read.
 */
function serveTyped(): void {
  while (true) {
    const ch = slotChannel(CONSOLE_SLOT);
    if (ch != 0 && load<u64>(ch + Q0_SIG_BASE) != INPUT_SIG_BASE) {
      hypercall(HC_YIELD, 0, 0);
      continue;
    }
    const r = ch == 0 ? -1 : chan_remove(ch, CHANNEL_BYTES, TYPED, IN_SIGNAL);
    if (r == -1) {
      if ((hypercall(HC_POLL, 0, 0) & (<i64>1 << <i64>CONSOLE_SLOT)) == 0) hypercall(HC_YIELD, 0, 0);
      continue;
    }
    if (r < -1) {
      line(putDec(putStr(LINE, "typed lines: the queue failed the checks, not read again: status -"), <u64>-r));
      while (true) hypercall(HC_YIELD, 0, 0);
    }
    answerTyped();
  }
}

/**
 * One typed line: "> refused (status -N)" when the reader refuses it (a truncated line is malformed); otherwise
 * "> NAME VERB: read, not run here (status -2006)": read, and not carried out on the machine yet. Both fit a console
 * line (64 bytes) with a 15-character name.
 */
function answerTyped(): void {
  let len = <u32>load<u16>(IN_SIGNAL + SIG_INLINE_LEN);
  const truncated = load<u8>(IN_SIGNAL + SIG_CDB) != 0;
  if (len > 64) len = 64;
  let status = truncated ? -2001 : cl_parse(<u32>(IN_SIGNAL + SIG_INLINE), len, <u32>PARSED);
  // Against the database, when the monitor mapped the view: a name in use or unknown, more memory than is
  // Available, a server that is not running (4 KiB pages: the smallest an allotment gives).
  let teardown = false;
  if (status > 0 && indexPage != 0 && load<u64>(INFO_DATABASE) != 0) {
    const checked = cl_check(indexPage, <u32>PARSED, 4096);
    if (checked < 0) status = checked;
    else teardown = status != 1;
  }
  let at = putStr(LINE, "> ");
  if (status < 0) {
    at = putStr(at, "refused (status -");
    line(putStr(putDec(at, <u64>-status), ")"));
    return;
  }
  for (let j: usize = 0; j < 16; j++) {
    const c = load<u8>(PARSED + 16 + j);
    if (c == 0) break;
    store<u8>(at++, c);
  }
  at = putStr(at, status == 1 ? " create" : status == 2 ? " stop" : status == 3 ? " destroy" : " restart");
  at = putStr(at, ": read, not run here (status -");
  line(putStr(putDec(at, <u64>-NOT_ON_THIS_MACHINE), ")"));
  if (teardown) buildTeardown();
}

/** Where the resource service's builders write a request: 8 KiB, a whole command signal's worth. */
const REQUEST = memory.data(8192);

/**
 * The teardown transaction of [0224] for the partition a stop, destroy or restart names, built from the read-only
 * view by the resource service's own builder (core/boot/assembly/resource-service.ts, as the simulator builds it);
 * not sent yet (no whole transactions on this machine's command channel): "> NAME: teardown N records fnv 0x…",
 * FNV-1a of the request's bytes, so that a test can rebuild it from the database and compare.
 */
function buildTeardown(): void {
  const p = cl_partition();
  const bytes = p == 0 ? -1004 : rs_build_destroy(indexPage, <u32>REQUEST, 8192, p, 0, 0);
  let at = putStr(LINE, "> ");
  for (let j: usize = 0; j < 16; j++) {
    const c = load<u8>(PARSED + 16 + j);
    if (c == 0) break;
    store<u8>(at++, c);
  }
  if (bytes < 0) {
    at = putStr(at, ": teardown not built (status -");
    line(putStr(putDec(at, <u64>-bytes), ")"));
    return;
  }
  let h: u32 = 0x811c9dc5;
  for (let k: i32 = 0; k < bytes; k++) h = (h ^ <u32>load<u8>(REQUEST + <usize>k)) * 0x01000193;
  at = putStr(at, ": teardown ");
  at = putDec(at, <u64>load<u32>(REQUEST + 8));
  at = putStr(at, " records fnv ");
  line(putHex(at, h));
}

/**
 * Reads queue 1 until each of the batch's `n` requests has its completion, printing a line for each; POLL when it is
 * empty, and YIELD unless the ultravisor partition signalled it meanwhile. False when it gave up: WAIT_QUANTA quanta
 * passed, or the queue failed core's checks.
 */
function awaitCompletions(slot: u64, n: i32): bool {
  const ch = slotChannel(slot);
  const since = hypercall(HC_TIME, 0, 0);
  let missing = n;
  while (missing > 0) {
    const r = ch == 0 ? -2 : chan_remove(ch, CHANNEL_BYTES, COMPLETIONS, IN_SIGNAL);
    if (r == -1) {
      if (hypercall(HC_TIME, 0, 0) - since >= WAIT_QUANTA) {
        let at = putStr(LINE, "gave up waiting after ");
        at = putDec(at, <u64>WAIT_QUANTA);
        at = putStr(at, " quanta: ");
        at = putDec(at, <u64>missing);
        line(putStr(at, " completions missing"));
        return false;
      }
      if ((hypercall(HC_POLL, 0, 0) & (<i64>1 << <i64>slot)) == 0) hypercall(HC_YIELD, 0, 0);
      continue;
    }
    if (r < -1) {
      const at = putStr(LINE, "completions queue failed the checks: status -");
      line(putDec(at, <u64>-r));
      return false;
    }
    const id = load<u64>(IN_SIGNAL + SIG_REQUEST_ID);
    if ((load<u32>(IN_SIGNAL + SIG_FLAGS) & FLAG_COMPLETION) == 0) {
      const at = putStr(LINE, "not a completion, skipped: request ");
      line(putDec(at, id));
      continue;
    }
    let k: i32 = 0;
    while (k < n && (id == 0 || load<u64>(PENDING_ID + 8 * <usize>k) != id)) k++;
    if (k == n) {
      const at = putStr(LINE, "completion for no outstanding request: ");
      line(putDec(at, id));
      continue;
    }
    store<u64>(PENDING_ID + 8 * <usize>k, 0);
    missing--;
    printCompletion(<usize>load<u64>(PENDING_RECORD + 8 * <usize>k));
  }
  return true;
}

/** "definition NAME: partition 0x0000040f started" or "definition NAME: refused: error -N (SOURCE)". */
function printCompletion(rec: usize): void {
  let at = putStr(LINE, "definition ");
  const len = load<u32>(rec);
  const max = len < NAME_CHARS ? len : NAME_CHARS;
  for (let j: u32 = 0; j < max; j++) {
    const c = load<u8>(rec + 4 + <usize>j);
    if (c == 0) break;
    store<u8>(at++, c);
  }
  at = putStr(at, ": ");
  const status = load<i32>(IN_SIGNAL + SIG_STATUS);
  if (status == 0) {
    at = putStr(at, "partition ");
    at = putHex(at, load<u32>(IN_SIGNAL + SIG_INLINE));
    line(putStr(at, " started"));
    return;
  }
  at = putStr(at, "refused: error ");
  if (status < 0) at = putStr(at, "-");
  at = putDec(at, <u64>(status < 0 ? -<i64>status : <i64>status));
  const source = load<u32>(IN_SIGNAL + SIG_SOURCE);
  if (source == 1) at = putStr(at, " (core)");
  else if (source == 2) at = putStr(at, " (START)");
  else if (source == 3) at = putStr(at, " (ultravisor)");
  else {
    at = putStr(at, " (source ");
    at = putDec(at, <u64>source);
    at = putStr(at, ")");
  }
  line(at);
}

/** A console line; with CONSOLE_BACKLOG lines waiting, yields (a bounded number of times) for the I/O partition. */
function line(end: usize): void {
  consoleLine(end);
  const con = slotChannel(CONSOLE_SLOT);
  for (let t = 0; t < 100 && con != 0 && chan_pending(con, CHANNEL_BYTES, REQUESTS) >= CONSOLE_BACKLOG; t++) hypercall(HC_YIELD, 0, 0);
}

/** Entered after a wasm trap ended `main` (the entry code then stops the partition with ud2). */
export function trapped(code: i32): void {
  trapLine(code);
}
