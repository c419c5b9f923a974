// Hardware test of the application processors' bring-up (test/hw; docs/specs/smp.md §1, issue 18's first step): the
// default image booted under QEMU/OVMF (TCG, multi-threaded) with 1, 2 and 4 processors. The monitor reports every
// other processor it started through the trampoline below 1 MiB, each with the local APIC id it read from its own APIC;
// QEMU's own registers ("info registers -a" over the monitor) show each one halted in the monitor's code segment on
// the monitor's page tables with interrupts on and a TSS of its own; each one's timer ran the whole run; and the run
// ends as with one processor: every partition ran on the bootstrap processor.
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
const AP = /^ultravisor: smp: application processor (\d+): local APIC id (\d+), its own GDT, TSS, stack and timer, halted between interrupts$/;
const TICKS = /^ultravisor: smp: application processor (\d+) \(local APIC id (\d+)\): (\d+) timer interrupts$/;
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

describe("application processors started with their own descriptors and timers (TCG, multi-threaded)", () => {
  for (const cpus of [1, 2, 4]) {
    it(`${cpus} processor(s): ${cpus - 1} started through the trampoline, each with its own APIC id, descriptors and timer; the partitions run as with one`, async () => {
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
        // QEMU's own view: as many processors as asked for, and each application processor halted (HLT=1) in the
        // monitor's 64-bit code segment 0x08 on the monitor's page tables (CR3 as the monitor printed it), interrupts
        // on (it waits for its timer), its task register 0x28 on a TSS of its own.
        const info = b.cpusInfo.split("\n").filter((l) => /CPU #\d+/.test(l));
        expect(info, b.cpusInfo).toHaveLength(cpus);
        const kcr3 = b.lines.map((l) => /^ultravisor: paging: .* cr3 (0x[0-9a-f]+)$/.exec(l)).find((x) => x)![1]!;
        expect(b.regs).toHaveLength(cpus - 1);
        const tss = new Set<string>();
        for (const r of b.regs) {
          expect(r, r).toMatch(/HLT=1/);
          expect(r, r).toMatch(/CS =0008 /);
          expect(BigInt(`0x${/CR3=([0-9a-f]+)/.exec(r)![1]}`), r).toBe(BigInt(kcr3));
          expect(Number(`0x${/RFL=([0-9a-f]+)/.exec(r)![1]}`) & 0x200, r).toBe(0x200);
          tss.add(/TR =0028 ([0-9a-f]+)/.exec(r)![1]!);
        }
        expect(tss.size, "a TSS of its own on every application processor").toBe(cpus - 1);
        // Each one's own timer ran the whole time at the bootstrap processor's period (the run is 800 quanta).
        const ticks = b.lines.map((l) => TICKS.exec(l)).filter((x) => x !== null);
        expect(ticks.map((x) => Number(x[2])).sort(), "the timer report names the same processors").toEqual([...ids].sort());
        for (const t of ticks) expect(Number(t[3]), t[0]).toBeGreaterThan(400);
        // With an application processor, the bring-up timed IPI round trips to it: every one answered.
        const ping = b.lines.map((l) => /^ultravisor: smp: IPI round trip to application processor 1: min (\d+) mean (\d+) TSC cycles over 64 rounds, lost (\d+)$/.exec(l)).find((x) => x);
        if (cpus > 1) {
          expect(ping, "the IPI round-trip line").toBeTruthy();
          expect(Number(ping![3]), "IPIs without an answer").toBe(0);
          expect(Number(ping![1])).toBeGreaterThan(0);
          expect(Number(ping![2])).toBeGreaterThanOrEqual(Number(ping![1]));
        } else expect(ping).toBeUndefined();
        // The partitions ran on the bootstrap processor: the guests got their quanta.
        for (const g of ["X", "Y", "Z"]) expect(summaryOf(b.lines, g).state).toBe("ready");
      });
    }, 110_000);
  }
});
