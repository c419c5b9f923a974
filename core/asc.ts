// The one AssemblyScript build entry: every asc invocation of the project goes through `ascBuild` — core.wasm
// (core/build.ts), the partition programs (partitions/aot-guest.ts) and the boot module (loader-efi/uv-boot-db.ts).
// It owns the command-line shape (sources, --baseDir, --outFile, --textFile, then the caller's flags), the
// up-to-date rule (an output is rebuilt when missing or older than a source, a dependency or this file) and the
// whole-or-nothing write (temporary names, optional verification, then rename). Part of core/, the bottom layer:
// it imports nothing of ours.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

export interface AscTarget {
  /** Entry files, in order (absolute, or relative to `baseDir`). */
  sources: readonly string[];
  /** The .wasm to produce. */
  out: string;
  /** The .wat to produce beside it (asc --textFile), if any. */
  wat?: string;
  /** asc --baseDir: the directory relative sources and `--use` paths are read from. */
  baseDir?: string;
  /** The caller's asc flags (optimisation, runtime, memory, features…), after the output options. */
  flags: readonly string[];
  /** Files or directories whose change makes the output stale besides `sources` (a directory's mtime changes when an entry is removed). */
  deps?: readonly string[];
  /** Checks the built bytes before they replace the output; throws to keep the old output. */
  verify?: (bytes: Uint8Array) => Promise<void> | void;
  /** Makes the error thrown when asc fails (default: an Error naming the first source with asc's output). */
  failure?: (log: string, error: Error) => Error;
  /** Echo asc's output to stderr when it contains warnings. */
  printWarnings?: boolean;
}

/** The asc command line of `t` writing to `outFile` (and `watFile`): exported so docs and tests show exactly what runs. */
export function ascCommandLine(t: AscTarget, outFile = t.out, watFile = t.wat): string[] {
  return [
    ...t.sources,
    ...(t.baseDir !== undefined ? ["--baseDir", t.baseDir] : []),
    "--outFile", outFile,
    ...(watFile !== undefined ? ["--textFile", watFile] : []),
    ...t.flags,
  ];
}

/** True when an output of `t` is missing or older than a source, a dependency or the build rule itself. */
export function ascStale(t: AscTarget): boolean {
  const outs = [t.out, ...(t.wat !== undefined ? [t.wat] : [])];
  if (outs.some((o) => !existsSync(o))) return true;
  const built = Math.min(...outs.map((o) => statSync(o).mtimeMs));
  const base = t.baseDir ?? process.cwd();
  const inputs = [...t.sources.map((s) => (s.startsWith("/") ? s : `${base}/${s}`)), ...(t.deps ?? []), fileURLToPath(import.meta.url)];
  return inputs.some((p) => statSync(p).mtimeMs > built);
}

/** Builds `t` with asc when stale (or `force`); returns the .wasm bytes and whether it rebuilt. */
export async function ascBuild(t: AscTarget, opts: { force?: boolean } = {}): Promise<{ bytes: Uint8Array; rebuilt: boolean }> {
  if (!opts.force && !ascStale(t)) return { bytes: new Uint8Array(readFileSync(t.out)), rebuilt: false };
  mkdirSync(dirname(t.out), { recursive: true });
  if (t.wat !== undefined) mkdirSync(dirname(t.wat), { recursive: true });
  const tmp = `${t.out}.${process.pid}.tmp`;
  const tmpWat = t.wat !== undefined ? `${t.wat}.${process.pid}.tmp` : undefined;
  const { default: asc } = await import("assemblyscript/asc");
  let log = "";
  const sink = { write(s: string | Uint8Array): boolean { log += typeof s === "string" ? s : Buffer.from(s).toString(); return true; } };
  const { error } = await asc.main(ascCommandLine(t, tmp, tmpWat), { stdout: sink, stderr: sink });
  const discard = (): void => {
    rmSync(tmp, { force: true });
    if (tmpWat !== undefined) rmSync(tmpWat, { force: true });
  };
  if (error) {
    discard();
    throw t.failure ? t.failure(log, error) : new Error(`asc failed on ${t.sources[0]}: ${error.message}\n${log}`);
  }
  if (t.printWarnings && /WARNING/.test(log)) process.stderr.write(log);
  const bytes = new Uint8Array(readFileSync(tmp));
  try {
    await t.verify?.(bytes);
  } catch (e) {
    discard();
    throw e;
  }
  if (tmpWat !== undefined) renameSync(tmpWat, t.wat!);
  renameSync(tmp, t.out);
  return { bytes, rebuilt: true };
}
