/* Memory channel ABI in C, written from docs/specs/channel-abi.md (the s-Par / Linux visorbus layout): what a C
 * partition program or a Linux-side tool includes to read and write our channels. core/abi/channel_oracle.c checks
 * every offset here against the spec's numbers and exchanges signals with core.wasm through a shared file. */
#ifndef ULTRAVISOR_CHANNEL_H
#define ULTRAVISOR_CHANNEL_H

#include <stdint.h>

/* 'L'<<24 | 'N'<<16 | 'C'<<8 | 'E': the bytes E C N L, then four zero bytes. */
#define UV_CHANNEL_SIGNATURE ((uint64_t)(((uint32_t)'L' << 24) | ((uint32_t)'N' << 16) | ((uint32_t)'C' << 8) | (uint32_t)'E'))
#define UV_CHANNEL_HEADER_SIZE 128u
#define UV_QUEUE_HEADER_SIZE 128u
#define UV_CHANNEL_ENABLE_INTS (1ull << 0)

enum uv_server_state { UV_SRV_UNINITIALIZED = 0, UV_SRV_READY = 1 };

enum uv_client_state {
  UV_CLI_DETACHED = 0,
  UV_CLI_DISABLED = 1,
  UV_CLI_ATTACHING = 2,
  UV_CLI_ATTACHED = 3,
  UV_CLI_BUSY = 4,
  UV_CLI_OWNED = 5
};

/* Queue operation results (section 3). */
enum uv_queue_status {
  UV_Q_TRANSITION = 1, /* inserted into an empty queue / removed the last signal */
  UV_Q_OK = 0,
  UV_Q_FULL_OR_EMPTY = -1,
  UV_Q_BAD_CHANNEL = -2,
  UV_Q_BAD_QUEUE = -3
};

typedef struct uv_guid {
  uint32_t data1;
  uint16_t data2;
  uint16_t data3;
  uint8_t data4[8];
} __attribute__((packed)) uv_guid;

struct uv_channel_header {
  uint64_t signature;
  uint32_t legacy_state;
  uint32_t header_size;
  uint64_t size;
  uint64_t features;
  uv_guid chtype;
  uint64_t partition_handle;
  uint64_t handle;
  uint64_t ch_space_offset;
  uint32_t version_id;
  uint32_t partition_index;
  uv_guid zone_guid;
  uint32_t cli_str_offset;
  uint32_t cli_state_boot;
  uint32_t cmd_state_cli;
  uint32_t cli_state_os;
  uint32_t ch_characteristic;
  uint32_t cmd_state_srv;
  uint32_t srv_state;
  uint8_t cli_error_boot;
  uint8_t cli_error_os;
  uint8_t filler;
  uint8_t recover_channel;
} __attribute__((packed));

struct uv_signal_queue_header {
  /* inserter's cache line */
  uint32_t version;
  uint32_t chtype;
  uint64_t size;
  uint64_t sig_base_offset;
  uint64_t features;
  uint64_t num_sent;
  uint64_t num_overflows;
  uint32_t signal_size;
  uint32_t max_slots;
  uint32_t max_signals;
  uint32_t head;
  /* remover's cache line */
  uint64_t num_received;
  uint32_t tail;
  uint32_t reserved1;
  uint64_t reserved2;
  uint64_t client_queue;
  uint64_t num_irq_received;
  uint64_t num_empty;
  uint32_t errorflags;
  uint8_t filler[12];
} __attribute__((packed));

/* Requests (section 4). */
#define UV_CDB_TO_SERVER (1u << 0)
#define UV_CDB_FROM_SERVER (1u << 1)
#define UV_CDB_COMPLETION (1u << 2)

struct uv_cdb_header {
  uint32_t opcode;
  uint32_t flags;
  uint64_t request_id;
  uint32_t status;
  uint16_t inline_len;
  uint16_t mdl_count;
  uint8_t cdb_len;
  uint8_t reserved[7];
  uint8_t cdb[16];
  uint64_t total_bytes;
  uint64_t reserved2;
} __attribute__((packed));

struct uv_mdl_entry {
  uint64_t address;
  uint32_t length;
  uint32_t flags;
} __attribute__((packed));

/* Channel offset of queue q's header, and of slot s of that queue. */
static inline uint64_t uv_queue_offset(const struct uv_channel_header *ch, uint32_t q) {
  return ch->ch_space_offset + (uint64_t)q * UV_QUEUE_HEADER_SIZE;
}

static inline uint64_t uv_slot_offset(const struct uv_channel_header *ch, uint32_t q,
                                      const struct uv_signal_queue_header *qh, uint32_t s) {
  return uv_queue_offset(ch, q) + qh->sig_base_offset + (uint64_t)s * qh->signal_size;
}

#endif
