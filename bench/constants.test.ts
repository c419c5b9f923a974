// Checks of the constants bench/ultravisor.bench.ts adds to its measured figures (monitor-gen/entry.ts): the
// instructions of the timer → switch path outside the probes and the probes' own share of a measured delta are
// counted here in the bench build's linked code (GNU objdump over the PE file), so a change to the entry path or the
// probes that the hand-counted constants miss fails here instead of shifting the figures silently.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildUltravisorImage } from "../image/ultravisor.ts";
import { configFrom, figure1Definition } from "../partitions/config.ts";
import { PROBE_OVERHEAD, SWITCH_PATH_OUTSIDE_PROBES } from "../monitor-gen/entry.ts";
import { TIMER_VECTOR } from "../monitor-gen/layout.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-bench-constants-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ins {
  at: bigint;
  text: string;
}

describe("benchmark constants (monitor-gen/entry.ts)", () => {
  it("SWITCH_PATH_OUTSIDE_PROBES and PROBE_OVERHEAD equal the instructions of the bench build's timer path", async () => {
    const def = figure1Definition();
    const img = await buildUltravisorImage({ config: configFrom({ ...def, run: { ...def.run, probes: true } }, "bench host") });
    const file = join(dir, "BOOTX64.EFI");
    writeFileSync(file, img.efi);
    const sym = (n: string): bigint => {
      const s = img.symbols.find((x) => x.name === n);
      if (!s) throw new Error(`no symbol ${n} in the bench build`);
      return s.address;
    };
    // objdump's listing of the monitor's text as (address, instruction) pairs.
    const listing = execFileSync("objdump", ["-d", "-M", "intel", "--no-show-raw-insn", file], { encoding: "utf8", maxBuffer: 256 << 20 });
    const ins: Ins[] = [];
    for (const l of listing.split("\n")) {
      const m = /^\s*([0-9a-f]+):\s+(\S.*)$/.exec(l);
      if (m) ins.push({ at: BigInt(`0x${m[1]}`), text: m[2]!.trim() });
    }
    const from = (addr: bigint): Ins[] => {
      const i = ins.findIndex((x) => x.at === addr);
      if (i < 0) throw new Error(`no instruction at 0x${addr.toString(16)}`);
      return ins.slice(i);
    };
    /** Instructions from `addr` up to and including the first that `last` accepts. */
    const upTo = (addr: bigint, last: (x: Ins) => boolean): Ins[] => {
      const run = from(addr);
      const n = run.findIndex(last);
      if (n < 0) throw new Error(`no end from 0x${addr.toString(16)}`);
      return run.slice(0, n + 1);
    };
    const target = (x: Ins): bigint | null => {
      const m = /^j\w+\s+(?:0x)?([0-9a-f]+)\b/.exec(x.text);
      return m ? BigInt(`0x${m[1]}`) : null;
    };
    // Entry: the timer vector's stub up to its jmp, then k_entry up to the branch to on_timer.
    const stub = upTo(sym(`stub_${TIMER_VECTOR}`), (x) => x.text.startsWith("jmp"));
    expect(target(stub.at(-1)!), `the stub jumps to k_entry: ${stub.map((x) => x.text).join("; ")}`).toBe(sym("k_entry"));
    const dispatch = upTo(sym("k_entry"), (x) => target(x) === sym("on_timer"));
    // The opening probe: on_timer's rdtsc and the instructions up to its store of the time stamp.
    const open = upTo(sym("on_timer"), (x) => x.text.startsWith("mov") && /\[rip|\[0x|ds:/.test(x.text));
    expect(open[0]!.text, "on_timer starts with the opening probe").toMatch(/^rdtsc/);
    // The closing probe in switch_to: its rdtsc, then the jmp to resume after the probe's bookkeeping.
    const sw = from(sym("switch_to"));
    const closing = sw.findIndex((x) => x.text.startsWith("rdtsc") && sw.indexOf(x) > sw.findIndex((y) => y.text.startsWith("rdtsc")));
    expect(closing, "switch_to's second rdtsc (the closing probe)").toBeGreaterThan(0);
    const toResume = sw.slice(closing).findIndex((x) => x.text.startsWith("jmp") && target(x) === sym("resume"));
    expect(toResume, "jmp resume after the closing probe").toBeGreaterThan(0);
    const exit = upTo(sym("resume"), (x) => x.text.startsWith("iretq"));
    // Outside the probes: stub + k_entry's pushes, cld and dispatch + jmp resume + resume's lea, pops, add, iretq.
    expect(stub.length + dispatch.length + 1 + exit.length, "SWITCH_PATH_OUTSIDE_PROBES").toBe(SWITCH_PATH_OUTSIDE_PROBES);
    // The probes' share of a delta: the opening probe after its rdtsc, and the closing rdtsc.
    expect(open.length - 1 + 1, "PROBE_OVERHEAD").toBe(PROBE_OVERHEAD);
  }, 120_000);
});
