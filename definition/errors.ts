// The one error format of every `uvt` command that reads a file: `FILE:LINE:COL: path.to.key: what is wrong (what is
// allowed)`, one line per problem, exit status 2 (cli/main.ts). Readers of host definitions (definition/load.ts,
// partitions/config.ts, sim/scenario.ts) raise DefinitionError with positioned problems; a file that cannot be read
// at all is one line without a position.

export interface Problem {
  file: string;
  /** 1-based; 0 when the problem is the file as a whole. */
  line: number;
  col: number;
  /** Dotted path of the key ("partitions[4].behaviour.faultAfter"); "(file)" or "(syntax)" when there is none. */
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return `${where}: ${p.path}: ${p.message}`;
}

/** A definition (or any input file) that is refused: nothing was built or run. */
export class DefinitionError extends Error {
  override name = "DefinitionError";
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join("\n"));
  }
}

/** "partitions[4].behaviour.faultAfter" from ["partitions", 4, "behaviour", "faultAfter"]. */
export function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const k of path) out += typeof k === "number" ? `[${k}]` : out === "" ? String(k) : `.${String(k)}`;
  return out || "(top)";
}

/** The closest of `options` to a misspelt `word` (edit distance at most a third of its length), for "did you mean". */
export function closest(word: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const o of options) {
    const d = distance(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      best = o;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
