// The hostile-server fuzz run shared by test/hw/fuzz-server.test.ts (a short run in CI) and `npm run fuzz:ultravisor
// -- --server` (scripts/fuzz-ultravisor.ts): the I/O partition is the test build's io-fuzz program (behaviour fault
// "fuzz-server", partitions/assembly/io-fuzz.ts), which writes random values into the headers of every console
// channel it serves — the server side of the channels of the ultravisor partition (whose window maps the resource
// database), of the command partition, of two canary guests A and B (typed-assembler clients, partitions/runtime.ts)
// and of an AssemblyScript guest C (core's own client code). The canaries' consoles are in the attacker's hands, so
// everything is read over QMP instead: while the machine runs it is paused every quarter second to read the database's
// pages, the page just above the attacker's allotment, and A's and B's canary pages and check counters; the last
// reading before the run ends is compared with the first. Top layer (test/).
import { join } from "node:path";
import { Machine } from "../../qemu/index.ts";
import { runEndFindings, summaryStates } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, CORE_DB_PLAN } from "../../image/ultravisor.ts";
import { configFrom, type UltravisorConfig } from "../../partitions/config.ts";
import { CANARY_PAGES, CANARY_STATUS } from "../../partitions/programs.ts";
import { WINDOW } from "../../monitor-gen/layout.ts";

export const SERVER_CANARIES = ["A", "B"] as const;
const CLIENTS = ["uv", "command", ...SERVER_CANARIES, "C"] as const;
/** The canary pattern (partitions/programs.ts): each qword is its own linear address xor this. */
const PATTERN = 0x5a5a_1234_c3c3_8765n;

export function serverFuzzHost(runQuanta: number): UltravisorConfig {
  return configFrom({
    revision: 2,
    partitions: [
      { name: "idle", kind: "idle" },
      { name: "uv", kind: "ultravisor", duty: 1 },
      { name: "io", kind: "io", duty: 2, behaviour: { fault: "fuzz-server" } },
      { name: "command", kind: "command", duty: 1 },
      { name: "A", duty: 2, behaviour: { fault: "canary" } },
      { name: "C", duty: 2, behaviour: { lang: "as" } },
      { name: "B", duty: 2, behaviour: { fault: "canary" } },
    ],
    run: { runQuanta },
  }, "ultravisor hostile-server fuzz host");
}

interface Placement { window: number; pages: number; started: number }
/** One reading, taken with the machine paused. */
interface Reading {
  db: Uint8Array;
  above: Uint8Array;
  canary: Map<string, { pattern: Uint8Array; checks: bigint; damage: bigint }>;
}
export interface ServerFuzzResult {
  seed: bigint;
  runQuanta: number;
  lines: string[];
  exit: unknown;
  /** Physical address of the attacker's window and the page above its allotment, and of each canary's symbols. */
  io?: Placement;
  canaryAt: Map<string, { pattern: bigint; checks: bigint; damage: bigint; window: number }>;
  first?: Reading;
  last?: Reading;
  readings: number;
  /** The quantum each partition started at (the guests at run time, by the command partition's definitions). */
  started?: Map<string, number>;
  seconds: number;
  error?: string;
}

const STARTED = /^ultravisor: partition \S+ started at quantum (\d+): cr3 0x[0-9a-f]+ window (0x[0-9a-f]+) allotment (\d+) pages/;

export async function serverFuzzRun(opts: { seed: bigint; runQuanta: number; scratch: string; timeoutMs?: number }): Promise<ServerFuzzResult> {
  const img = await buildUltravisorImage({ config: serverFuzzHost(opts.runQuanta), fuzzSeed: opts.seed });
  const out = await writeEfiImage(join(opts.scratch, `fuzz-server-${opts.seed}`), img);
  const symbolsOf = (name: string): Map<string, bigint> => img.partitions.find((p) => p.spec.name === name)!.packed!.symbols;
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 60_000 + opts.runQuanta * 40;
  const m = await Machine.start({ name: "hw-fuzz-server", image: out.esp, mem: "256M", timeoutMs, log: () => undefined });
  const result: ServerFuzzResult = { seed: opts.seed, runQuanta: opts.runQuanta, lines: [], exit: undefined, canaryAt: new Map(), readings: 0, seconds: 0 };
  let ended = false;
  void m.exited.then(() => { ended = true; }, () => { ended = true; });
  try {
    await m.waitFor(/^ultravisor: scheduler running/, timeoutMs);
    // Every client started (the command partition's definitions applied by the ultravisor partition): from here on
    // no transaction runs, so the database must not change.
    const placed = new Map<string, Placement>();
    for (const name of ["io", ...CLIENTS]) {
      // Lines already out (the boot's partitions start before the scheduler) or still to come (the command's).
      const mine = (l: string): RegExpExecArray | null => (l.startsWith(`ultravisor: partition ${name} started`) ? STARTED.exec(l) : null);
      let s = m.lines.map((l) => mine(l.text)).find((x) => x !== null) ?? null;
      if (!s) s = mine((await m.waitFor(new RegExp(`^ultravisor: partition ${name} started at quantum`), timeoutMs)).input ?? "");
      if (!s) throw new Error(`the start line of ${name} does not read as one`);
      placed.set(name, { window: Number(s[2]), pages: Number(s[3]), started: Number(s[1]) });
    }
    result.started = new Map([...placed].map(([n, p]) => [n, p.started]));
    result.io = placed.get("io")!;
    for (const c of SERVER_CANARIES) {
      const sym = symbolsOf(c);
      const at = (n: string): bigint => BigInt(placed.get(c)!.window) + (sym.get(n)! - WINDOW);
      result.canaryAt.set(c, { pattern: at(CANARY_STATUS.pattern), checks: at(CANARY_STATUS.checks), damage: at(CANARY_STATUS.damage), window: placed.get(c)!.window });
    }
    const read = async (): Promise<Reading | undefined> => {
      try {
        await m.qmp!.execute("stop");
        const db = await m.readPhysical(CORE_DB_PLAN.dbPage.lo, CORE_DB_PLAN.dbPage.hi - CORE_DB_PLAN.dbPage.lo);
        const above = await m.readPhysical(result.io!.window + 4096 * result.io!.pages, 4096);
        const canary = new Map<string, { pattern: Uint8Array; checks: bigint; damage: bigint }>();
        for (const [c, at] of result.canaryAt) {
          const q = async (a: bigint): Promise<bigint> => Buffer.from(await m.readPhysical(a, 8)).readBigUInt64LE(0);
          canary.set(c, { pattern: await m.readPhysical(at.pattern, CANARY_PAGES * 4096), checks: await q(at.checks), damage: await q(at.damage) });
        }
        await m.qmp!.execute("cont");
        return { db, above, canary };
      } catch {
        return undefined; // the run ended under the reading
      }
    };
    result.first = await read();
    while (!ended) {
      await new Promise((r) => setTimeout(r, 250));
      if (ended) break;
      const r = await read();
      if (r) {
        result.last = r;
        result.readings++;
      }
    }
    result.exit = await m.wait();
  } catch (e) {
    result.exit = await m.wait().catch((w: unknown) => ({ kind: "error", message: String(w) }));
    result.error = (e as Error).message;
  } finally {
    await m.close();
    result.lines = m.lines.map((l) => l.text);
    result.seconds = (performance.now() - t0) / 1000;
  }
  return result;
}


/** Everything the run did not leave intact, one sentence each (empty: the run passed). */
export function serverFuzzFindings(r: ServerFuzzResult): string[] {
  const bad = runEndFindings(r);
  if (!r.lines.some((l) => /^io: fuzz-server seed 0x[0-9a-f]{16}$/.test(l))) bad.push("no seed line from the hostile I/O partition (was the io-fuzz program built?)");
  // The attack happened: the hostile server reports the scribbles that wrote something.
  const scribbled = r.lines.map((l) => /^io: scribbled (\d+) times in (\d+) passes$/.exec(l)).filter((m) => m !== null).at(-1);
  if (!scribbled || Number(scribbled[1]) < 64) bad.push(`the hostile server scribbled ${scribbled ? scribbled[1] : "no"} times (at least 64 expected)`);
  const state = summaryStates(r.lines);
  for (const p of ["io", ...CLIENTS]) {
    const s = state.get(p);
    if (!s) bad.push(`no summary line for ${p}`);
    else if (s.state !== "ready") bad.push(`${p} ended ${s.state}`);
  }
  for (const c of SERVER_CANARIES) {
    const q = state.get(c)?.quanta ?? 0;
    // duty 2 of 16 quanta from its start on: the canaries never yield, so they get their share whatever the server does.
    const share = (r.runQuanta - (r.started?.get(c) ?? 0)) / 8;
    if (Math.abs(q - share) > 2) bad.push(`${c} ran ${q} quanta, not its share ${share}`);
  }
  if (!r.first || !r.last) {
    bad.push(`too few readings over QMP (${r.readings} after the first)`);
    return bad;
  }
  const same = (x: Uint8Array, y: Uint8Array): boolean => Buffer.from(x).equals(Buffer.from(y));
  if (!same(r.first.db, r.last.db)) bad.push("the resource database's pages changed after every partition had started (no transaction runs then)");
  if (!same(r.first.above, r.last.above)) bad.push(`the page above the I/O partition's allotment (0x${(r.io!.window + 4096 * r.io!.pages).toString(16)}) changed`);
  for (const c of SERVER_CANARIES) {
    const at = r.canaryAt.get(c)!;
    const first = r.first.canary.get(c)!;
    const last = r.last.canary.get(c)!;
    // The canary still runs and checks: its count went on into the second half of the run (a check every 16 quanta;
    // the last reading comes at most a quarter second and a reading's time before the end).
    if (last.checks <= first.checks || Number(last.checks) < r.runQuanta / 32) bad.push(`${c} made ${first.checks} → ${last.checks} checks; it must go on past ${r.runQuanta / 32} of about ${r.runQuanta / 16}`);
    if (last.damage !== 0n) bad.push(`${c} found its canary damaged at 0x${last.damage.toString(16)}`);
    // Checked here too, not only by the guest: each qword is its linear address xor the constant.
    const view = Buffer.from(last.pattern);
    const linear = WINDOW + (at.pattern - BigInt(at.window));
    for (let o = 0; o < view.length; o += 8) {
      if (view.readBigUInt64LE(o) !== (PATTERN ^ (linear + BigInt(o)))) {
        bad.push(`${c}'s canary page differs at byte ${o} (physical 0x${(at.pattern + BigInt(o)).toString(16)})`);
        break;
      }
    }
  }
  return bad;
}
