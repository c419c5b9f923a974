// Conformance with the official WebAssembly spec test suite (wasm 2.0 snapshot in ../shared/wasm-spec/core, or
// UV_WASM_SPEC_DIR): every .wast file runs through testing/spec-runner.ts against the AOT compiler and against V8 as
// the control. Every supported assertion must pass and every invalid or malformed binary must be rejected; the AOT
// side may skip only assertions whose module uses a feature the compiler refuses as unsupported (ABI.md). Needs
// wast2json (Debian `wabt`, scripts/setup): without it this test fails, it never skips.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type FileResult, runWastFile } from "./testing/spec-runner.ts";
import { WASM_SPEC_DIR, wast2jsonVersion } from "./testing/wast.ts";

const files = existsSync(WASM_SPEC_DIR) ? readdirSync(WASM_SPEC_DIR).filter((f) => f.endsWith(".wast")).sort() : [];
const results: FileResult[] = [];

describe("WebAssembly spec suite (core, wasm 2.0)", () => {
  it("has the suite and wast2json", () => {
    expect(files.length, `no .wast files in ${WASM_SPEC_DIR}: keep shared/ beside the checkout or set UV_WASM_SPEC_DIR`).toBeGreaterThan(50);
    expect(wast2jsonVersion()).toMatch(/^\d+\.\d+/);
  });

  it("a missing wast2json is an error naming the package (the suite never skips for it)", () => {
    expect(() => wast2jsonVersion({ PATH: "/nonexistent" })).toThrow(/wast2json \(Debian package `wabt`\) is not installed/);
  });

  for (const f of files) {
    it(f, () => {
      const r = runWastFile(join(WASM_SPEC_DIR, f));
      results.push(r);
      expect(r.aot.failures, `AOT failures in ${f}`).toEqual([]);
      expect(r.v8.failures, `V8 (control) failures in ${f}`).toEqual([]);
      expect(r.aot.failed + r.v8.failed).toBe(0);
    });
  }

  afterAll(() => {
    if (!results.length) return;
    const pad = (s: string | number, n: number) => String(s).padStart(n);
    const lines = [`${"file".padEnd(28)} ${pad("AOT pass", 8)} ${pad("fail", 5)} ${pad("skip", 6)} ${pad("V8 pass", 8)} ${pad("fail", 5)} ${pad("skip", 5)}  AOT skip reasons`];
    const tot = { ap: 0, af: 0, as: 0, vp: 0, vf: 0, vs: 0, text: 0, spec: 0, unsup: 0, other: 0 };
    const reasons = new Map<string, number>();
    for (const r of results) {
      tot.ap += r.aot.passed; tot.af += r.aot.failed; tot.as += r.aot.skipped;
      tot.vp += r.v8.passed; tot.vf += r.v8.failed; tot.vs += r.v8.skipped;
      tot.text += r.textMalformed; tot.spec += r.rejectedWithSpecText; tot.unsup += r.rejectedAsUnsupported; tot.other += r.rejectedOther;
      for (const [k, v] of r.aot.reasons) reasons.set(k, (reasons.get(k) ?? 0) + v);
      const why = [...r.aot.reasons].map(([k, v]) => `${k} ${v}`).join("; ");
      lines.push(`${r.file.split("/").pop()!.padEnd(28)} ${pad(r.aot.passed, 8)} ${pad(r.aot.failed, 5)} ${pad(r.aot.skipped, 6)} ${pad(r.v8.passed, 8)} ${pad(r.v8.failed, 5)} ${pad(r.v8.skipped, 5)}  ${why}`);
    }
    lines.push(`${"TOTAL".padEnd(28)} ${pad(tot.ap, 8)} ${pad(tot.af, 5)} ${pad(tot.as, 6)} ${pad(tot.vp, 8)} ${pad(tot.vf, 5)} ${pad(tot.vs, 5)}`);
    lines.push("AOT skips by reason:");
    for (const [k, v] of [...reasons].sort((a, b) => b[1] - a[1])) lines.push(`  ${pad(v, 6)}  ${k}`);
    lines.push(`Invalid/malformed binaries rejected: ${tot.spec} with the suite's message text, ${tot.unsup} as unsupported, ${tot.other} with another message; ${tot.text} text-format assert_malformed not convertible by wast2json.`);
    console.log(lines.join("\n"));
  });
});
