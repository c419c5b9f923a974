// The spec's worked example as the oracle: runs examples/figure8.yaml through `uvt sim`'s runner and compares every
// printed transaction line with the lines of [0222]–[0224] extracted from the spec text itself.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadScenario } from "./scenario.ts";
import { runScenario } from "./run-scenario.ts";
import { parseLog, formatTransaction } from "./notation.ts";

const SPEC_DIR = join(import.meta.dirname, "..", "..", "shared", "spec");
const TX_LINE = /^(Begin Transaction|Commit Transaction|End Transaction|Change Owner|Initialize Partition|Destroy Partition|Merge Map|Split Map)/;

/**
 * OCR normalisation, applied to both sides: whitespace collapsed and dropped after commas, "End Transaction" read as
 * "Commit Transaction" and a missing comma before "to" restored ([0222]'s merge log; see docs/spec-notes.md).
 */
function normalise(line: string): string {
  return line
    .replace(/\s+/g, " ")
    .trim()
    .replace(/,\s+/g, ",")
    .replace(/^End Transaction$/, "Commit Transaction")
    .replace(/(from \[[^\]]*\]) to/, "$1,to");
}

function specLines(): string[] {
  const file = readdirSync(SPEC_DIR).find((f) => f.startsWith("003_"));
  if (!file) throw new Error(`spec text 003_* not found in ${SPEC_DIR}`);
  const text = readFileSync(join(SPEC_DIR, file), "utf8");
  const start = text.indexOf("[0222]");
  const end = text.indexOf("[0225]");
  expect(start).toBeGreaterThan(0);
  return text
    .slice(start, end)
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => TX_LINE.test(l))
    .map(normalise);
}

describe("Figure 8 worked example", () => {
  it("prints the logs of [0222]-[0224] line for line", async () => {
    const expected = specLines();
    expect(expected.length).toBe(32); // 4 + 4 lines of [0222], 2 × 6 of [0223], 2 × 6 of [0224]
    const printed: string[] = [];
    const r = await runScenario(loadScenario(join(import.meta.dirname, "..", "examples", "figure8.yaml")), (l) => printed.push(l));
    expect(r.failures).toEqual([]);
    const got = printed.filter((l) => TX_LINE.test(l)).map(normalise);
    expect(got).toEqual(expected);
  });

  it("parses the spec's own logs back into the same transactions it prints", () => {
    const file = readdirSync(SPEC_DIR).find((f) => f.startsWith("003_"))!;
    const text = readFileSync(join(SPEC_DIR, file), "utf8");
    const section = text.slice(text.indexOf("[0222]"), text.indexOf("[0225]"));
    const txs = parseLog(section.split("\n").filter((l) => TX_LINE.test(l.trim())).join("\n"));
    expect(txs.length).toBe(6);
    const reprinted = txs.flatMap(formatTransaction).map(normalise);
    expect(reprinted).toEqual(specLines());
  });
});
