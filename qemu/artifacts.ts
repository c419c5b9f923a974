// Keeps the evidence of a failed boot: serial log, QEMU's stderr and command line (and why it failed) in one folder
// under ./artifacts/<timestamp>-<name>/, so a red test or a failed `uvt run` can be read afterwards.
import { copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface BootEvidence {
  /** Short name of the boot (test name, "run", "kvm-probe"); becomes part of the folder name. */
  name: string;
  reason: string;
  commandLine: string;
  stderr: string;
  /** The serial log file QEMU wrote; copied when it exists. */
  serialLog?: string;
  /** Extra files to copy in, by the name they get in the folder. */
  extraFiles?: Record<string, string>;
}

/** Folder name safe on any filesystem: timestamp first so `ls` sorts by time. */
export function artifactsFolderName(name: string, when = new Date()): string {
  const stamp = when.toISOString().replace(/[:.]/g, "-");
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "boot";
  return `${stamp}-${safe}`;
}

/**
 * Writes the evidence into a temp folder first and renames it into place, so a folder that exists is complete.
 * Returns the absolute path.
 */
export function keepArtifacts(root: string, ev: BootEvidence): string {
  mkdirSync(root, { recursive: true });
  let final = resolve(root, artifactsFolderName(ev.name));
  for (let n = 2; existsSync(final); n++) final = resolve(root, `${artifactsFolderName(ev.name)}-${n}`);
  const tmp = `${final}.partial`;
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, "reason.txt"), ev.reason + "\n");
  writeFileSync(join(tmp, "qemu-cmdline.txt"), ev.commandLine + "\n");
  writeFileSync(join(tmp, "qemu-stderr.txt"), ev.stderr);
  if (ev.serialLog && existsSync(ev.serialLog)) copyFileSync(ev.serialLog, join(tmp, "serial.log"));
  else writeFileSync(join(tmp, "serial.log"), "");
  for (const [as, from] of Object.entries(ev.extraFiles ?? {})) {
    if (existsSync(from)) copyFileSync(from, join(tmp, as));
  }
  renameSync(tmp, final);
  return final;
}
