// The worker half of core/asc.ts (the one AssemblyScript build entry): a worker thread that loads the AssemblyScript
// compiler once and runs the asc command lines core/asc.ts posts to it, one at a time. Plain JavaScript, started
// without tsx's loader: under tsx, importing asc transforms binaryen's 13 MB index.js and costs ~20 s of CPU instead
// of ~1 s (docs/adr/0007-fast-cold-build.md). Part of core/, the bottom layer.
// Message in: { id, args, check? }. Message out: { id, error: string | null, problem?, log, reads: [[path, sha256], ...] },
// where `reads` are the files asc read and the hash of exactly the text it read (core/asc.ts keys the output on them)
// and `problem` what `check` (a module and export name, called as (binaryen, bytes)) found wrong with the output.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parentPort } from "node:worker_threads";

// Messages posted before this import finishes wait in the port's queue: it starts when the listener is attached.
const { default: asc } = await import("assemblyscript/asc");

parentPort.on("message", async ({ id, args, check }) => {
  let log = "";
  const reads = new Map();
  const sink = {
    write(s) {
      log += typeof s === "string" ? s : Buffer.from(s).toString();
      return true;
    },
  };
  // asc's default readFile, recording what it found: a missing file is a resolution probe, not an input.
  const readFileRecorded = async (name, baseDir) => {
    const path = resolve(baseDir, name);
    try {
      const text = await readFile(path, "utf8");
      reads.set(path, createHash("sha256").update(text).digest("hex"));
      return text;
    } catch {
      return null;
    }
  };
  try {
    const { error } = await asc.main(args, { stdout: sink, stderr: sink, readFile: readFileRecorded });
    let problem = null;
    if (!error && check) {
      // The binaryen asc runs on: the same module instance, so nothing more to load.
      const { default: binaryen } = await import("assemblyscript/binaryen");
      const checker = await import(pathToFileURL(check.module).href);
      const out = args[args.indexOf("--outFile") + 1];
      const baseDir = args.includes("--baseDir") ? args[args.indexOf("--baseDir") + 1] : ".";
      problem = checker[check.export](binaryen, new Uint8Array(await readFile(resolve(baseDir, out))));
    }
    parentPort.postMessage({ id, error: error ? error.message : null, problem, log, reads: [...reads] });
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.stack ?? e.message : String(e), log, reads: [] });
  }
});
