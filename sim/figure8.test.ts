// The spec's worked example as the oracle: runs examples/figure8.yaml through `uvt sim`'s runner and compares every
// printed transaction line with the lines of [0222]–[0224] extracted from the spec text itself.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadScenario } from "./scenario.ts";
import { runScenario } from "./run-scenario.ts";
import { parseLog, formatTransaction, gmk } from "../core/notation.ts";

// The spec lives in the shared/ folder beside the checkout (as CI lays it out); UV_SPEC_DIR points elsewhere.
const SPEC_DIR = process.env.UV_SPEC_DIR ?? join(import.meta.dirname, "..", "..", "shared", "spec");

function specText(): string {
  const file = existsSync(SPEC_DIR) ? readdirSync(SPEC_DIR).find((f) => f.startsWith("003_")) : undefined;
  if (!file) throw new Error(`spec text 003_*.txt not found in ${SPEC_DIR}: keep shared/ beside the checkout or set UV_SPEC_DIR`);
  return readFileSync(join(SPEC_DIR, file), "utf8");
}
const TX_LINE = /^(Begin Transaction|Commit Transaction|End Transaction|Change Owner|Initialize Partition|Destroy Partition|Merge Map|Split Map)/;

/**
 * The spec text's OCR slips, each fixed on the one line it names and nowhere else (docs/spec-notes.md 4). Both sides are
 * otherwise compared as printed (only leading and trailing blanks trimmed), so a printer that wrote "End Transaction"
 * or dropped a comma anywhere fails. Each correction must match exactly one spec line: if the spec text is replaced,
 * a stale correction fails the test instead of passing silently.
 */
const CORRECTIONS: Array<{ paragraph: string; spec: string; fixed: string; why: string }> = [
  {
    paragraph: "[0222], merge",
    spec: "Change Owner Map[0,1,18], Index(16), from [0,1,24] to [0,1,20]",
    fixed: "Change Owner Map[0,1,18], Index(16), from [0,1,24], to [0,1,20]",
    why: "the only Change Owner line of the section without the comma before \"to\"",
  },
  {
    paragraph: "[0222], merge",
    spec: "End Transaction",
    fixed: "Commit Transaction",
    why: "every other log of [0222]-[0224] ends with Commit Transaction; the spec names no End Transaction record",
  },
  {
    paragraph: "[0224], destroy Y",
    spec: "Change Owner Map[0,1,1], IndexRange(768, 1023), from [0,1,26], to [0,1,20]",
    fixed: "Change Owner Map[0,1,1], IndexRange(768,1023), from [0,1,26], to [0,1,20]",
    why: "[0223] writes the same range as IndexRange(768,1023), without the blank",
  },
];

/** Applies CORRECTIONS to the spec's lines; each must hit exactly one line. */
function corrected(lines: string[]): string[] {
  const out = [...lines];
  for (const c of CORRECTIONS) {
    const hits = out.flatMap((l, i) => (l === c.spec ? [i] : []));
    expect(hits.length, `correction of ${c.paragraph} (${c.why}) matches one spec line`).toBe(1);
    out[hits[0]!] = c.fixed;
  }
  return out;
}

function specLines(): string[] {
  const text = specText();
  const start = text.indexOf("[0222]");
  const end = text.indexOf("[0225]");
  expect(start).toBeGreaterThan(0);
  return corrected(text
    .slice(start, end)
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => TX_LINE.test(l)));
}

describe("Figure 8 worked example", () => {
  it("prints the logs of [0222]-[0224] line for line", async () => {
    const expected = specLines();
    expect(expected.length).toBe(32); // 4 + 4 lines of [0222], 2 × 6 of [0223], 2 × 6 of [0224]
    const printed: string[] = [];
    const r = await runScenario(loadScenario(join(import.meta.dirname, "..", "examples", "figure8.yaml")), (l) => printed.push(l));
    expect(r.failures).toEqual([]);
    const got = printed.filter((l) => TX_LINE.test(l));
    expect(got).toEqual(expected);
  });

  it("holds the map of [0219]-[0221] once X and Y exist (X at PGM entry 2, docs/spec-notes.md 1)", async () => {
    const s = loadScenario(join(import.meta.dirname, "..", "examples", "figure8.yaml"));
    // Stop before the destroys: the map then is the one Figure 8 draws.
    s.operations = s.operations.filter((o) => o.kind !== "destroy");
    s.expect = { owners: [], output: [] };
    const { host, failures } = await runScenario(s, () => {}, { map: false });
    expect(failures).toEqual([]);
    const P = (k: number): number => gmk(0, 1, k);
    const REF = (k: number): number => (P(k) | 0x80000000) | 0;
    const [missing, avail, boot, ultra, X, Y] = [P(19), P(20), P(22), P(24), P(25), P(26)];
    // Each row: map page, first entry, last entry, value, as the paragraphs state them.
    const rows: Array<[number, number, number, number]> = [
      // [0219] the PGM at Mem[0,1,0]
      [P(0), 0, 0, REF(1)], [P(0), 1, 1, avail], [P(0), 2, 2, X], [P(0), 3, 14, avail], [P(0), 15, 15, REF(16)],
      [P(0), 16, 1023, missing],
      // [0220] the PMM at Mem[0,1,1]
      [P(1), 0, 0, boot], [P(1), 1, 1, REF(18)], [P(1), 2, 2, ultra], [P(1), 3, 767, avail], [P(1), 768, 1023, Y],
      // [0219] "all of the 4MB pages in the last 4GB happen to be available"
      [P(16), 0, 1023, avail],
      // [0221] the PKM at Mem[0,1,18]: map pages 0, 1, 16, 18 (and 2-15, 17 reserved, [0217]) the ultravisor's;
      // 19-22 the pseudo partitions' descriptors, each owning itself; 23 the index; 24-26 descriptors; 27- Available.
      [P(18), 0, 18, ultra], [P(18), 19, 19, P(19)], [P(18), 20, 20, P(20)], [P(18), 21, 21, P(21)],
      [P(18), 22, 22, P(22)], [P(18), 23, 23, ultra], [P(18), 24, 24, ultra], [P(18), 25, 25, X], [P(18), 26, 26, Y],
      [P(18), 27, 1023, avail],
    ];
    for (const [map, first, last, want] of rows) {
      for (let i = first; i <= last; i++) expect([map, i, host.view.entry(map, i)]).toEqual([map, i, want]);
    }
    // [0218]: the Ultravisor Index.
    expect(host.db.indexPage()).toMatchObject({ index: P(23), top: P(0), order: 3, ultra, avail });
    // Only the four map pages the figure draws.
    expect(host.view.maps().map((m) => m.page)).toEqual([P(0), P(1), P(18), P(16)]);
  });

  it("parses the spec's own logs back into the same transactions it prints", () => {
    const text = specText();
    const section = text.slice(text.indexOf("[0222]"), text.indexOf("[0225]"));
    const txs = parseLog(section.split("\n").filter((l) => TX_LINE.test(l.trim())).join("\n"));
    expect(txs.length).toBe(6);
    const reprinted = txs.flatMap(formatTransaction);
    expect(reprinted).toEqual(specLines());
  });
});
