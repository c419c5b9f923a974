// The committed docs/schema/host.schema.json is what definition/json-schema.ts generates from the zod schema (run
// `npx tsx definition/json-schema.ts` after changing definition/host.ts), and every shipped example names it.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hostJsonSchemaText, SCHEMA_PATH } from "./json-schema.ts";

const examples = join(import.meta.dirname, "..", "examples");

describe("the JSON Schema of host definitions", () => {
  it("is up to date with definition/host.ts", () => {
    expect(readFileSync(SCHEMA_PATH, "utf8"), "run: npx tsx definition/json-schema.ts").toBe(hostJsonSchemaText());
  });

  it("is named by every example, so editors check them", () => {
    const files = readdirSync(examples).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const text = readFileSync(join(examples, f), "utf8");
      const named = f.endsWith(".json") ? /"\$schema": "\.\.\/docs\/schema\/host\.schema\.json"/ : /^# yaml-language-server: \$schema=\.\.\/docs\/schema\/host\.schema\.json$/m;
      expect(text, f).toMatch(named);
    }
  });

  it("states the strictness the loader applies: no unknown keys anywhere, sizes by pattern", () => {
    const schema = JSON.parse(hostJsonSchemaText()) as { additionalProperties: boolean; properties: Record<string, unknown> };
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(["$schema", "revision", "name", "host", "partitions", "devices", "run", "operations", "expect"]);
    expect(hostJsonSchemaText()).toContain('"pattern": "^\\\\s*\\\\d+\\\\s*([KMGTPEkmgtpe]?)(i?[Bb])?\\\\s*$"');
  });
});
