/* Containment probe run inside a Linux partition by test/hw/linux.test.ts (built with gcc -static at test time):
 * maps /dev/mem over [start, start + pages * 4096) — guest-physical addresses beyond the partition's e820 memory,
 * which Linux's STRICT_DEVMEM lets a root process map because they are not RAM — and, page by page, reads the first
 * quadword, writes a pattern there and reads it again. Under the monitor nothing is mapped there (nested page tables hold
 * only the partition's own pages and channel pages), so every read must give all ones and no write may stick.
 * The pattern is the caller's 64-bit token, so the test can search the machine's RAM for it afterwards.
 * Prints one line: "sweep: FROM-TO PAGES pages: R reads not all ones, W writes that stuck, C channel pages".
 * Usage: sweep START_HEX PAGES SKIP_HEX SKIP_PAGES TOKEN_HEX: the skipped range (the partition's own channel pages
 * right above its memory, which are mapped) is counted, not probed. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: sweep START_HEX PAGES SKIP_HEX SKIP_PAGES TOKEN_HEX\n"); return 2; }
  uint64_t start = strtoull(argv[1], 0, 16), pages = strtoull(argv[2], 0, 10);
  uint64_t skip = strtoull(argv[3], 0, 16), skipPages = strtoull(argv[4], 0, 10), token = strtoull(argv[5], 0, 16);
  int fd = open("/dev/mem", O_RDWR | O_SYNC);
  if (fd < 0) { perror("sweep: /dev/mem"); return 1; }
  volatile uint64_t *m = mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
  if (m == MAP_FAILED) { perror("sweep: mmap"); return 1; }
  uint64_t notOnes = 0, stuck = 0, skipped = 0;
  for (uint64_t p = 0; p < pages; p++) {
    uint64_t at = start + p * 4096;
    if (at >= skip && at < skip + skipPages * 4096) { skipped++; continue; }
    volatile uint64_t *w = m + p * 512;
    /* Plain MOV loads and stores: the monitor's absent-MMIO decoder emulates the MOV forms only (docs/specs/svm.md
     * §4.1); a compiler's `cmp qword [mem], -1` would be a violation that stops the partition, not a probe. */
    uint64_t v;
    __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(w) : "memory");
    if (v != ~0ull) notOnes++;
    __asm__ volatile("movq %1, (%0)" : : "r"(w), "r"(token) : "memory");
    __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(w) : "memory");
    if (v == token) stuck++;
  }
  printf("sweep: 0x%llx-0x%llx %llu pages: %llu reads not all ones, %llu writes that stuck, %llu channel pages\n",
         (unsigned long long)start, (unsigned long long)(start + pages * 4096 - 1), (unsigned long long)pages,
         (unsigned long long)notOnes, (unsigned long long)stuck, (unsigned long long)skipped);
  return 0;
}
