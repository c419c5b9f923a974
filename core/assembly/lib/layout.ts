// Constants of the resource database's memory layout: the single AssemblyScript copy of the numbers in
// docs/specs/memory-layout.md (page geometry, index page and descriptor offsets, log records, error codes).

export const PAGE_SHIFT: u32 = 12;
export const ENTRIES: u32 = 1024;
export const REF_BIT: u32 = 0x8000_0000;
export const US_BIT: u32 = 0x4000_0000;
export const PN_MASK: u32 = 0x3fff_ffff;
/** Database pages must lie in the first 4 GiB: page numbers below 2^20. */
export const DB_PAGE_LIMIT: u32 = 1 << 20;

// The ultravisor's private 4 MiB page [0,M,*], M chosen at bootstrap (memory-layout.md §5): offsets from its start.
// Core has no static data (core/build.ts refuses data segments), so nothing of core sits at a fixed address.
export const PRIV_SCRATCH: usize = 0x4000; // 4096 u32: pages whose self-ownership the commit check re-examines
export const SCRATCH_ENTRIES: u32 = 4096;
export const PRIV_REQUEST: usize = 0x8000; // the host's request buffer (core itself never reads it implicitly)
export const REQUEST_MAX: u32 = 0x8000;
export const PRIV_DIRECTORY: usize = 0x1_0000;
export const PRIVATE_PAGES: u32 = 528; // reserved, scratch, request buffer, directory; the log may follow
export const PRIVATE_SPAN_PAGES: u32 = 1024; // the whole 4 MiB page

// Ultravisor Index page.
export const UI_MAGIC: u32 = 0x5849_5655; // "UVIX"
export const LAYOUT_VERSION: u32 = 0x0002_0000;
export const UI_MAGIC_OFF: u32 = 0;
export const UI_VERSION: u32 = 4;
export const UI_MAP_HIGH: u32 = 8;
export const UI_MAP_LOW: u32 = 12;
export const UI_ORDER: u32 = 16;
export const UI_INDEX: u32 = 20;
export const UI_ULTRA: u32 = 24;
export const UI_AVAIL: u32 = 28;
export const UI_MISSING: u32 = 32;
export const UI_IDLE: u32 = 36;
export const UI_BOOT: u32 = 40;
export const UI_LOG_BASE: u32 = 44;
export const UI_LOG_PAGES: u32 = 48;
export const UI_COMMAND: u32 = 52;
export const UI_HOST_BYTES: u32 = 56;
/** M of the ultravisor's private 4 MiB page [0,M,*] (memory-layout.md §3, §5). */
export const UI_PRIVATE: u32 = 64;
/** The channel table (memory-layout.md §11.2): 192 slots of 16 bytes in the index page. */
export const UI_CHANNELS: u32 = 1024;
export const CHANNEL_SLOTS: u32 = 192;
export const CS_CLIENT: u32 = 0;
export const CS_SERVER: u32 = 4;
export const CS_BASE: u32 = 8;
export const CS_PAGES: u32 = 12;
export const CS_TYPE: u32 = 14;
export const CHANNEL_TYPE_MAX: u32 = 8;

// Partition descriptor.
export const PD_MAGIC: u32 = 0x4450_5655; // "UVPD"
export const PD_SIZE: u32 = 64;
export const PD_ME: u32 = 4;
export const PD_KIND: u32 = 8;
export const PD_FLAGS: u32 = 12;
export const PD_NAME: u32 = 16;
export const PD_PRINCIPAL: u32 = 32;
export const PD_RESERVED: u32 = 48;
export const KIND_MISSING: u32 = 1;
export const KIND_AVAILABLE: u32 = 2;
export const KIND_IDLE: u32 = 3;
export const KIND_BOOT: u32 = 4;
export const KIND_ULTRAVISOR: u32 = 5;
export const KIND_COMMAND: u32 = 6;
export const KIND_GUEST: u32 = 16;

// Audit log.
export const LOG_MAGIC: u32 = 0x4c41_5655; // "UVAL"
export const LOG_HEADER: u32 = 64;
export const LH_CAPACITY: u32 = 4;
export const LH_HEAD: u32 = 8;
export const LH_COMMITTED: u32 = 12;
export const LH_TXCOUNT: u32 = 16;
export const LH_NEXTSEQ: u32 = 20;
export const LH_BASESEQ: u32 = 24;
export const LH_STATE: u32 = 28;
export const LH_REJECTED: u32 = 32;

// Records (log and request).
export const REC_BEGIN: u32 = 0x01;
export const REC_CHANGE_OWNER: u32 = 0x02;
export const REC_INIT: u32 = 0x03;
export const REC_DESTROY: u32 = 0x04;
export const REC_SPLIT: u32 = 0x05;
export const REC_MERGE: u32 = 0x06;
export const REC_DEFINE_CHANNEL: u32 = 0x07;
export const REC_ASSIGN_SERVER: u32 = 0x08;
export const REC_REMOVE_CHANNEL: u32 = 0x09;
export const REC_SET_COMMAND: u32 = 0x0a;
export const REC_REJECTED: u32 = 0x0b;
export const REJECTED_LENGTH: u32 = 24;
/** An event the ultravisor records between transactions (memory-layout.md §11.3): log only, like REJECTED. */
export const REC_EVENT: u32 = 0x0c;
export const EVENT_LENGTH: u32 = 24;
/** EVENT kinds: 1 = a storage pair's failover (a = the failed member, b = the member made active; docs/specs/storage-failover.md §5). */
export const EVENT_STORAGE_FAILOVER: u32 = 1;
export const REC_COMMIT: u32 = 0x0f;
// A record (log and request, memory-layout.md §5.2–5.3): type u8 at 0, length u32 at 4, then u32 field k at F0 + 4k.
export const REC_TYPE: u32 = 0;
export const REC_LENGTH: u32 = 4;
export const F0: usize = 8;
export const F1: usize = 12;
export const F2: usize = 16;
export const F3: usize = 20;
export const F4: usize = 24;
// A request's header (§5.3): magic, total bytes, operation count, reserved (zero); the records follow.
export const REQ_MAGIC: u32 = 0x5254_5655; // "UVTR"
export const REQ_BYTES: u32 = 4;
export const REQ_OPS: u32 = 8;
export const REQ_RESERVED: u32 = 12;
export const REQ_HEADER: u32 = 16;
export const MAX_OPS: u32 = 1024;

// Error codes (negative i32).
export const E_MALFORMED: i32 = -1;
export const E_UNKNOWN_OP: i32 = -2;
export const E_INDEX_RANGE: i32 = -3;
export const E_ADDRESS: i32 = -4;
export const E_NOT_MAP_PAGE: i32 = -5;
export const E_BAD_PARTITION: i32 = -6;
export const E_NO_SUCH_PARTITION: i32 = -7;
export const E_OWNER_MISMATCH: i32 = -8;
export const E_NOT_UNIFORM: i32 = -9;
export const E_NOT_ULTRAVISOR_PAGE: i32 = -10;
export const E_PAGE_IN_USE: i32 = -11;
export const E_PARTITION_EXISTS: i32 = -12;
export const E_PROTECTED: i32 = -13;
export const E_SCALE: i32 = -14;
export const E_DESCRIPTOR_OWNER: i32 = -15;
export const E_LOG_FULL: i32 = -16;
export const E_NOT_ATTACHED: i32 = -17;
export const E_LOG_CORRUPT: i32 = -18;
export const E_TOO_LARGE: i32 = -19;
export const E_CORRUPT: i32 = -20;
export const E_NOT_COMMAND: i32 = -21;
export const E_WRONG_KIND: i32 = -22;
export const E_CHANNEL_IN_USE: i32 = -23;
export const E_NO_SUCH_CHANNEL: i32 = -24;
export const E_CHANNEL_EXISTS: i32 = -25;

// Request lengths of the records a request builder writes (core/boot/assembly/boot.ts uses them as constants).
export const REQLEN_CHANGE_OWNER: u32 = 32;
export const REQLEN_INIT: u32 = 80;
export const REQLEN_SPLIT: u32 = 24;

/** Request length of an operation record, or 0 for an unknown type. */
export function requestLength(type: u32): u32 {
  if (type == REC_CHANGE_OWNER) return REQLEN_CHANGE_OWNER;
  if (type == REC_INIT) return REQLEN_INIT;
  if (type == REC_DESTROY) return 16;
  if (type == REC_SPLIT) return REQLEN_SPLIT;
  if (type == REC_MERGE) return 24;
  if (type == REC_DEFINE_CHANNEL || type == REC_ASSIGN_SERVER || type == REC_REMOVE_CHANNEL) return 24;
  if (type == REC_SET_COMMAND) return 16;
  return 0;
}

/** Log length of an operation record, or 0 for an unknown type. */
export function logLength(type: u32): u32 {
  if (type == REC_CHANGE_OWNER) return 32;
  if (type == REC_INIT) return 144;
  if (type == REC_DESTROY) return 80;
  if (type == REC_SPLIT) return 4120;
  if (type == REC_MERGE) return 32;
  if (type == REC_DEFINE_CHANNEL || type == REC_ASSIGN_SERVER || type == REC_REMOVE_CHANNEL) return 24;
  if (type == REC_SET_COMMAND) return 16;
  return 0;
}
