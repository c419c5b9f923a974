// The disk tests' external oracles: dosfstools' fsck.fat on the partition slice, mtools on the image at the partition
// offset, and gdisk's sgdisk on the whole disk. Each runs the real tool and returns its output in a form the tests
// compare with what esp.ts was asked to write. Test support only.
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** mtools refuses images whose BPB geometry differs from its drive table without this; UTF-8 for long names. */
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };

export interface FsckResult {
  status: number;
  output: string;
  /** Lines other than the version banner and the final summary: any complaint at all. */
  complaints: string[];
  files: number;
  usedClusters: number;
  totalClusters: number;
  /** "16 bit entries" / "32 bit entries" from -v: the FAT type as fsck.fat determined it. */
  fatBits: number;
}

/** Copies the partition out of `image` with dd (sparse) and runs `fsck.fat -n -v` on it. */
export function fsckPartition(image: string, offsetBytes: number, sectors: number, scratch: string): FsckResult {
  execFileSync("dd", [`if=${image}`, `of=${scratch}`, "bs=512", `skip=${offsetBytes / 512}`, `count=${sectors}`, "conv=sparse", "status=none"]);
  const r = spawnSync("fsck.fat", ["-n", "-v", scratch], { encoding: "utf8" });
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split("\n").filter((l) => l.trim() !== "");
  const summary = /: (\d+) files, (\d+)\/(\d+) clusters$/;
  // -v prints the boot sector description between "Checking we can access…" and the summary; those are expected.
  const expected = [
    /^fsck\.fat \d/,
    /^Checking /,
    /^Boot sector contents:/,
    /^System ID /,
    /^Media byte /,
    /^\s+\d+ (bytes per logical sector|bytes per cluster|reserved sectors?|hidden sectors|sectors total|root directory entries)$/,
    /^First FAT starts at /,
    /^\s+2 FATs, (16|32) bit entries$/,
    /^\s+\d+ bytes per FAT/,
    /^Root directory (starts at byte|start at cluster)/,
    /^Data area starts at /,
    /^\s+\d+ data clusters/,
    /^\d+ sectors\/track, \d+ heads$/,
    /^Volume label is /,
    summary,
  ];
  const complaints = lines.filter((l) => !expected.some((re) => re.test(l)));
  const m = lines.map((l) => summary.exec(l)).find((x) => x);
  const bits = /2 FATs, (16|32) bit entries/.exec(output);
  return {
    status: r.status ?? -1,
    output,
    complaints,
    files: m ? Number(m[1]) : -1,
    usedClusters: m ? Number(m[2]) : -1,
    totalClusters: m ? Number(m[3]) : -1,
    fatBits: bits ? Number(bits[1]) : 0,
  };
}

export function mtools(tool: string, args: string[]): string {
  return execFileSync(tool, args, { env: MTOOLS_ENV, encoding: "utf8" });
}

/** `mtype` of one file, as raw bytes. */
export function mtype(image: string, offset: number, path: string): Buffer {
  return execFileSync("mtype", ["-i", `${image}@@${offset}`, `::${path}`], { env: MTOOLS_ENV, maxBuffer: 1 << 28 });
}

/** `mcopy -s` of the whole volume into `dest`; returns every file (by "/"-path) and every directory found. */
export function mcopyAll(image: string, offset: number, dest: string): { files: Map<string, Buffer>; dirs: Set<string> } {
  execFileSync("mcopy", ["-s", "-n", "-i", `${image}@@${offset}`, "::/", dest], { env: MTOOLS_ENV });
  const files = new Map<string, Buffer>();
  const dirs = new Set<string>();
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      const p = `${prefix}/${name}`;
      if (statSync(full).isDirectory()) {
        dirs.add(p);
        walk(full, p);
      } else files.set(p, readFileSync(full));
    }
  };
  walk(dest, "");
  return { files, dirs };
}

/** One `mdir` listing line per entry: short name, extension and long name (if any). */
export function mdirEntries(image: string, offset: number, path: string): { short: string; long: string | null }[] {
  const out = mtools("mdir", ["-i", `${image}@@${offset}`, `::${path}`]);
  const entries: { short: string; long: string | null }[] = [];
  for (const line of out.split("\n")) {
    // "NAME     EXT   <DIR>|size date time  longname"
    const m = /^(\S.{7}) (.{3})\s+(?:<DIR>|\d+)\s+\d{4}-\d\d-\d\d\s+\d+:\d\d\s?(.*)$/.exec(line);
    if (!m) continue;
    const base = m[1]!.trimEnd();
    const ext = m[2]!.trimEnd();
    entries.push({ short: ext ? `${base}.${ext}` : base, long: m[3]!.trim() || null });
  }
  return entries;
}

export function sgdisk(args: string[]): { status: number; output: string } {
  const r = spawnSync("sgdisk", args, { encoding: "utf8" });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
