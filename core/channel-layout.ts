// Byte offsets of a memory channel's headers and of a signal's CDB header (docs/specs/channel-abi.md sections 1, 2
// and 6), keyed by the spec's own field names: the one TypeScript table that TypeScript readers (core/channel.ts) and
// the hand-written x64 that touches channels (partitions/runtime.ts) take their numbers from. core/assembly/channel.ts
// holds the same numbers for core.wasm; core/layout.test.ts fails when this table, that file or the spec's tables
// differ (the spec's tables are checked against gcc's offsetof of core/abi/channel.h by core/channel-abi.test.ts).
// Part of core (bottom layer): imports nothing.

/** The channel header (section 1): 128 bytes at the channel's base. */
export const CHANNEL_HEADER = {
  signature: 0, legacy_state: 8, header_size: 12, size: 16, features: 24, chtype: 32, partition_handle: 48, handle: 56,
  ch_space_offset: 64, version_id: 72, partition_index: 76, zone_guid: 80, cli_str_offset: 96, cli_state_boot: 100,
  cmd_state_cli: 104, cli_state_os: 108, ch_characteristic: 112, cmd_state_srv: 116, srv_state: 120, cli_error_boot: 124,
  cli_error_os: 125, filler: 126, recover_channel: 127,
} as const;

/** A signal-queue header (section 2): 128 bytes each, the first at ch_space_offset. */
export const QUEUE_HEADER = {
  version: 0, chtype: 4, size: 8, sig_base_offset: 16, features: 24, num_sent: 32, num_overflows: 40, signal_size: 48,
  max_slots: 52, max_signals: 56, head: 60, num_received: 64, tail: 72, reserved1: 76, reserved2: 80, client_queue: 88,
  num_irq_received: 96, num_empty: 104, errorflags: 112, filler: 116,
} as const;

/** Bytes of the channel header and of each queue header. */
export const CHANNEL_HEADER_BYTES = 128;
export const QUEUE_HEADER_BYTES = 128;
/** The channel signature, 'L'<<24 | 'N'<<16 | 'C'<<8 | 'E'. */
export const CHANNEL_SIGNATURE = 0x4c4e4345;

/** A request's CDB header (section 6): the first 64 bytes of every signal; inline data follows at `inline`. */
export const SIGNAL = {
  opcode: 0, flags: 4, request_id: 8, status: 16, inline_len: 20, mdl_count: 22, cdb_len: 24, reserved: 25, cdb: 32,
  total_bytes: 48, reserved2: 56, inline: 64,
} as const;

/**
 * A request's `flags` bits (section 4). `more` is the console's: this TEXT request's bytes continue in the next one
 * of the same client (a line longer than one request); the server joins them into one line, up to its own bound.
 */
export const SIGNAL_FLAGS = { toServer: 1, fromServer: 2, completion: 4, more: 8 } as const;
