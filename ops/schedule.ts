// Schedules of [0308] in simulated time (docs/specs/operations.md §4; layer: ops/): when each entry fires. Simulated
// time is minutes since an epoch (UTC); an entry fires weekly on a day at HH:MM or monthly on a day of the month.
import { OpsError, type When } from "./model.ts";

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
const DAY_MS = 86_400_000;

/** Minutes after midnight of "HH:MM", or a reason. */
export function parseTime(t: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(t);
  if (!m) throw new OpsError(`time "${t}" is not HH:MM (00:00–23:59)`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export function checkWhen(w: When): void {
  parseTime(w.time);
  if ("day" in w) {
    if (!(DAYS as readonly string[]).includes(w.day)) throw new OpsError(`day "${w.day}" is not one of ${DAYS.join(", ")}`);
  } else if (!Number.isInteger(w.monthday) || w.monthday < 1 || w.monthday > 28) {
    throw new OpsError(`monthday ${w.monthday} is not 1–28 (every month has it)`);
  }
}

/** Simulated minutes (since `epoch`) at which `w` fires in (from, to]. */
export function occurrences(w: When, epoch: Date, from: number, to: number): number[] {
  const at = parseTime(w.time);
  const e = epoch.getTime();
  const out: number[] = [];
  // Each UTC day from the one holding `from` to the one holding `to`.
  const first = Math.floor((e + from * 60_000) / DAY_MS);
  const last = Math.floor((e + to * 60_000) / DAY_MS);
  for (let d = first; d <= last; d++) {
    const date = new Date(d * DAY_MS);
    const hit = "day" in w ? DAYS[date.getUTCDay()] === w.day : date.getUTCDate() === w.monthday;
    if (!hit) continue;
    const minute = (d * DAY_MS - e) / 60_000 + at;
    if (minute > from && minute <= to) out.push(minute);
  }
  return out;
}

export function formatWhen(w: When): string {
  return "day" in w ? `every ${w.day} ${w.time}` : `day ${w.monthday} of each month ${w.time}`;
}
