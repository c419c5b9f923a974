// Where Debian's kernel and busybox are on this machine (toolchain/linux/, the build side of a Linux partition):
// scripts/setup downloads `linux-image-amd64`'s kernel package and `busybox-static` with apt-get and unpacks them
// into a user cache, then writes a manifest naming the files (docs/specs/linux-partition.md §2). This module reads
// that manifest and nothing else; when it or a file it names is missing, the error says to run scripts/setup.
import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface LinuxCache {
  /** The real kernel package linux-image-amd64 resolved to at setup time, e.g. "linux-image-6.1.0-57-amd64". */
  kernelPackage: string;
  /** The unpacked bzImage (boot/vmlinuz-*). */
  kernel: string;
  /** The unpacked static busybox (bin/busybox). */
  busybox: string;
}

/** A cache that is missing or incomplete: the message says what to run. */
export class LinuxCacheError extends Error {
  override name = "LinuxCacheError";
}

/** The cache folder scripts/setup fills: $UV_LINUX_CACHE, else $XDG_CACHE_HOME/ultravisor/linux, else ~/.cache/…. */
export function linuxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env["UV_LINUX_CACHE"]) return env["UV_LINUX_CACHE"];
  return join(env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "ultravisor", "linux");
}

/** Reads the manifest; throws LinuxCacheError naming what is missing and that scripts/setup fetches it. */
export function findLinuxCache(dir = linuxCacheDir()): LinuxCache {
  const manifest = join(dir, "manifest");
  if (!existsSync(manifest)) {
    throw new LinuxCacheError(`Debian's kernel and busybox are not cached (no ${manifest}): run scripts/setup, which downloads linux-image-amd64 and busybox-static with apt-get`);
  }
  const fields = new Map<string, string>();
  for (const line of readFileSync(manifest, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const need = (key: string): string => {
    const v = fields.get(key);
    if (!v) throw new LinuxCacheError(`${manifest} has no '${key}=' line: run scripts/setup again to rewrite it`);
    return v;
  };
  const cache = { kernelPackage: need("package"), kernel: need("kernel"), busybox: need("busybox") };
  for (const [what, path] of [["kernel", cache.kernel], ["busybox", cache.busybox]] as const) {
    let ok = false;
    try {
      ok = statSync(path).isFile();
    } catch {
      ok = false;
    }
    if (!ok) throw new LinuxCacheError(`the cached ${what} ${path} named by ${manifest} is missing: run scripts/setup to fetch it again`);
  }
  return cache;
}
