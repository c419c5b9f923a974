// `uvt sim SCENARIO`: runs a scenario file (YAML or JSON) on a simulated host with the resource database in
// core.wasm, printing each operation's transaction log in the spec's notation and the resulting map per scale.
import { existsSync } from "node:fs";
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";

const help = `Usage: uvt sim SCENARIO [--no-map] [--quiet]

Runs SCENARIO (YAML or JSON) on a simulated host: the resource database is core.wasm, the command partition's
resource service turns each operation into transactions, and the audit log is printed in the patent's notation
([0222]-[0224]). Exit code 0 when every expectation holds, 1 otherwise, 2 for a bad scenario file.

Options:
  --no-map   do not print the resulting memory map
  --quiet    print only failures

Scenario format:
  name: text                                  (optional)
  host:
    memory: 64 GB                             installed memory
    order: 3                                  (optional) map order 2..5; default: smallest that covers memory
    bootMemory: 4 MB                          (optional) memory at address 0 owned by Boot
    reserve: ["[0,1,2]", "[0,1,17]"]          (optional) pages of the database's 4 MB reserved for the ultravisor
    split: [{ map: "[0,1,0]", index: 15, into: "[0,1,16]" }]   (optional) entries divided at boot
    firmware: [{ base: 0, length: 64 GB, type: usable }]      (optional) firmware memory map
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
  expect:                                     (optional)
    owners: [{ address: 8 GB, is: X }]
    mapPages: 4

Example: uvt sim examples/figure8.yaml`;

const command: Command = {
  name: "sim",
  summary: "run a resource-database scenario on a simulated host and print its transaction log",
  help,
  async run(argv) {
    const a = parseArgs(argv, { booleans: ["no-map", "quiet"] });
    if (a.positionals.length !== 1) throw new UsageError("expected exactly one SCENARIO file (see uvt sim --help)");
    const file = a.positionals[0]!;
    if (!existsSync(file)) throw new UsageError(`scenario file ${file} does not exist`);
    const { loadScenario, ScenarioError } = await import("../../sim/scenario.ts");
    const { runScenario } = await import("../../sim/run-scenario.ts");
    let scenario;
    try {
      scenario = loadScenario(file);
    } catch (e) {
      if (e instanceof ScenarioError) {
        console.error(`uvt sim: ${e.message}`);
        return 2;
      }
      throw e;
    }
    const quiet = a.bools.has("quiet");
    const result = await runScenario(scenario, (l) => (quiet ? undefined : console.log(l)), { map: !a.bools.has("no-map") });
    for (const f of result.failures) console.error(`FAIL ${f}`);
    if (!quiet) console.log(result.failures.length ? `\n${result.failures.length} expectation(s) failed` : "\nall expectations hold");
    return result.failures.length ? 1 : 0;
  },
};

export default command;
