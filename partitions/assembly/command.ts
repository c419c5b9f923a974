// The command partition ([0090], [0162]) in AssemblyScript, compiled by asc and toolchain/aot (partitions/
// aot-guest.ts): it sends the boot-time partition definitions to the ultravisor partition through the command
// channel, then submits the channel with the COMMAND hypercall, the call only this partition may make. The payloads
// are made at build time and reach it as an opaque table of (length, bytes) records (docs/specs/image-layout.md,
// AssemblyScript partitions): this program never looks inside one, so the definition format can change without it.

import { HC_COMMAND, HC_YIELD, LINE, MAX_TEXT, OP_DEFINE, consoleLine, hypercall, putDec, putStr, send, trapLine, wasmAddress } from "./partition";

/** Sends `count` records of the table at window address `table` on the channel in slot `slot`, then submits it. */
export function main(table: u64, count: i64, slot: i64): void {
  let at = putStr(LINE, "applying ");
  at = putDec(at, <u64>count);
  consoleLine(putStr(at, " boot-time partition definitions"));
  let rec = wasmAddress(table);
  for (let i: i64 = 0; i < count; i++) {
    const len = load<u32>(rec);
    const r = len == 0 || len > MAX_TEXT ? -4 : send(<u64>slot, OP_DEFINE, rec + 4, len);
    if (r < 0) {
      // A refused insert (queue full, channel failed the checks, or a record the build should have refused).
      at = putStr(LINE, "definition ");
      at = putDec(at, <u64>(i + 1));
      at = putStr(at, " not sent: status -");
      consoleLine(putDec(at, <u64>-r));
    }
    rec = (rec + 4 + <usize>len + 7) & ~(<usize>7);
  }
  const result = hypercall(HC_COMMAND, slot, 0);
  at = putStr(LINE, "command channel submitted, hypercall result ");
  if (result < 0) at = putStr(at, "-");
  consoleLine(putDec(at, <u64>(result < 0 ? -result : result)));
  while (true) hypercall(HC_YIELD, 0, 0);
}

/** Entered after a wasm trap ended `main` (the entry code then stops the partition with ud2). */
export function trapped(code: i32): void {
  trapLine(code);
}
