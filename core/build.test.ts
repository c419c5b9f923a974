// Tests of the core.wasm build: the real module instantiates in V8, and the binaryen verifier rejects what the
// AOT backend cannot run (floats, bulk memory) or the layout forbids (static data) when handed modules that contain them.
import { describe, expect, it } from "vitest";
import binaryen from "binaryen";
import { readFileSync } from "node:fs";
import { buildCore, coreWasmPath, verifyCoreWasm } from "./build.ts";
import { loadCore } from "./wasm.ts";

function moduleWith(build: (m: binaryen.Module) => void, features: number): Uint8Array {
  const m = new binaryen.Module();
  m.setFeatures(features);
  m.setMemory(1, 1, null);
  build(m);
  const bytes = m.emitBinary();
  m.dispose();
  return bytes;
}

describe("core.wasm build", () => {
  it("builds, verifies and instantiates", async () => {
    await buildCore();
    const core = await loadCore();
    expect((core.exports.core_layout_version as () => number)()).toBe(0x20000);
  });

  it("rejects a float instruction", async () => {
    const bytes = moduleWith((m) => {
      m.addFunction("f", binaryen.none, binaryen.i32, [],
        m.i32.trunc_s.f64(m.f64.add(m.f64.const(1.5), m.f64.const(2))));
      m.addFunctionExport("f", "f");
    }, binaryen.Features.MVP);
    await expect(verifyCoreWasm(bytes)).rejects.toThrow(/f64 in /);
  });

  it("rejects bulk memory", async () => {
    const bytes = moduleWith((m) => {
      m.addFunction("g", binaryen.none, binaryen.none, [],
        m.memory.fill(m.i32.const(0), m.i32.const(0), m.i32.const(16)));
      m.addFunctionExport("g", "g");
    }, binaryen.Features.MVP | binaryen.Features.BulkMemory);
    await expect(verifyCoreWasm(bytes)).rejects.toThrow(/outside MVP/);
  });

  it("rejects static data: core has nothing at a fixed physical address", async () => {
    const m = new binaryen.Module();
    m.setFeatures(binaryen.Features.MVP);
    m.setMemory(1, 1, null, [{ offset: m.i32.const(0x800000), data: new TextEncoder().encode("Missing"), passive: false }]);
    const bytes = m.emitBinary();
    m.dispose();
    await expect(verifyCoreWasm(bytes)).rejects.toThrow(/data segment 0 \(7 bytes at 8388608, "Missing"\): core has no static data/);
    // The real build has none.
    await buildCore();
    await expect(verifyCoreWasm(readFileSync(coreWasmPath))).resolves.toBeUndefined();
  });

});
