// The per-boot temp folder of a QEMU run (tmp/uv-qemu-*: OVMF variables copy, serial log, QMP socket) and its
// owner record, so that a run that was killed outright (SIGKILL: no handler runs, nothing is cleaned) leaves nothing
// for long: every new run sweeps the folders whose owning process is gone. QEMU itself dies with its parent through
// the parent-death signal (qemu/machine.ts), so a folder without a live owner has no live QEMU either.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const WORKDIR_PREFIX = "uv-qemu-";
const OWNER_FILE = "owner.pid";
/** A folder with no owner record (a run killed between mkdtemp and the record) is swept once it is this old. */
const ORPHAN_AGE_MS = 10 * 60_000;

/** Is process `pid` alive? (signal 0 checks existence; EPERM means alive but not ours.) */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the folders of runs whose owning process is gone; returns the paths removed. */
export function sweepStaleWorkDirs(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(WORKDIR_PREFIX));
  } catch {
    return removed;
  }
  for (const n of names) {
    const p = join(dir, n);
    try {
      let stale: boolean;
      try {
        const owner = Number(readFileSync(join(p, OWNER_FILE), "utf8").trim());
        stale = !Number.isSafeInteger(owner) || owner <= 0 || !alive(owner);
      } catch {
        stale = Date.now() - statSync(p).mtimeMs > ORPHAN_AGE_MS;
      }
      if (stale) {
        rmSync(p, { recursive: true, force: true });
        removed.push(p);
      }
    } catch {
      // Another run may be sweeping the same folder: whoever gets there first removes it.
    }
  }
  return removed;
}

/** A new folder for one boot, owned by this process. */
export function makeWorkDir(dir = tmpdir()): string {
  const p = mkdtempSync(join(dir, WORKDIR_PREFIX));
  writeFileSync(join(p, OWNER_FILE), `${process.pid}\n`);
  return p;
}
