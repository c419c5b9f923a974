// Hardware test of the schedule swap at a wrap (test/hw; docs/specs/smp.md §2.7): the default image built with a swap
// at quantum 100 to core's tables for X 1/16 and Y 6/16 (the rest as before), booted under QEMU/OVMF (multi-threaded
// TCG) on one and two processors. The monitor installs the new table at quantum 100 for the next wrap, 112; PCPU 0
// takes it at exactly 112 and PCPU 1 at its first quantum from 112 on (112 unless it lost that one); no processor
// dispatches a quantum before 112 from the new table or after it from the old, which the guests' quanta show: each
// equals its entries of the old row before 112 plus the new row's from 112 (less the quanta its processor lost), which
// the old table alone cannot explain.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, type UltravisorImage } from "../../image/ultravisor.ts";
import { bootToEnd, runEndFindings, summaryOf, withSerialLog } from "./machine-reads.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-smp-swap-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const AT = 100;
const SWITCH = 112; // the next wrap after AT
const TOOK = /^ultravisor: smp: PCPU (\d+) took the new schedule at quantum (\d+) \((\d+) TSC cycles after the request\)$/;

let img: UltravisorImage;
let esp = "";
beforeAll(async () => {
  img = await buildUltravisorImage({ swap: { at: AT, duties: { X: 1, Y: 6 } } });
  esp = (await writeEfiImage(join(scratch, "swap"), img)).esp;
}, 150_000);

const boot = (cpus: number): ReturnType<typeof bootToEnd> => bootToEnd(`hw-smp-swap-${cpus}`, esp, cpus);

describe("a schedule swap takes effect at a wrap on every processor (TCG, multi-threaded)", () => {
  for (const cpus of [1, 2]) {
    it(`${cpus} processor(s): requested at quantum ${AT}, taken at ${SWITCH} by every processor; the guests' quanta follow the old table, then the new`, async () => {
      const b = await boot(cpus);
      withSerialLog(b.lines, () => {
        expect(runEndFindings(b)).toEqual([]);
        expect(b.lines).toContain(`ultravisor: smp: schedule swap requested at quantum ${AT}: the new table for ${cpus} processor(s) takes effect at quantum ${SWITCH} on every processor`);
        const before = img.schedules[cpus - 1]!.rows.map((r) => r.split(" "));
        const after = img.swapSchedules![cpus - 1]!.rows.map((r) => r.split(" "));
        after.forEach((r, p) => expect(b.lines).toContain(`ultravisor: schedule after the swap (PCPU ${p}, quanta 0-15): ${r.join(" ")}`));
        // The new table gives X 1 and Y 6 quanta of a cycle, on the same rows as before.
        const count = (rows: string[][], g: string): number => rows.flat().filter((n) => n === g).length;
        expect([count(before, "X"), count(before, "Y"), count(after, "X"), count(after, "Y")]).toEqual([4, 3, 1, 6]);
        const took = new Map(b.lines.map((l) => TOOK.exec(l)).filter((x) => x !== null).map((x) => [Number(x[1]), Number(x[2])]));
        expect([...took.keys()].sort()).toEqual(Array.from({ length: cpus }, (_, p) => p));
        expect(took.get(0), "PCPU 0 at the wrap").toBe(SWITCH);
        const lost = cpus > 1 ? Number(b.lines.map((l) => /^ultravisor: smp: application processor 1 \(local APIC id \d+\): \d+ quantum interrupts, (\d+) lost/.exec(l)?.[1]).find((x) => x !== undefined)) : 0;
        if (cpus > 1) {
          expect(took.get(1)!, "PCPU 1 at its first quantum from the wrap on").toBeGreaterThanOrEqual(SWITCH);
          expect(took.get(1)! - SWITCH, "only quanta it lost lie between").toBeLessThanOrEqual(lost);
        }
        // The guests' quanta: their row's entries of the old table before the wrap, of the new one from it.
        const end = Number(b.lines.map((l) => /^ultravisor: summary after (\d+) quanta/.exec(l)?.[1]).find((x) => x !== undefined));
        const started = new Map(b.lines.map((l) => /^ultravisor: partition (\S+) started at quantum (\d+):/.exec(l)).filter((x) => x !== null).map((x) => [x[1]!, Number(x[2])]));
        for (const g of ["X", "Y", "Z"]) {
          const row = before.findIndex((r) => r.includes(g));
          let due = 0, oldOnly = 0;
          for (let q = started.get(g)!; q < end; q++) {
            if ((q < SWITCH ? before : after)[row]![q % 16] === g) due++;
            if (before[row]![q % 16] === g) oldOnly++;
          }
          const got = summaryOf(b.lines, g).quanta;
          const slack = row === 0 ? 0 : lost + 1;
          expect(got, `${g} on PCPU ${row}: at most its entries (old table before ${SWITCH}, new from it: ${due})`).toBeLessThanOrEqual(due);
          expect(got, `${g} on PCPU ${row}: its entries less the quanta its processor lost`).toBeGreaterThanOrEqual(due - slack);
          // Without the swap its quanta would lie in [oldOnly − slack, oldOnly]: they do not.
          if (g !== "Z") expect(got < oldOnly - slack || got > oldOnly, `${g}: ${got} quanta, the old table alone gives ${oldOnly - slack}..${oldOnly}`).toBe(true);
        }
      });
    }, 140_000);
  }
});
