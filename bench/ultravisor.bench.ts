// Benchmarks of the bare-metal ultravisor under QEMU TCG (method: bench/README-ultravisor.md):
//  - loader entry → all partitions running, wall clock from the serial timestamps of lines the ring-0 code prints
//    directly to COM1 (plain TCG boot of the Figure 1 host): to the scheduler's start (the boot partitions running) and
//    to the last partition started (the guests, created from the command partition's definitions a few schedule
//    cycles later);
//  - hypercall round trip and timer context switch in instructions, from a second boot under `-icount shift=0`,
//    where the guest-visible time-stamp counter advances by one per executed instruction.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, type Figure, round } from "./bench.ts";
import { Machine } from "../qemu/index.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";
import { configFrom, figure1Config, figure1Definition, type UltravisorConfig } from "../partitions/config.ts";
import { BENCH_NOPS } from "../partitions/programs.ts";
import { PROBE_OVERHEAD, SWITCH_PATH_OUTSIDE_PROBES } from "../monitor-gen/entry.ts";

async function bootLines(config: UltravisorConfig, name: string, extraArgs: string[] = []): Promise<{ text: string; ms: number }[]> {
  const dir = mkdtempSync(join(tmpdir(), "uv-bench-"));
  try {
    const img = await buildUltravisorImage({ config });
    const out = await writeEfiImage(dir, img);
    const m = await Machine.start({ name, image: out.esp, mem: "256M", accel: "tcg", timeoutMs: 180_000, extraArgs, log: () => undefined });
    try {
      const exit = await m.wait();
      if (exit.kind !== "guest" || exit.code !== config.exitCode) throw new Error(`${name}: boot ended ${JSON.stringify(exit)}; serial log in ${m.serialLogPath}`);
      return m.lines.slice();
    } finally {
      await m.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function find(lines: { text: string; ms: number }[], re: RegExp, what: string): { m: RegExpExecArray; ms: number } {
  for (const l of lines) {
    const m = re.exec(l.text);
    if (m) return { m, ms: l.ms };
  }
  throw new Error(`bench: no line for ${what} (${re})`);
}

const bench: Bench = {
  name: "ultravisor",
  async run(): Promise<Figure[]> {
    const fig1 = figure1Config();
    const plain = await bootLines(configFrom({ ...figure1Definition(), run: { ...figure1Definition().run, runQuanta: 160 } }, "bench host"), "bench-uv-boot");
    const start = find(plain, /^ultravisor: loader started$/, "loader start");
    const scheduler = find(plain, /^ultravisor: scheduler running/, "scheduler running");
    const startedLines = plain.filter((l) => /^ultravisor: partition \S+ started at quantum/.test(l.text));
    const nonIdle = fig1.partitions.filter((p) => p.kind !== "idle").length;
    if (startedLines.length !== nonIdle) throw new Error(`bench: ${startedLines.length} of ${nonIdle} partitions started`);
    const running = startedLines.at(-1)!;

    // Instruction counts: icount makes the TSC an instruction counter; quanta are then 2,000,000 instructions.
    // Y becomes an assembly guest that times hypercalls; the host is read back through the definition's checks.
    const def = figure1Definition();
    const counted = configFrom({
      ...def, run: { ...def.run, runQuanta: 96, probes: true },
      partitions: def.partitions!.map((p) => (p.name === "Y" ? { ...p, behaviour: { lang: "asm" as const, benchHypercalls: 200 } } : p)),
    }, "bench host");
    const ic = await bootLines(counted, "bench-uv-icount", ["-icount", "shift=0"]);
    const hc = find(ic, /^Y: bench: (\d+) nops (\d+) hypercall (\d+)$/, "hypercall bench");
    const frameOverhead = Number(hc.m[2]) - BENCH_NOPS;
    const hypercall = Number(hc.m[3]) - frameOverhead;
    const sw = find(ic, /^ultravisor: probe: timer switch between probes min (\d+) sum (\d+) count (\d+)$/, "switch probe");
    const switchMin = Number(sw.m[1]) - PROBE_OVERHEAD + SWITCH_PATH_OUTSIDE_PROBES;
    const switchMean = Number(sw.m[2]) / Number(sw.m[3]) - PROBE_OVERHEAD + SWITCH_PATH_OUTSIDE_PROBES;
    return [
      { bench: "ultravisor loader entry → all partitions running (TCG)", value: round((running.ms - start.ms) / 1000, 3), unit: "s", vs: "target 0.5 s", ratio: round((running.ms - start.ms) / 500, 3) },
      { bench: "ultravisor loader entry → scheduler running with the boot partitions (TCG)", value: round((scheduler.ms - start.ms) / 1000, 3), unit: "s" },
      { bench: "ultravisor hypercall round trip (TIME, int 0x80 … iretq)", value: hypercall, unit: "instructions", vs: "target 100", ratio: round(hypercall / 100, 3) },
      { bench: "ultravisor quantum context switch (timer entry … iretq, min)", value: switchMin, unit: "instructions", vs: "target 250", ratio: round(switchMin / 250, 3) },
      { bench: "ultravisor quantum context switch (mean, incl. CR3 reloads and log flushes)", value: round(switchMean, 1), unit: "instructions" },
    ];
  },
};

export default bench;
