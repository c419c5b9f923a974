// The data center's clock (layer: datacenter/): pending events ordered by (time, sequence of scheduling), as a binary
// heap — a sorted array costs O(n) per insertion and removal, and a data center of 20,000 hosts keeps 40,000 heartbeats
// and lease checks pending. Equal times run in the order they were scheduled, so a run stays a function of its file.
export interface Pending {
  t: number;
  seq: number;
  run: () => void;
}

const before = (a: Pending, b: Pending): boolean => a.t < b.t || (a.t === b.t && a.seq < b.seq);

export class EventQueue {
  private readonly heap: Pending[] = [];
  private seq = 0;

  get length(): number {
    return this.heap.length;
  }

  /** Schedules `run` at time t (after everything scheduled earlier for the same time). */
  push(t: number, run: () => void): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, run });
    let i = h.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!before(h[i]!, h[up]!)) break;
      [h[i], h[up]] = [h[up]!, h[i]!];
      i = up;
    }
  }

  /** The earliest pending event, without removing it. */
  peek(): Pending | undefined {
    return this.heap[0];
  }

  /** Removes and returns the earliest pending event. */
  pop(): Pending | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
    return top;
  }
}
