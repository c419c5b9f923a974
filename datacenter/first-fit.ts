// The operations partition's free-capacity index for first fit (layer: datacenter/): a segment tree of the largest
// free memory over ranges of hosts in scenario order, so "the first host from position i with at least n bytes free"
// costs O(log hosts) instead of a scan (first fit over 20,000 hosts for each of 40,000 partitions is 8·10^8 steps).
// Values are the free bytes each host's database reported after its last change (the data center refreshes a host's
// value after every transaction on it); a host the index must not offer is set to -1.
export class FirstFitIndex {
  private readonly size: number;
  private readonly tree: Float64Array;

  constructor(readonly length: number) {
    let size = 1;
    while (size < length) size *= 2;
    this.size = size;
    this.tree = new Float64Array(2 * size).fill(-1);
  }

  /** Sets host i's free bytes (a Number: exact below 2^53 bytes, 8 PiB). */
  set(i: number, value: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`host index ${i} is not in 0..${this.length - 1}`);
    let k = i + this.size;
    this.tree[k] = value;
    for (k >>= 1; k >= 1; k >>= 1) this.tree[k] = Math.max(this.tree[2 * k]!, this.tree[2 * k + 1]!);
  }

  get(i: number): number {
    return this.tree[i + this.size]!;
  }

  /** The first host at or after `from` whose value is at least `need`, or -1. */
  leftmost(need: number, from = 0): number {
    if (from >= this.length) return -1;
    return this.search(1, 0, this.size, need, Math.max(0, from));
  }

  private search(k: number, lo: number, hi: number, need: number, from: number): number {
    if (hi <= from || this.tree[k]! < need) return -1;
    if (hi - lo === 1) return lo < this.length ? lo : -1;
    const mid = (lo + hi) >> 1;
    const left = this.search(2 * k, lo, mid, need, from);
    return left >= 0 ? left : this.search(2 * k + 1, mid, hi, need, from);
  }
}
