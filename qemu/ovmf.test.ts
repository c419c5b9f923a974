// Unit tests of OVMF discovery (qemu/ovmf.ts) over fake directory trees: it is filesystem logic, so real files in a
// temp dir are the oracle.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HarnessError } from "./errors.ts";
import { discoverOvmf } from "./ovmf.ts";

const made: string[] = [];
function tree(files: Record<string, string[]>): string {
  const root = mkdtempSync(join(tmpdir(), "uv-ovmf-test-"));
  made.push(root);
  for (const [dir, names] of Object.entries(files)) {
    mkdirSync(join(root, dir), { recursive: true });
    for (const n of names) writeFileSync(join(root, dir, n), "fw");
  }
  return root;
}
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("discoverOvmf", () => {
  it("prefers the Debian 12 4M pair over the 2M one", () => {
    const r = tree({ OVMF: ["OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"] });
    expect(discoverOvmf({ dirs: [join(r, "OVMF")] })).toEqual({ code: join(r, "OVMF/OVMF_CODE_4M.fd"), vars: join(r, "OVMF/OVMF_VARS_4M.fd") });
  });

  it("falls back to the non-4M names and to later directories", () => {
    const r = tree({ a: [], b: ["OVMF_CODE.fd", "OVMF_VARS.fd"] });
    expect(discoverOvmf({ dirs: [join(r, "a"), join(r, "b")] })).toEqual({ code: join(r, "b/OVMF_CODE.fd"), vars: join(r, "b/OVMF_VARS.fd") });
  });

  it("never pairs a code file with a vars file of the other size", () => {
    const r = tree({ OVMF: ["OVMF_CODE_4M.fd", "OVMF_VARS.fd"] });
    expect(() => discoverOvmf({ dirs: [join(r, "OVMF")] })).toThrow(HarnessError);
  });

  it("says to install ovmf when nothing is found", () => {
    const r = tree({ empty: [] });
    expect(() => discoverOvmf({ dirs: [join(r, "empty")] })).toThrow(/apt-get install ovmf/);
  });

  it("takes explicit files, and requires both", () => {
    const r = tree({ x: ["code.fd", "vars.fd"] });
    expect(discoverOvmf({ code: join(r, "x/code.fd"), vars: join(r, "x/vars.fd") })).toEqual({ code: join(r, "x/code.fd"), vars: join(r, "x/vars.fd") });
    expect(() => discoverOvmf({ code: join(r, "x/code.fd") })).toThrow(/both/);
    expect(() => discoverOvmf({ code: join(r, "x/nope.fd"), vars: join(r, "x/vars.fd") })).toThrow(/not found/);
  });
});
