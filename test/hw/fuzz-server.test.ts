// Hardware fuzz test of the client side of every channel (issue #12): a hostile I/O partition scribbles random values
// into the headers of all the console channels it serves (test/hw/fuzz-server-host.ts); the clients — the ultravisor
// partition, whose window maps the resource database, the command partition, two canary guests and an AssemblyScript
// guest — must validate every field the server can write and go on with nothing of theirs or the database's changed.
// The seed changes per run (UV_FUZZ_SEED to repeat one) and is printed; `npm run fuzz:ultravisor -- --server` runs
// longer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fuzzSeed } from "./fuzz-host.ts";
import { type ServerFuzzResult, serverFuzzFindings, serverFuzzRun } from "./fuzz-server-host.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-fuzz-server-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const RUN_QUANTA = 2048;
const seed = fuzzSeed();
let run: ServerFuzzResult;
beforeAll(async () => {
  console.log(`ultravisor hostile-server fuzz: seed ${seed} (UV_FUZZ_SEED=${seed} repeats this run), ${RUN_QUANTA} quanta`);
  run = await serverFuzzRun({ seed, runQuanta: RUN_QUANTA, scratch, timeoutMs: 100_000 });
}, 120_000);

describe(`channel clients under a hostile server (seed ${seed})`, () => {
  it("keeps every client running, the canaries checking and intact, and the database unchanged", () => {
    const findings = serverFuzzFindings(run);
    const scribbled = run.lines.filter((l) => l.startsWith("io: scribbled ")).at(-1);
    console.log(`ultravisor hostile-server fuzz: seed ${seed}: ${run.readings} readings over QMP, ${scribbled ?? "no pass count line"}, ${run.seconds.toFixed(1)} s`);
    if (findings.length) console.error([`seed ${seed}`, ...findings, "", ...run.lines].join("\n"));
    expect(findings, `seed ${seed}`).toEqual([]);
    expect(run.readings, "readings over QMP").toBeGreaterThanOrEqual(2);
  });
});
