// Hardware test of the application processors (test/hw; docs/specs/smp.md §1 and §2): the default image (host.pcpus
// 2, X and Y preferring PCPU 1) booted under QEMU/OVMF (TCG, multi-threaded) with 1, 2 and 4 processors. The monitor
// reports every other processor it started through the trampoline below 1 MiB, each with the local APIC id it read
// from its own APIC; QEMU's own registers ("info registers -a" over the monitor) show each one on a TSS of its own,
// and the ones without a row halted in their idle context; every one took the bootstrap processor's quantum IPIs the
// whole run; with two or more processors X and Y ran on PCPU 1 and the others on PCPU 0, as core's table for two says;
// and every guest printed every line through the I/O partition on PCPU 0.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { Machine } from "../../qemu/index.ts";
import { runEndFindings, summaryOf, withSerialLog } from "./machine-reads.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-smp-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const ONLINE = /^ultravisor: smp: (\d+) application processor\(s\) started through the trampoline at (0x[0-9a-f]+);/;
const AP = /^ultravisor: smp: application processor (\d+): local APIC id (\d+), its own GDT, TSS, stacks and idle context$/;
const TICKS = /^ultravisor: smp: application processor (\d+) \(local APIC id (\d+)\): (\d+) quantum interrupts, (\d+) lost, (\d+) signal IPIs$/;
const RAN = /^ultravisor: smp: partition (\S+) ran on PCPU (\d+): quanta (\d+)$/;
let esp = "";

beforeAll(async () => {
  esp = (await writeEfiImage(join(scratch, "smp"), await buildUltravisorImage())).esp;
}, 120_000);

async function boot(cpus: number): Promise<{ lines: string[]; cpusInfo: string; regs: string[]; exit: unknown; error?: string }> {
  const m = await Machine.start({ name: `hw-smp-${cpus}`, image: esp, accel: "tcg", smp: cpus, timeoutMs: 100_000, log: () => undefined });
  try {
    await m.waitFor(ONLINE, 60_000);
    // Each processor's line follows the count; then ask QEMU what its processors are doing.
    for (let t = 0; t < 50 && m.lines.filter((l) => AP.test(l.text)).length < cpus - 1; t++) await new Promise((r) => setTimeout(r, 100));
    const cpusInfo = await m.qmp!.humanMonitorCommand("info cpus");
    // Every processor's registers as QEMU keeps them ("info registers -a"), one block per "CPU#N" header.
    const all = await m.qmp!.humanMonitorCommand("info registers -a");
    const regs = all.split(/^CPU#/m).filter((x) => /^\d+/.test(x)).filter((x) => !x.startsWith("0"));
    const exit = await m.wait();
    return { lines: m.lines.map((l) => l.text), cpusInfo, regs, exit };
  } catch (e) {
    return { lines: m.lines.map((l) => l.text), cpusInfo: "", regs: [], exit: undefined, error: String(e) };
  } finally {
    await m.close();
  }
}

describe("application processors started, each dispatching its row of the schedule (TCG, multi-threaded)", () => {
  for (const cpus of [1, 2, 4]) {
    it(`${cpus} processor(s): ${cpus - 1} started through the trampoline, each with its own APIC id and descriptors; X and Y on PCPU 1 from two processors on, every line delivered`, async () => {
      const b = await boot(cpus);
      withSerialLog(b.lines, () => {
        expect(runEndFindings(b)).toEqual([]);
        const online = b.lines.map((l) => ONLINE.exec(l)).find((x) => x);
        expect(online, "the bring-up line").toBeTruthy();
        expect(Number(online![1])).toBe(cpus - 1);
        // The page the loader reserved: 4 KiB-aligned below 1 MiB (a STARTUP vector names it).
        const page = Number(online![2]);
        expect(page % 4096).toBe(0);
        expect(page).toBeLessThan(0xa0000);
        const aps = b.lines.map((l) => AP.exec(l)).filter((x) => x !== null);
        expect(aps.map((x) => Number(x[1]))).toEqual(Array.from({ length: cpus - 1 }, (_, i) => i + 1));
        const ids = aps.map((x) => Number(x[2]));
        expect(new Set(ids).size, `distinct APIC ids ${ids}`).toBe(cpus - 1);
        // QEMU's own view: as many processors as asked for, each application processor with its task register 0x28
        // on a TSS of its own; the ones without a schedule row (the table has two rows) halted (HLT=1) in their idle
        // context: the monitor's code segment 0x08 on the monitor's page tables (CR3 as printed), interrupts on. The
        // one with a row may be anywhere in its partitions or the monitor when QEMU is asked.
        const info = b.cpusInfo.split("\n").filter((l) => /CPU #\d+/.test(l));
        expect(info, b.cpusInfo).toHaveLength(cpus);
        const kcr3 = b.lines.map((l) => /^ultravisor: paging: .* cr3 (0x[0-9a-f]+)$/.exec(l)).find((x) => x)![1]!;
        expect(b.regs).toHaveLength(cpus - 1);
        const tss = new Set<string>();
        const idleAps = b.regs.filter((r) => /HLT=1/.test(r));
        for (const r of b.regs) tss.add(/TR =0028 ([0-9a-f]+)/.exec(r)![1]!);
        expect(idleAps.length, "application processors without a row halt in their idle context").toBeGreaterThanOrEqual(Math.max(0, cpus - 2));
        for (const r of idleAps) {
          expect(r, r).toMatch(/CS =0008 /);
          expect(BigInt(`0x${/CR3=([0-9a-f]+)/.exec(r)![1]}`), r).toBe(BigInt(kcr3));
          expect(Number(`0x${/RFL=([0-9a-f]+)/.exec(r)![1]}`) & 0x200, r).toBe(0x200);
        }
        expect(tss.size, "a TSS of its own on every application processor").toBe(cpus - 1);
        // Each one took the bootstrap processor's quantum IPIs the whole run (800 quanta), every quantum counted as
        // taken or lost.
        const ticks = b.lines.map((l) => TICKS.exec(l)).filter((x) => x !== null);
        expect(ticks.map((x) => Number(x[2])).sort(), "the report names the same processors").toEqual([...ids].sort());
        const end = Number(b.lines.map((l) => /^ultravisor: summary after (\d+) quanta/.exec(l)?.[1]).find((x) => x !== undefined));
        for (const t of ticks) {
          expect(Number(t[3]), t[0]).toBeGreaterThan(400);
          expect(Number(t[3]) + Number(t[4]), `${t[0]}: taken and lost cover the run`).toBeGreaterThanOrEqual(end - 60);
          expect(Number(t[3]) + Number(t[4]), t[0]).toBeLessThanOrEqual(end);
        }
        // Where the partitions ran: core's table for min(processors, 2) rows, as printed, and the report agrees.
        const rows = b.lines.map((l) => /^ultravisor: schedule \(PCPU (\d+), quanta 0-15\): (.*)$/.exec(l)).filter((x) => x !== null);
        expect(rows.map((r) => Number(r[1]))).toEqual(cpus === 1 ? [0] : [0, 1]);
        expect(b.lines).toContain(`ultravisor: smp: schedule for ${Math.min(cpus, 2)} processor(s) of ${cpus} online`);
        const ran = new Map(b.lines.map((l) => RAN.exec(l)).filter((x) => x !== null).map((x) => [x[1]!, Number(x[2])]));
        if (cpus === 1) expect(ran.size, "one processor: no placement report").toBe(0);
        else {
          expect(rows[1]![2]!.split(" ").filter((n) => n !== "idle").sort()).toEqual(["X", "X", "X", "X", "Y", "Y", "Y"]);
          expect(Object.fromEntries(ran)).toEqual({ "uv-partition": 0, io: 0, command: 0, X: 1, Y: 1, Z: 0, V: 0 });
        }
        // With an application processor, the bring-up timed IPI round trips to it: every one answered.
        const ping = b.lines.map((l) => /^ultravisor: smp: IPI round trip to application processor 1: min (\d+) mean (\d+) TSC cycles over 64 rounds, lost (\d+)$/.exec(l)).find((x) => x);
        if (cpus > 1) {
          expect(ping, "the IPI round-trip line").toBeTruthy();
          expect(Number(ping![3]), "IPIs without an answer").toBe(0);
          expect(Number(ping![1])).toBeGreaterThan(0);
          expect(Number(ping![2])).toBeGreaterThanOrEqual(Number(ping![1]));
        } else expect(ping).toBeUndefined();
        // Every guest ran and printed every line (X and Y from PCPU 1 through the I/O partition on PCPU 0 when there
        // are two processors: their signals cross processors): ticks 1, 2, 3, ... without a gap.
        for (const g of ["X", "Y", "Z"]) {
          expect(summaryOf(b.lines, g).state).toBe("ready");
          const tick = b.lines.map((l) => new RegExp(`^${g}: tick (\\d+) quantum`).exec(l)).filter((x) => x !== null).map((x) => Number(x[1]));
          expect(tick.length, `${g}'s lines`).toBeGreaterThan(20);
          expect(tick, `${g}'s lines, every one`).toEqual(Array.from({ length: tick.length }, (_, i) => i + 1));
        }
      });
    }, 110_000);
  }
});
