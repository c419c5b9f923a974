// Small flag parser shared by the subcommands: --name value, --name=value, boolean flags, positionals.
import { UsageError } from "./command.ts";

export interface FlagSpec {
  /** Flags that take a value. */
  values?: string[];
  /** Flags that are present or absent. */
  booleans?: string[];
}

export interface Parsed {
  flags: Map<string, string>;
  bools: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const values = new Set(spec.values ?? []);
  const booleans = new Set(spec.booleans ?? []);
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("--") || a === "-") {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (booleans.has(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      bools.add(name);
    } else if (values.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, v);
    } else {
      const known = [...values, ...booleans].map((n) => `--${n}`).join(", ") || "none";
      throw new UsageError(`unknown option --${name} (known: ${known})`);
    }
  }
  return { flags, bools, positionals };
}
