// `uvt dc run FILE`: runs a data-center scenario (docs/specs/datacenter.md) — many simulated hosts, host failures
// noticed by leases, live migrations — and prints its event log as text, JSON or CSV; --svg DIR adds the charts.
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";

const help = `Usage: uvt dc run FILE [--format text|json|csv] [--svg DIR] [--etcd]

Runs the data-center scenario FILE (YAML or JSON, \`datacenter: 1\`; docs/specs/datacenter.md): boots every host as
a simulated host with its own resource database, places the partitions through each host's command partition, and
plays the timed events — host failures (noticed when the host's lease expires, then its partitions are re-hosted)
and live migrations (pre-copy with QEMU's downtime target and Xen's stop rules). The same file and seed always give
the same event log.

Options:
  --format F    text (default: one line per event), json (versioned, "uv-dc/1": events, memory samples, summary)
                or csv (one row per event)
  --svg DIR     also write memory.svg (memory in use per host over time) and downtime.svg (migration downtime
                distribution) into DIR
  --etcd        host liveness on real etcd leases instead of simulated heartbeats (docs/specs/datacenter.md §3):
                starts a three-member etcd cluster on loopback (Debian's etcd-server), gives each host a lease,
                and runs the scenario's time on the wall clock (\`until\` ms of waiting); a failed host is noticed
                when its lease expires. Event times then vary from run to run; the cluster is removed at the end.
  -h, --help    this text

Exit status: 0 when the run completes (lost partitions are events of the run, counted in the summary on stderr),
2 for a refused file or bad options.

Example:
  uvt dc run examples/dc/small.yaml --svg out/dc`;

const command: Command = {
  name: "dc",
  summary: "run a virtual data center: many simulated hosts, host failure, live migration",
  help,
  subcommands: true,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== "run") throw new UsageError(`${sub === undefined ? "no subcommand" : `unknown subcommand '${sub}'`}: expected 'uvt dc run FILE' (see uvt dc --help)`);
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(help);
      return 0;
    }
    const a = parseArgs(rest, { values: ["format", "svg"], booleans: ["etcd"] });
    if (a.positionals.length !== 1) throw new UsageError("expected exactly one FILE, a data-center scenario (see uvt dc --help)");
    const file = a.positionals[0]!;
    const format = a.flags.get("format") ?? "text";
    if (format !== "text" && format !== "json" && format !== "csv") throw new UsageError(`--format must be text, json or csv, not '${format}'`);
    const svgDir = a.flags.get("svg");
    if (svgDir === "") throw new UsageError("--svg needs a directory name");
    const { readFileSync, mkdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { parseScenario, ScenarioError } = await import("../../datacenter/scenario.ts");
    const { DataCenter, formatEvent } = await import("../../datacenter/datacenter.ts");
    const { dcOutput, dcCsv, memoryChart, downtimeChart } = await import("../../datacenter/output.ts");
    const { writeFileAtomic } = await import("../../image/write-atomic.ts");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (give a scenario file such as examples/dc/small.yaml)`);
    }
    let scenario;
    try {
      scenario = parseScenario(text, file);
    } catch (e) {
      if (e instanceof ScenarioError) {
        console.error(e.message);
        return 2;
      }
      throw e;
    }
    let dc;
    if (a.bools.has("etcd")) {
      const { EtcdCluster, EtcdMissing } = await import("../../ops/store/etcd-cluster.ts");
      const { runLive } = await import("../../datacenter/live.ts");
      let cluster;
      try {
        cluster = await EtcdCluster.start();
      } catch (e) {
        if (e instanceof EtcdMissing) {
          console.error(`uvt dc: ${e.message}`);
          return 2;
        }
        throw e;
      }
      const client = cluster.client();
      try {
        console.error(`uvt dc: etcd cluster at ${cluster.endpoints.join(" ")}; running ${scenario.until} ms on the wall clock`);
        dc = await runLive(scenario, client, { prefix: "dc/" });
      } finally {
        client.close();
        await cluster.stop();
      }
    } else dc = (await DataCenter.create(scenario)).run();
    const out = dcOutput(dc);
    if (format === "text") for (const e of dc.events) console.log(formatEvent(e));
    if (format === "json") console.log(JSON.stringify(out, null, 2));
    if (format === "csv") process.stdout.write(dcCsv(out));
    if (svgDir !== undefined) {
      try {
        mkdirSync(svgDir, { recursive: true });
        writeFileAtomic(join(svgDir, "memory.svg"), memoryChart(out));
        writeFileAtomic(join(svgDir, "downtime.svg"), downtimeChart(out));
      } catch (e) {
        throw new UsageError(`cannot write the charts into ${svgDir}: ${(e as Error).message}`);
      }
      console.error(`uvt dc: wrote memory.svg and downtime.svg into ${svgDir}`);
    }
    const s = out.summary;
    console.error(`uvt dc: ${s.placed} placed, ${s.rehosted} re-hosted, ${s.lost} lost or unplaced, ${s.migrations} migration(s) done, ${s.aborted} aborted${s.maxDowntimeMs !== null ? `, longest downtime ${s.maxDowntimeMs} ms` : ""}`);
    return 0;
  },
};

export default command;
