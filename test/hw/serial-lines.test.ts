// Hardware test of lines typed on the serial console (docs/specs/command-channel.md, "Run-time definitions on the
// serial console"; docs/specs/image-layout.md, "Typed lines"), through qemu/'s Machine under OVMF, from one host
// definition (examples/typed-lines.yaml) that the simulator also runs: the test writes the file's `serial` lines to
// QEMU's serial input; the I/O partition (the only one with COM1) reads them and puts each, unread, on queue 1 of the
// command partition's console channel; the command partition reads it with the machine's own line reader and checks
// it against its read-only view of the database (core/boot/assembly/command-line.ts, AOT-compiled — the code the
// simulator runs in V8) and answers with a console line. A line the simulator refuses must be refused on the machine
// with the same status; a line the simulator carries out is read and, on the machine, not yet carried out (status
// −2006; "Status" in the spec). Over QMP, the database is unchanged by all of it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, CORE_DB_PLAN } from "../../image/ultravisor.ts";
import { LOADER_LINES } from "../../loader-efi/ultravisor.ts";
import { DB_PAGES } from "../../monitor-gen/layout.ts";
import { privateArea } from "../../core/database.ts";
import { loadConfig } from "../../partitions/config.ts";
import { loadScenario } from "../../sim/scenario.ts";
import { runScenario } from "../../sim/run-scenario.ts";
import { COMMAND_LINE_ERRORS, bootModule, instantiateBootModule } from "../../core/boot-module.ts";
import { fnv1a } from "../../partitions/pack.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-serial-lines-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The one host definition both sides run: its `serial` operations are the lines typed here. */
const FILE = join(import.meta.dirname, "..", "..", "examples", "typed-lines.yaml");

/** Lines of the file, then two the simulator's schema would refuse before they reach the reader (longer than 63
 * bytes: cut by the I/O partition; a tab: dropped by it), with the answer the machine must give to each. */
const EXTRA: Array<[string, string]> = [
  [`create ${"G".repeat(70)} 8M`, "refused (status -2001)"],
  ["create G9 8M console:io\tstorage:io", "refused (status -2001)"], // the tab is dropped: "console:iostorage:io"
  ["restart   X", "X restart: read, not run here (status -2006)"],
  ["create ABCDEFGHIJKLMNO 4096K", "ABCDEFGHIJKLMNO create: read, not run here (status -2006)"],
  ["create G9 6K", "refused (status -2002)"], // not whole 4 KiB pages
];

/**
 * What the machine must answer to each of the file's lines: the simulator's status for a line it refused (the same
 * reader and checks), "read, not run here" (−2006) for one it carried out — the machine does not carry lines out yet.
 */
async function expectedFromSimulator(): Promise<Array<[string, string]>> {
  const scenario = loadScenario(FILE);
  const r = await runScenario(scenario, () => undefined, { map: false });
  expect(r.failures).toEqual([]);
  return scenario.operations.flatMap((op, i) => {
    if (op.kind !== "serial") return [];
    const code = r.outcomes[i];
    if (code === undefined) {
      const [verb, name] = op.text.trim().split(/ +/);
      return [[op.text, `${name} ${verb}: read, not run here (status -2006)`] as [string, string]];
    }
    const status = Object.entries(COMMAND_LINE_ERRORS).find(([, e]) => e.name === code)?.[0];
    if (status === undefined) throw new Error(`the simulator refused "${op.text}" with ${code}, not a line status`);
    return [[op.text, `refused (status ${status})`] as [string, string]];
  });
}

let TYPED: Array<[string, string]> = [];
/** The command partition's line for a teardown it built: name, record count, FNV-1a of the request's bytes. */
const TEARDOWN = /^command: > (\S+): teardown (\d+) records fnv (0x[0-9a-f]{8})$/;
let lines: string[] = [];
/** The database's own 4 MiB page and the audit log's header, read over QMP before the first line and after the last. */
let before: Uint8Array[] = [];
let after: Uint8Array[] = [];

/** The database's own page, and the log header in core's private page (where the loader's line says it is). */
async function readDatabase(m: Machine, text: readonly string[]): Promise<Uint8Array[]> {
  const p = text.map((l) => LOADER_LINES.privatePage.exec(l)).find(Boolean);
  if (!p) throw new Error("no core private page line from the loader");
  const logHeader = Number(p[1]!) + privateArea(0).logBase * 4096;
  return [await m.readPhysical(DB_PAGES.lo, DB_PAGES.hi - DB_PAGES.lo), await m.readPhysical(logHeader, 64)];
}
beforeAll(async () => {
  TYPED = [...(await expectedFromSimulator()), ...EXTRA];
  // The file's stop G9 comes last: G9 exists in the simulator only, so on the machine the name is unknown. The
  // simulator carried it out; the machine's checks, against its own database, refuse it.
  TYPED = TYPED.map(([t, a]) => (t === "stop G9" ? [t, "refused (status -2004)"] : [t, a]));
  const img = await buildUltravisorImage({ config: loadConfig(FILE) });
  const out = await writeEfiImage(join(scratch, "typed"), img);
  const m = await Machine.start({ name: "hw-serial-lines", image: out.esp, mem: "256M", timeoutMs: 150_000, log: () => undefined });
  try {
    await m.waitFor(/^command: definition X: partition 0x[0-9a-f]+ started$/, 120_000);
    before = await readDatabase(m, m.lines.map((l) => l.text));
    // One line at a time, each after the previous answer: typing faster is fine too (the I/O partition reads every
    // pass), but answers in lockstep make a lost line show as the line it is.
    for (const [text, answer] of TYPED) {
      m.sendSerial(`${text}\r`);
      await m.waitFor(`command: > ${answer}`, 60_000);
    }
    after = await readDatabase(m, m.lines.map((l) => l.text));
  } finally {
    lines = m.lines.map((l) => l.text);
    await m.close();
  }
}, 170_000);

describe("lines typed on the serial console, on the machine", () => {
  it("reach the command partition through the I/O partition and are answered in order, bad ones refused with their status", () => {
    withSerialLog(lines, () => {
      const answers = lines.filter((l) => l.startsWith("command: > ") && !TEARDOWN.test(l)).map((l) => l.slice("command: > ".length));
      expect(answers).toEqual(TYPED.map(([, a]) => a));
      expect(lines.some((l) => l.startsWith("io: typed line not delivered"))).toBe(false);
    });
  });

  it("a stop, destroy or restart of a live partition builds its teardown transaction in the command partition: the bytes V8's builder makes from the database read over QMP", async () => {
    const built = lines.map((l) => TEARDOWN.exec(l)).filter((x): x is RegExpExecArray => x !== null);
    expect(built.map((b) => b[1])).toEqual(["X"]); // restart X; every other line naming a partition was refused
    const number = Number(/^command: definition X: partition (0x[0-9a-f]+) started$/m.exec(lines.join("\n"))![1]);
    // The same builder in V8 over the same database bytes (the database's own page at its physical address).
    const boot = instantiateBootModule(await bootModule(), { db_submit: () => -1, db_log_truncate: () => -1 });
    const req = DB_PAGES.hi + 0x10000;
    boot.memory.grow((req + 0x10000) / 65536 - boot.memory.buffer.byteLength / 65536);
    new Uint8Array(boot.memory.buffer).set(before[0]!, DB_PAGES.lo);
    const n = boot.rs.buildDestroy(CORE_DB_PLAN.words[1]!, req, 8192, number, 0, 0);
    expect(n).toBeGreaterThan(16);
    const request = new Uint8Array(boot.memory.buffer, req, n);
    expect(Number(built[0]![2])).toBe(new DataView(boot.memory.buffer).getUint32(req + 8, true));
    expect(built[0]![3]).toBe(`0x${fnv1a(request).toString(16).padStart(8, "0")}`);
  });

  it("change nothing in the database: its own page and the audit log's header read over QMP are the same after the lines", () => {
    expect(before.length).toBe(2);
    expect(Buffer.compare(Buffer.from(after[0]!), Buffer.from(before[0]!)), "the database's own 4 MiB page").toBe(0);
    expect(Buffer.compare(Buffer.from(after[1]!), Buffer.from(before[1]!)), "the audit log's header").toBe(0);
    // The view really is the database: the index page's magic is where the command partition reads it.
    expect(new DataView(before[0]!.buffer).getUint32(CORE_DB_PLAN.words[1]! * 4096 - DB_PAGES.lo, true)).toBe(0x5849_5655);
  });
});
