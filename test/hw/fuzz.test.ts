// Hardware fuzz test of the isolation boundaries (issue #12), in CI: one short run of test/hw/fuzz-host.ts — random
// hypercalls, random channel-header values from the client side, canary guests, the database and the pages around
// each attacker read over QMP before and after. The seed changes per run (UV_FUZZ_SEED to repeat one) and is
// printed; `npm run fuzz:ultravisor` runs the same host for longer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FuzzResult, fuzzFindings, fuzzRun, fuzzSeed } from "./fuzz-host.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-fuzz-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const RUN_QUANTA = 512;
const seed = fuzzSeed();
let run: FuzzResult;
beforeAll(async () => {
  console.log(`ultravisor fuzz: seed ${seed} (UV_FUZZ_SEED=${seed} repeats this run), ${RUN_QUANTA} quanta`);
  run = await fuzzRun({ seed, runQuanta: RUN_QUANTA, scratch, timeoutMs: 100_000 });
}, 120_000);

describe(`the ultravisor under random hypercalls and channel headers (seed ${seed})`, () => {
  it("keeps every other partition running with its canaries, the database and the attackers' neighbour pages intact", () => {
    const findings = fuzzFindings(run);
    const calls = run.lines.filter((l) => l.startsWith("H: tick ")).at(-1);
    console.log(`ultravisor fuzz: seed ${seed}: ${run.neighbours.length} neighbour pages checked, last H line: ${calls ?? "none"}, ${run.seconds.toFixed(1)} s`);
    if (findings.length) console.error([`seed ${seed}`, ...findings, "", ...run.lines].join("\n"));
    expect(findings, `seed ${seed}`).toEqual([]);
    expect(run.neighbours.length, "neighbour pages").toBeGreaterThanOrEqual(4);
  });
});
