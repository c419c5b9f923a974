// Keeps the mutation check's list (scripts/mutate.ts, `npm run mutate`) in step with the code: every mutation's text
// occurs exactly once in its file and changes it, and every test it names exists. Cheap; the check itself is not.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MUTATIONS } from "../scripts/mutate.ts";

const root = join(import.meta.dirname, "..");

describe("npm run mutate's list", () => {
  it("has unique names, texts that occur exactly once, real changes and existing test files", () => {
    expect(new Set(MUTATIONS.map((m) => m.name)).size).toBe(MUTATIONS.length);
    for (const m of MUTATIONS) {
      const text = readFileSync(join(root, m.file), "utf8");
      expect(text.split(m.from).length - 1, `${m.name}: occurrences of its text in ${m.file}`).toBe(1);
      expect(m.to, m.name).not.toBe(m.from);
      expect(m.tests.length, `${m.name}: tests`).toBeGreaterThan(0);
      for (const t of m.tests) for (const f of t.files) expect(existsSync(join(root, f)), `${m.name}: ${f}`).toBe(true);
    }
  });
});
