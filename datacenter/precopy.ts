// The pre-copy live-migration model of the data center (docs/specs/datacenter.md §4; layer: datacenter/, above ops/):
// round 1 sends every page while the partition runs, each later round sends what the partition dirtied during the
// previous one, and the stop rules real hypervisors use end the live phase — QEMU's downtime target (the rest fits in
// downtime-limit at the stream's bandwidth), Xen libxc's remaining-dirty threshold, iteration limit and total-copy
// bound. Pure arithmetic on whole pages so that runs are exact and repeatable; the data center applies the result.

export const PAGE_BYTES = 4096;

/** Which rule ended the live phase (the first that held, checked in the order of StopRules). */
export type StopReason = "downtime" | "dirty-threshold" | "iterations" | "total-copy" | "clean";

/** The stop rules; a rule left out does not apply. At least one of maxIterations and maxFactor bounds the run. */
export interface StopRules {
  /** QEMU: stop when the pages left would go in this many ms (migration parameter downtime-limit, default 300). */
  downtimeMs?: number;
  /** Xen libxc: stop when fewer pages than this are left dirty (50 in xc_domain_save and in the precopy policy). */
  dirtyThreshold?: number;
  /** Xen libxc: stop after this many live rounds (DEF_MAX_ITERS 29 in xc_domain_save; SPP_MAX_ITERATIONS 5 since 4.10). */
  maxIterations?: number;
  /** Xen libxc: stop when the pages sent exceed this multiple of the partition's pages (DEF_MAX_FACTOR 3). */
  maxFactor?: number;
}

/** The cited defaults (docs/specs/datacenter.md §4): QEMU's downtime target with xc_domain_save's three bounds. */
export const DEFAULT_RULES: Required<StopRules> = { downtimeMs: 300, dirtyThreshold: 50, maxIterations: 29, maxFactor: 3 };
/** QEMU's default max-bandwidth for a migration stream: 128 MiB/s (MAX_THROTTLE, migration/options.c). */
export const DEFAULT_BANDWIDTH = 128 * 1048576;

export interface PrecopyInput {
  /** The partition's memory in pages. */
  pages: number;
  /** Pages the partition dirties per second while it runs. */
  dirtyRate: number;
  /** Distinct pages the partition writes (its writable working set): the dirty set never exceeds it. Default: all. */
  workingSet?: number;
  /** Bytes per second of the migration stream. */
  bandwidth: number;
  rules: StopRules;
}

export interface Round {
  /** Pages sent in this round. */
  sent: number;
  /** How long the round took, ms. */
  ms: number;
  /** Pages dirtied while it was sent (what the next round or the stop-and-copy sends). */
  dirtied: number;
}

export interface PrecopyPlan {
  rounds: Round[];
  stop: StopReason;
  /** Pages sent with the partition paused (the stop-and-copy). */
  finalPages: number;
  /** The pause: the final pages at the stream's bandwidth, ms. */
  downtimeMs: number;
  /** From the first page to the end of the stop-and-copy, ms. */
  totalMs: number;
  /** Every page sent, live rounds and stop-and-copy. */
  totalSent: number;
}

export class PrecopyError extends Error {
  override name = "PrecopyError";
}

const finite = (x: number | undefined): boolean => x === undefined || (Number.isFinite(x) && x >= 0);

/** Plans a pre-copy migration. Refuses inputs that are not finite and non-negative, or rules that never end a run. */
export function planPrecopy(input: PrecopyInput): PrecopyPlan {
  const { pages, dirtyRate, bandwidth, rules } = input;
  const ws = input.workingSet ?? pages;
  if (!Number.isSafeInteger(pages) || pages <= 0) throw new PrecopyError(`pages ${pages} is not a positive whole number`);
  if (!Number.isFinite(dirtyRate) || dirtyRate < 0) throw new PrecopyError(`dirty rate ${dirtyRate} is not a finite number ≥ 0 (pages per second)`);
  if (!Number.isFinite(bandwidth) || bandwidth <= 0) throw new PrecopyError(`bandwidth ${bandwidth} is not a positive number of bytes per second`);
  if (!Number.isSafeInteger(ws) || ws < 0 || ws > pages) throw new PrecopyError(`working set ${ws} is not a whole number of pages in 0..${pages}`);
  if (![rules.downtimeMs, rules.dirtyThreshold, rules.maxIterations, rules.maxFactor].every(finite)) throw new PrecopyError("every stop rule is a finite number ≥ 0");
  // QEMU alone never ends a migration that does not converge; the model needs one of Xen's bounds to end every run.
  if (!(rules.maxIterations! >= 1) && !(rules.maxFactor! > 0)) throw new PrecopyError("the stop rules need maxIterations ≥ 1 or maxFactor > 0: without a bound a migration that does not converge never ends");
  const pagesPerSecond = bandwidth / PAGE_BYTES;
  const msFor = (n: number): number => (n / pagesPerSecond) * 1000;
  const rounds: Round[] = [];
  let left = pages;
  let sent = 0;
  let elapsed = 0;
  let stop: StopReason | undefined;
  while (stop === undefined) {
    const ms = msFor(left);
    const dirtied = Math.min(ws, Math.floor((dirtyRate * ms) / 1000));
    rounds.push({ sent: left, ms, dirtied });
    sent += left;
    elapsed += ms;
    left = dirtied;
    if (left === 0) stop = "clean"; // nothing was dirtied: the stop-and-copy sends only the processor state
    else if (rules.downtimeMs !== undefined && msFor(left) <= rules.downtimeMs) stop = "downtime";
    else if (rules.dirtyThreshold !== undefined && left < rules.dirtyThreshold) stop = "dirty-threshold";
    else if (rules.maxIterations !== undefined && rules.maxIterations >= 1 && rounds.length >= rules.maxIterations) stop = "iterations";
    else if (rules.maxFactor !== undefined && rules.maxFactor > 0 && sent > rules.maxFactor * pages) stop = "total-copy";
  }
  const downtimeMs = msFor(left);
  return { rounds, stop, finalPages: left, downtimeMs, totalMs: elapsed + downtimeMs, totalSent: sent + left };
}
