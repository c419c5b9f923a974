// Patent notation for the resource database ([0222]–[0224]): partition numbers "[G,M,K]", Memory Index Refs
// "[-,G,M,K]", and transaction logs ("Begin Transaction", "Change Owner Map[0,1,18], Index(25), from …, to …", …,
// "Commit Transaction"). Formatter and parser; the binary records themselves live in core (memory-layout.md §5).
// Part of core's TypeScript bindings (bottom layer): the text form of core's transaction records.

/** Descriptor kinds (memory-layout.md §4). */
export const KIND = {
  Missing: 1,
  Available: 2,
  Idle: 3,
  Boot: 4,
  Ultravisor: 5,
  Command: 6,
  IO: 7,
  Operations: 8,
  Guest: 16,
} as const;
export type KindName = keyof typeof KIND;

export function kindName(kind: number): KindName | undefined {
  return (Object.keys(KIND) as KindName[]).find((k) => KIND[k] === kind);
}

export interface Descriptor {
  kind: number;
  name: string;
  principal: string;
}

export type Op =
  | { op: "changeOwner"; map: number; first: number; last: number; from: number; to: number }
  | { op: "initialize"; partition: number; descriptor: Descriptor }
  | { op: "destroy"; partition: number }
  | { op: "split"; map: number; index: number; into: number; owner: number }
  | { op: "merge"; map: number; index: number; from: number; owner: number }
  // Channel table and command partition (docs/specs/memory-layout.md §11); the spec prints no log for these, so the
  // notation below is ours, in the same style.
  | { op: "defineChannel"; slot: number; client: number; base: number; pages: number; type: number }
  | { op: "assignServer"; slot: number; client: number; server: number; from: number }
  | { op: "removeChannel"; slot: number; client: number }
  | { op: "setCommand"; to: number; from: number };

/** Channel type names by code (docs/specs/channel-abi.md section 5). */
export const CHANNEL_TYPE_NAMES = ["control", "command", "boot", "console", "storage", "network", "power", "memory", "processor"] as const;

export interface Transaction {
  ops: Op[];
  /** Sequence number from the audit log, when read from one. */
  seq?: number;
}

/** "[G,M,K]" of a page number. */
export function pn(p: number): string {
  return `[${Math.floor(p / 2 ** 20)},${Math.floor(p / 1024) % 1024},${p % 1024}]`;
}

/** Page number of G, M, K; throws RangeError when a part is outside 0..1023. */
export function gmk(g: number, m: number, k: number): number {
  for (const [n, v] of [["G", g], ["M", m], ["K", k]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 1023) throw new RangeError(`${n}=${v} is not in 0..1023`);
  }
  return (g * 1024 + m) * 1024 + k;
}

/** Parses "[G,M,K]" (spaces allowed); throws SyntaxError. */
export function parsePn(text: string): number {
  const m = /^\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]\s*$/.exec(text);
  if (!m) throw new SyntaxError(`"${text}" is not a partition number of the form [G,M,K]`);
  return gmk(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** A map entry in Figure 8's notation: "[G,M,K]" or "[-,G,M,K]" for a Memory Index Ref. */
export function entryText(v: number): string {
  if (v < 0) return `[-,${pn(v & 0x3fffffff).slice(1)}`;
  return pn(v);
}

function indexText(first: number, last: number): string {
  return first === last ? `Index(${first})` : `IndexRange(${first},${last})`;
}

export function formatOp(op: Op): string {
  switch (op.op) {
    case "changeOwner":
      return `Change Owner Map${pn(op.map)}, ${indexText(op.first, op.last)}, from ${pn(op.from)}, to ${pn(op.to)}`;
    case "initialize": {
      const d = op.descriptor;
      const rest = d.kind === KIND.Guest ? "..." : (kindName(d.kind) ?? `kind ${d.kind}`);
      return `Initialize Partition${pn(op.partition)} ("${d.name}", ${d.principal}, ${rest})`;
    }
    case "destroy":
      return `Destroy Partition${pn(op.partition)}`;
    case "split":
      return `Split Map${pn(op.map)}, Index(${op.index}), Into Map${pn(op.into)}, {For${pn(op.owner)}}`;
    case "merge":
      return `Merge Map${pn(op.map)}, Index(${op.index}), {From Map${pn(op.from)}, For${pn(op.owner)}}`;
    case "defineChannel":
      return `Define Channel(${op.slot}) for ${pn(op.client)}, Pages ${pn(op.base)}+${op.pages}, ${CHANNEL_TYPE_NAMES[op.type] ?? `type ${op.type}`}`;
    case "assignServer":
      return `Assign Server Channel(${op.slot}) of ${pn(op.client)}, from ${pn(op.from)}, to ${pn(op.server)}`;
    case "removeChannel":
      return `Remove Channel(${op.slot}) of ${pn(op.client)}`;
    case "setCommand":
      return `Set Command Partition, from ${pn(op.from)}, to ${pn(op.to)}`;
  }
}

export function formatTransaction(tx: Transaction): string[] {
  return ["Begin Transaction", ...tx.ops.map(formatOp), "Commit Transaction"];
}

const PN = String.raw`\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]`;
const IDX = String.raw`(?:Index\s*\(\s*(\d+)\s*\)|IndexRange\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))`;
const LINE_PATTERNS: Array<[RegExp, (m: RegExpExecArray) => Op]> = [
  [
    new RegExp(String.raw`^Change\s+Owner\s+Map\s*(${PN})\s*,\s*${IDX}\s*,\s*from\s*(${PN})\s*,?\s*to\s*(${PN})$`, "i"),
    (m) => {
      const first = Number(m[2] ?? m[3]);
      const last = Number(m[2] ?? m[4]);
      return { op: "changeOwner", map: parsePn(m[1]!), first, last, from: parsePn(m[5]!), to: parsePn(m[6]!) };
    },
  ],
  [
    new RegExp(String.raw`^Initialize\s+Partition\s*(${PN})\s*\(\s*"([^"]*)"\s*,\s*([^,)]*?)\s*(?:,\s*([^)]*?)\s*)?\)$`, "i"),
    (m) => {
      const rest = (m[4] ?? "...").trim();
      let kind: number = KIND.Guest;
      if (rest !== "..." && rest !== "") {
        const k = KIND[rest as KindName];
        if (k === undefined) throw new SyntaxError(`unknown partition kind "${rest}" (known: ${Object.keys(KIND).join(", ")})`);
        kind = k;
      }
      return { op: "initialize", partition: parsePn(m[1]!), descriptor: { kind, name: m[2]!, principal: m[3]! } };
    },
  ],
  [new RegExp(String.raw`^Destroy\s+Partition\s*(${PN})$`, "i"), (m) => ({ op: "destroy", partition: parsePn(m[1]!) })],
  [
    new RegExp(String.raw`^Split\s+Map\s*(${PN})\s*,\s*Index\s*\(\s*(\d+)\s*\)\s*,\s*Into\s+Map\s*(${PN})\s*,\s*\{\s*For\s*(${PN})\s*\}$`, "i"),
    (m) => ({ op: "split", map: parsePn(m[1]!), index: Number(m[2]), into: parsePn(m[3]!), owner: parsePn(m[4]!) }),
  ],
  [
    new RegExp(String.raw`^Merge\s+Map\s*(${PN})\s*,\s*Index\s*\(\s*(\d+)\s*\)\s*,\s*\{\s*From\s+Map\s*(${PN})\s*,\s*For\s*(${PN})\s*\}$`, "i"),
    (m) => ({ op: "merge", map: parsePn(m[1]!), index: Number(m[2]), from: parsePn(m[3]!), owner: parsePn(m[4]!) }),
  ],
  [
    new RegExp(String.raw`^Define\s+Channel\s*\(\s*(\d+)\s*\)\s*for\s*(${PN})\s*,\s*Pages\s*(${PN})\s*\+\s*(\d+)\s*,\s*(\w+)$`, "i"),
    (m) => {
      const type = (CHANNEL_TYPE_NAMES as readonly string[]).indexOf(m[5]!.toLowerCase());
      if (type < 0) throw new SyntaxError(`unknown channel type "${m[5]}" (known: ${CHANNEL_TYPE_NAMES.join(", ")})`);
      return { op: "defineChannel", slot: Number(m[1]), client: parsePn(m[2]!), base: parsePn(m[3]!), pages: Number(m[4]), type };
    },
  ],
  [
    new RegExp(String.raw`^Assign\s+Server\s+Channel\s*\(\s*(\d+)\s*\)\s*of\s*(${PN})\s*,\s*from\s*(${PN})\s*,\s*to\s*(${PN})$`, "i"),
    (m) => ({ op: "assignServer", slot: Number(m[1]), client: parsePn(m[2]!), from: parsePn(m[3]!), server: parsePn(m[4]!) }),
  ],
  [
    new RegExp(String.raw`^Remove\s+Channel\s*\(\s*(\d+)\s*\)\s*of\s*(${PN})$`, "i"),
    (m) => ({ op: "removeChannel", slot: Number(m[1]), client: parsePn(m[2]!) }),
  ],
  [
    new RegExp(String.raw`^Set\s+Command\s+Partition\s*,\s*from\s*(${PN})\s*,\s*to\s*(${PN})$`, "i"),
    (m) => ({ op: "setCommand", from: parsePn(m[1]!), to: parsePn(m[2]!) }),
  ],
];

/** Parses one operation line; throws SyntaxError naming what was expected. */
export function parseOp(line: string): Op {
  const text = line.trim();
  for (const [re, build] of LINE_PATTERNS) {
    const m = re.exec(text);
    if (m) return build(m);
  }
  throw new SyntaxError(
    `"${text}" is not an operation (expected Change Owner, Initialize Partition, Destroy Partition, Split or Merge)`,
  );
}

export class NotationError extends SyntaxError {
  override name = "NotationError";
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
  }
}

/**
 * Parses a log of transactions in patent notation. Blank lines and lines that are not part of a transaction
 * (titles) are skipped outside transactions; "End Transaction" is accepted for "Commit Transaction" ([0222]).
 */
export function parseLog(text: string): Transaction[] {
  const txs: Transaction[] = [];
  let cur: Transaction | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    if (/^Begin\s+Transaction$/i.test(line)) {
      if (cur) throw new NotationError("Begin Transaction inside a transaction (missing Commit Transaction)", i + 1);
      cur = { ops: [] };
    } else if (/^(Commit|End)\s+Transaction$/i.test(line)) {
      if (!cur) throw new NotationError(`${line} without Begin Transaction`, i + 1);
      if (cur.ops.length === 0) throw new NotationError("empty transaction", i + 1);
      txs.push(cur);
      cur = undefined;
    } else if (cur) {
      try {
        cur.ops.push(parseOp(line));
      } catch (e) {
        throw new NotationError((e as Error).message, i + 1);
      }
    }
  }
  if (cur) throw new NotationError("transaction not committed at end of text", lines.length);
  return txs;
}
