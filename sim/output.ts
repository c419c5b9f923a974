// The simulator's results as data: `uvt sim --format json|csv` and `uvt report` read a run through this module. The
// JSON shape is versioned (`format`, `version`) and described by docs/schema/sim-output.schema.json; byte counts and
// addresses are decimal strings (hosts reach 4 EB, past JSON's exact integers). CSV gives one table at a time.
// Part of sim/: it reads a finished run (sim/run-scenario.ts) and core's views of the database.
import { formatOp, pn, type Transaction } from "../core/notation.ts";
import { errorName, PN_MASK } from "../core/database.ts";
import { span } from "../core/mapview.ts";
import { ChannelType } from "../core/channel.ts";
import type { RunResult } from "./run-scenario.ts";
import type { Scenario } from "./scenario.ts";

export const OUTPUT_FORMAT = "uvt-sim";
/** Raised when a field changes meaning or goes; new fields may be added within a version. */
export const OUTPUT_VERSION = 1;

export interface SimOutput {
  format: typeof OUTPUT_FORMAT;
  version: number;
  file: string;
  name: string | null;
  host: { memory: string; order: number; pcpus: number | null };
  ok: boolean;
  failures: string[];
  /** What the boot committed before the first operation (the boot partition's and the boot-time partitions'). */
  boot: TransactionOut[];
  operations: Array<{ index: number; line: number; title: string | null; kind: string; error: string | null; transactions: TransactionOut[] }>;
  audit: { transactions: number; rejected: number; rejections: Array<{ submitter: string; name: string | null; error: string; beforeTransaction: number }> };
  memoryMap: Array<{ page: string; scale: number; base: string; entryBytes: string; entries: Array<{ first: number; last: number; owner: string | null; ownerName: string | null; mapBelow: string | null }> }>;
  schedule: { generation: number; quantum: string; pcpus: Array<{ pcpu: number; busy: number; dedicated: boolean; idle: boolean; quanta: string[] }> } | null;
  channels: Array<{ slot: number; type: string; client: string; clientName: string | null; server: string | null; serverName: string | null; base: string; pages: number }>;
}

export interface TransactionOut {
  seq: number | null;
  ops: Array<{ op: string; text: string }>;
}

const TYPE_NAMES = Object.fromEntries(Object.entries(ChannelType).map(([k, v]) => [v, k])) as Record<number, string>;

function tx(t: Transaction): TransactionOut {
  return { seq: t.seq ?? null, ops: t.ops.map((o) => ({ op: o.op, text: formatOp(o) })) };
}

/** The run as the versioned JSON document. */
export function simOutput(s: Scenario, r: RunResult): SimOutput {
  const db = r.host.db;
  const name = (p: number): string | null => r.names.get(p) ?? db.readDescriptor(p)?.name ?? null;
  const header = db.logHeader();
  const ui = db.indexPage();
  return {
    format: OUTPUT_FORMAT,
    version: OUTPUT_VERSION,
    file: s.file,
    name: s.name ?? null,
    host: { memory: String(r.host.installed), order: ui.order, pcpus: s.platform?.pcpus ?? null },
    ok: r.failures.length === 0,
    failures: r.failures,
    boot: r.bootLog.map(tx),
    operations: s.operations.map((op, i) => ({
      index: i, line: op.line, title: op.title ?? null, kind: op.kind, error: r.outcomes[i] ?? null, transactions: (r.logs[i] ?? []).map(tx),
    })),
    audit: {
      transactions: header.txCount,
      rejected: header.rejected,
      rejections: db.readAudit().rejections.map((x) => ({ submitter: pn(x.submitter), name: name(x.submitter), error: errorName(x.code), beforeTransaction: x.nextSeq })),
    },
    memoryMap: r.host.view.runs().map((m) => ({
      page: pn(m.page), scale: m.scale, base: String(m.base), entryBytes: String(span(m.scale)),
      entries: m.entries.map((e) => ({
        first: e.first, last: e.last,
        owner: e.value >= 0 ? pn(e.value) : null, ownerName: e.value >= 0 ? name(e.value) : null,
        mapBelow: e.value < 0 ? pn(e.value & PN_MASK) : null,
      })),
    })),
    schedule: r.platform ? (({ generation, quantum, pcpus }) => ({ generation, quantum: String(quantum), pcpus }))(r.platform.scheduleData()) : null,
    channels: db.channels().map((c) => ({
      slot: c.slot, type: TYPE_NAMES[c.type] ?? String(c.type), client: pn(c.client), clientName: name(c.client),
      server: c.server ? pn(c.server) : null, serverName: c.server ? name(c.server) : null, base: String(BigInt(c.base) * 4096n), pages: c.pages,
    })),
  };
}

export const CSV_TABLES = ["audit", "map", "schedule", "channels"] as const;
export type CsvTable = (typeof CSV_TABLES)[number];

/** RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
function field(v: string | number | boolean | null): string {
  const t = v === null ? "" : String(v);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** One table of the run as CSV with a header row (RFC 4180, CRLF line ends). */
export function simCsv(o: SimOutput, table: CsvTable): string {
  const rows: Array<Array<string | number | boolean | null>> = [];
  switch (table) {
    case "audit":
      rows.push(["operation", "line", "seq", "op", "text"]);
      for (const t of o.boot) for (const x of t.ops) rows.push(["boot", null, t.seq, x.op, x.text]);
      for (const op of o.operations) for (const t of op.transactions) for (const x of t.ops) rows.push([op.index, op.line, t.seq, x.op, x.text]);
      break;
    case "map":
      rows.push(["map_page", "scale", "base", "entry_bytes", "first", "last", "owner", "owner_name", "map_below"]);
      for (const m of o.memoryMap) for (const e of m.entries) rows.push([m.page, m.scale, m.base, m.entryBytes, e.first, e.last, e.owner, e.ownerName, e.mapBelow]);
      break;
    case "schedule":
      rows.push(["pcpu", "quantum", "vcpu", "busy", "dedicated", "idle"]);
      for (const p of o.schedule?.pcpus ?? []) p.quanta.forEach((q, k) => rows.push([p.pcpu, k, q, p.busy, p.dedicated, p.idle]));
      break;
    case "channels":
      rows.push(["slot", "type", "client", "client_name", "server", "server_name", "base", "pages"]);
      for (const c of o.channels) rows.push([c.slot, c.type, c.client, c.clientName, c.server, c.serverName, c.base, c.pages]);
      break;
  }
  return rows.map((r) => r.map(field).join(",")).join("\r\n") + "\r\n";
}
