// The one AssemblyScript build entry: every asc invocation of the project goes through `ascBuild` — core.wasm
// (core/build.ts), the partition programs (partitions/aot-guest.ts) and the boot module (loader-efi/uv-boot-db.ts).
// It owns the command-line shape (sources, --baseDir, --outFile, --textFile, then the caller's flags), the
// up-to-date rule (a content key: a hash of the inputs' contents, the command line, the compiler's versions and this
// rule, stored beside the output as OUT.key), the compiler pool (asc runs in up to two worker threads, core/asc-
// worker.mjs, so concurrent builds use both cores) and the whole-or-nothing write (temporary names, optional
// verification, then rename). docs/adr/0007-fast-cold-build.md says why. Part of core/, the bottom layer: it imports
// nothing of ours.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { createRequire } from "node:module";

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
  /**
   * Files or directories (every file under it, by name and content) whose change makes the output stale besides
   * `sources` and the files asc reads, which are recorded on each build: the build's own rule file, for instance.
   */
  deps?: readonly string[];
  /** Checks the built bytes before they replace the output; throws to keep the old output. */
  verify?: (bytes: Uint8Array) => Promise<void> | void;
  /**
   * A check run in the asc worker on the built bytes, before `verify`: `export` of the plain-JS `module` is called as
   * (binaryen, bytes) with the binaryen asc runs on (already loaded, unlike a second copy here) and returns a message
   * or null; `error` makes the thrown error from the message.
   */
  check?: { module: string; export: string; error: (message: string) => Error };
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

const WORKER = fileURLToPath(new URL("./asc-worker.mjs", import.meta.url));
const RULE_FILES = [fileURLToPath(import.meta.url), WORKER];
/** The rule of a target: core/asc.ts, the worker and the check the worker runs, if any. */
const ruleFiles = (t: AscTarget): string[] => [...RULE_FILES, ...(t.check ? [t.check.module] : [])];

/** The compiler's identity: the versions of assemblyscript and of the binaryen it runs on (not the project's binaryen). */
const compilerVersions = (() => {
  let cached: string | undefined;
  return (): string => {
    if (cached === undefined) {
      const req = createRequire(import.meta.url);
      const ascPkg = req.resolve("assemblyscript/package.json");
      const version = (p: string): string => (JSON.parse(readFileSync(p, "utf8")) as { name: string; version: string }).version;
      // binaryen as asc resolves it: its own nested copy when the project's differs.
      const nested = join(dirname(ascPkg), "node_modules", "binaryen", "package.json");
      const binaryenPkg = existsSync(nested) ? nested : createRequire(ascPkg).resolve("binaryen/package.json");
      cached = `assemblyscript ${version(ascPkg)} binaryen ${version(binaryenPkg)}`;
    }
    return cached;
  };
})();

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** Content hashes of a file, or of every file under a directory (so an added or removed file counts too). */
function hashInput(path: string, into: Array<[string, string]>): void {
  if (statSync(path).isDirectory()) {
    for (const e of readdirSync(path).sort()) hashInput(join(path, e), into);
  } else {
    into.push([path, sha256(readFileSync(path))]);
  }
}

/** The part of the key known before compiling: rule, compiler, command line (outputs by role, not name), declared inputs. */
function declaredKey(t: AscTarget): string {
  const base = t.baseDir ?? process.cwd();
  const declared: Array<[string, string]> = [];
  for (const p of [...t.sources.map((s) => (s.startsWith("/") ? s : join(base, s))), ...(t.deps ?? []), ...ruleFiles(t)]) hashInput(p, declared);
  return JSON.stringify({ compiler: compilerVersions(), args: ascCommandLine(t, "OUT.wasm", t.wat !== undefined ? "OUT.wat" : undefined), declared });
}

/** The key: the declared part and the content hashes of the files asc read, in path order. */
const fullKey = (declared: string, reads: ReadonlyArray<readonly [string, string]>): string =>
  sha256(`${declared}\n${JSON.stringify([...reads].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))}`);

interface KeyFile {
  key: string;
  /** The files asc read on the build that wrote this key. */
  reads: string[];
}

const keyPath = (t: AscTarget): string => `${t.out}.key`;

/**
 * True when an output of `t` is missing or its key differs: a source, a dependency or a file asc read last time has
 * other contents (or is gone), or the command line, the compiler or this rule changed. Timestamps play no part: a
 * touched file that reads the same does not rebuild.
 */
export function ascStale(t: AscTarget): boolean {
  const outs = [t.out, keyPath(t), ...(t.wat !== undefined ? [t.wat] : [])];
  if (outs.some((o) => !existsSync(o))) return true;
  try {
    const stored = JSON.parse(readFileSync(keyPath(t), "utf8")) as KeyFile;
    const reads = stored.reads.map((p): [string, string] => [p, sha256(readFileSync(p, "utf8"))]);
    return fullKey(declaredKey(t), reads) !== stored.key;
  } catch {
    return true; // an unreadable key or a vanished input
  }
}

interface JobResult {
  error: string | null;
  /** The check's message (AscTarget.check), when it found a problem. */
  problem?: string | null;
  log: string;
  reads: Array<[string, string]>;
}

interface Job {
  args: string[];
  check: { module: string; export: string } | undefined;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
}

/**
 * Worker threads running asc, at most one per core and two in all (asc is single-threaded; a third would only
 * contend), started on demand and unreferenced when idle so they never keep the process alive. Each pays the load
 * of asc and binaryen (~1 s) once and then compiles in turn; a job goes to the first free worker, in request order.
 */
class AscPool {
  readonly size = Math.max(1, Math.min(2, availableParallelism()));
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private count = 0;

  run(args: string[], check?: { module: string; export: string }): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ args, check, resolve, reject });
      this.pump();
    });
  }

  /** Starts the workers now (they load asc at once) without giving them work: see ascWarmUp. */
  warm(): void {
    while (this.count < this.size) {
      const w = this.spawn();
      w.unref();
      this.idle.push(w);
    }
  }

  private pump(): void {
    while (this.queue.length) {
      const w = this.idle.pop() ?? (this.count < this.size ? this.spawn() : undefined);
      if (!w) return;
      this.dispatch(w, this.queue.shift()!);
    }
  }

  private spawn(): Worker {
    // execArgv [] : no tsx loader in the worker (the point of the worker being plain JavaScript).
    const w = new Worker(WORKER, { execArgv: [], stdout: false, stderr: false });
    this.count++;
    // An error while idle (asc failing to load after ascWarmUp) must not crash the process as an unhandled 'error'
    // event: the worker then exits and leaves the pool; a job's own listener (dispatch) reports errors during a job.
    w.on("error", () => undefined);
    w.once("exit", () => {
      this.count--;
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      this.pump(); // a job waiting for a worker gets a new one
    });
    return w;
  }

  private dispatch(w: Worker, job: Job): void {
    w.ref();
    const done = (): void => {
      w.off("message", onMessage);
      w.off("error", onError);
      w.off("exit", onExit);
    };
    const onMessage = (m: JobResult): void => {
      done();
      w.unref();
      this.idle.push(w);
      job.resolve(m);
      this.pump();
    };
    const onError = (e: Error): void => {
      done();
      job.reject(e);
      void w.terminate();
      this.pump();
    };
    // asc ends the process (here: the worker) with exit(1) when it crashes.
    const onExit = (code: number): void => {
      done();
      job.reject(new Error(`the asc worker exited with code ${code}`));
      this.pump();
    };
    w.on("message", onMessage);
    w.once("error", onError);
    w.once("exit", onExit);
    w.postMessage({ id: 0, args: job.args, check: job.check });
  }
}

let pool: AscPool | undefined;

/**
 * Starts the compiler workers ahead of the first build, so their load of asc and binaryen (~1 s each) overlaps the
 * caller's own start-up: `uvt build` calls it when core.wasm is stale, before loading the image builder's modules.
 * Idle workers are unreferenced: if no build follows, they do not keep the process alive.
 */
export function ascWarmUp(): void {
  pool ??= new AscPool();
  pool.warm();
}
/** Builds of an output under way in this process: a second request for it waits for the first. */
const inflight = new Map<string, Promise<{ bytes: Uint8Array; rebuilt: boolean }>>();

/**
 * Builds `t` with asc when stale (or `force`); returns the .wasm bytes and whether it rebuilt. Concurrent calls for
 * different outputs compile in parallel (the worker pool); concurrent calls for one output share one build.
 */
export function ascBuild(t: AscTarget, opts: { force?: boolean } = {}): Promise<{ bytes: Uint8Array; rebuilt: boolean }> {
  const id = JSON.stringify(ascCommandLine(t));
  const prev = inflight.get(id);
  if (prev && !opts.force) return prev;
  // A forced build of an output being built waits for that build rather than racing it to the same names.
  const p: Promise<{ bytes: Uint8Array; rebuilt: boolean }> = (prev ?? Promise.resolve())
    .catch(() => undefined)
    .then(() => build(t, opts))
    .finally(() => {
      if (inflight.get(id) === p) inflight.delete(id);
    });
  inflight.set(id, p);
  return p;
}

let tmpSerial = 0;

async function build(t: AscTarget, opts: { force?: boolean }): Promise<{ bytes: Uint8Array; rebuilt: boolean }> {
  if (!opts.force && !ascStale(t)) return { bytes: new Uint8Array(readFileSync(t.out)), rebuilt: false };
  const declared = declaredKey(t);
  mkdirSync(dirname(t.out), { recursive: true });
  if (t.wat !== undefined) mkdirSync(dirname(t.wat), { recursive: true });
  const tag = `${process.pid}.${++tmpSerial}`;
  const tmp = `${t.out}.${tag}.tmp`;
  const tmpWat = t.wat !== undefined ? `${t.wat}.${tag}.tmp` : undefined;
  const discard = (): void => {
    rmSync(tmp, { force: true });
    if (tmpWat !== undefined) rmSync(tmpWat, { force: true });
  };
  pool ??= new AscPool();
  let r;
  try {
    r = await pool.run(ascCommandLine(t, tmp, tmpWat), t.check && { module: t.check.module, export: t.check.export });
  } catch (e) {
    discard();
    throw e;
  }
  if (r.error !== null) {
    discard();
    const error = new Error(r.error);
    throw t.failure ? t.failure(r.log, error) : new Error(`asc failed on ${t.sources[0]}: ${r.error}\n${r.log}`);
  }
  if (t.printWarnings && /WARNING/.test(r.log)) process.stderr.write(r.log);
  if (r.problem != null) {
    discard();
    throw t.check!.error(r.problem);
  }
  const bytes = new Uint8Array(readFileSync(tmp));
  try {
    await t.verify?.(bytes);
  } catch (e) {
    discard();
    throw e;
  }
  // The key goes last: an interrupted build leaves a missing or old key, hence a stale output, never a wrong one.
  rmSync(keyPath(t), { force: true });
  if (tmpWat !== undefined) renameSync(tmpWat, t.wat!);
  renameSync(tmp, t.out);
  const key: KeyFile = { key: fullKey(declared, r.reads), reads: r.reads.map(([p]) => p).sort() };
  writeFileSync(keyPath(t), `${JSON.stringify(key, null, 1)}\n`);
  return { bytes, rebuilt: true };
}
