// A demo guest written in AssemblyScript (guests X, Y and Z of the default host), compiled by asc and then by
// toolchain/aot into x86-64 that runs at CPL 3 in its partition window (partitions/aot-guest.ts builds it).
// Every few quanta it prints a counter and an FNV-1a checksum of its own code and read-only data, which it reads
// through its linear memory (the linear memory is the window: docs/specs/image-layout.md); optionally it first tries
// the command hypercall once and prints the refusal. Lines go through its console channel (partition.ts).

import { HC_COMMAND, HC_START, HC_TIME, LINE, consoleLine, hypercall, putDec, putHex, putStr, trapLine, wasmAddress } from "./partition";
import { diskBench, diskWorkload, hostileStorage } from "./storage-client";
import { pairWorkload } from "./storage-pair-client";

/** FNV-1a over [start, end) of linear memory. */
export function checksum(start: usize, end: usize): u32 {
  let h: u32 = 0x811c9dc5;
  for (let p = start; p < end; p++) h = (h ^ <u32>load<u8>(p)) * 0x01000193;
  return h;
}

/**
 * Runs for ever: a line every `period` quanta. [sumStart, sumEnd) are the window addresses the checksum covers;
 * `probeCommand` ≠ 0 tries the command hypercall and START once first (a guest may do neither: the monitor refuses
 * and audits both). `disk` 1 runs the storage workload over [first, first + blocks) `passes` times first
 * (storage-client.ts), 2 the hostile storage client against block `first`, 3 the storage benchmark's client over
 * [first, first + blocks); then the lines as every guest. `pair` ≠ 0: the workload goes to the storage pair
 * (docs/specs/storage-failover.md §7.3).
 */
export function main(period: i64, sumStart: u64, sumEnd: u64, probeCommand: i64, disk: i64, first: i64, blocks: i64, passes: i64, pair: i64): void {
  const start = wasmAddress(sumStart);
  const end = wasmAddress(sumEnd);
  if (disk == 1 && pair != 0) pairWorkload(<u32>first, <u32>blocks, <u32>passes);
  else if (disk == 1) diskWorkload(<u32>first, <u32>blocks, <u32>passes);
  if (disk == 2) hostileStorage(<u32>first);
  if (disk == 3) diskBench(<u32>first, <u32>blocks);
  let last = hypercall(HC_TIME, 0, 0);
  if (probeCommand != 0) {
    const r = hypercall(HC_COMMAND, 0, 0);
    consoleLine(putDec(putStr(LINE, "command hypercall refused: result -"), <u64>-r));
    const s = hypercall(HC_START, 0, 0);
    consoleLine(putDec(putStr(LINE, "start hypercall refused: result -"), <u64>-s));
  }
  let ticks: u64 = 0;
  let work: u64 = 0;
  while (true) {
    work++;
    const now = hypercall(HC_TIME, 0, 0);
    if (now - last < period) continue;
    last = now;
    ticks++;
    let at = putStr(LINE, "tick ");
    at = putDec(at, ticks);
    at = putStr(at, " quantum ");
    at = putDec(at, <u64>now);
    at = putStr(at, " work ");
    at = putDec(at, work);
    at = putStr(at, " checksum ");
    at = putHex(at, checksum(start, end));
    consoleLine(at);
  }
}

/** Entered after a wasm trap ended `main` (the entry code then stops the partition with ud2). */
export function trapped(code: i32): void {
  trapLine(code);
}
