// Benchmark of the SVM backend's exits under QEMU TCG (method: bench/README-ultravisor.md, the icount technique):
// one boot of the Figure 1 host plus a virtualized "bench" guest under `-icount shift=0`, where the time-stamp
// counter advances by one per executed instruction — the monitor's as well as the guest's. The guest keeps the
// minimum delta over rounds of 50 nops (the frame's own cost), CPUID of the hypervisor leaf and one COM1 byte; Y, an
// assembly guest, times the int 0x80 TIME hypercall in the same run for comparison.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure, round } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";
import { configFrom, figure1Definition } from "../partitions/config.ts";
import { BENCH_NOPS } from "../partitions/programs.ts";
import { BENCH_SVM_NOPS, BENCH_SVM_SETUP } from "../partitions/svm-guest.ts";

const bench: Bench = {
  name: "svm",
  async run(): Promise<Figure[]> {
    const def = figure1Definition();
    const config = configFrom({
      ...def, run: { ...def.run, runQuanta: 96 },
      partitions: [
        ...def.partitions!.filter((p) => p.name !== "V").map((p) => (p.name === "Y" ? { ...p, behaviour: { lang: "asm" as const, benchHypercalls: 200 } } : p)),
        { name: "VB", kind: "guest" as const, duty: 2, behaviour: { vm: "bench" as const } },
      ],
    }, "svm bench host");
    const dir = mkdtempSync(join(tmpdir(), "uv-bench-svm-"));
    let lines: string[];
    try {
      const out = await writeEfiImage(dir, await buildUltravisorImage({ config }));
      const m = await Machine.start({ name: "bench-svm", image: out.esp, mem: "256M", accel: "tcg", timeoutMs: 180_000, extraArgs: ["-icount", "shift=0"], log: () => undefined });
      try {
        const exit = await m.wait();
        if (exit.kind !== "guest" || exit.code !== config.exitCode) throw new Error(`bench-svm: boot ended ${JSON.stringify(exit)}; serial log in ${m.serialLogPath}`);
        lines = m.lines.map((l) => l.text);
      } finally {
        await m.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const vb = lines.map((l) => new RegExp(`^VB: bench: ${BENCH_SVM_NOPS} nops (\\d+) cpuid (\\d+) com1 (\\d+)$`).exec(l)).find((x) => x !== null);
    const y = lines.map((l) => /^Y: bench: (\d+) nops (\d+) hypercall (\d+)$/.exec(l)).find((x) => x !== null);
    if (!vb || !y) throw new Error(`bench-svm: no bench line (${vb ? "" : "VB "}${y ? "" : "Y"})`);
    // The frame's own instructions (two rdtsc sequences) are what 50 nops cost beyond 50; the guest's `mov eax, imm`
    // before CPUID and `mov al; mov dx` before OUT are its own instructions, not the monitor's.
    const frame = Number(vb[1]) - BENCH_SVM_NOPS;
    const cpuid = Number(vb[2]) - frame - BENCH_SVM_SETUP.cpuid;
    const com1 = Number(vb[3]) - frame - BENCH_SVM_SETUP.com1;
    const yFrame = Number(y[2]) - BENCH_NOPS;
    const hypercall = Number(y[3]) - yFrame;
    return [
      { bench: "svm CPUID exit round trip (vmrun … #VMEXIT … vmrun, monitor instructions)", value: cpuid, unit: "instructions", vs: "target 150", ratio: round(cpuid / 150, 3) },
      { bench: "svm COM1 byte exit round trip (OUT → console line buffer, monitor instructions)", value: com1, unit: "instructions" },
      { bench: "ultravisor hypercall round trip in the same run (TIME, int 0x80 … iretq)", value: hypercall, unit: "instructions" },
    ];
  },
};

export default bench;
