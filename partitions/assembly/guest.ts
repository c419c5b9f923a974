// A demo guest written in AssemblyScript, compiled by asc and then by toolchain/aot into x86-64 that runs at CPL 3
// in its partition window (partitions/aot-guest.ts builds it). Like the assembly guests, every few quanta it prints
// a counter and an FNV-1a checksum of its own static data through its console channel. Its only ways out of its
// linear memory are the two imports, which the partition runtime implements with `int 0x80` and the console
// channel (docs/specs/hypercall-abi.md).

@external("env", "hypercall")
declare function hypercall(nr: i64, a: i64, b: i64): i64;

@external("env", "console")
declare function consoleWrite(ptr: usize, len: i32): void;

const HC_TIME: i64 = 2;
/** Line buffer in linear memory, above the static data. */
const LINE: usize = 0x8000;

function putStr(at: usize, s: string): usize {
  for (let i = 0; i < s.length; i++) store<u8>(at + <usize>i, <u8>s.charCodeAt(i));
  return at + <usize>s.length;
}

function putDec(at: usize, v: u64): usize {
  let digits: i32 = 1;
  for (let t = v / 10; t > 0; t /= 10) digits++;
  for (let i = digits - 1; i >= 0; i--) {
    store<u8>(at + <usize>i, <u8>(0x30 + <u32>(v % 10)));
    v /= 10;
  }
  return at + <usize>digits;
}

function putHex(at: usize, v: u32): usize {
  at = putStr(at, "0x");
  for (let i = 7; i >= 0; i--) {
    const d = (v >> (<u32>i * 4)) & 15;
    store<u8>(at, <u8>(d < 10 ? 0x30 + d : 0x57 + d));
    at++;
  }
  return at;
}

/** FNV-1a over [start, end) of linear memory. */
export function checksum(start: usize, end: usize): u32 {
  let h: u32 = 0x811c9dc5;
  for (let p = start; p < end; p++) h = (h ^ <u32>load<u8>(p)) * 0x01000193;
  return h;
}

/** Runs for ever: a line every `period` quanta. [dataStart, dataEnd) is the static data the checksum covers. */
export function main(period: i64, dataStart: usize, dataEnd: usize): void {
  let last = hypercall(HC_TIME, 0, 0);
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
    at = putHex(at, checksum(dataStart, dataEnd));
    consoleWrite(LINE, <i32>(at - LINE));
  }
}
