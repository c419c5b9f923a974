// `uvt sim FILE`: runs a host definition (definition/host.ts; YAML or JSON) on a simulated host with the resource
// database in core.wasm, printing each operation's transaction log in the spec's notation and the resulting map per
// scale. A host with processors or partitions is booted with its system partitions, and partitions are defined, run
// and stopped end to end through the command channel (sim/platform.ts).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";

const help = `Usage: uvt sim FILE [--no-map] [-q] [--format text|json|csv] [--table audit|map|schedule|channels] [--svg DIR]

Runs the host definition FILE (YAML or JSON; the format of docs/specs/host-definition.md, checked by
docs/schema/host.schema.json) on a simulated host: the resource database is core.wasm, the command partition's
resource service turns each operation into transactions, and the audit log is printed in the patent's notation
([0222]-[0224]). The same file builds a bootable image with uvt build --config when it lists partitions.
Exit code 0 when every expectation holds, 1 otherwise, 2 for a file that is refused
(FILE:LINE:COL: path.to.key: what is wrong (what is allowed)).

Options:
  --no-map          do not print the resulting memory map
  -q, --quiet       print only failures
  --format F        text (default), json (the whole run as one versioned document: docs/specs/sim-output.md, checked
                    by docs/schema/sim-output.schema.json) or csv (one table, --table)
  --table T         with --format csv: audit (default), map, schedule or channels
  --svg DIR         also write memory-map.svg (per scale, as Fig. 8), schedule.svg (per processor, as Fig. 6) and
                    channels.svg (the channel topology) into DIR

File format (every key is in docs/specs/host-definition.md):
  revision: 2                                 required: the format this build reads
  name: text                                  (optional)
  host:
    memory: 64 GB                             installed memory (default 256 MB)
    pcpus: 4                                  processors: boots the platform (command partition, command channel,
                                              schedule) and enables the platform operations below
    nodes: [{ memory: 32 GB, pcpus: 2 }, ...] NUMA nodes in address order (memory and pcpus add up)
    firmware: [{ base: 0, length: 64 GB, type: usable }]      the firmware memory map (default: all usable)
    order: 3   bootMemory: 4 MB   reserve: ["[0,1,2]", "[0,1,17]"]   split: [{ map: "[0,1,0]", index: 15, into: "[0,1,16]" }]
  partitions:                                 the partitions the host boots with (a bootable host):
    - { name: io, kind: io, duty: 2 }         kinds idle, ultravisor, io, command, guest, operations; duty or vcpus,
    - { name: X, kind: guest, duty: 4, memory: 4 MB, channels: [{ type: console, server: io }],
        behaviour: { lang: as, probeCommand: true } }
                                              the boot partition creates the I/O and command partitions and designates
                                              the command partition, which creates the rest over the command channel
  run: { quantumTicks: 2000000, runQuanta: 800, guestPeriod: 8, exitCode: 33 }   bare-metal pacing
  operations:                                 in order; each may have title: and expectError: ERROR_NAME
    - create: { name: X, user: UserX, size: 4 GB, at: "Map[0,1,0], Index(2)" }   (at: optional placement)
    - destroy: X
    - merge: { map: "[0,1,0]", index: 15 }
    - split: { map: "[0,1,0]", index: 15 }    (into: optional map page)
    - transaction: |                          raw transaction(s) in patent notation
        Begin Transaction
        Change Owner Map[0,1,0], Index(3), from [0,1,20], to [0,1,25]
        Commit Transaction
    - backup: true                            back up the database and empty the audit log
  operations on a host with processors:
    - define: { name: X, kind: guest, memory: 1 GB, node: 0,
                vcpus: [{ duty: 8 }, { dedicated: true }, { duty: 4, cstate: 1 }],
                channels: [{ type: console, server: IOa }, { type: storage, server: IOb }] }
                                              descriptor, memory (contiguous first, fewest splits, node first),
                                              channels (cardinality checked; a control channel to the ultravisor
                                              is added), VCPUs and the schedule, all through the command channel
    - console: { from: X, text: "hello" }     guest text to its console server, printed as "[X] hello"
    - submit: { from: X, transaction: "..." } a transaction sent from X's channel to the ultravisor (refused and
                                              audited unless X is the command partition)
    - stop: X   or   stop: { partition: X, inflight: [IOb] }   [0186]; inflight servers disconnect at ioComplete
    - ioComplete: IOb                         the server's in-flight I/O completes
    - serial: "create G 8M console:IOa"       a line typed on the serial console, read by the command partition:
                                              create NAME MEMORY [TYPE:SERVER]..., stop NAME, destroy NAME,
                                              restart NAME (docs/specs/command-channel.md)
    - fail: IOa                               a fault stops IOa; the watchdog restarts it after a cycle
    - schedule: true                          print the per-CPU quanta table in effect
    - tick: 16                                advance the quantum timer
  expect:                                     (optional)
    owners: [{ address: 8 GB, is: X }]
    mapPages: 4
    output: ["[X] hello", "memory of X reclaimed"]   lines that must be printed, in this order

Error names for expectError: the database's (NOT_COMMAND, CHANNEL_IN_USE, OWNER_MISMATCH, ...), and
CHANNEL_DEFINITION (cardinality, servers), NO_PROCESSOR, PLATFORM, CHANNEL (a closed channel), and a refused
serial line's MALFORMED_LINE, TOO_MUCH_MEMORY, UNKNOWN_CHANNEL_TYPE, NAME, NO_SERVER.

Examples: uvt sim examples/ultravisor.yaml      the Figure 1 host, as uvt build --config boots it
          uvt sim examples/figure8.yaml
          uvt sim examples/partition-lifecycle.yaml`;

const command: Command = {
  name: "sim",
  summary: "simulate a host definition (the resource database in V8) and print its transaction log",
  help,
  async run(argv) {
    const a = parseArgs(argv, { values: ["format", "table", "svg"], booleans: ["no-map", "quiet:q"] });
    if (a.positionals.length !== 1) throw new UsageError("expected exactly one FILE, a host definition (see uvt sim --help)");
    const file = a.positionals[0]!;
    const format = a.flags.get("format") ?? "text";
    if (format !== "text" && format !== "json" && format !== "csv") throw new UsageError(`--format must be text, json or csv, not '${format}'`);
    const { CSV_TABLES, simCsv, simOutput } = await import("../../sim/output.ts");
    const table = a.flags.get("table") ?? "audit";
    if (!(CSV_TABLES as readonly string[]).includes(table)) throw new UsageError(`--table must be one of ${CSV_TABLES.join(", ")}, not '${table}'`);
    if (a.flags.has("table") && format !== "csv") throw new UsageError("--table applies to --format csv");
    const svgDir = a.flags.get("svg");
    if (svgDir === "") throw new UsageError("--svg needs a directory name");
    // `uvt sim X | head`: a reader that goes away is not an error of the simulation.
    process.stdout.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    });
    const { loadScenario } = await import("../../sim/scenario.ts");
    const { runScenario } = await import("../../sim/run-scenario.ts");
    // A refused definition (or a missing file) throws DefinitionError: cli/main.ts prints it and exits 2.
    const scenario = loadScenario(file);
    const text = format === "text" && !a.bools.has("quiet");
    const result = await runScenario(scenario, (l) => (text ? console.log(l) : undefined), { map: !a.bools.has("no-map") });
    const data = format !== "text" || svgDir !== undefined ? simOutput(scenario, result) : undefined;
    if (format === "json") process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    if (format === "csv") process.stdout.write(simCsv(data!, table as (typeof CSV_TABLES)[number]));
    if (svgDir !== undefined) {
      const { pictures } = await import("../../sim/pictures.ts");
      const { writeFileAtomic } = await import("../../image/write-atomic.ts");
      try {
        mkdirSync(svgDir, { recursive: true });
        for (const [name, svg] of Object.entries(pictures(data!))) writeFileAtomic(join(svgDir, name), svg);
      } catch (e) {
        throw new UsageError(`cannot write the pictures into ${svgDir}: ${(e as Error).message}`);
      }
      console.error(`uvt sim: wrote memory-map.svg, schedule.svg and channels.svg into ${svgDir}`);
    }
    for (const f of result.failures) console.error(`FAIL ${f}`);
    if (text) console.log(result.failures.length ? `\n${result.failures.length} expectation(s) failed` : "\nall expectations hold");
    return result.failures.length ? 1 : 0;
  },
};

export default command;
