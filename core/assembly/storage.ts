// The storage channel's server-side logic in core.wasm (docs/specs/storage-channel.md): the check of one request
// record — a SCSI-style CDB with an MDL of client buffers — against the disk's capacity and the client's memory
// ranges, the response data of the commands that return some (INQUIRY, READ CAPACITY), and the completion record.
// Run by V8 in the simulator (sim/storage-server.ts) and, AOT-compiled, by the I/O partition on the machine; the
// caller moves the data. The request must be the server's own copy (the client may rewrite its slot at any time).

import { chan_cdb_validate } from "./channel-cdb";

const STOR_SIGNAL: u32 = 256;
const STOR_BLOCK: u32 = 512;
const STOR_MAX_MDL: u32 = 12;
/** The largest transfer one request may ask for (storage-channel.md §2): 65,536 blocks, 32 MiB, so `bytes` fits a u32. */
const STOR_MAX_BLOCKS: u64 = 65536;

// Request fields (channel-abi.md section 4).
const F_OPCODE: usize = 0;
const F_FLAGS: usize = 4;
const F_REQUEST_ID: usize = 8;
const F_INLINE_LEN: usize = 20;
const F_MDL_COUNT: usize = 22;
const F_CDB_LEN: usize = 24;
const F_CDB: usize = 32;
const F_TOTAL: usize = 48;
const F_STATUS: usize = 16;
/** The first MDL entry: inline_len is 0 for storage requests, so the MDL follows the 64-byte header. */
const F_MDL: usize = 64;
const TO_SERVER: u32 = 1;
const FROM_SERVER: u32 = 2;
const COMPLETION: u32 = 4;

// Plan, written by stor_check (32 bytes).
const P_KIND: usize = 0;
const P_BLOCKS: usize = 4;
const P_LBA: usize = 8;
const P_BYTES: usize = 16;
const P_SENSE_KEY: usize = 20;
const P_ASC: usize = 21;
const P_ASCQ: usize = 22;
const P_REASON: usize = 24;
const P_MDL_INDEX: usize = 28;

/** What the server does for a request that passed the check. */
const STOR_NONE: u32 = 0;
const STOR_READ: u32 = 1;
const STOR_WRITE: u32 = 2;
const STOR_DATA_IN: u32 = 3;

// Refusal reasons (storage-channel.md section 4).
const R_MALFORMED: i32 = -1;
const R_OPCODE: i32 = -2;
const R_DIRECTION: i32 = -3;
const R_LBA: i32 = -4;
const R_LENGTH: i32 = -5;
const R_ALLOCATION: i32 = -6;

const OP_TEST_UNIT_READY: u32 = 0x00;
const OP_INQUIRY: u32 = 0x12;
const OP_READ_CAPACITY10: u32 = 0x25;
const OP_READ10: u32 = 0x28;
const OP_WRITE10: u32 = 0x2a;
const OP_SYNC10: u32 = 0x35;
const OP_READ16: u32 = 0x88;
const OP_WRITE16: u32 = 0x8a;
const OP_SERVICE_IN16: u32 = 0x9e;
const SA_READ_CAPACITY16: u32 = 0x10;

const INQUIRY_BYTES: u32 = 36;
const CAPACITY10_BYTES: u32 = 8;
const CAPACITY16_BYTES: u32 = 32;

function be16(p: usize): u32 {
  return (<u32>load<u8>(p) << 8) | <u32>load<u8>(p + 1);
}

function be32(p: usize): u32 {
  return (be16(p) << 16) | be16(p + 2);
}

function be64(p: usize): u64 {
  return (<u64>be32(p) << 32) | <u64>be32(p + 4);
}

function putBe32(p: usize, v: u32): void {
  store<u8>(p, <u8>(v >> 24));
  store<u8>(p + 1, <u8>(v >> 16));
  store<u8>(p + 2, <u8>(v >> 8));
  store<u8>(p + 3, <u8>v);
}

function refuse(plan: usize, reason: i32, key: u8, asc: u8): i32 {
  store<u32>(plan + P_KIND, STOR_NONE);
  store<u32>(plan + P_BLOCKS, 0);
  store<u64>(plan + P_LBA, 0);
  store<u32>(plan + P_BYTES, 0);
  store<u8>(plan + P_SENSE_KEY, key);
  store<u8>(plan + P_ASC, asc);
  store<u8>(plan + P_ASCQ, 0);
  store<i32>(plan + P_REASON, reason);
  return reason;
}

/** The CDB length each supported opcode has, 0 for an unsupported one. */
function cdbLength(op: u32): u32 {
  if (op == OP_TEST_UNIT_READY || op == OP_INQUIRY) return 6;
  if (op == OP_READ_CAPACITY10 || op == OP_READ10 || op == OP_WRITE10 || op == OP_SYNC10) return 10;
  if (op == OP_READ16 || op == OP_WRITE16 || op == OP_SERVICE_IN16) return 16;
  return 0;
}

/**
 * Checks the request at `sig` (`signalSize` bytes, the server's copy) for a disk of `capacity` blocks and a client
 * whose memory is `nranges` sorted disjoint `{u64 base, u64 length}` records at `ranges` (in the client's own address
 * space, as its MDL addresses are). Writes the plan (32 bytes) at `plan` and returns 0 when the request may be
 * carried out, else the (negative) reason, with the sense in the plan; a refused request must transfer nothing.
 */
export function stor_check(sig: usize, signalSize: u32, capacity: u64, ranges: usize, nranges: u32, plan: usize): i32 {
  store<i32>(plan + P_MDL_INDEX, -1);
  if (signalSize != STOR_SIGNAL) return refuse(plan, R_MALFORMED, 5, 0x24);
  const op = load<u32>(sig + F_OPCODE);
  if (op > 0xff) return refuse(plan, R_MALFORMED, 5, 0x24);
  const want = cdbLength(op);
  if (want == 0) return refuse(plan, R_OPCODE, 5, 0x20);
  const mdl = <u32>load<u16>(sig + F_MDL_COUNT);
  if (<u32>load<u8>(sig + F_CDB_LEN) != want || <u32>load<u8>(sig + F_CDB) != op || load<u16>(sig + F_INLINE_LEN) != 0 || mdl > STOR_MAX_MDL
    || load<u32>(sig + F_STATUS) != 0) {
    return refuse(plan, R_MALFORMED, 5, 0x24);
  }
  // Each MDL entry's reserved word is 0 (channel-abi.md section 4).
  for (let i: u32 = 0; i < mdl; i++) if (load<u32>(sig + F_MDL + <usize>(i * 16) + 12) != 0) return refuse(plan, R_MALFORMED, 5, 0x24);
  const cdb = sig + F_CDB;
  const total = load<u64>(sig + F_TOTAL);
  let kind = STOR_NONE;
  let lba: u64 = 0;
  let blocks: u64 = 0;
  let bytes: u64 = 0;
  if (op == OP_READ10 || op == OP_WRITE10 || op == OP_READ16 || op == OP_WRITE16) {
    const wide = op == OP_READ16 || op == OP_WRITE16;
    lba = wide ? be64(cdb + 2) : <u64>be32(cdb + 2);
    blocks = wide ? <u64>be32(cdb + 10) : <u64>be16(cdb + 7);
    if (blocks > STOR_MAX_BLOCKS) return refuse(plan, R_LENGTH, 5, 0x24);
    kind = op == OP_READ10 || op == OP_READ16 ? STOR_READ : STOR_WRITE;
    if (blocks == 0) kind = STOR_NONE;
    bytes = blocks * <u64>STOR_BLOCK;
  } else if (op == OP_INQUIRY) {
    // Only the standard data: EVPD (vital product data pages) and a page code are refused, not answered wrongly.
    if ((<u32>load<u8>(cdb + 1) & 1) != 0 || load<u8>(cdb + 2) != 0) return refuse(plan, R_MALFORMED, 5, 0x24);
    kind = STOR_DATA_IN;
    bytes = <u64>be16(cdb + 3);
    if (bytes > <u64>INQUIRY_BYTES) bytes = <u64>INQUIRY_BYTES;
  } else if (op == OP_READ_CAPACITY10) {
    kind = STOR_DATA_IN;
    bytes = <u64>CAPACITY10_BYTES;
  } else if (op == OP_SERVICE_IN16) {
    if (<u32>load<u8>(cdb + 1) != SA_READ_CAPACITY16) return refuse(plan, R_OPCODE, 5, 0x20);
    kind = STOR_DATA_IN;
    bytes = <u64>be32(cdb + 10);
    if (bytes > <u64>CAPACITY16_BYTES) bytes = <u64>CAPACITY16_BYTES;
  }
  if (bytes == 0 && kind == STOR_DATA_IN) kind = STOR_NONE;
  // The direction flags say which way data flows; a request that says otherwise is refused, not guessed at.
  const flags = load<u32>(sig + F_FLAGS);
  const wantFlags = kind == STOR_WRITE ? TO_SERVER : kind == STOR_NONE ? 0 : FROM_SERVER;
  const isTransfer = op == OP_READ10 || op == OP_WRITE10 || op == OP_READ16 || op == OP_WRITE16;
  // A zero-block READ/WRITE keeps its direction flag (SBC-3: no data, GOOD).
  const okFlags = flags == wantFlags || (isTransfer && blocks == 0 && flags == ((op == OP_WRITE10 || op == OP_WRITE16) ? TO_SERVER : FROM_SERVER));
  if (!okFlags) return refuse(plan, R_DIRECTION, 5, 0x24);
  if (isTransfer) {
    // lba + blocks <= capacity without overflow: blocks < 2^32, so compare against capacity - blocks.
    if (blocks > capacity || lba > capacity - blocks) return refuse(plan, R_LBA, 5, 0x21);
    if (total != bytes) return refuse(plan, R_LENGTH, 5, 0x24);
  } else if (kind == STOR_DATA_IN) {
    if (total < bytes) return refuse(plan, R_ALLOCATION, 5, 0x24);
  } else if (total != 0 || mdl != 0) {
    return refuse(plan, R_LENGTH, 5, 0x24);
  }
  // Every buffer inside the client's own memory.
  if (mdl > 0) {
    const index = plan + P_MDL_INDEX;
    const c = chan_cdb_validate(sig, signalSize, ranges, nranges, index);
    if (c != 0) return refuse(plan, -10 + c, 5, 0x24);
  }
  store<i32>(plan + P_MDL_INDEX, -1);
  store<u32>(plan + P_KIND, kind);
  store<u32>(plan + P_BLOCKS, <u32>blocks);
  store<u64>(plan + P_LBA, lba);
  store<u32>(plan + P_BYTES, <u32>bytes);
  store<u8>(plan + P_SENSE_KEY, 0);
  store<u8>(plan + P_ASC, 0);
  store<u8>(plan + P_ASCQ, 0);
  store<i32>(plan + P_REASON, 0);
  return 0;
}

/**
 * The response data of a STOR_DATA_IN request (plan from stor_check) for a disk of `capacity` blocks, written at
 * `out` (at least 36 bytes); returns its length, the plan's byte count.
 */
export function stor_response(sig: usize, plan: usize, capacity: u64, out: usize): u32 {
  for (let i: usize = 0; i < 36; i += 4) store<u32>(out + i, 0);
  const op = load<u32>(sig + F_OPCODE);
  const last: u64 = capacity == 0 ? 0 : capacity - 1;
  if (op == OP_INQUIRY) {
    store<u8>(out + 0, 0); // peripheral: direct access block device, connected
    store<u8>(out + 2, 6); // SPC-4
    store<u8>(out + 3, 2); // response data format 2
    store<u8>(out + 4, <u8>(INQUIRY_BYTES - 5)); // additional length
    // Vendor "ULTRAVSR", product "STORAGE CHANNEL ", revision "0001" (ASCII, stored as words: core has no static data).
    store<u64>(out + 8, 0x5253564152544c55); // "ULTRAVSR"
    store<u64>(out + 16, 0x20454741524f5453); // "STORAGE "
    store<u64>(out + 24, 0x204c454e4e414843); // "CHANNEL "
    store<u32>(out + 32, 0x31303030); // "0001"
  } else if (op == OP_READ_CAPACITY10) {
    putBe32(out, last > 0xffff_ffff ? 0xffff_ffff : <u32>last);
    putBe32(out + 4, STOR_BLOCK);
  } else if (op == OP_SERVICE_IN16) {
    putBe32(out, <u32>(last >> 32));
    putBe32(out + 4, <u32>last);
    putBe32(out + 8, STOR_BLOCK);
  }
  return load<u32>(plan + P_BYTES);
}

/**
 * Writes the completion of the request at `sig` into `out` (STOR_SIGNAL bytes): GOOD with `transferred` bytes when
 * the plan at `plan` has no reason, else CHECK CONDITION with the plan's sense; `mediumError` makes a GOOD plan
 * complete with MEDIUM ERROR instead (the device failed: nothing counts as transferred).
 */
export function stor_complete(sig: usize, plan: usize, transferred: u64, mediumError: i32, out: usize): void {
  for (let i: usize = 0; i < <usize>STOR_SIGNAL; i += 8) store<u64>(out + i, 0);
  store<u32>(out + F_OPCODE, load<u32>(sig + F_OPCODE) & 0xff);
  store<u32>(out + F_FLAGS, COMPLETION);
  store<u64>(out + F_REQUEST_ID, load<u64>(sig + F_REQUEST_ID));
  const reason = load<i32>(plan + P_REASON);
  let key = load<u8>(plan + P_SENSE_KEY);
  let asc = load<u8>(plan + P_ASC);
  const failed = reason != 0 || mediumError != 0;
  if (reason == 0 && mediumError != 0) {
    key = 3;
    asc = 0x11;
  }
  store<i32>(out + 24, reason);
  store<i32>(out + 28, load<i32>(plan + P_MDL_INDEX));
  store<u64>(out + 32, failed ? 0 : transferred);
  if (!failed) return;
  store<u32>(out + 16, 2); // CHECK CONDITION
  store<u16>(out + F_INLINE_LEN, 18);
  const s = out + 64;
  store<u8>(s, 0x70);
  store<u8>(s + 2, key);
  store<u8>(s + 7, 10);
  store<u8>(s + 12, asc);
  store<u8>(s + 13, load<u8>(plan + P_ASCQ));
}
