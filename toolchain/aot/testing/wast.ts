// Converts the WebAssembly spec suite's .wast scripts to wabt's JSON command list plus one .wasm per module, for the
// spec-suite runner (spec-runner.ts). Uses Debian's `wast2json` (wabt 1.0.32, installed by scripts/setup); results
// are cached under out/wasm-spec/ keyed by the script's hash. wabt 1.0.32 predates a few text-syntax details of the
// 2.0 snapshot (`table.get` without a table index, the folded `if` with a non-`then` condition): a command it cannot
// parse is blanked out (keeping the line numbers) and reported back, so the rest of the file still runs.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

/** Where the spec suite lives: ../shared/wasm-spec/core beside the checkout, or UV_WASM_SPEC_DIR. */
export const WASM_SPEC_DIR = process.env.UV_WASM_SPEC_DIR ?? join(import.meta.dirname, "..", "..", "..", "..", "shared", "wasm-spec", "core");
const CACHE = join(import.meta.dirname, "..", "..", "..", "out", "wasm-spec");
/** Bumped whenever the conversion below changes (part of the cache key). */
const CONVERTER = "2";

export interface WastValue {
  type: string;
  value?: string | string[];
  lane_type?: string;
}
export interface WastAction {
  type: "invoke" | "get";
  module?: string;
  field: string;
  args?: WastValue[];
}
export interface WastCommand {
  type: string;
  line: number;
  name?: string;
  as?: string;
  filename?: string;
  text?: string;
  module_type?: "binary" | "text";
  action?: WastAction;
  expected?: WastValue[];
}

/** A top-level command wast2json could not parse and that was blanked out. */
export interface Dropped {
  line: number;
  /** "module", "assert_return", ... */
  kind: string;
  /** The module's $name, for modules. */
  name: string | null;
  text: string;
}

export interface Converted {
  file: string;
  dir: string;
  commands: WastCommand[];
  dropped: Dropped[];
  wasm(filename: string): Uint8Array;
}

let wabtVersion: string | null = null;
/**
 * wast2json's version; throws with a clear message when it is not installed. `env` (tests) looks it up on another
 * PATH, uncached.
 */
export function wast2jsonVersion(env?: Record<string, string | undefined>): string {
  if (wabtVersion !== null && !env) return wabtVersion;
  let v: string;
  try {
    v = execFileSync("wast2json", ["--version"], { encoding: "utf8", ...(env ? { env } : {}) }).trim();
  } catch {
    throw new Error("wast2json (Debian package `wabt`) is not installed: run scripts/setup or `apt-get install -y wabt`; the spec-suite conformance test needs it");
  }
  if (!env) wabtVersion = v;
  return v;
}

/** Top-level s-expressions of a .wast script with their byte ranges (comments and strings skipped). */
export function topLevel(src: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === ";" && src[i + 1] === ";") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "(" && src[i + 1] === ";") {
      let d = 1;
      i += 2;
      while (i < src.length && d > 0) {
        if (src[i] === "(" && src[i + 1] === ";") { d++; i += 2; } else if (src[i] === ";" && src[i + 1] === ")") { d--; i += 2; } else i++;
      }
      i--;
    } else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') i += src[i] === "\\" ? 2 : 1;
    } else if (c === "(") {
      if (depth === 0) start = i;
      depth++;
    } else if (c === ")") {
      depth--;
      if (depth === 0) out.push({ start, end: i + 1 });
    }
  }
  return out;
}

const lineAt = (src: string, pos: number): number => src.slice(0, pos).split("\n").length;

/** Converts one .wast file (cached). */
export function convertWast(file: string): Converted {
  const version = wast2jsonVersion();
  const src = readFileSync(file, "utf8");
  const key = createHash("sha256").update(`${CONVERTER}\0${version}\0`).update(src).digest("hex").slice(0, 16);
  const name = basename(file, ".wast");
  const dir = join(CACHE, `${name}-${key}`);
  const json = join(dir, `${name}.json`);
  const droppedFile = join(dir, "dropped.json");
  if (!existsSync(json) || !existsSync(droppedFile)) {
    const tmp = `${dir}.tmp${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    let text = src;
    const dropped: Dropped[] = [];
    const forms = topLevel(src);
    for (let attempt = 0; ; attempt++) {
      writeFileSync(join(tmp, `${name}.wast`), text);
      try {
        execFileSync("wast2json", ["--enable-tail-call", `${name}.wast`, "-o", `${name}.json`], { cwd: tmp, stdio: ["ignore", "ignore", "pipe"] });
        break;
      } catch (e) {
        const err = String((e as { stderr?: Buffer }).stderr ?? e);
        const m = /\.wast:(\d+):\d+: error/.exec(err);
        if (!m || attempt > 200) throw new Error(`wast2json failed on ${file}:\n${err.slice(0, 2000)}`);
        const line = Number(m[1]);
        const form = forms.find((f) => lineAt(src, f.start) <= line && lineAt(src, f.end) >= line);
        if (!form) throw new Error(`wast2json failed on ${file} outside any command:\n${err.slice(0, 2000)}`);
        const body = src.slice(form.start, form.end);
        const kind = /^\(\s*([a-z_]+)/.exec(body)?.[1] ?? "?";
        const modName = kind === "module" ? (/^\(\s*module\s+(\$[^\s()]+)/.exec(body)?.[1] ?? null) : null;
        dropped.push({ line: lineAt(src, form.start), kind, name: modName, text: body });
        // Blank the command, keeping its newlines so every later line number stays the same.
        text = text.slice(0, form.start) + body.replace(/[^\n]/g, " ") + text.slice(form.end);
      }
    }
    writeFileSync(join(tmp, "dropped.json"), JSON.stringify(dropped));
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(tmp, dir);
    } catch {
      // Another worker converted the same file at the same time: use its copy.
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const parsed = JSON.parse(readFileSync(json, "utf8")) as { commands: WastCommand[] };
  return {
    file, dir, commands: parsed.commands, dropped: JSON.parse(readFileSync(droppedFile, "utf8")) as Dropped[],
    wasm: (f) => new Uint8Array(readFileSync(join(dir, f))),
  };
}

/** The spec suite's `spectest` host module as wasm (typed exports, so V8 checks import signatures as the suite expects). */
const SPECTEST_WAT = `(module
  (global (export "global_i32") i32 (i32.const 666))
  (global (export "global_i64") i64 (i64.const 666))
  (global (export "global_f32") f32 (f32.const 666.6))
  (global (export "global_f64") f64 (f64.const 666.6))
  (table (export "table") 10 20 funcref)
  (memory (export "memory") 1 2)
  (func (export "print"))
  (func (export "print_i32") (param i32))
  (func (export "print_i64") (param i64))
  (func (export "print_f32") (param f32))
  (func (export "print_f64") (param f64))
  (func (export "print_i32_f32") (param i32 f32))
  (func (export "print_f64_f64") (param f64 f64)))
`;
let spectest: Uint8Array | null = null;
export function spectestWasm(): Uint8Array {
  if (spectest) return spectest;
  wast2jsonVersion();
  const dir = join(CACHE, `spectest.tmp${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "spectest.wat"), SPECTEST_WAT);
  execFileSync("wat2wasm", ["spectest.wat", "-o", "spectest.wasm"], { cwd: dir });
  spectest = new Uint8Array(readFileSync(join(dir, "spectest.wasm")));
  rmSync(dir, { recursive: true, force: true });
  return spectest;
}
