// Guest memory sizes for the QEMU harness: parses what users type after --mem ("256M", "1G", "512") into MiB and
// rejects sizes no boot can use, before QEMU is started.
import { totalmem } from "node:os";
import { HarnessError } from "./errors.ts";

/**
 * Smallest guest OVMF boots reliably in: its PEI phase wants tens of MiB for the permanent memory, the HOB list and
 * the DXE core, and the 4M build's variable store and page tables come on top.
 */
export const MIN_MEM_MIB = 64;

const UNITS: Record<string, number> = { "": 1, M: 1, MB: 1, MIB: 1, G: 1024, GB: 1024, GIB: 1024, T: 1024 * 1024, TB: 1024 * 1024, TIB: 1024 * 1024 };

/**
 * Parses a memory size into MiB. A bare number means MiB, as in QEMU's own `-m`. `hostMiB` bounds the size from
 * above: a guest bigger than the host's RAM cannot be backed and is a typo more often than a wish.
 */
export function parseMemSize(text: string, hostMiB = Math.floor(totalmem() / (1024 * 1024))): number {
  const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new HarnessError(`memory size '${text}' not understood: pass a number of MiB or a size such as 256M or 1G`);
  }
  const mib = Number(m[1]) * unit;
  if (!Number.isSafeInteger(mib) || mib < MIN_MEM_MIB) {
    throw new HarnessError(`memory size ${text} is too small: OVMF needs at least ${MIN_MEM_MIB}M`);
  }
  if (mib > hostMiB) {
    throw new HarnessError(`memory size ${text} is more than this host's ${hostMiB} MiB of RAM: pass a smaller --mem`);
  }
  return mib;
}
