// Hardware test of the audit log's flood guarantee (issue #12; docs/specs/hypercall-abi.md, Audit records), through
// qemu/'s Machine under OVMF: a test-only guest (fault: flood-command, partitions/programs.ts, never in the default
// image) loops the refused COMMAND hypercall as fast as it can. The serial log must hold whole lines only (nothing cut,
// nothing glued to a guest's text), a bounded number of audit records plus "N more refused hypercalls suppressed"
// lines, the other guests must print as many lines as in the same host without the flooder, and the flooder must keep
// its own quanta. Two short boots (with and without the flooder) keep the file well under 90 s under TCG.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { consoleLinesOf, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { configFrom } from "../../partitions/config.ts";
import { AUDIT } from "../../monitor-gen/layout.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-audit-flood-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const RUN_QUANTA = 512;
/** The same schedule in both runs: F floods in the first, is an ordinary guest in the second. */
function host(flood: boolean): ReturnType<typeof configFrom> {
  return configFrom({
    revision: 2,
    partitions: [
      { name: "idle", kind: "idle" },
      { name: "io", kind: "io", duty: 2 },
      { name: "A", duty: 2 },
      { name: "B", duty: 2 },
      { name: "F", duty: 2, ...(flood ? { behaviour: { fault: "flood-command" } } : {}) },
    ],
    run: { runQuanta: RUN_QUANTA },
  }, flood ? "audit flood host" : "audit flood baseline");
}

interface Run { lines: string[]; exit: unknown; seconds: number }
async function run(name: string, flood: boolean): Promise<Run> {
  const img = await buildUltravisorImage({ config: host(flood) });
  const out = await writeEfiImage(join(scratch, name), img);
  const t0 = performance.now();
  const m = await Machine.start({ name: `hw-${name}`, image: out.esp, mem: "256M", timeoutMs: 100_000, log: () => undefined });
  try {
    const exit = await m.wait();
    return { lines: m.lines.map((l) => l.text), exit, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await m.close();
  }
}

let flood: Run;
let base: Run;
beforeAll(async () => {
  flood = await run("flood", true);
  base = await run("baseline", false);
}, 200_000);

const linesOf = (r: Run, name: string): string[] => consoleLinesOf(r.lines, name);
const TICK = /^tick (\d+) quantum (\d+) work (\d+) checksum 0x[0-9a-f]+$/;
const SUMMARY = /^ultravisor: partition (\S+) number (\d+) state (ready|waiting|failed) quanta (\d+) tsc (\d+) hypercalls (\d+)$/;
const AUDIT_LINE = /^ultravisor: audit: partition (\S+): (command channel submission refused|start refused \(only the ultravisor partition starts partitions\)|(\d+) more refused hypercalls suppressed)$/;
/** Every line the machine may print once the scheduler runs: the monitor's, a fault report, or a partition's via io. */
const AFTER_START = /^(ultravisor: .*|partition \S+: fault vector .*|io: .*|(A|B|F): tick \d+ quantum \d+ work \d+ checksum 0x[0-9a-f]+)$/;

function quantaOf(r: Run, name: string): number {
  const s = r.lines.map((l) => SUMMARY.exec(l)).find((x) => x?.[1] === name);
  expect(s, `${name} summary line`).toBeDefined();
  return Number(s![4]);
}
const withLog = (r: Run, check: () => void): void => withSerialLog(r.lines, check, base.lines.filter((l) => l.startsWith("ultravisor: ")));

describe("the audit log under a flood of refused hypercalls", () => {
  it("prints whole lines only: every line after the scheduler starts matches the grammar, none glued to another", () => {
    withLog(flood, () => {
      const start = flood.lines.findIndex((l) => l.startsWith("ultravisor: scheduler running"));
      expect(start).toBeGreaterThan(-1);
      const end = flood.lines.findIndex((l) => l.startsWith("ultravisor: summary after "));
      // The run's end may stop the I/O partition in the middle of a guest's line; the monitor ends that line before
      // its own (monitor-gen/entry.ts on_finish), so only the last guest line may be short.
      const lastGuest = flood.lines.slice(0, end).findLastIndex((l) => !l.startsWith("ultravisor: "));
      for (const [i, l] of flood.lines.entries()) {
        if (i < start) continue;
        if (i === lastGuest && !AFTER_START.test(l)) expect(l, "cut by the end of the run").toMatch(/^(A|B|F|io): [^:]*$/);
        else expect(l, "a whole line of the grammar").toMatch(AFTER_START);
        expect(l.indexOf("ultravisor:", 1), `nothing glued: ${l}`).toBe(-1);
        if (l.startsWith("ultravisor: audit")) expect(l).toMatch(AUDIT_LINE);
      }
      // (The other log line, the I/O partition held back while the UART drains one of the monitor's lines, is not a loss.)
      expect(flood.lines.filter((l) => /^ultravisor: log: \d+ lines dropped whole/.test(l)), "no line dropped for want of space").toEqual([]);
      expect(flood.exit).toEqual({ kind: "guest", code: 0x21 });
    });
  });

  it("records at most the limit per window and counts the rest in 'suppressed' lines", () => {
    withLog(flood, () => {
      const audit = flood.lines.map((l) => AUDIT_LINE.exec(l)).filter((x) => x !== null);
      expect(audit.every((x) => x[1] === "F"), "only the flooder is audited").toBe(true);
      const recorded = audit.filter((x) => x[3] === undefined).length;
      const suppressed = audit.filter((x) => x[3] !== undefined).map((x) => Number(x[3]));
      const windows = Math.ceil(RUN_QUANTA / AUDIT.windowQuanta);
      expect(recorded, "records").toBeGreaterThan(0);
      expect(recorded, "records").toBeLessThanOrEqual(AUDIT.lines * windows);
      expect(suppressed.length, "suppressed lines").toBeGreaterThan(0);
      expect(suppressed.length, "at most one suppressed line per window (and one at the summary)").toBeLessThanOrEqual(windows + 1);
      // Every refusal is accounted for: the flooder's last tick line counts refusals made by then.
      const ticks = linesOf(flood, "F").map((l) => TICK.exec(l)).filter((x) => x !== null);
      const lastWork = Number(ticks.at(-1)![3]);
      const total = recorded + suppressed.reduce((s, n) => s + n, 0);
      expect(total, "refusals recorded or counted").toBeGreaterThanOrEqual(lastWork);
      const seconds = (RUN_QUANTA * 2) / 1000;
      console.log(`audit flood: ${total} refusals, ${audit.length} audit lines in ${RUN_QUANTA} quanta (${(audit.length / seconds).toFixed(0)} lines per guest second, ${flood.seconds.toFixed(1)} s wall), baseline ${base.seconds.toFixed(1)} s wall`);
    });
  });

  it("leaves the other guests their output and the flooder its own quanta", () => {
    withLog(flood, () => {
      // When the host stops reading QEMU's serial output (a loaded machine), the UART stays busy and the I/O
      // partition waits for it whichever run it is: the comparison of printed lines holds only without such a stall.
      const stalled = [flood, base].some((r) => r.lines.some((l) => l.startsWith("ultravisor: log: the I/O partition waited ")));
      for (const g of ["A", "B"]) {
        const n = linesOf(flood, g).filter((l) => TICK.test(l)).length;
        const b = linesOf(base, g).filter((l) => TICK.test(l)).length;
        expect(b, `${g} baseline lines`).toBeGreaterThan(20);
        if (stalled) console.log(`audit flood: the host stalled the UART; ${g} printed ${n} lines, ${b} in the baseline`);
        else expect(n, `${g} lines with the flooder (baseline ${b})`).toBeGreaterThanOrEqual(b - 1);
      }
      for (const p of ["A", "B", "F"]) expect(Math.abs(quantaOf(flood, p) - quantaOf(base, p)), `${p} quanta`).toBeLessThanOrEqual(1);
      const held = (r: Run): number => Number(/waited (\d+) quanta/.exec(r.lines.find((l) => l.startsWith("ultravisor: log: the I/O partition waited ")) ?? "")?.[1] ?? 0);
      expect(Math.abs(quantaOf(flood, "io") + held(flood) - quantaOf(base, "io") - held(base)), "io quanta (with those it waited for the UART)").toBeLessThanOrEqual(1);
      // The flooder keeps printing at its period: its quanta are its own, not taken for the log.
      const f = linesOf(flood, "F").filter((l) => TICK.test(l)).length;
      expect(f, "flooder lines").toBeGreaterThanOrEqual(linesOf(base, "F").filter((l) => TICK.test(l)).length - 1);
    });
  });
});
