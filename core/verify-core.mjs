// The check of core.wasm against docs/specs/core-wasm.md (integer-only: MVP + sign-extension + mutable-globals, no
// float or vector type, no bulk memory, tables or references, imports from "hw" only, no data segment), on whichever
// binaryen the caller passes. Plain JavaScript so the asc worker (core/asc-worker.mjs) runs it right after compiling
// with the binaryen asc already loaded (a second binaryen under tsx costs ~1.3 s of CPU on a cold build's critical
// path); core/build.ts's verifyCoreWasm runs the same code on the project's binaryen. Part of core/, the bottom layer.

/** What is wrong with `bytes` as core.wasm, as one message, or null when nothing is. */
export function coreWasmProblem(binaryen, bytes) {
  const mod = binaryen.readBinary(bytes);
  try {
    const F = binaryen.Features;
    mod.setFeatures(F.MVP | F.SignExt | F.MutableGlobals);
    if (!mod.validate()) {
      return "core.wasm uses a wasm feature outside MVP + sign-extension + mutable-globals " +
        "(binaryen validation failed; its messages are above). See docs/specs/core-wasm.md.";
    }
    const problems = [];
    // Names ($…) and data strings may legitimately contain "f64"; strip them before looking for float types.
    const lines = mod.emitText().split("\n");
    let func = "(module)";
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i];
      const m = /^\s*\(func \$(\S+)/.exec(raw);
      if (m) func = m[1];
      const line = raw.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\$[^\s()]+/g, "$");
      const f = /\b(f32|f64|v128)\b/.exec(line);
      if (f) problems.push(`${f[1]} in ${func} (core.wat line ${i + 1}): ${raw.trim().slice(0, 100)}`);
      const bulk = /\b(memory\.(copy|fill|init)|data\.drop|table\.\w+|ref\.\w+)\b/.exec(line);
      if (bulk) problems.push(`${bulk[1]} in ${func} (core.wat line ${i + 1})`);
      const imp = /^\s*\(import "([^"]*)" "([^"]*)"/.exec(raw);
      if (imp && imp[1] !== "hw" && !(imp[1] === "env" && imp[2] === "memory")) {
        problems.push(`import ${imp[1]}.${imp[2]} is not from module "hw"`);
      }
    }
    // No static data: linear memory is host physical memory and core's private area moves with the host (chosen at
    // bootstrap, docs/specs/memory-layout.md §5), so nothing of core may sit at a fixed address. String literals and
    // assert messages would be data segments.
    // Two binaryen APIs: 123 (the project's) names segments by index string; asc's newer one has data segment refs.
    const count = mod.getNumDataSegments ? mod.getNumDataSegments() : mod.getNumMemorySegments();
    for (let i = 0; i < count; i++) {
      const seg = mod.getDataSegmentInfo ? mod.getDataSegmentInfo(mod.getDataSegmentByIndex(i)) : mod.getMemorySegmentInfo(String(i));
      const text = Buffer.from(seg.data).toString("latin1").replace(/[^\x20-\x7e]/g, "");
      problems.push(`data segment ${i} (${seg.data.byteLength} bytes at ${seg.offset}, "${text.slice(0, 40)}"): core has no static data; ` +
        "write constants with stores (a string literal or an assert message makes one)");
    }
    return problems.length
      ? `core.wasm is outside the integer-only feature set (docs/specs/core-wasm.md):\n  ${problems.slice(0, 20).join("\n  ")}`
      : null;
  } finally {
    mod.dispose();
  }
}
