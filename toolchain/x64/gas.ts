// The GNU as oracle for tests and benchmarks: assembles a whole batch of Intel-syntax lines with ONE `as --64` run and
// returns the .text bytes plus the offset of every `cNNN:` marker label (read back with nm), so each generated
// instruction can be compared byte for byte with our encoder. Lines that as rejects are reported by line number.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GasResult {
  bytes: Uint8Array;
  /** Offsets of the labels named in the source, by name. */
  labels: Map<string, number>;
}

export interface GasErrors {
  /** 1-based source line numbers as reported an error on (the prologue lines included). */
  lines: Set<number>;
  stderr: string;
}

export const GAS_PROLOGUE = ".intel_syntax noprefix\n.text\n";

function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "uvt-gas-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Assembles `source` (a full file, prologue included). Throws with as's messages if it fails. */
export function gasAssemble(source: string): GasResult {
  return withTemp((dir) => {
    const src = join(dir, "in.s"), obj = join(dir, "out.o"), bin = join(dir, "out.bin");
    writeFileSync(src, source);
    const r = spawnSync("as", ["--64", "-o", obj, src], { encoding: "utf8", maxBuffer: 1 << 28 });
    if (r.error) throw new Error(`cannot run GNU as (install binutils): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`GNU as failed:\n${r.stderr.split("\n").slice(0, 20).join("\n")}`);
    execFileSync("objcopy", ["-O", "binary", "--only-section=.text", obj, bin]);
    const nm = execFileSync("nm", ["--defined-only", obj], { encoding: "utf8", maxBuffer: 1 << 28 });
    const labels = new Map<string, number>();
    for (const line of nm.split("\n")) {
      const m = /^([0-9a-f]+) [tT] (\S+)$/.exec(line);
      if (m) labels.set(m[2]!, parseInt(m[1]!, 16));
    }
    return { bytes: new Uint8Array(readFileSync(bin)), labels };
  });
}

/** Runs as over `source` expecting errors; returns the line numbers it complained about. */
export function gasErrors(source: string): GasErrors {
  return withTemp((dir) => {
    const src = join(dir, "in.s");
    writeFileSync(src, source);
    const r = spawnSync("as", ["--64", "-o", join(dir, "out.o"), src], { encoding: "utf8", maxBuffer: 1 << 28 });
    if (r.error) throw new Error(`cannot run GNU as (install binutils): ${r.error.message}`);
    const lines = new Set<number>();
    for (const m of r.stderr.matchAll(/in\.s:(\d+): Error/g)) lines.add(Number(m[1]));
    return { lines, stderr: r.stderr };
  });
}

export const hex = (b: ArrayLike<number>): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
