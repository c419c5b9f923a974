// The ultravisor fuzz run shared by test/hw/fuzz.test.ts (a short run in CI) and `npm run fuzz:ultravisor`
// (scripts/fuzz-ultravisor.ts, as long as asked): a host of test-only guests (partitions/programs.ts) — H issues
// random hypercall numbers and arguments, Q and P write random values into their console channel headers (the client
// side of channels the I/O partition serves) and signal random slots, A and B keep a canary page of their own and
// re-check it before every line — booted under QEMU with a seed that is printed. Over QMP, the resource database's
// page and the pages just below and above each attacker's allotment are read when the scheduler starts and again
// near the end of the run; fuzzFindings lists everything that was not left intact. Top layer (test/).
import { join } from "node:path";
import { Machine } from "../../qemu/index.ts";
import { runEndFindings, summaryStates } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, CORE_DB_PLAN } from "../../image/ultravisor.ts";
import { configFrom } from "../../partitions/config.ts";
import type { UltravisorConfig } from "../../partitions/config.ts";

export const ATTACKERS = ["H", "Q", "P"] as const;
/** Attackers whose own pages change by their own hand (their console channel page): not a neighbour's canary. */
const SCRIBBLERS = new Set(["Q", "P"]);
export const CANARIES = ["A", "B"] as const;

export function fuzzHost(runQuanta: number): UltravisorConfig {
  return configFrom({
    revision: 2,
    partitions: [
      { name: "idle", kind: "idle" },
      { name: "io", kind: "io", duty: 2 },
      { name: "A", duty: 2, behaviour: { fault: "canary" } },
      { name: "H", duty: 2, behaviour: { fault: "fuzz-hypercall" } },
      { name: "Q", duty: 2, behaviour: { fault: "fuzz-channel" } },
      { name: "P", duty: 2, behaviour: { fault: "fuzz-channel" } },
      { name: "B", duty: 2, behaviour: { fault: "canary" } },
    ],
    run: { runQuanta },
  }, "ultravisor fuzz host");
}

/** UV_FUZZ_SEED (decimal or 0x hex) when set, else one from the clock: print it, a failure is then reproducible. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): bigint {
  const s = env["UV_FUZZ_SEED"];
  return s !== undefined && s !== "" ? BigInt(s) : BigInt(Date.now());
}

interface Neighbour { attacker: string; side: "below" | "above"; at: number; owner: string; kind: "info" | "channel" }
export interface FuzzResult {
  seed: bigint;
  runQuanta: number;
  lines: string[];
  exit: unknown;
  neighbours: Neighbour[];
  before: Map<number, Uint8Array>;
  after: Map<number, Uint8Array>;
  db: [number, number];
  seconds: number;
  /** Why the run could not be read to its end (the machine stopped early, a line never came): a finding itself. */
  error?: string;
}

const STARTED = /^ultravisor: partition (\S+) started at quantum \d+: cr3 0x[0-9a-f]+ window (0x[0-9a-f]+) allotment (\d+) pages/;

/** The pages just below and above each attacker's allotment and whose they are (allotments are consecutive). */
function neighbours(lines: readonly string[]): Neighbour[] {
  const parts = lines.map((l) => STARTED.exec(l)).filter((m) => m !== null).map((m) => ({ name: m[1]!, lo: Number(m[2]!), hi: Number(m[2]!) + 4096 * Number(m[3]!) }));
  const out: Neighbour[] = [];
  for (const a of ATTACKERS) {
    const me = parts.find((p) => p.name === a);
    if (!me) throw new Error(`no start line for ${a}`);
    const below = parts.find((p) => p.hi === me.lo);
    const above = parts.find((p) => p.lo === me.hi);
    // The page below is the last of the previous allotment: its console channel page (a header and a ring); the page
    // above is the first of the next: its info page. A scribbler's own channel page changes by its own hand.
    if (below && !SCRIBBLERS.has(below.name)) out.push({ attacker: a, side: "below", at: me.lo - 4096, owner: below.name, kind: "channel" });
    if (above) out.push({ attacker: a, side: "above", at: me.hi, owner: above.name, kind: "info" });
  }
  return out;
}

export async function fuzzRun(opts: { seed: bigint; runQuanta: number; scratch: string; timeoutMs?: number }): Promise<FuzzResult> {
  const img = await buildUltravisorImage({ config: fuzzHost(opts.runQuanta), fuzzSeed: opts.seed });
  const out = await writeEfiImage(join(opts.scratch, `fuzz-${opts.seed}`), img);
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 60_000 + opts.runQuanta * 40;
  const m = await Machine.start({ name: "hw-fuzz", image: out.esp, mem: "256M", timeoutMs, log: () => undefined });
  const db: [number, number] = [CORE_DB_PLAN.dbPage.lo, CORE_DB_PLAN.dbPage.hi];
  const read = async (near: Neighbour[]): Promise<Map<number, Uint8Array>> => {
    // Paused while reading, so the partitions cannot change what is being compared (nor the run end) under the reads.
    await m.qmp!.execute("stop");
    const got = new Map<number, Uint8Array>();
    got.set(db[0], await m.readPhysical(db[0], db[1] - db[0]));
    for (const n of near) got.set(n.at, await m.readPhysical(n.at, 4096));
    await m.qmp!.execute("cont");
    return got;
  };
  let near: Neighbour[] = [];
  let before = new Map<number, Uint8Array>();
  try {
    await m.waitFor(/^ultravisor: scheduler running/, timeoutMs);
    near = neighbours(m.lines.map((l) => l.text));
    before = await read(near);
    // Near the end: a canary guest prints a line about every 16 quanta (its period, at its duty).
    const late = Math.max(2, Math.floor(opts.runQuanta / 16) - 4);
    await m.waitFor(new RegExp(`^[AB]: tick ${late} `), timeoutMs);
    const after = await read(near);
    const exit = await m.wait();
    return { seed: opts.seed, runQuanta: opts.runQuanta, lines: m.lines.map((l) => l.text), exit, neighbours: near, before, after, db, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    // The machine stopped (or hung) before the second read: report it with the serial log, as a finding.
    const exit = await m.wait().catch((w: unknown) => ({ kind: "error", message: String(w) }));
    return { seed: opts.seed, runQuanta: opts.runQuanta, lines: m.lines.map((l) => l.text), exit, neighbours: [], before, after: new Map(), db, seconds: (performance.now() - t0) / 1000, error: (e as Error).message };
  } finally {
    await m.close();
  }
}

const TICK = /^tick (\d+) quantum (\d+) work (\d+) checksum 0x[0-9a-f]+$/;

/** Everything the run did not leave intact, one sentence each (empty: the run passed). */
export function fuzzFindings(r: FuzzResult): string[] {
  const bad = runEndFindings(r);
  const state = summaryStates(r.lines);
  // The I/O partition is not dispatched while the UART holds back one of the monitor's lines (docs/specs/
  // hypercall-abi.md, Audit records): those quanta, reported in the summary, are its share too.
  const held = Number(/waited (\d+) quanta/.exec(r.lines.find((l) => l.startsWith("ultravisor: log: the I/O partition waited ")) ?? "")?.[1] ?? 0);
  for (const p of ["io", ...CANARIES, ...ATTACKERS]) {
    const s = state.get(p);
    const quanta = (s?.quanta ?? 0) + (p === "io" ? held : 0);
    if (!s) bad.push(`no summary line for ${p}`);
    else if (s.state !== "ready") bad.push(`${p} ended ${s.state}`);
    // duty 2 of 16 quanta: its share, whatever the attackers do.
    else if (Math.abs(quanta - r.runQuanta / 8) > 2) bad.push(`${p} ran ${quanta} quanta, not its share ${r.runQuanta / 8}`);
  }
  for (const c of CANARIES) {
    const lines = r.lines.filter((l) => l.startsWith(`${c}: `)).map((l) => l.slice(c.length + 2));
    const ticks = lines.filter((l) => TICK.test(l)).length;
    if (ticks < r.runQuanta / 16 - 4) bad.push(`${c} printed ${ticks} lines, expected about ${r.runQuanta / 16}`);
    for (const l of lines.filter((x) => x.startsWith("canary damaged"))) bad.push(`${c}: ${l}`);
  }
  const seeds = ["H", "Q", "P"].filter((p) => r.lines.some((l) => l.startsWith(`${p}: fuzz-`) && l.includes(" seed 0x")));
  if (seeds.length !== 3) bad.push(`the fuzz guests' seed lines: only ${seeds.join(", ") || "none"}`);
  const same = (x: Uint8Array, y: Uint8Array): boolean => Buffer.from(x).equals(Buffer.from(y));
  if (r.error === undefined && !same(r.before.get(r.db[0])!, r.after.get(r.db[0])!)) bad.push("the resource database's page changed (no transaction runs after the scheduler starts)");
  for (const n of r.neighbours) {
    const b = r.before.get(n.at)!;
    const a = r.after.get(n.at)!;
    // A channel page's ring and counters move with its owner's lines; its 128-byte channel header does not.
    const ok = n.kind === "info" ? same(b, a) : same(b.subarray(0, 128), a.subarray(0, 128));
    if (!ok) bad.push(`the page ${n.side} ${n.attacker}'s allotment (0x${n.at.toString(16)}, ${n.owner}'s ${n.kind} page) changed`);
  }
  return bad;
}
