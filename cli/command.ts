// The shape every `uvt` subcommand has; cli/main.ts discovers them in cli/commands/.
export interface Command {
  /** The word after `uvt`. */
  name: string;
  /** One line for `uvt --help`. */
  summary: string;
  /** Full text for `uvt NAME --help`: usage line, options, examples. */
  help: string;
  /** The command has subcommands with their own --help: `uvt NAME SUB --help` reaches run (`uvt NAME --help` does not). */
  subcommands?: boolean;
  /** Runs the command; the resolved number is the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** An error the user caused (bad flag, missing file): printed as one line, without a stack. */
export class UsageError extends Error {
  override name = "UsageError";
}
