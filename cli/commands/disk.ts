// `uvt disk create FILE --size SIZE` and `uvt disk check IMAGE --log LOG`: blank data disks for `uvt run --disk`, and
// the check from outside of the storage workload's blocks (image/data-disk.ts, image/disk-workload.ts;
// docs/specs/storage-channel.md §6).
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";

const help = `Usage: uvt disk create FILE --size SIZE [--force]
       uvt disk check IMAGE --log LOG [--json]

create  writes a blank raw disk image of SIZE (binary units: 512K, 64M, 1G; a bare number is bytes; a whole number
        of 512-byte sectors, at most 1T) for 'uvt run --disk FILE'. The file is sparse and appears whole or not at
        all (written beside FILE, then renamed); an existing FILE is refused unless --force.
check   reads IMAGE block by block and the serial LOG of the run (uvt run's output, or the artifacts' serial.log)
        and checks the storage workload (docs/specs/storage-channel.md §6): every block a guest was told was written
        ("NAME: disk: acked block N gen G") holds "block N NAME gen G" (or the next pass, cut off by the run's end),
        and every record sits at the block it names. A log with no acknowledgement fails, and so does a record of a
        partition the log never acknowledged: check a fresh disk per run (uvt disk create --force).

Options:
  --size SIZE   create: the disk's size
  --force       create: replace an existing FILE
  --log LOG     check: the serial log with the acknowledgements
  --json        check: print the result as one JSON object
  -h, --help    this text

Exit status: 0 created, or the check found nothing wrong; 1 the check found problems (each printed) or the system
failed (no space, an I/O error); 2 bad input.

Examples:
  uvt disk create out/data.img --size 64M
  uvt run --disk out/data.img | tee out/run.log; uvt disk check out/data.img --log out/run.log`;

const UNITS: Record<string, bigint> = { "": 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n };

export function parseDiskSize(text: string): bigint {
  const m = /^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`--size takes a size such as 64M or 1G, not '${text}'`);
  return BigInt(m[1]!) * UNITS[m[2]!.toUpperCase()]!;
}

const command: Command = {
  name: "disk",
  summary: "create a blank data disk for uvt run --disk, or check the storage workload's blocks on one",
  help,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === "create") {
      const a = parseArgs(rest, { values: ["size"], booleans: ["force"] });
      if (a.positionals.length !== 1) throw new UsageError("expected exactly one FILE to create (see uvt disk --help)");
      const sizeText = a.flags.get("size");
      if (sizeText === undefined) throw new UsageError("uvt disk create needs --size, e.g. --size 64M");
      const { createDataDisk, DataDiskError } = await import("../../image/data-disk.ts");
      const file = a.positionals[0]!;
      const bytes = parseDiskSize(sizeText);
      try {
        createDataDisk(file, bytes, { force: a.bools.has("force") });
      } catch (e) {
        if (e instanceof DataDiskError && e.system) {
          console.error(`uvt disk: ${e.message}`);
          return 1;
        }
        if (e instanceof DataDiskError) throw new UsageError(e.message);
        throw e;
      }
      console.log(`uvt disk: created ${file}, ${bytes} bytes (${bytes / 512n} sectors)`);
      return 0;
    }
    if (sub === "check") {
      const a = parseArgs(rest, { values: ["log"], booleans: ["json"] });
      if (a.positionals.length !== 1) throw new UsageError("expected exactly one IMAGE to check (see uvt disk --help)");
      const logFile = a.flags.get("log");
      if (logFile === undefined) throw new UsageError("uvt disk check needs --log LOG, the run's serial output");
      const { existsSync, readFileSync, statSync } = await import("node:fs");
      const image = a.positionals[0]!;
      for (const [what, f] of [["image", image], ["log", logFile]] as const) {
        if (!existsSync(f) || !statSync(f).isFile()) throw new UsageError(`${what} ${f} is not a file`);
      }
      const { checkDiskImage } = await import("../../image/disk-workload.ts");
      const r = checkDiskImage(image, readFileSync(logFile, "utf8"));
      if (a.bools.has("json")) console.log(JSON.stringify(r));
      else {
        for (const p of r.problems) console.log(`uvt disk: ${image}: ${p}`);
        console.log(`uvt disk: ${image}: ${r.blocks} blocks, ${r.records} records, ${r.acknowledged} acknowledged, ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}`);
      }
      return r.problems.length ? 1 : 0;
    }
    throw new UsageError(sub === undefined ? "uvt disk needs a subcommand: create or check (see uvt disk --help)" : `unknown subcommand '${sub}': create or check (see uvt disk --help)`);
  },
};

export default command;
