// Reads a host definition file (YAML or JSON) through the schema of definition/host.ts and the cross-field rules of
// definition/check.ts. Every problem comes back with its file, line and column: zod gives paths, so positions come
// from the YAML library's document tree and line counter (a path is looked up in the parsed nodes). Nothing is
// defaulted before validation, so a misspelt key is reported rather than silently replaced by a default.
import { readFileSync } from "node:fs";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from "yaml";
import { type z } from "zod";
import { closest, DefinitionError, pathText, type Problem } from "./errors.ts";
import { hostDefinition, REVISION, type HostDefinition } from "./host.ts";
import { checkDefinition } from "./check.ts";

type Path = ReadonlyArray<PropertyKey>;

/** A validated definition and a way to point at any of its keys (for the readers' own checks). */
export class LoadedDefinition {
  constructor(
    readonly file: string,
    readonly def: HostDefinition,
    private readonly doc: Document,
    private readonly lc: LineCounter,
    /** False for a definition given as a value: problems then name the path alone. */
    private readonly positions = true,
  ) {}

  /** 1-based line and column of the value at `path` (of its key with `key`), or of the nearest enclosing node. */
  at(path: Path, key = false): { line: number; col: number } {
    return this.positions ? locate(this.doc, this.lc, path, key) : { line: 0, col: 0 };
  }

  /** The YAML node at `path` (readers look at a scalar's style, e.g. a literal block keeps the file's lines). */
  node(path: Path): YamlNode | undefined {
    const n = this.doc.getIn(path as unknown[], true);
    return n && typeof n === "object" && "range" in n ? (n as YamlNode) : undefined;
  }

  problem(path: Path, message: string, key = false): Problem {
    const { line, col } = this.at(path, key);
    return { file: this.file, line, col, path: pathText(path), message };
  }

  /** Throws a DefinitionError for one problem at `path`. */
  fail(path: Path, message: string): never {
    throw new DefinitionError([this.problem(path, message)]);
  }
}

/** Reads and validates FILE; throws DefinitionError (one line per problem) when it cannot be used. */
export function loadDefinition(file: string): LoadedDefinition {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file (give the path of a host definition, e.g. examples/ultravisor.yaml)"
      : code === "EISDIR" ? "is a directory (give a host definition file, YAML or JSON)"
      : code === "EACCES" ? "permission denied (the file cannot be read)"
      : `cannot be read: ${(e as Error).message}`;
    throw new DefinitionError([{ file, line: 0, col: 0, path: "(file)", message: why }]);
  }
  return parseDefinition(text, file);
}

/** Validates definition text; `file` names it in errors. */
export function parseDefinition(text: string, file: string, positions = true): LoadedDefinition {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, intAsBigInt: false });
  if (doc.errors.length) {
    throw new DefinitionError(
      doc.errors.slice(0, 10).map((e) => {
        const p = lc.linePos(e.pos[0]);
        return { file, line: p.line, col: p.col, path: "(syntax)", message: e.message.split("\n")[0]! };
      }),
    );
  }
  let data: unknown;
  try {
    // maxAliasCount bounds what aliases may expand to (a "billion laughs" file is refused, not expanded).
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new DefinitionError([{ file, line: 1, col: 1, path: "(syntax)", message: `${(e as Error).message.split("\n")[0]} (aliases may expand to at most 100 nodes)` }]);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new DefinitionError([{ file, line: 1, col: 1, path: "(top)", message: "expected a mapping with revision, host, partitions, run, operations, expect" }]);
  }
  const parsed = hostDefinition.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.filter((i, k, all) => !shadowed(i, all, k)).flatMap((i) => explain(i, data)).map((x) => {
      const { line, col } = positions ? locate(doc, lc, x.path, x.key) : { line: 0, col: 0 };
      return { file, line, col, path: pathText(x.path), message: x.message };
    });
    // Never an empty refusal: if no issue could be explained, say so with zod's own words.
    if (problems.length === 0) problems.push({ file, line: 1, col: 1, path: "(top)", message: parsed.error.issues[0]?.message ?? "invalid definition" });
    throw new DefinitionError(sortProblems(dedupe(problems)).slice(0, 20));
  }
  const loaded = new LoadedDefinition(file, parsed.data, doc, lc, positions);
  const problems = checkDefinition(loaded);
  if (problems.length) throw new DefinitionError(sortProblems(problems).slice(0, 20));
  return loaded;
}

/** In file order, so that the first line printed is the first problem in the file. */
export function sortProblems(ps: Problem[]): Problem[] {
  return [...ps].sort((a, b) => a.line - b.line || a.col - b.col);
}

/**
 * A second range issue on the same value is noise: z.int() adds the safe-integer bound beside the schema's own, and
 * only the schema's is worth reading. Of the range issues at one path keep the first that is not the safe-integer
 * bound, or, when that bound is all there is (a value past 2^53), the first of them.
 */
function shadowed(i: Issue, all: Issue[], k: number): boolean {
  const range = (x: Issue): boolean => x.code === "too_big" || x.code === "too_small";
  if (!range(i)) return false;
  const same = (x: Issue): boolean => x.path.length === i.path.length && x.path.every((p, n) => p === i.path[n]);
  const safe = (x: Issue): boolean => {
    const bound = (x as { maximum?: unknown; minimum?: unknown }).maximum ?? (x as { minimum?: unknown }).minimum;
    return bound === Number.MAX_SAFE_INTEGER || bound === Number.MIN_SAFE_INTEGER;
  };
  const peers = all.filter((x) => range(x) && same(x));
  const keep = peers.find((x) => !safe(x)) ?? peers[0];
  return keep !== all[k];
}

/**
 * Validates a definition given as a value (tests and benches build hosts in code): the same schema and rules as a
 * file; problems carry `label` and their path, without a position.
 */
export function definitionFrom(value: unknown, label = "(definition)"): LoadedDefinition {
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v));
  if (text === undefined) throw new DefinitionError([{ file: label, line: 0, col: 0, path: "(top)", message: "expected a mapping" }]);
  return parseDefinition(text, label, false);
}

function dedupe(ps: Problem[]): Problem[] {
  const seen = new Set<string>();
  return ps.filter((p) => {
    const k = `${p.line}:${p.col}:${p.path}:${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ------------------------------------------------------------------------------------------ positions

function locate(doc: Document, lc: LineCounter, path: Path, key: boolean): { line: number; col: number } {
  let node: unknown = doc.contents;
  let best: unknown = node;
  let keyNode: unknown;
  for (let i = 0; i < path.length; i++) {
    const k = path[i]!;
    keyNode = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(k));
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof k === "number") {
      node = node.items[k];
    } else break;
    if (node && (node as YamlNode).range) best = node;
    else if (keyNode) best = keyNode;
    else break;
  }
  const target = key && keyNode ? keyNode : best;
  const r = (target as { range?: [number, number, number] } | undefined)?.range;
  if (!r) return { line: 1, col: 1 };
  const p = lc.linePos(r[0]);
  return { line: p.line, col: p.col };
}

// ------------------------------------------------------------------------------------------ messages

type Issue = z.core.$ZodIssue;

function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k as string];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

const TYPE_WORDS: Record<string, string> = {
  number: "a number", int: "an integer", string: "a string", boolean: "true or false", object: "a mapping", array: "a list",
  bigint: "an integer", literal: "a fixed value", tuple: "a list",
};

/** The keys a strict object at `path` allows (walking the schema), for unknown-key messages. */
function keysAt(path: Path): string[] {
  let s: unknown = hostDefinition;
  for (const k of [...path, null]) {
    // Unwrap wrappers until an object, array, tuple or union shows.
    for (let guard = 0; guard < 20; guard++) {
      const def = (s as { def?: { type: string; innerType?: unknown; in?: unknown } }).def;
      if (!def) return [];
      if (def.type === "optional" || def.type === "default" || def.type === "prefault" || def.type === "nullable" || def.type === "catch") s = def.innerType;
      else if (def.type === "pipe") s = def.in;
      else break;
    }
    const def = (s as { def: { type: string; shape?: Record<string, unknown>; element?: unknown; options?: unknown[] } }).def;
    if (k === null) {
      if (def.type === "object") return Object.keys(def.shape ?? {});
      if (def.type === "union") {
        for (const o of def.options ?? []) {
          const od = (o as { def: { type: string; shape?: Record<string, unknown> } }).def;
          if (od.type === "object") return Object.keys(od.shape ?? {});
        }
      }
      return [];
    }
    if (def.type === "object") s = def.shape?.[String(k)];
    else if (def.type === "array") s = def.element;
    else if (def.type === "union") {
      const next = (def.options ?? []).find((o) => {
        const od = (o as { def: { type: string } }).def;
        return typeof k === "number" ? od.type === "array" : od.type === "object";
      });
      if (!next) return [];
      const nd = (next as { def: { type: string; shape?: Record<string, unknown>; element?: unknown } }).def;
      s = nd.type === "array" ? nd.element : nd.shape?.[String(k)];
    } else return [];
    if (s === undefined) return [];
  }
  return [];
}

interface Explained {
  path: Path;
  message: string;
  key: boolean;
}

function explain(issue: Issue, data: unknown, base: Path = []): Explained[] {
  const path = [...base, ...issue.path];
  const v = valueAt(data, path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = keysAt(path).filter((k) => k !== "$schema" || path.length === 0);
      return issue.keys.map((k) => {
        const guess = closest(k, allowed);
        return {
          path: [...path, k], key: true,
          message: `unknown key${guess ? ` — did you mean '${guess}'?` : ""} (allowed: ${allowed.join(", ")})`,
        };
      });
    }
    case "invalid_type": {
      const want = TYPE_WORDS[issue.expected] ?? issue.expected;
      if (v === undefined) return [{ path, key: true, message: `required key is missing (${want})` }];
      return [{ path, key: false, message: `${show(v)} is not ${want}` }];
    }
    case "too_big":
    case "too_small": {
      const big = issue.code === "too_big";
      const bound = String(big ? (issue as { maximum: unknown }).maximum : (issue as { minimum: unknown }).minimum);
      if (Array.isArray(v)) {
        return [{ path, key: false, message: big ? `${v.length} entries is too many (at most ${bound})` : v.length === 0 ? `must not be empty (at least ${bound} entr${bound === "1" ? "y" : "ies"})` : `${v.length} entries is too few (at least ${bound})` }];
      }
      if (typeof v === "string") return [{ path, key: false, message: `${show(v)} is too ${big ? "long" : "short"} (${big ? "at most" : "at least"} ${bound} characters)` }];
      return [{ path, key: false, message: `${show(v)} is out of range (${big ? "at most" : "at least"} ${bound})` }];
    }
    case "invalid_value": {
      if (path.length === 1 && path[0] === "revision") {
        if (v === undefined) return [{ path, key: true, message: `required key is missing (revision: ${REVISION}, the format this build reads)` }];
        return [{ path, key: false, message: `${show(v)} is not a revision this build reads (expected ${REVISION}; revision 1 was the build-only format: docs/specs/host-definition.md and CHANGELOG.md (ABI) show the conversion)` }];
      }
      const values = issue.values.map((x) => String(x));
      if (values.length === 1) return [{ path, key: false, message: `${show(v)} is not allowed (expected ${values[0]})` }];
      const guess = typeof v === "string" ? closest(v, values) : undefined;
      return [{ path, key: false, message: `${show(v)} is not allowed${guess ? ` — did you mean '${guess}'?` : ""} (allowed: ${values.join(", ")})` }];
    }
    case "invalid_format":
      return [{ path, key: false, message: `${show(v)} is not ${issue.message.replace(/^Invalid string: /, "")}` }];
    case "invalid_union": {
      // A union of forms (a size as text or a number, vcpus as a count or a list): report the branch that got
      // furthest into the value, or the forms when none fits its type.
      const branches = issue.errors.map((b) => b.filter((x) => x.code !== "invalid_type" || x.path.length > 0));
      const inner = branches.find((b) => b.length > 0);
      if (inner && !(v === null || v === undefined)) return inner.flatMap((x) => explain(x, data, path));
      if (v === undefined) return [{ path, key: true, message: "required key is missing" }];
      const forms = issue.errors.map((b) => b.find((x) => x.code === "invalid_type")).filter(Boolean)
        .map((x) => TYPE_WORDS[(x as { expected: string }).expected] ?? (x as { expected: string }).expected);
      return [{ path, key: false, message: `${show(v)} is not ${[...new Set(forms)].join(" or ")}` }];
    }
    default: {
      const scalar = v !== undefined && (v === null || typeof v !== "object");
      return [{ path, key: false, message: scalar ? `${show(v)}: ${issue.message}` : issue.message }];
    }
  }
}
