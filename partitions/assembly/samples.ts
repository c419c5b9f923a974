// Instruction-count samples of the storage benchmark (bench/storage.bench.ts; under QEMU's `-icount shift=0` a TSC
// difference is an instruction count): a fixed array of u32 samples in static memory, its minimum and median. Used by
// the I/O partition (its per-request cost, directly and through the channel) and the storage bench guest, each with
// its own buffers of SAMPLES u32 (memory.data at module level).

export const SAMPLES: u32 = 256;

export function put(buf: usize, i: u32, v: u64): void {
  if (i < SAMPLES) store<u32>(buf + <usize>i * 4, v > 0xffff_ffff ? 0xffff_ffff : <u32>v);
}

/** Sorts the first n samples in place (insertion sort: n is at most SAMPLES) and returns their median. */
export function median(buf: usize, n: u32): u32 {
  if (n == 0) return 0;
  if (n > SAMPLES) n = SAMPLES;
  for (let i: u32 = 1; i < n; i++) {
    const v = load<u32>(buf + <usize>i * 4);
    let j = i;
    while (j > 0 && load<u32>(buf + <usize>(j - 1) * 4) > v) {
      store<u32>(buf + <usize>j * 4, load<u32>(buf + <usize>(j - 1) * 4));
      j--;
    }
    store<u32>(buf + <usize>j * 4, v);
  }
  return load<u32>(buf + <usize>(n / 2) * 4);
}

/** The smallest of the first n samples once `median` sorted them. */
export function sortedMin(buf: usize): u32 {
  return load<u32>(buf);
}
