// Tests of lines typed on the serial console as the simulator runs them (docs/specs/command-channel.md, "Run-time
// definitions on the serial console"): the machine's own line reader (core/boot/assembly/command-line.ts, run by
// V8) decides what a line is, the machine's own resource service builds the transactions, core applies them. A
// refused line answers with its status and leaves every database byte as it was.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LineRefused, Platform } from "./platform.ts";
import { runScenario } from "./run-scenario.ts";
import { loadScenario } from "./scenario.ts";

const root = join(import.meta.dirname, "..");
const MB = 1n << 20n;

async function booted(): Promise<{ pf: Platform; events: string[] }> {
  const pf = await Platform.boot({ memory: 1n << 30n }, { pcpus: 2 });
  pf.definePartition({ name: "IO", kind: "IO", memory: 16n * MB, vcpus: [{ duty: 4 }] });
  return { pf, events: pf.events };
}

describe("lines typed on the serial console", () => {
  it("create, stop, create again, restart and destroy: memory owned, then Available, then owned again", async () => {
    const { pf } = await booted();
    const ui = pf.host.db.indexPage();
    const free0 = pf.host.view.ownedBytes().get(ui.avail)!;
    expect(pf.typed("create G1 64M console:IO storage:IO")).toMatch(/^G1: created partition \[/);
    const p = pf.rs.resolve("G1");
    // 64 MB of memory, the descriptor page, and the pages of its three channels (control, console, storage).
    expect(pf.host.view.ownedBytes().get(p)! >= 64n * MB + 4096n).toBe(true);
    expect(pf.host.db.channels().filter((c) => c.client === p).length).toBe(3);
    expect(pf.typed("stop G1")).toBe("G1: stopped");
    expect(pf.host.view.ownedBytes().get(p)).toBeUndefined();
    expect(pf.host.db.channels().filter((c) => c.client === p)).toEqual([]);
    expect(pf.host.view.ownedBytes().get(ui.avail)).toBe(free0);
    expect(pf.typed("create G1 32M console:IO")).toMatch(/^G1: created partition/);
    expect(pf.typed("restart G1")).toMatch(/^G1: restarted partition/);
    expect(pf.host.view.ownedBytes().get(pf.rs.resolve("G1"))! >= 32n * MB).toBe(true);
    expect(pf.typed("destroy G1")).toBe("G1: destroyed");
    expect(pf.rs.names().has("G1")).toBe(false);
    expect(pf.host.view.ownedBytes().get(ui.avail)).toBe(free0);
  });

  it("refuses bad lines with their status and changes no byte of the database", async () => {
    const { pf } = await booted();
    pf.typed("create G1 8M console:IO");
    const cases: Array<[string, number, string]> = [
      ["create Big 64G", -2002, "TOO_MUCH_MEMORY"],
      ["create G2 6M", -2002, "TOO_MUCH_MEMORY"], // not a multiple of 4 MiB, the smallest page a guest gets here
      ["create G2 8M printer:IO", -2003, "UNKNOWN_CHANNEL_TYPE"],
      ["create G1 8M", -2004, "NAME"],
      ["stop Nobody", -2004, "NAME"],
      ["restart Nobody", -2004, "NAME"],
      ["create G2 8M console:Nobody", -2005, "NO_SERVER"],
      ["create G2 eight", -2001, "MALFORMED_LINE"],
      ["create G2 8m", -2001, "MALFORMED_LINE"],
      ["create G2 0M", -2001, "MALFORMED_LINE"],
      ["create ThisNameIsSixteen 8M", -2001, "MALFORMED_LINE"],
      ["create G/2 8M", -2001, "MALFORMED_LINE"],
      ["create G2 8M console:", -2001, "MALFORMED_LINE"],
      ["create G2 8M :IO", -2001, "MALFORMED_LINE"],
      ["create G2 8M console:IO network:IO storage:IO console:", -2001, "MALFORMED_LINE"],
      [`create G2 8M ${"x".repeat(60)}`, -2001, "MALFORMED_LINE"], // longer than a console signal's 63 bytes
      ["stop G1 now", -2001, "MALFORMED_LINE"],
      ["stop", -2001, "MALFORMED_LINE"],
      ["reboot G1", -2001, "MALFORMED_LINE"],
      ["", -2001, "MALFORMED_LINE"],
      ["create G2 8M\tconsole:IO", -2001, "MALFORMED_LINE"],
      ["create G2 8M console:IO\u00e9", -2001, "MALFORMED_LINE"],
    ];
    for (const [line, status, code] of cases) {
      const before = pf.host.snapshot();
      const tx = pf.host.db.logHeader().txCount;
      let refused: unknown;
      try {
        pf.typed(line);
      } catch (e) {
        refused = e;
      }
      expect(refused, line).toBeInstanceOf(LineRefused);
      expect((refused as LineRefused).status, line).toBe(status);
      expect((refused as LineRefused).code, line).toBe(code);
      expect((refused as LineRefused).answer, line).toMatch(new RegExp(`\\(status ${status}\\)$`));
      expect(pf.host.db.logHeader().txCount, line).toBe(tx);
      expect(pf.host.diffDatabase(before, pf.host.snapshot()), line).toBeUndefined();
    }
    expect(pf.rs.names().has("G2")).toBe(false);
  });

  it("the shipped example runs with every expectation met", async () => {
    const lines: string[] = [];
    const r = await runScenario(loadScenario(join(root, "examples", "runtime-console.yaml")), (l) => lines.push(l));
    expect(r.failures).toEqual([]);
    expect(lines.filter((l) => l.includes("Command: refused")).length).toBe(5);
  });
});
