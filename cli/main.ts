// `uvt` dispatcher: finds subcommands in cli/commands/, prints help, turns user errors into one-line messages.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Command, UsageError } from "./command.ts";
import { DefinitionError } from "../definition/errors.ts";

const here = dirname(fileURLToPath(import.meta.url));

// Each subcommand lives in its own file (cli/commands/NAME.ts) so that adding one never touches a shared list.
const commandDir = join(here, "commands");

function commandFiles(): string[] {
  return readdirSync(commandDir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts")).sort();
}

async function loadCommand(file: string): Promise<Command | undefined> {
  const mod = (await import(pathToFileURL(join(commandDir, file)).href)) as { default?: Command };
  return mod.default;
}

// Only `uvt --help` loads every command; a run loads just its own file, which keeps start-up short.
async function loadCommands(): Promise<Command[]> {
  const out: Command[] = [];
  for (const f of commandFiles()) {
    const c = await loadCommand(f);
    if (c) out.push(c);
  }
  return out;
}

function usage(commands: Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  return [
    "uvt: the ultravisor toolchain, simulator and QEMU runner",
    "",
    "Usage: uvt COMMAND [options]   (uvt help COMMAND or uvt COMMAND --help for details; uvt --version)",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

/** The project's version, from package.json (the one place it is written). */
function version(): string {
  const pkg = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8")) as { name: string; version: string };
  return `${pkg.name === "ultravisor" ? "uvt (ultravisor)" : pkg.name} ${pkg.version}`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V") {
    console.log(version());
    return 0;
  }
  // `uvt help CMD` is `uvt CMD --help`.
  if (name === "help" && rest.length === 1) return main([rest[0]!, "--help"]);
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    if (name === undefined) {
      console.error(usage(await loadCommands()));
      return 2;
    }
    console.log(usage(await loadCommands()));
    return 0;
  }
  const file = commandFiles().find((f) => f === `${name}.ts`);
  const cmd = file ? await loadCommand(file) : undefined;
  if (!cmd || cmd.name !== name) {
    console.error(`uvt: unknown command '${name}'. Run 'uvt --help' to list the commands.`);
    return 2;
  }
  const subHelp = cmd.subcommands && rest.length > 1 && !rest[0]!.startsWith("-");
  if (!subHelp && (rest.includes("--help") || rest.includes("-h"))) {
    console.log(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`uvt ${name}: ${e.message}`);
      return 2;
    }
    // A refused input file: FILE:LINE:COL: path: what is wrong (what is allowed), one line per problem.
    if (e instanceof DefinitionError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
}
