// Channel requests of core.wasm (docs/specs/channel-abi.md section 4): command descriptor blocks with inline data and
// memory descriptor lists, and the server-side check that every MDL address lies in memory the client owns
// (claims 18, 20, 21; [0228]). A server that skips this check would let a client aim DMA anywhere.

const CDB_HEADER: u32 = 64;
const MDL_ENTRY: u32 = 16;

const F_INLINE_LEN: u32 = 20;
const F_MDL_COUNT: u32 = 22;
const F_CDB_LEN: u32 = 24;
const F_TOTAL: u32 = 48;

const CDB_OK: i32 = 0;
const CDB_MALFORMED: i32 = -1;
const CDB_ZERO_LENGTH: i32 = -2;
const CDB_WRAPS: i32 = -3;
const CDB_OUTSIDE_CLIENT: i32 = -4;
const CDB_TOTAL_MISMATCH: i32 = -5;
const CDB_BAD_RANGES: i32 = -6;

const NO_INDEX: u32 = 0xffff_ffff;

function align8(n: u32): u32 {
  return (n + 7) & ~7;
}

/** Signal-relative offset of the first MDL entry, or 0 when the request does not fit. */
function mdlStart(sig: usize, signalSize: u32): u32 {
  if (signalSize < CDB_HEADER) return 0;
  if (load<u8>(sig + F_CDB_LEN) > 16) return 0;
  const start = CDB_HEADER + align8(<u32>load<u16>(sig + F_INLINE_LEN));
  const end: u64 = <u64>start + <u64>load<u16>(sig + F_MDL_COUNT) * MDL_ENTRY;
  return end > <u64>signalSize ? 0 : start;
}

/**
 * Appends an MDL entry to the request at `sig` (a client building a request). Returns the new mdl_count, or -1
 * when it would not fit the signal or the length is 0. total_bytes is updated.
 */
export function chan_cdb_add_mdl(sig: usize, signalSize: u32, address: u64, length: u32): i32 {
  if (length == 0 || signalSize < CDB_HEADER) return -1;
  const count = <u32>load<u16>(sig + F_MDL_COUNT);
  if (count >= 0xffff) return -1;
  const at: u64 = <u64>CDB_HEADER + align8(<u32>load<u16>(sig + F_INLINE_LEN)) + <u64>count * MDL_ENTRY;
  if (at + MDL_ENTRY > <u64>signalSize) return -1;
  const e = sig + <usize>at;
  store<u64>(e, address);
  store<u32>(e + 8, length);
  store<u32>(e + 12, 0);
  store<u16>(sig + F_MDL_COUNT, <u16>(count + 1));
  store<u64>(sig + F_TOTAL, load<u64>(sig + F_TOTAL) + <u64>length);
  return <i32>(count + 1);
}

/**
 * Validates the request at `sig` against the client's owned memory: `nranges` records `{u64 base, u64 length}` at
 * `ranges`, sorted by base and disjoint. Returns CDB_OK or the first failure; the offending MDL entry index (or
 * 0xFFFFFFFF) is stored at `outIndex` when it is not 0.
 */
export function chan_cdb_validate(sig: usize, signalSize: u32, ranges: usize, nranges: u32, outIndex: usize): i32 {
  if (outIndex != 0) store<u32>(outIndex, NO_INDEX);
  // The ranges come from the database, but a bad list must not turn into a silent accept.
  for (let r: u32 = 0; r < nranges; r++) {
    const b = load<u64>(ranges + r * 16);
    const l = load<u64>(ranges + r * 16 + 8);
    if (l == 0 || b + l < b) return CDB_BAD_RANGES;
    if (r > 0) {
      const pb = load<u64>(ranges + (r - 1) * 16);
      const pl = load<u64>(ranges + (r - 1) * 16 + 8);
      if (b < pb + pl) return CDB_BAD_RANGES;
    }
  }
  const start = mdlStart(sig, signalSize);
  if (start == 0) return CDB_MALFORMED;
  const count = <u32>load<u16>(sig + F_MDL_COUNT);
  let total: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = sig + start + i * MDL_ENTRY;
    const addr = load<u64>(e);
    const len = <u64>load<u32>(e + 8);
    let code = CDB_OK;
    if (len == 0) code = CDB_ZERO_LENGTH;
    else if (addr + len < addr) code = CDB_WRAPS;
    else if (!covered(addr, addr + len, ranges, nranges)) code = CDB_OUTSIDE_CLIENT;
    if (code != CDB_OK) {
      if (outIndex != 0) store<u32>(outIndex, i);
      return code;
    }
    total += len; // at most 65535 entries of < 2^32 bytes: cannot wrap
  }
  if (total != load<u64>(sig + F_TOTAL)) return CDB_TOTAL_MISMATCH;
  return CDB_OK;
}

// [lo, hi) inside the union of the sorted disjoint ranges, crossing only where two ranges touch.
function covered(lo: u64, hi: u64, ranges: usize, n: u32): bool {
  // Binary search for the last range whose base <= lo.
  let a: u32 = 0;
  let b: u32 = n;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (load<u64>(ranges + m * 16) <= lo) a = m + 1;
    else b = m;
  }
  if (a == 0) return false;
  let r = a - 1;
  let end = load<u64>(ranges + r * 16) + load<u64>(ranges + r * 16 + 8);
  if (lo >= end) return false;
  while (end < hi) {
    r++;
    if (r >= n || load<u64>(ranges + r * 16) != end) return false;
    end += load<u64>(ranges + r * 16 + 8);
  }
  return true;
}
