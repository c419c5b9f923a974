// `uvt report FILE`: simulates a host definition and writes one self-contained HTML page (sim/report.ts) with the
// memory map, schedule and channel pictures and the tables, from the same data as `uvt sim --format json`.
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";

const help = `Usage: uvt report FILE [-o OUT.html]

Simulates the host definition FILE (as uvt sim does) and writes one self-contained HTML page: the memory map per
scale (Fig. 8), the schedule per processor (Fig. 6), the channel topology, the summary figures and the tables of the
schedule, channels, audit log and memory map. The page has no script and no external resource.

Options:
  -o, --out OUT   where to write (default: FILE's name with .html, in the current directory)
  -h, --help      this text

Exit status: 0 when the run's expectations hold, 1 when one fails (the page says which), 2 for a refused file.

Example:
  uvt report examples/ultravisor.yaml -o out/report.html`;

const command: Command = {
  name: "report",
  summary: "simulate a host definition and write one HTML page with its pictures and tables",
  help,
  async run(argv) {
    const a = parseArgs(argv, { values: ["out:o"] });
    if (a.positionals.length !== 1) throw new UsageError("expected exactly one FILE, a host definition (see uvt report --help)");
    const file = a.positionals[0]!;
    const { basename, extname } = await import("node:path");
    const out = a.flags.get("out") ?? `${basename(file, extname(file))}.html`;
    if (out === "") throw new UsageError("--out needs a file name");
    const { loadScenario } = await import("../../sim/scenario.ts");
    const { runScenario } = await import("../../sim/run-scenario.ts");
    const { simOutput } = await import("../../sim/output.ts");
    const { reportHtml } = await import("../../sim/report.ts");
    const { writeFileAtomic } = await import("../../image/write-atomic.ts");
    const scenario = loadScenario(file);
    const result = await runScenario(scenario, () => undefined);
    try {
      writeFileAtomic(out, reportHtml(simOutput(scenario, result)));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    console.error(`uvt report: wrote ${out}`);
    for (const f of result.failures) console.error(`FAIL ${f}`);
    return result.failures.length ? 1 : 0;
  },
};

export default command;
