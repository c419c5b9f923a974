// Hardware tests of the isolation holes of issue #12 (test/hw, through qemu/'s Machine under OVMF): guests built to
// misbehave (test-only behaviours of partitions/programs.ts, never in the default image) attack the state the monitor
// must keep apart, and the serial log shows each attack contained. One boot serves every check, to stay well under
// the three minutes a hardware test file may take under TCG:
//  - extended state: guest sse-a loads a marker into its x87/SSE registers and MXCSR, guest sse-b another; each
//    checks, every loop iteration across its quanta, that its own values survive being preempted and that none of
//    the other's ever shows up, and that it started from the defined initial state (docs/specs/partition-state.md).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { writeEfiImage } from "../../toolchain/image/efi-image.ts";
import { buildUltravisorImage, type UltravisorImage } from "../../toolchain/image/ultravisor.ts";
import type { UltravisorConfig } from "../../partitions/config.ts";
import { XSAVE_SPACE } from "../../monitor-gen/layout.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-isolation-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const config: UltravisorConfig = {
  revision: 1,
  partitions: [
    { name: "idle", kind: "idle", duty: 0 },
    { name: "io", kind: "io", duty: 2 },
    { name: "sse-a", kind: "guest", duty: 3, fault: "sse-a" },
    { name: "sse-b", kind: "guest", duty: 3, fault: "sse-b" },
    { name: "Y", kind: "guest", duty: 2 },
  ],
  quantumTicks: 2_000_000,
  runQuanta: 320,
  guestPeriod: 8,
  exitCode: 0x21,
};

let boot: { img: UltravisorImage; lines: string[]; exit: unknown };

beforeAll(async () => {
  const img = await buildUltravisorImage({ config });
  const out = await writeEfiImage(join(scratch, "isolation"), img);
  const m = await Machine.start({ name: "hw-isolation", image: out.esp, mem: "256M", timeoutMs: 120_000, log: () => undefined });
  try {
    const exit = await m.wait();
    boot = { img, lines: m.lines.map((l) => l.text), exit };
  } finally {
    await m.close();
  }
}, 150_000);

const linesOf = (name: string): string[] => boot.lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
/** Wraps checks so that a failure prints the whole serial log (the only evidence of what the machine did). */
function withLog(check: () => void): void {
  try {
    check();
  } catch (e) {
    console.error(boot.lines.join("\n"));
    throw e;
  }
}
const SSE_TICK = /^sse tick (\d+) checks (\d+) lost (\d+) foreign (\d+)$/;

describe("isolation holes of issue #12 on the bare-metal ultravisor", () => {
  it("saves and restores each partition's x87/SSE state eagerly: no marker crosses, none is lost, each starts from the initial state", () => {
    withLog(() => {
      const xs = boot.lines.find((l) => l.startsWith("ultravisor: extended state: "));
      expect(xs, "the monitor's extended-state line").toMatch(
        new RegExp(`^ultravisor: extended state: (XSAVE, XCR0 0x[0-9a-f]+ of 0x[0-9a-f]+ offered|FXSAVE \\(no XSAVE\\)), save area \\d+ of ${XSAVE_SPACE} bytes in the state page, saved and restored on every switch$`));
      for (const g of ["sse-a", "sse-b"]) {
        const out = linesOf(g);
        expect(out[0], `${g} initial state`).toBe("sse initial state: clean");
        const ticks = out.map((l) => SSE_TICK.exec(l)).filter((m) => m !== null);
        expect(ticks.length, `${g} lines`).toBeGreaterThan(3);
        const last = ticks.at(-1)!;
        expect(Number(last[2]), `${g} checks`).toBeGreaterThan(100);
        expect({ lost: Number(last[3]), foreign: Number(last[4]) }, `${g}: ${last[0]}`).toEqual({ lost: 0, foreign: 0 });
      }
      expect(boot.exit).toEqual({ kind: "guest", code: config.exitCode });
    });
  });
});
