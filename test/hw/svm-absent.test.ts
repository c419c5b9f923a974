// Hardware test of the SVM backend's nested-page-fault policy (test/hw; docs/specs/svm.md §4.1): one boot of
// examples/ultravisor-svm-absent.yaml under QEMU/OVMF with TCG's SVM + NPT. "mmio" reads and writes the APIC/IOAPIC
// hole with each MOV form the monitor emulates (all ones, writes dropped, it keeps running); "rmw" uses an
// instruction the monitor does not emulate there and is stopped alone; "sweep" reads and writes guest-physical
// addresses equal to every other partition's host-physical pages and the database's — after it, the whole of RAM is
// read over QMP and the quadword it wrote is found nowhere but in its own pages; "acloop" spins in an #AC storm at
// CPL 3 and still gets exactly its share; "uart" and "halt" stop themselves (the 16550A model under Linux's
// autoconfig probes, the keyboard-controller reset, HLT with interrupts off; docs/specs/linux-pc.md); "pc" takes the
// 8254's interrupts through the 8259A and sends a line from its UART's THRE interrupt handler.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { consoleLinesOf, summaryOf, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { loadConfig } from "../../partitions/config.ts";
import { SVM_RESERVE, VM } from "../../monitor-gen/svm/layout.ts";
import { DB_PAGES } from "../../monitor-gen/layout.ts";
import { MMIO_BEFORE, MMIO_PROBE, PC_IRQ, SWEEP } from "../../partitions/svm-guest.ts";

const RAM = 256 << 20;
const scratch = mkdtempSync(join(tmpdir(), "uv-hw-svm-absent-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const config = loadConfig(join(import.meta.dirname, "..", "..", "examples", "ultravisor-svm-absent.yaml"));

/** Every partition's allotment as the monitor printed it when it started the partition. */
const ALLOTMENT = /^ultravisor: partition (\S+) started at quantum \d+: cr3 0x[0-9a-f]+ window (0x[0-9a-f]+) allotment (\d+) pages/;
let boot: { lines: string[]; exit: unknown; patternAt: Array<{ at: number; after: string }>; acloopExits: bigint; codeChanged: string[] };

beforeAll(async () => {
  const img = await buildUltravisorImage({ config });
  const out = await writeEfiImage(join(scratch, "absent"), img);
  const m = await Machine.start({ name: "hw-svm-absent", image: out.esp, mem: "256M", timeoutMs: 170_000, log: () => undefined });
  try {
    const seen = async (re: RegExp): Promise<void> => {
      for (let t = 0; t < 1200 && !m.lines.some((l) => re.test(l.text)); t++) await new Promise((r) => setTimeout(r, 100));
    };
    await seen(/^sweep: sweep: pages /);
    // The sweep is over: every page of RAM, and where the quadword it wrote lies.
    await m.qmp!.execute("stop");
    const ram = Buffer.from(await m.readPhysical(0, RAM));
    await m.qmp!.execute("cont");
    const pattern = Buffer.alloc(8);
    pattern.writeBigUInt64LE(SWEEP.pattern);
    // Copies of the image (the loaded PE, the firmware's disk cache) hold the guest's `mov rdx, imm64` (48 BA imm):
    // those are code, not a landed write, so each occurrence is kept with the two bytes before it.
    const patternAt: Array<{ at: number; after: string }> = [];
    for (let i = ram.indexOf(pattern); i >= 0; i = ram.indexOf(pattern, i + 1)) patternAt.push({ at: i, after: ram.subarray(Math.max(0, i - 2), i).toString("hex") });
    // acloop's exit count from its VM page (the first page after its allotment, monitor-gen/svm/monitor.ts svm_reserve).
    const acloop = m.lines.map((l) => ALLOTMENT.exec(l.text)).find((x) => x?.[1] === "acloop");
    const acloopExits = acloop ? ram.readBigUInt64LE(Number(acloop[2]) + 4096 * Number(acloop[3]) + VM.exits) : -1n;
    // Every other virtualized partition's 16/32-bit code pages (guest-physical 0x1000–0x2FFF, never written by the
    // guest) in RAM against the bytes the image builder put there.
    const codeChanged: string[] = [];
    for (const l of m.lines) {
      const a = ALLOTMENT.exec(l.text);
      const built = a ? img.partitions.find((p) => p.spec.name === a[1] && p.spec.vm) : undefined;
      if (!a || !built || a[1] === "sweep") continue;
      const at = Number(a[2]);
      if (!ram.subarray(at + 0x1000, at + 0x3000).equals(Buffer.from(built.packed!.blob.subarray(0x1000, 0x3000)))) codeChanged.push(a[1]!);
      else codeChanged.push(`${a[1]} unchanged`);
    }
    const exit = await m.wait();
    boot = { lines: m.lines.map((l) => l.text), exit, patternAt, acloopExits, codeChanged };
  } finally {
    await m.close();
  }
}, 175_000);

const linesOf = (name: string): string[] => consoleLinesOf(boot.lines, name);
const withLog = (check: () => void): void => withSerialLog(boot.lines, check);
const summary = (name: string): { state: string; quanta: number } => summaryOf(boot.lines, name);
const share = (name: string): number => (config.runQuanta / 16) * config.partitions.find((p) => p.name === name)!.duty!;
const TICK = /^tick \d+ quantum \d+ work \d+ checksum 0x[0-9a-f]{8}$/;
const hex64 = (v: bigint): string => "0x" + BigInt.asUintN(64, v).toString(16).padStart(16, "0");
const allotments = (): Array<{ name: string; from: number; to: number }> =>
  boot.lines.map((l) => ALLOTMENT.exec(l)).filter((m) => m !== null).map((m) => ({ name: m[1]!, from: Number(m[2]), to: Number(m[2]) + 4096 * Number(m[3]) }));

describe("SVM: nested page faults of the absent class (unmapped MMIO) and the guest-physical addresses of others", () => {
  it("a guest reading and writing the APIC/IOAPIC hole with each MOV form reads all ones, its writes go nowhere, and it keeps running", () => {
    withLog(() => {
      const ones = (bytes: number): bigint => (1n << BigInt(8 * bytes)) - 1n;
      // What the x86 manuals say each form leaves in its register when the memory reads all ones.
      expect(linesOf("mmio").filter((l) => l.startsWith("mmio: "))).toEqual([
        `mmio: mov eax, [apic+0x30] = ${hex64(ones(4))}`,
        `mmio: mov al (rax 0x1122334455667788) = ${hex64((MMIO_BEFORE & ~0xffn) | 0xffn)}`,
        `mmio: mov bh (rbx 0x1122334455667788) = ${hex64((MMIO_BEFORE & ~0xff00n) | 0xff00n)}`,
        `mmio: movzx r14d, word = ${hex64(0xffffn)}`,
        `mmio: mov r13, [rdi+rbx] = ${hex64(ones(8))}`,
        `mmio: after writes, mov r12, [apic+0x88] = ${hex64(ones(8))}`,
      ]);
      for (const what of [`read 0x${(MMIO_PROBE + 0x30).toString(16)} `, `write 0x${(MMIO_PROBE + 0x80).toString(16)} dropped`, "write 0xfec00000 dropped"]) {
        expect(boot.lines.some((l) => l.startsWith("ultravisor: svm: partition mmio: absent: mmio " + what)), what).toBe(true);
      }
      expect(linesOf("mmio").some((l) => TICK.test(l)), "ticks after the probes").toBe(true);
      expect(summary("mmio")).toEqual({ state: "ready", quanta: share("mmio") });
    });
  });

  it("an instruction the monitor does not emulate on an absent address is a violation: that guest alone stops", () => {
    withLog(() => {
      const v = boot.lines.map((l) => /^ultravisor: svm: partition rmw stopped: violation: exit (0x[0-9a-f]+) gpa (0x[0-9a-f]+) /.exec(l)).find((x) => x);
      expect(v, "rmw's violation line").toBeTruthy();
      expect({ exit: v![1], gpa: Number(v![2]) }).toEqual({ exit: "0x400", gpa: MMIO_PROBE + 0x30 });
      expect(linesOf("rmw").filter((l) => l.includes("containment failed"))).toEqual([]);
      expect(summary("rmw").state).toBe("failed");
      const at = boot.lines.findIndex((l) => l.startsWith("ultravisor: svm: partition rmw stopped"));
      // The others keep their whole share (a console line can come out late or be dropped when the I/O partition is
      // behind, so their lines after the violation are only checked for at least one of them).
      for (const n of ["V", "Y", "mmio"]) expect(summary(n).quanta, `${n}'s share`).toBe(share(n));
      expect(boot.lines.slice(at + 1).some((l) => /^(V|Y|mmio): /.test(l)), "the others print after the violation").toBe(true);
    });
  });

  it("a guest sweeping the guest-physical addresses of every other partition's pages and the database's gets only all ones and changes nothing", () => {
    withLog(() => {
      const pages = (SWEEP.to - SWEEP.from) / SWEEP.step;
      expect(linesOf("sweep")).toContain(`sweep: pages ${pages}, reads not all ones 0`);
      // The sweep reached every other partition's allotment and the database's page (at least one address in each).
      const all = allotments();
      expect(all.map((a) => a.name)).toEqual(expect.arrayContaining(config.partitions.filter((p) => p.kind === "guest").map((p) => p.name)));
      const targets = [...all.filter((a) => a.name !== "sweep"), { name: "database", from: DB_PAGES.lo, to: DB_PAGES.hi }];
      for (const t of targets) {
        const first = SWEEP.from + Math.ceil((t.from - SWEEP.from) / SWEEP.step) * SWEEP.step;
        expect(first >= SWEEP.from && first + 16 <= t.to && first < SWEEP.to, `${t.name} [0x${t.from.toString(16)}, 0x${t.to.toString(16)}) swept`).toBe(true);
      }
      // The quadword it wrote is nowhere in RAM but in its own pages (its code holds it as an immediate; its VM page,
      // right after its allotment, holds its registers) and in copies of its code (the loaded image, the firmware's
      // disk cache: preceded by the REX.W B8+2 of `mov rdx, imm64`). A write that landed would be a bare quadword.
      const own = all.find((a) => a.name === "sweep")!;
      const ownEnd = own.to + 4096 * SVM_RESERVE.partitionPages;
      const inOwn = boot.patternAt.filter((p) => p.at >= own.from && p.at < ownEnd);
      expect(inOwn.some((p) => p.after === "48ba"), "its own code holds the pattern").toBe(true);
      expect(boot.patternAt.filter((p) => (p.at < own.from || p.at >= ownEnd) && p.after !== "48ba").map((p) => "0x" + p.at.toString(16))).toEqual([]);
      // The other guests' code pages hold exactly what the image builder put there.
      const vms = config.partitions.filter((p) => p.vm && p.name !== "sweep").map((p) => `${p.name} unchanged`);
      expect(boot.codeChanged.sort()).toEqual(vms.sort());
      expect(summary("sweep")).toEqual({ state: "ready", quanta: share("sweep") });
    });
  });

  it("the 16550A model passes Linux's autoconfig probes; 0xFE to port 0x64 and HLT with interrupts off stop the guest alone, cleanly", () => {
    withLog(() => {
      // IER 0 and 0x0F read back, loopback MSR 0x90 (RTS → CTS, OUT2 → DCD), IIR 0xC1 after FCR 0x07 (a 16550A).
      expect(linesOf("uart")).toContain("uart: ier 0x00000000 0x0000000f msr 0x00000090 iir 0x000000c1");
      for (const [name, why] of [["uart", "reset through the keyboard controller (0xFE to port 0x64)"], ["halt", "halted with interrupts off"]] as const) {
        expect(boot.lines.some((l) => l.startsWith(`ultravisor: svm: partition ${name}: ${why}: stopped (rip `)), `${name} stopped`).toBe(true);
        expect(summary(name).state).toBe("stopped");
        expect(linesOf(name).filter((l) => l.includes("containment failed"))).toEqual([]);
        expect(boot.lines.some((l) => l.startsWith(`ultravisor: svm: partition ${name} stopped: violation`)), `${name}: no violation`).toBe(false);
      }
    });
  });

  it("a guest using the PC as Linux does: 8254 timer interrupts through the 8259A, and a line sent by its UART THRE interrupt handler", () => {
    withLog(() => {
      const pc = linesOf("pc");
      const message = PC_IRQ.message.trimEnd();
      expect(pc).toContain(message);
      // One THRE interrupt per byte of the message (its newline included), and one more that found it finished.
      // The guest stops counting at PC_IRQ.ticks; one more can slip in between its last check and its cli.
      const counts = pc.map((l) => /^pc-irq: timer interrupts (\d+), uart interrupts (\d+)$/.exec(l)).find((m) => m);
      expect(counts, "the counts line").toBeTruthy();
      expect(Number(counts![1])).toBeGreaterThanOrEqual(PC_IRQ.ticks);
      expect(Number(counts![1])).toBeLessThanOrEqual(PC_IRQ.ticks + 1);
      expect(Number(counts![2])).toBe(PC_IRQ.message.length + 1);
      expect(pc.some((l) => TICK.test(l)), "ticks after").toBe(true);
      expect(summary("pc")).toEqual({ state: "ready", quanta: share("pc") });
    });
  });

  it("an #AC storm at CPL 3 (alignment checking on, a handler that returns to the access) never keeps the processor", () => {
    withLog(() => {
      expect(linesOf("acloop")).toContain("ac-loop: CPL 3, AM and AC on, #AC returns to the access");
      expect(summary("acloop")).toEqual({ state: "ready", quanta: share("acloop") });
      // One exit per #AC: hundreds by the end of the sweep (TCG delivers a few per millisecond), where a guest that
      // never faulted would have about one timer exit per quantum.
      expect(boot.acloopExits).toBeGreaterThan(5n * BigInt(share("acloop")));
      for (const n of ["V", "Y", "mmio", "sweep", "pc"]) expect(summary(n).quanta, `${n} beside the storm`).toBe(share(n));
      expect(boot.exit).toEqual({ kind: "guest", code: config.exitCode });
    });
  });
});
