// The one flag grammar of every `uvt` subcommand, on node:util's parseArgs (strict: an unknown flag is an error):
// `--name value`, `--name=value`, short forms (`-o OUT`), boolean flags, positionals, and `--` ending the flags (what
// follows is passed through, e.g. QEMU arguments of `uvt run`). The same flag means the same thing everywhere:
// `-o/--out` an output, `--image` a disk image path, `--config` a host definition, `-q/--quiet`, `-h/--help`.
import { parseArgs as nodeParseArgs } from "node:util";
import { UsageError } from "./command.ts";

export interface FlagSpec {
  /** Flags that take a value; a one-letter short form after a colon: "out:o". */
  values?: string[];
  /** Flags that are present or absent, same short-form syntax. */
  booleans?: string[];
  /** Flags that take a value and may be given more than once (`--disk A --disk B`); their values in order. */
  repeatable?: string[];
  /** Keep what follows `--` apart (passthrough) instead of refusing it. */
  passthrough?: boolean;
}

export interface Parsed {
  flags: Map<string, string>;
  bools: Set<string>;
  /** The values of each repeatable flag, in the order given (absent: not given). */
  lists: Map<string, string[]>;
  positionals: string[];
  /** What followed `--` (only with FlagSpec.passthrough). */
  rest: string[];
}

function split(spec: string): { name: string; short?: string } {
  const [name, short] = spec.split(":");
  return short ? { name: name!, short } : { name: name! };
}

export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const dash = argv.indexOf("--");
  const mine = spec.passthrough && dash >= 0 ? argv.slice(0, dash) : argv;
  const rest = spec.passthrough && dash >= 0 ? argv.slice(dash + 1) : [];
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const v of spec.values ?? []) {
    const { name, short } = split(v);
    options[name] = { type: "string", ...(short ? { short } : {}) };
  }
  for (const v of spec.repeatable ?? []) {
    const { name, short } = split(v);
    options[name] = { type: "string", multiple: true, ...(short ? { short } : {}) };
  }
  for (const b of spec.booleans ?? []) {
    const { name, short } = split(b);
    options[name] = { type: "boolean", ...(short ? { short } : {}) };
  }
  let parsed;
  try {
    parsed = nodeParseArgs({ args: mine, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(explain((e as Error).message, options));
  }
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  const lists = new Map<string, string[]>();
  for (const [k, v] of Object.entries(parsed.values)) {
    if (typeof v === "string") flags.set(k, v);
    else if (Array.isArray(v)) lists.set(k, v.filter((x): x is string => typeof x === "string"));
    else if (v === true) bools.add(k);
  }
  return { flags, bools, lists, positionals: parsed.positionals, rest };
}

/** node:util's messages, in the words of the other errors: what is wrong and what is known. */
function explain(message: string, options: Record<string, { type: string; short?: string }>): string {
  const known = Object.entries(options).map(([n, o]) => `${o.short ? `-${o.short}/` : ""}--${n}`).join(", ") || "none";
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]} (known: ${known})`;
  const needs = /Option '(?:-\w, )?--([\w-]+)(?: <value>)?' argument missing/.exec(message);
  if (needs) return `--${needs[1]} needs a value`;
  const noValue = /Option '(?:-\w, )?--([\w-]+)' does not take an argument/.exec(message);
  if (noValue) return `--${noValue[1]} takes no value`;
  return message.split("\n")[0]!;
}
