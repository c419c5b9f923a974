// Hardware test of partitions dispatched on every processor (test/hw; docs/specs/smp.md §2): a four-processor host —
// the Figure 1 partitions with X preferring PCPU 1, Y and Z PCPU 2, and a guest D with a processor to itself (PCPU 3)
// — booted under QEMU/OVMF (multi-threaded TCG) with 4 processors. Every processor runs the row core's table gives it
// (as printed, and as computed here by core in V8 from the same definition); each partition's quanta match its share
// of its row from the quantum it started (less the quanta its processor never saw, which the monitor counts); the
// dedicated processor runs D alone; every guest on an application processor delivers every console line to the I/O
// partition on PCPU 0, so its signals crossed processors, and the signal IPIs were sent and taken; a guest on PCPU 2
// that executes `out` is stopped alone by that processor's monitor (#GP: no I/O bitmap there); a guest on PCPU 1
// signalling its console in a loop while the I/O partition runs interrupts PCPU 0 at most once per POLL of the I/O
// partition (a pending bit already set sends no IPI), and every other guest keeps its share. The same image on
// two processors has no table (D needs a processor of its own and the I/O partition PCPU 0) and stops saying so.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, type UltravisorImage } from "../../image/ultravisor.ts";
import { configFrom, figure1Definition } from "../../partitions/config.ts";
import { readSchedule } from "../../core/schedule.ts";
import { EXIT } from "../../monitor-gen/layout.ts";
import { bootToEnd, runEndFindings, summaryOf, withSerialLog } from "./machine-reads.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-smp-dispatch-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const PREFER: Record<string, number> = { X: 1, Y: 2, Z: 2 };
const RAN = /^ultravisor: smp: partition (\S+) ran on PCPU (\d+): quanta (\d+)$/;
const AP = /^ultravisor: smp: application processor (\d+) \(local APIC id \d+\): (\d+) quantum interrupts, (\d+) lost, (\d+) signal IPIs$/;

/** The Figure 1 host on four processors, with a dedicated guest D on PCPU 3. */
function host(): ReturnType<typeof configFrom> {
  const d = figure1Definition();
  return configFrom({
    ...d,
    host: { ...d.host, pcpus: 4 },
    // Eight guests print through one I/O partition: a line every 16 quanta each and 4/16 of PCPU 0 for the I/O
    // partition keep its queues from filling (a guest drops a line when its queue is full) on a loaded host.
    run: { ...d.run, guestPeriod: 16 },
    partitions: [
      ...d.partitions!.map((p) => {
        const { pcpu: _, ...rest } = p;
        if (p.kind === "io") return { ...rest, duty: 4 };
        return PREFER[p.name] !== undefined ? { ...rest, pcpu: PREFER[p.name] } : rest;
      }),
      { name: "D", kind: "guest", pcpu: 3, vcpus: [{ dedicated: true }], behaviour: { lang: "as" } },
      // A guest on an application processor that executes `out`: that processor's TSS has no I/O bitmap.
      { name: "F", kind: "guest", pcpu: 2, duty: 1, behaviour: { fault: "out", faultAfter: 2 } },
      // A hostile guest on PCPU 1 whose quanta overlap the I/O partition's: random channel-header writes, each followed
      // by a SIGNAL of its console, in a loop.
      { name: "S", kind: "guest", pcpu: 1, duty: 6, behaviour: { fault: "fuzz-channel" } },
    ],
  });
}

let img: UltravisorImage;
let esp = "";
beforeAll(async () => {
  img = await buildUltravisorImage({ config: host() });
  esp = (await writeEfiImage(join(scratch, "smp4"), img)).esp;
}, 150_000);

const boot = (cpus: number): ReturnType<typeof bootToEnd> => bootToEnd(`hw-smp-dispatch-${cpus}`, esp, cpus);

describe("partitions on four processors: rows, shares, a dedicated processor, signals across processors (TCG, multi-threaded)", () => {
  it("the image holds core's table for four processors only: D's processor and PCPU 0 for the bound partitions", () => {
    expect(img.schedules.map((t) => t !== null)).toEqual([false, false, false, true]);
    const rows = readSchedule(img.schedules[3]!.bytes.buffer as ArrayBuffer, 0).rows;
    const name = (n: number): string => img.config.partitions[n - 1]!.name;
    expect(rows[3]!.entries.map((e) => name(e.partition))).toEqual(Array(16).fill("D"));
    expect(rows[3]!.flags & 1, "PCPU 3 is DEDICATED").toBe(1);
    for (const [g, p] of Object.entries(PREFER)) expect(rows[p]!.entries.some((e) => name(e.partition) === g), `${g} on PCPU ${p}`).toBe(true);
    for (const g of ["uv-partition", "io", "command", "V"]) expect(rows[0]!.entries.some((e) => name(e.partition) === g), `${g} on PCPU 0`).toBe(true);
  });

  it("4 processors: each runs its row; quanta match the shares; D alone on PCPU 3; every line of the guests on PCPUs 1-3 delivered", async () => {
    const b = await boot(4);
    withSerialLog(b.lines, () => {
      expect(runEndFindings(b)).toEqual([]);
      expect(b.lines).toContain("ultravisor: smp: schedule for 4 processor(s) of 4 online");
      // The rows printed are core's, as the image embeds them.
      const printed = b.lines.map((l) => /^ultravisor: schedule \(PCPU (\d+), quanta 0-15\): (.*)$/.exec(l)).filter((x) => x !== null);
      expect(printed.map((r) => r[2])).toEqual(img.schedules[3]!.rows);
      const rows = img.schedules[3]!.rows.map((r) => r.split(" "));
      // Where each partition ran: its row.
      const ran = new Map(b.lines.map((l) => RAN.exec(l)).filter((x) => x !== null).map((x) => [x[1]!, { pcpu: Number(x[2]), quanta: Number(x[3]) }]));
      for (const p of img.config.partitions) {
        if (p.kind === "idle" || p.name === "F" || p.name === "S") continue;
        const row = rows.findIndex((r) => r.includes(p.name));
        expect(ran.get(p.name)?.pcpu, `${p.name} ran on its row's processor`).toBe(row);
        // The application processors run on while PCPU 0 prints the summary: the later report may count one more.
        const q = summaryOf(b.lines, p.name).quanta;
        expect(ran.get(p.name)!.quanta, `${p.name}'s quanta (summary, then placement report)`).toBeGreaterThanOrEqual(q);
        expect(ran.get(p.name)!.quanta, `${p.name}'s quanta (summary, then placement report)`).toBeLessThanOrEqual(q + 2);
      }
      expect([...ran].filter(([, v]) => v.pcpu === 3).map(([n]) => n), "PCPU 3 ran D alone").toEqual(["D"]);
      // Every application processor took the quantum IPIs; its lost quanta bound how far its partitions may fall short.
      const aps = new Map(b.lines.map((l) => AP.exec(l)).filter((x) => x !== null).map((x) => [Number(x[1]), { taken: Number(x[2]), lost: Number(x[3]), ipis: Number(x[4]) }]));
      expect([...aps.keys()].sort()).toEqual([1, 2, 3]);
      const end = Number(b.lines.map((l) => /^ultravisor: summary after (\d+) quanta/.exec(l)?.[1]).find((x) => x !== undefined));
      const started = new Map(b.lines.map((l) => /^ultravisor: partition (\S+) started at quantum (\d+):/.exec(l)).filter((x) => x !== null).map((x) => [x[1]!, Number(x[2])]));
      for (const [p, a] of aps) expect(a.taken + a.lost, `processor ${p}: taken and lost quanta cover the run`).toBeGreaterThan(end - 80);
      // Shares: quantum q of the run gives entry q mod 16 of the row; a partition started at quantum s is due the
      // quanta of [s, end) its row names. An application processor may lose quanta (it counts them), never gain any.
      for (const g of ["X", "Y", "Z", "D", "command", "uv-partition"]) {
        const row = ran.get(g)!.pcpu;
        const s = started.get(g)!;
        let due = 0;
        for (let q = s; q < end; q++) if (rows[row]![q % 16] === g) due++;
        const lost = row === 0 ? 0 : aps.get(row)!.lost;
        const got = ran.get(g)!.quanta;
        expect(got, `${g} on PCPU ${row}: at most its share (${due} quanta of [${s}, ${end}))`).toBeLessThanOrEqual(due + 1);
        expect(got, `${g} on PCPU ${row}: its share less the quanta its processor lost (${lost})`).toBeGreaterThanOrEqual(due - lost - 2);
      }
      // The dedicated processor: D in every quantum from its start, but for lost ones.
      expect(ran.get("D")!.quanta).toBeGreaterThanOrEqual(end - started.get("D")! - aps.get(3)!.lost - 2);
      // Containment on an application processor: F's `out` faulted there (#GP), F alone stopped, its lines before.
      expect(b.lines.some((l) => /^partition F: fault vector 13 at 0x[0-9a-f]+ rip 0x[0-9a-f]+ error 0x0+$/.test(l)), "F's fault line").toBe(true);
      expect(b.lines).toContain("F: about to fault: out");
      expect(b.lines).not.toContain("F: still running after the fault: containment failed");
      expect(summaryOf(b.lines, "F").state).toBe("failed");
      expect(ran.get("F")?.pcpu).toBe(2);
      // Signals across processors: the guests on PCPUs 1-3 print through the I/O partition on PCPU 0, every line.
      for (const g of ["X", "Y", "Z", "D"]) {
        expect(summaryOf(b.lines, g).state).toBe("ready");
        const tick = b.lines.map((l) => new RegExp(`^${g}: tick (\\d+) quantum`).exec(l)).filter((x) => x !== null).map((x) => Number(x[1]));
        expect(tick.length, `${g}'s lines`).toBeGreaterThan(20);
        expect(tick, `${g}'s lines, every one`).toEqual(Array.from({ length: tick.length }, (_, i) => i + 1));
      }
      const sig = b.lines.map((l) => /^ultravisor: smp: signal IPIs sent (\d+), taken by PCPU 0 (\d+)$/.exec(l)).find((x) => x);
      expect(sig, "the signal IPI line").toBeTruthy();
      expect(Number(sig![1]), "signal IPIs sent to the I/O partition's processor").toBeGreaterThan(0);
      expect(Number(sig![2]), "taken by PCPU 0").toBeGreaterThan(0);
      expect(Number(sig![2]), "no more taken than sent to it").toBeLessThanOrEqual(Number(sig![1]));
      // S signalled its console hundreds of thousands of times, many while the I/O partition ran on PCPU 0; an IPI
      // needs the I/O partition's pending bit to go from clear to set, which only its POLL (a hypercall) clears.
      expect(summaryOf(b.lines, "S").state, "the hostile guest runs on").toBe("ready");
      const io = b.lines.map((l) => /^ultravisor: partition io number \d+ state ready quanta \d+ tsc \d+ hypercalls (\d+)$/.exec(l)).find((x) => x);
      expect(Number(sig![1]), "signal IPIs sent: at most one per POLL of the I/O partition (and one per slot)").toBeLessThanOrEqual(Number(io![1]) + 16);
    });
  }, 140_000);

  it("2 processors: no table fits (D needs a processor of its own, the I/O partition PCPU 0): the run stops saying so", async () => {
    const b = await boot(2);
    withSerialLog(b.lines, () => {
      expect(b.lines).toContain("ultravisor: smp: no schedule for 2 processor(s) in this image (host.pcpus 4): stopping");
      expect(b.exit).toEqual({ kind: "guest", code: EXIT.panic });
      expect(b.lines.some((l) => l.startsWith("ultravisor: scheduler running"))).toBe(false);
    });
  }, 100_000);
});
