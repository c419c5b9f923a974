// `npm run fuzz:ultravisor`: the long form of test/hw/fuzz.test.ts. Boots the fuzz host of test/hw/fuzz-host.ts
// (random hypercalls, random channel-header values, canary guests; database and attackers' neighbour pages compared
// over QMP) for --quanta quanta per run, --runs times, each with its own seed (the first --seed, or UV_FUZZ_SEED, or
// the clock; then seed+1, seed+2 …), printing the seed of every run and stopping at the first with findings. With
// --server, the host of test/hw/fuzz-server-host.ts instead: a hostile I/O partition scribbling the server side of
// every console channel, its clients (the ultravisor partition among them) and the database read over QMP.
// Usage: tsx scripts/fuzz-ultravisor.ts [--server] [--quanta N] [--runs R] [--seed S]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fuzzFindings, fuzzRun, fuzzSeed } from "../test/hw/fuzz-host.ts";
import { serverFuzzFindings, serverFuzzRun } from "../test/hw/fuzz-server-host.ts";

const { values } = parseArgs({
  options: { quanta: { type: "string", default: "4096" }, runs: { type: "string", default: "1" }, seed: { type: "string" }, server: { type: "boolean", default: false } },
});
const quanta = Number(values.quanta);
const runs = Number(values.runs);
if (!Number.isInteger(quanta) || quanta < 128 || quanta % 16 !== 0) throw new Error("--quanta must be a multiple of 16, at least 128");
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");
const first = values.seed !== undefined ? BigInt(values.seed) : fuzzSeed();
const scratch = mkdtempSync(join(tmpdir(), "uv-fuzz-"));
let failed = false;
try {
  for (let i = 0; i < runs && !failed; i++) {
    const seed = first + BigInt(i);
    console.log(`run ${i + 1}/${runs}: seed ${seed}, ${quanta} quanta`);
    let findings: string[];
    let lines: string[];
    if (values.server) {
      const r = await serverFuzzRun({ seed, runQuanta: quanta, scratch });
      findings = serverFuzzFindings(r);
      lines = r.lines;
      console.log(`  ${findings.length ? "FAILED" : "ok"} in ${r.seconds.toFixed(1)} s; ${r.readings} readings over QMP`);
    } else {
      const r = await fuzzRun({ seed, runQuanta: quanta, scratch });
      findings = fuzzFindings(r);
      lines = r.lines;
      const h = r.lines.filter((l) => l.startsWith("H: tick ")).at(-1) ?? "none";
      console.log(`  ${findings.length ? "FAILED" : "ok"} in ${r.seconds.toFixed(1)} s; last H line: ${h}`);
    }
    for (const f of findings) console.log(`  ${f}`);
    if (findings.length) {
      failed = true;
      console.log(`  repeat with: npm run fuzz:ultravisor -- ${values.server ? "--server " : ""}--quanta ${quanta} --seed ${seed}`);
      console.log(lines.join("\n"));
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
