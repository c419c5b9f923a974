// Hardware test of the FXSAVE path of extended-state switching (issue #12; docs/specs/partition-state.md): the same
// sse-a/sse-b pair as test/hw/isolation.test.ts, booted on a processor model without XSAVE (`-cpu max,-xsave`), where
// the monitor must fall back to FXSAVE/FXRSTOR of x87 and SSE state on every switch. No marker may cross, none may be
// lost, and each guest must start from the defined initial state. (AVX-512 state cannot be tested here: TCG offers
// no AVX-512; the monitor saves whatever XCR0 components CPUID leaf 0xD sizes, docs/specs/partition-state.md.)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { sseReport, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { configFrom } from "../../partitions/config.ts";
import { XSAVE_SPACE } from "../../monitor-gen/layout.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-fxsave-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const config = configFrom({
  revision: 2,
  partitions: [
    { name: "idle", kind: "idle" },
    { name: "io", kind: "io", duty: 2 },
    { name: "sse-a", duty: 6, behaviour: { fault: "sse-a" } },
    { name: "sse-b", duty: 6, behaviour: { fault: "sse-b" } },
  ],
  run: { runQuanta: 320 },
}, "FXSAVE isolation host");

let boot: { lines: string[]; exit: unknown };
beforeAll(async () => {
  const out = await writeEfiImage(join(scratch, "fxsave"), await buildUltravisorImage({ config }));
  const m = await Machine.start({ name: "hw-fxsave", image: out.esp, mem: "256M", timeoutMs: 120_000, cpu: "max,-xsave", log: () => undefined });
  try {
    const exit = await m.wait();
    boot = { lines: m.lines.map((l) => l.text), exit };
  } finally {
    await m.close();
  }
}, 150_000);


describe("extended state on a processor without XSAVE", () => {
  it("is switched with FXSAVE/FXRSTOR: no x87/SSE marker crosses between the guests, none is lost, each starts clean", () => {
    withSerialLog(boot.lines, () => {
      expect(boot.lines.find((l) => l.startsWith("ultravisor: extended state: "))).toBe(
        `ultravisor: extended state: FXSAVE (no XSAVE), save area 512 of ${XSAVE_SPACE} bytes in the state page, saved and restored on every switch`);
      for (const g of ["sse-a", "sse-b"]) {
        const r = sseReport(boot.lines, g);
        expect(r.reads, `${g} reads`).toBe("sse state read with FXSAVE: x87, SSE (AVX not enabled)");
        expect(r.initial, `${g} initial state`).toBe("sse initial state: clean");
        expect(r.ticks, `${g} lines`).toBeGreaterThan(3);
        expect(r.checks, `${g} checks`).toBeGreaterThan(100);
        expect({ lost: r.lost, foreign: r.foreign }, `${g}: ${r.last}`).toEqual({ lost: 0, foreign: 0 });
      }
      expect(boot.exit).toEqual({ kind: "guest", code: config.exitCode });
    });
  });
});
