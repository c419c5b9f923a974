// Builds out/core.wasm (+ out/core.wat) from every core/assembly/*.ts entry with asc (through core/asc.ts, the one
// AssemblyScript build entry), then verifies with binaryen that the module stays inside the integer-only feature set
// of docs/specs/core-wasm.md. No-op when up to date (a content key, core/asc.ts). Part of core/, the bottom layer.
// Usage: npx tsx core/build.ts [--force]
import { readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ascBuild, ascCommandLine, ascStale, type AscTarget } from "./asc.ts";
import { coreWasmProblem } from "./verify-core.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "..");
export const coreWasmPath = join(repoRoot, "out", "core.wasm");
export const coreWatPath = join(repoRoot, "out", "core.wat");

export class CoreBuildError extends Error {
  override name = "CoreBuildError";
}

/** The entry files: every core/assembly/*.ts (not lib/), in a stable order. */
export function coreEntries(): string[] {
  const dir = join(repoRoot, "core", "assembly");
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(dir, e.name))
    .sort();
}

/** core.wasm's asc flags after the output options (core/asc.ts puts sources, --baseDir and the outputs first). */
const CORE_FLAGS = [
  "--runtime", "stub",
  "--optimizeLevel", "3",
  "--shrinkLevel", "0",
  "--use", "abort=core/assembly/lib/panic/corePanic",
  "--importMemory",
  // The declared minimum of the imported memory: 8 MiB, as when static data sat there (hosts and the differential
  // tests size their memory from it); a database needs more, checked by db_bootstrap/db_attach with error codes.
  "--initialMemory", "128",
  "--disable", "bulk-memory,nontrapping-f2i",
  "--noColors",
];

/** The build of core.wasm as an asc target: every entry, the panic handler, and the whole core/assembly tree as inputs. */
function coreTarget(entries: string[]): AscTarget {
  return {
    // The abort handler must be part of the program for --use to find it; it exports nothing.
    sources: [...entries.map((e) => relative(repoRoot, e)), "core/assembly/lib/panic.ts"],
    baseDir: repoRoot,
    out: coreWasmPath,
    wat: coreWatPath,
    flags: CORE_FLAGS,
    // The whole tree by content (an added or deleted file counts too; core/asc.ts hashes a directory's files) and this
    // rule, whose flags and verifier shape the output.
    deps: [join(repoRoot, "core", "assembly"), fileURLToPath(import.meta.url)],
    // The same check as verifyCoreWasm, run in the asc worker on the binaryen asc has loaded (core/verify-core.mjs).
    check: { module: fileURLToPath(new URL("./verify-core.mjs", import.meta.url)), export: "coreWasmProblem", error: (m) => new CoreBuildError(m) },
    failure: (log, error) => new CoreBuildError(`asc failed to compile core/assembly:\n${log.trim() || error.message}`),
    printWarnings: true,
  };
}

/** asc command line; exported so docs and tests can show exactly what runs. */
export function ascArgs(entries: string[], outWasm: string, outWat: string): string[] {
  return ascCommandLine(coreTarget(entries), outWasm, outWat);
}

/** Checks the built module against docs/specs/core-wasm.md; throws CoreBuildError naming what is wrong. */
export async function verifyCoreWasm(bytes: Uint8Array): Promise<void> {
  const { default: binaryen } = await import("binaryen");
  const problem = coreWasmProblem(binaryen, bytes);
  if (problem !== null) throw new CoreBuildError(problem);
}

/** True when out/core.wasm would be rebuilt (core/asc.ts's content key): cheap, for a caller that plans ahead. */
export function coreStale(): boolean {
  return ascStale(coreTarget(coreEntries()));
}

/** Builds out/core.wasm unless its content key (core/asc.ts) matches; returns true when it rebuilt. */
export async function buildCore(opts: { force?: boolean } = {}): Promise<boolean> {
  const entries = coreEntries();
  if (entries.length === 0) throw new CoreBuildError("no entry files in core/assembly/*.ts");
  // core/asc.ts compiles to temporary names, verifies, then renames: a failed build never leaves a half-good
  // core.wasm behind.
  return (await ascBuild(coreTarget(entries), opts)).rebuilt;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const force = process.argv.includes("--force");
  buildCore({ force }).then(
    (rebuilt) => {
      const size = statSync(coreWasmPath).size;
      process.stdout.write(`${rebuilt ? "built" : "up to date:"} ${relative(process.cwd(), coreWasmPath)} (${size} bytes)\n`);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
