/* The C side of the channel ABI tests (core/channel-abi.test.ts): built by the machine's gcc from channel.h.
 *   channel_oracle layout                 check every offset/size of channel.h against the spec's numbers, print them
 *   channel_oracle insert FILE Q N TAG    insert N signals into queue Q of the channel in FILE (mmap MAP_SHARED)
 *   channel_oracle remove FILE Q N        remove up to N signals from queue Q, printing each payload in hex
 * Built as a shared library too: uv_oracle_insert/uv_oracle_remove below work on a caller's buffer in process.
 * Signal payloads are a pure function of (TAG, i) that the TypeScript test computes too (see pattern()). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel.h"

static int failures;

static void field(const char *name, size_t got_off, size_t got_size, size_t want_off, size_t want_size) {
  printf("%s %zu %zu\n", name, got_off, got_size);
  if (got_off != want_off || got_size != want_size) {
    fprintf(stderr, "MISMATCH %s: offset %zu size %zu, spec says offset %zu size %zu\n", name, got_off, got_size,
            want_off, want_size);
    failures++;
  }
}

#define CH(f, off, sz) field("channel." #f, offsetof(struct uv_channel_header, f), sizeof(((struct uv_channel_header *)0)->f), off, sz)
#define SQ(f, off, sz) field("queue." #f, offsetof(struct uv_signal_queue_header, f), sizeof(((struct uv_signal_queue_header *)0)->f), off, sz)
#define CDB(f, off, sz) field("cdb." #f, offsetof(struct uv_cdb_header, f), sizeof(((struct uv_cdb_header *)0)->f), off, sz)
#define MDL(f, off, sz) field("mdl." #f, offsetof(struct uv_mdl_entry, f), sizeof(((struct uv_mdl_entry *)0)->f), off, sz)

/* The numbers are the tables of docs/specs/channel-abi.md, typed in from the spec, not from this header. */
static int layout(void) {
  field("channel", 0, sizeof(struct uv_channel_header), 0, 128);
  CH(signature, 0, 8);
  CH(legacy_state, 8, 4);
  CH(header_size, 12, 4);
  CH(size, 16, 8);
  CH(features, 24, 8);
  CH(chtype, 32, 16);
  CH(partition_handle, 48, 8);
  CH(handle, 56, 8);
  CH(ch_space_offset, 64, 8);
  CH(version_id, 72, 4);
  CH(partition_index, 76, 4);
  CH(zone_guid, 80, 16);
  CH(cli_str_offset, 96, 4);
  CH(cli_state_boot, 100, 4);
  CH(cmd_state_cli, 104, 4);
  CH(cli_state_os, 108, 4);
  CH(ch_characteristic, 112, 4);
  CH(cmd_state_srv, 116, 4);
  CH(srv_state, 120, 4);
  CH(cli_error_boot, 124, 1);
  CH(cli_error_os, 125, 1);
  CH(filler, 126, 1);
  CH(recover_channel, 127, 1);
  field("queue", 0, sizeof(struct uv_signal_queue_header), 0, 128);
  SQ(version, 0, 4);
  SQ(chtype, 4, 4);
  SQ(size, 8, 8);
  SQ(sig_base_offset, 16, 8);
  SQ(features, 24, 8);
  SQ(num_sent, 32, 8);
  SQ(num_overflows, 40, 8);
  SQ(signal_size, 48, 4);
  SQ(max_slots, 52, 4);
  SQ(max_signals, 56, 4);
  SQ(head, 60, 4);
  SQ(num_received, 64, 8);
  SQ(tail, 72, 4);
  SQ(reserved1, 76, 4);
  SQ(reserved2, 80, 8);
  SQ(client_queue, 88, 8);
  SQ(num_irq_received, 96, 8);
  SQ(num_empty, 104, 8);
  SQ(errorflags, 112, 4);
  SQ(filler, 116, 12);
  field("cdb", 0, sizeof(struct uv_cdb_header), 0, 64);
  CDB(opcode, 0, 4);
  CDB(flags, 4, 4);
  CDB(request_id, 8, 8);
  CDB(status, 16, 4);
  CDB(inline_len, 20, 2);
  CDB(mdl_count, 22, 2);
  CDB(cdb_len, 24, 1);
  CDB(reserved, 25, 7);
  CDB(cdb, 32, 16);
  CDB(total_bytes, 48, 8);
  CDB(reserved2, 56, 8);
  field("mdl", 0, sizeof(struct uv_mdl_entry), 0, 16);
  MDL(address, 0, 8);
  MDL(length, 8, 4);
  MDL(flags, 12, 4);
  /* The signature's bytes in memory. */
  uint64_t sig = UV_CHANNEL_SIGNATURE;
  unsigned char b[8];
  memcpy(b, &sig, 8);
  printf("signature-bytes %02x %02x %02x %02x %02x %02x %02x %02x\n", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
  if (memcmp(b, "ECNL\0\0\0\0", 8) != 0) {
    fprintf(stderr, "MISMATCH signature bytes\n");
    failures++;
  }
  return failures ? 1 : 0;
}

/* Byte k of signal i with tag t: the test's pattern() computes the same. */
static unsigned char pattern(uint32_t tag, uint32_t i, uint32_t k) {
  return (unsigned char)((tag * 131u + i * 31u + k * 7u + 1u) & 0xffu);
}

struct mapped {
  unsigned char *base;
  size_t len;
};

static int map_file(const char *path, struct mapped *m) {
  int fd = open(path, O_RDWR);
  if (fd < 0) {
    perror(path);
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < (off_t)UV_CHANNEL_HEADER_SIZE) {
    fprintf(stderr, "%s: smaller than a channel header\n", path);
    close(fd);
    return -1;
  }
  m->len = (size_t)st.st_size;
  m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m->base == MAP_FAILED) {
    perror("mmap");
    return -1;
  }
  return 0;
}

/* Validated queue header, or NULL with *status set: the peer's indices are never trusted (section 3). */
static struct uv_signal_queue_header *queue(struct mapped *m, uint32_t q, int *status) {
  struct uv_channel_header *ch = (struct uv_channel_header *)m->base;
  if (ch->signature != UV_CHANNEL_SIGNATURE || ch->header_size != UV_CHANNEL_HEADER_SIZE || ch->size > m->len ||
      ch->size < UV_CHANNEL_HEADER_SIZE || ch->ch_space_offset < UV_CHANNEL_HEADER_SIZE || ch->ch_space_offset > ch->size) {
    *status = UV_Q_BAD_CHANNEL;
    return NULL;
  }
  uint64_t qoff = uv_queue_offset(ch, q);
  if (qoff + UV_QUEUE_HEADER_SIZE > ch->size) {
    *status = UV_Q_BAD_QUEUE;
    return NULL;
  }
  struct uv_signal_queue_header *qh = (struct uv_signal_queue_header *)(m->base + qoff);
  if (qh->max_slots < 2 || qh->max_slots > 65536 || qh->max_signals != qh->max_slots - 1 || qh->signal_size == 0 ||
      qh->signal_size > 65536 || qh->sig_base_offset > ch->size ||
      qoff + qh->sig_base_offset + (uint64_t)qh->max_slots * qh->signal_size > ch->size || qh->head >= qh->max_slots ||
      qh->tail >= qh->max_slots) {
    *status = UV_Q_BAD_QUEUE;
    return NULL;
  }
  return qh;
}

static int insert(struct mapped *m, uint32_t q, const unsigned char *src) {
  int status = 0;
  struct uv_signal_queue_header *qh = queue(m, q, &status);
  if (!qh) return status;
  uint32_t head = qh->head, tail = qh->tail;
  uint32_t next = (head + 1) % qh->max_slots;
  if (next == tail) {
    qh->num_overflows++;
    return UV_Q_FULL_OR_EMPTY;
  }
  struct uv_channel_header *ch = (struct uv_channel_header *)m->base;
  memcpy(m->base + uv_slot_offset(ch, q, qh, next), src, qh->signal_size);
  __sync_synchronize(); /* slot before head, as in the spec */
  qh->num_sent++;
  qh->head = next;
  return head == tail ? UV_Q_TRANSITION : UV_Q_OK;
}

static int remove_one(struct mapped *m, uint32_t q, unsigned char *dst) {
  int status = 0;
  struct uv_signal_queue_header *qh = queue(m, q, &status);
  if (!qh) return status;
  uint32_t head = qh->head, tail = qh->tail;
  if (head == tail) {
    qh->num_empty++;
    return UV_Q_FULL_OR_EMPTY;
  }
  uint32_t next = (tail + 1) % qh->max_slots;
  struct uv_channel_header *ch = (struct uv_channel_header *)m->base;
  memcpy(dst, m->base + uv_slot_offset(ch, q, qh, next), qh->signal_size);
  __sync_synchronize(); /* slot read before it is handed back */
  qh->num_received++;
  qh->tail = next;
  return next == head ? UV_Q_TRANSITION : UV_Q_OK;
}

/* In-process entry points (core/channel-abi.test.ts loads this file as a shared library through koffi): the channel
 * is the caller's memory itself, here core.wasm's linear memory, so C and core work on the same bytes in turn. */
int uv_oracle_insert(unsigned char *base, size_t len, uint32_t q, uint32_t tag, uint32_t i);
int uv_oracle_remove(unsigned char *base, size_t len, uint32_t q, unsigned char *dst);

int uv_oracle_insert(unsigned char *base, size_t len, uint32_t q, uint32_t tag, uint32_t i) {
  static unsigned char buf[65536];
  for (uint32_t k = 0; k < sizeof buf; k++) buf[k] = pattern(tag, i, k);
  struct mapped m = {base, len};
  return insert(&m, q, buf);
}

int uv_oracle_remove(unsigned char *base, size_t len, uint32_t q, unsigned char *dst) {
  struct mapped m = {base, len};
  return remove_one(&m, q, dst);
}

static int usage(void) {
  fprintf(stderr,
          "usage: channel_oracle layout\n"
          "       channel_oracle insert FILE QUEUE COUNT TAG\n"
          "       channel_oracle remove FILE QUEUE COUNT\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "layout") == 0) return layout();
  if (argc < 5) return usage();
  struct mapped m;
  if (map_file(argv[2], &m) != 0) return 1;
  uint32_t q = (uint32_t)strtoul(argv[3], NULL, 0);
  uint32_t n = (uint32_t)strtoul(argv[4], NULL, 0);
  unsigned char buf[65536];
  if (strcmp(argv[1], "insert") == 0 && argc == 6) {
    uint32_t tag = (uint32_t)strtoul(argv[5], NULL, 0);
    for (uint32_t i = 0; i < n; i++) {
      for (uint32_t k = 0; k < sizeof buf; k++) buf[k] = pattern(tag, i, k);
      printf("insert %u %d\n", i, insert(&m, q, buf));
    }
  } else if (strcmp(argv[1], "remove") == 0 && argc == 5) {
    int status = 0;
    struct uv_signal_queue_header *qh = queue(&m, q, &status);
    uint32_t size = qh ? qh->signal_size : 0;
    for (uint32_t i = 0; i < n; i++) {
      int r = remove_one(&m, q, buf);
      printf("remove %u %d", i, r);
      if (r >= 0) {
        printf(" ");
        for (uint32_t k = 0; k < size; k++) printf("%02x", buf[k]);
      }
      printf("\n");
    }
  } else {
    return usage();
  }
  if (msync(m.base, m.len, MS_SYNC) != 0) perror("msync");
  munmap(m.base, m.len);
  return 0;
}
