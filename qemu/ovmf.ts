// OVMF discovery for the QEMU harness: finds the firmware code and variable-store templates that Debian's `ovmf`
// package installs, so the Machine can map them as two pflash drives (code read-only, a fresh VARS copy per run).
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { HarnessError } from "./errors.ts";

export interface OvmfFiles {
  /** Firmware code volume, mapped read-only as pflash unit 0 (it ends at the 4 GiB reset vector). */
  code: string;
  /** Template of the variable store; the Machine copies it per run so no boot sees another's NVRAM. */
  vars: string;
}

/** Directories Debian (12 and older) and Ubuntu put OVMF in, most specific first. */
export const DEFAULT_OVMF_DIRS = ["/usr/share/OVMF", "/usr/share/ovmf", "/usr/share/qemu"];

/**
 * Code/vars pairs, preferred first. The 4M builds come first because Debian 12 ships them as the default; the 2M
 * names are the older layout. Secure-boot variants are left out: they refuse our unsigned images.
 * A code and a vars file must come from the same build (their flash sizes differ), so they are listed as pairs.
 */
export const OVMF_PAIRS: ReadonlyArray<readonly [code: string, vars: string]> = [
  ["OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"],
  ["OVMF_CODE.fd", "OVMF_VARS.fd"],
];

export interface OvmfOptions {
  /** Explicit firmware code file; with it, `vars` must also be given (or is looked up beside it). */
  code?: string;
  vars?: string;
  /** Directories searched when no explicit files are given. */
  dirs?: string[];
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Finds the OVMF code + vars pair, or throws a one-line HarnessError saying what to install or pass. */
export function discoverOvmf(opts: OvmfOptions = {}): OvmfFiles {
  if (opts.code !== undefined || opts.vars !== undefined) {
    if (opts.code === undefined || opts.vars === undefined) {
      throw new HarnessError("pass both the OVMF code and vars files (e.g. OVMF_CODE_4M.fd and OVMF_VARS_4M.fd), not only one");
    }
    for (const p of [opts.code, opts.vars]) {
      if (!isFile(p)) throw new HarnessError(`OVMF file not found: ${p}`);
    }
    return { code: opts.code, vars: opts.vars };
  }
  const dirs = opts.dirs ?? DEFAULT_OVMF_DIRS;
  for (const [code, vars] of OVMF_PAIRS) {
    for (const d of dirs) {
      const c = join(d, code);
      const v = join(d, vars);
      if (isFile(c) && isFile(v)) return { code: c, vars: v };
    }
  }
  const looked = dirs.filter((d) => existsSync(d));
  throw new HarnessError(
    `OVMF firmware not found (looked for ${OVMF_PAIRS.map((p) => p[0]).join(" / ")} in ${dirs.join(", ")}` +
      `${looked.length ? "" : "; none of these directories exists"}): install it with 'apt-get install ovmf'`,
  );
}
