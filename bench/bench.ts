// The contract between bench/run.ts and each bench/*.bench.ts file: one JSON object per figure on stdout.
export interface Figure {
  bench: string;
  value: number;
  unit: string;
  /** The peer this figure is compared with, when there is one (measured in the same run). */
  vs?: string;
  /** value / peer value, or the ratio the bench names in its unit. */
  ratio?: number;
}

export interface Bench {
  /** Name used by `npm run bench -- NAME` (a prefix match on this or on the figure names). */
  name: string;
  run(): Promise<Figure[]>;
}

/** Wall-clock seconds of fn, best of `repeat` runs: best-of damps noise from the other tenant of a 2-core machine. */
export async function bestOf(repeat: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  return best;
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
