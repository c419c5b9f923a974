// Scenario files for `uvt sim` (YAML or JSON): a host, the operations in order, optional expected outcomes.
// A small hand-written validator walks yaml's node tree so that every error names the file, line and field.
// Schema: docs in examples/figure8.yaml and `uvt sim --help`.
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import type { HostConfig } from "./host.ts";
import { parseBytes } from "../core/mapview.ts";
import { KIND, type KindName, NotationError, parseLog, parsePn, gmk } from "../core/notation.ts";
import type { Run } from "./resource-service.ts";
import type { ChannelDef, PartitionDef, PlatformConfig, VcpuDef } from "./platform.ts";
import { ChannelType, type ChannelTypeName } from "../core/channel.ts";

export class ScenarioError extends Error {
  override name = "ScenarioError";
  constructor(readonly file: string, readonly line: number, readonly field: string, message: string) {
    // Line 0: the file as a whole (it cannot be read).
    super(`${file}${line > 0 ? `:${line}` : ""}: ${field}: ${message}`);
  }
}

export type Operation = { title?: string; expectError?: string; line: number } & (
  | { kind: "create"; name: string; principal?: string; partitionKind?: number; size?: bigint; at?: Run[] }
  | { kind: "destroy"; who: string }
  | { kind: "merge"; map: number; index: number }
  | { kind: "split"; map: number; index: number; into?: number }
  | { kind: "transaction"; text: string }
  | { kind: "backup" }
  // Platform operations (a host with `pcpus`): partitions end to end through the command channel.
  | { kind: "define"; def: PartitionDef }
  | { kind: "stop"; who: string; inflight: string[] }
  | { kind: "ioComplete"; server: string }
  | { kind: "console"; from: string; text: string }
  | { kind: "submit"; from: string; text: string }
  | { kind: "schedule" }
  | { kind: "tick"; quanta: number }
);

export interface OwnerExpectation {
  address: bigint;
  is: string;
  line: number;
}

export interface Scenario {
  file: string;
  name?: string;
  host: HostConfig;
  /** Present when the host has processors: the scenario runs on a booted platform (sim/platform.ts). */
  platform?: PlatformConfig;
  operations: Operation[];
  expect: {
    owners: OwnerExpectation[]; mapPages?: number; mapPagesLine?: number;
    /** Lines that must appear in the output, in this order (each a substring of a printed line). */
    output: Array<{ text: string; line: number }>;
  };
}

type N = YamlNode | null | undefined;

class Reader {
  constructor(readonly file: string, private readonly lc: LineCounter) {}

  line(node: N): number {
    const r = (node as { range?: [number, number, number] } | null | undefined)?.range;
    return r ? this.lc.linePos(r[0]).line : 1;
  }

  fail(node: N, field: string, msg: string): never {
    throw new ScenarioError(this.file, this.line(node), field, msg);
  }

  map(node: N, field: string, allowed: string[], required: string[] = []): Map<string, YamlNode> {
    if (!isMap(node)) this.fail(node, field, `expected a mapping with keys ${allowed.join(", ")}`);
    const out = new Map<string, YamlNode>();
    for (const item of node.items) {
      const key = isScalar(item.key) ? String(item.key.value) : undefined;
      if (key === undefined || !allowed.includes(key)) {
        this.fail(item.key as N, `${field}.${key ?? "?"}`, `unknown field (allowed: ${allowed.join(", ")})`);
      }
      out.set(key, item.value as YamlNode);
    }
    for (const r of required) if (!out.has(r)) this.fail(node, `${field}.${r}`, "required field is missing");
    return out;
  }

  seq(node: N, field: string): YamlNode[] {
    if (!isSeq(node)) this.fail(node, field, "expected a list");
    return node.items as YamlNode[];
  }

  str(node: N, field: string): string {
    if (!isScalar(node) || (typeof node.value !== "string" && typeof node.value !== "number")) this.fail(node, field, "expected a string");
    return String(node.value);
  }

  bool(node: N, field: string): boolean {
    if (!isScalar(node) || typeof node.value !== "boolean") this.fail(node, field, "expected true or false");
    return node.value as boolean;
  }

  int(node: N, field: string, min: number, max: number): number {
    if (!isScalar(node) || typeof node.value !== "number" || !Number.isInteger(node.value) || node.value < min || node.value > max) {
      this.fail(node, field, `expected an integer in ${min}..${max}`);
    }
    return node.value as number;
  }

  bytes(node: N, field: string): bigint {
    if (!isScalar(node) || (typeof node.value !== "string" && typeof node.value !== "number")) this.fail(node, field, 'expected a size such as "4 GB"');
    try {
      return parseBytes(node.value as string | number);
    } catch (e) {
      return this.fail(node, field, (e as Error).message);
    }
  }

  /**
   * Transactions in patent notation, checked here so that a typo is reported where it is: a literal block's text
   * starts on the line after its `|`, so its lines are the file's; a quoted string's "\n" lines and a folded
   * block's (`>`) are not, so there the scalar's line is given with the line inside the text.
   */
  notation(node: N, field: string): string {
    const text = this.str(node, field);
    try {
      parseLog(text);
    } catch (e) {
      if (!(e instanceof NotationError)) throw e;
      const block = isScalar(node) && node.type === "BLOCK_LITERAL";
      if (!block) this.fail(node, field, `${e.message.replace(/^line (\d+): /, "line $1 of the text: ")}`);
      throw new ScenarioError(this.file, this.line(node) + e.line, field, e.message.replace(/^line \d+: /, ""));
    }
    return text;
  }

  /** "[G,M,K]" or a list [G, M, K]. */
  page(node: N, field: string): number {
    try {
      if (isSeq(node)) {
        const [g, m, k] = node.items.map((x, i) => this.int(x as N, `${field}[${i}]`, 0, 1023));
        if (node.items.length !== 3) this.fail(node, field, "expected [G, M, K]");
        return gmk(g!, m!, k!);
      }
      return parsePn(this.str(node, field));
    } catch (e) {
      if (e instanceof ScenarioError) throw e;
      return this.fail(node, field, (e as Error).message);
    }
  }
}

/** "Map[0,1,1], IndexRange(768,1023)" or "Map[0,1,0], Index(2)" → a run of map entries. */
function parsePlacement(r: Reader, node: N, field: string): Run[] {
  const items = isSeq(node) ? (node.items as YamlNode[]) : [node as YamlNode];
  return items.map((item, i) => {
    const text = r.str(item, `${field}${isSeq(node) ? `[${i}]` : ""}`);
    const m = /^\s*Map\s*(\[[^\]]*\])\s*,?\s*(?:Index\s*\(\s*(\d+)\s*\)|IndexRange\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))\s*$/i.exec(text);
    if (!m) r.fail(item, field, `"${text}" is not a placement like "Map[0,1,0], Index(2)" or "Map[0,1,1], IndexRange(768,1023)"`);
    const first = Number(m[2] ?? m[3]);
    const last = Number(m[2] ?? m[4]);
    if (first > last || last > 1023) r.fail(item, field, `index range ${first}..${last} is not within 0..1023`);
    let map: number;
    try {
      map = parsePn(m[1]!);
    } catch (e) {
      return r.fail(item, field, (e as Error).message);
    }
    return { map, first, last };
  });
}

const OP_KEYS = ["create", "destroy", "merge", "split", "transaction", "backup", "define", "stop", "ioComplete", "console", "submit", "schedule", "tick"];
const PLATFORM_OPS = ["define", "stop", "ioComplete", "console", "submit", "schedule", "tick"];
const KINDS_DEFINABLE = ["Guest", "IO", "Command", "Operations"];

function readVcpus(r: Reader, node: N, field: string): VcpuDef[] {
  if (isScalar(node)) {
    const n = r.int(node, field, 1, 64);
    return Array.from({ length: n }, () => ({ duty: 16 }));
  }
  return r.seq(node, field).map((v, i) => {
    const f = `${field}[${i}]`;
    const m = r.map(v, f, ["duty", "dedicated", "cstate"]);
    const dedicated = m.has("dedicated") ? r.bool(m.get("dedicated"), `${f}.dedicated`) : false;
    if (!dedicated && !m.has("duty")) r.fail(v, `${f}.duty`, "give duty (sixteenths of a CPU, 1..16) or dedicated: true");
    return {
      duty: m.has("duty") ? r.int(m.get("duty"), `${f}.duty`, 1, 16) : 16,
      ...(dedicated ? { dedicated } : {}),
      ...(m.has("cstate") ? { cstate: r.int(m.get("cstate"), `${f}.cstate`, 0, 3) } : {}),
    };
  });
}

function readChannels(r: Reader, node: N, field: string): ChannelDef[] {
  return r.seq(node, field).map((c, i) => {
    const f = `${field}[${i}]`;
    const m = r.map(c, f, ["type", "server"], ["type", "server"]);
    const type = r.str(m.get("type"), `${f}.type`);
    if (!(type in ChannelType)) r.fail(m.get("type"), `${f}.type`, `unknown channel type (known: ${Object.keys(ChannelType).join(", ")})`);
    return { type: type as ChannelTypeName, server: r.str(m.get("server"), `${f}.server`) };
  });
}

function readOperation(r: Reader, node: YamlNode, field: string): Operation {
  const m = r.map(node, field, [...OP_KEYS, "title", "expectError"]);
  const kinds = OP_KEYS.filter((k) => m.has(k));
  if (kinds.length !== 1) r.fail(node, field, `exactly one of ${OP_KEYS.join(", ")} is required${kinds.length ? ` (found ${kinds.join(", ")})` : ""}`);
  const kind = kinds[0]!;
  const common = {
    line: r.line(node),
    ...(m.has("title") ? { title: r.str(m.get("title"), `${field}.title`) } : {}),
    ...(m.has("expectError") ? { expectError: r.str(m.get("expectError"), `${field}.expectError`) } : {}),
  };
  const v = m.get(kind);
  const f = `${field}.${kind}`;
  switch (kind) {
    case "create": {
      const c = r.map(v, f, ["name", "user", "kind", "size", "at"], ["name"]);
      if (!c.has("size") && !c.has("at")) r.fail(v, `${f}.size`, "give size, or at (explicit placement)");
      let partitionKind: number | undefined;
      if (c.has("kind")) {
        const k = r.str(c.get("kind"), `${f}.kind`);
        partitionKind = KIND[k as KindName];
        if (partitionKind === undefined) r.fail(c.get("kind"), `${f}.kind`, `unknown kind (known: ${Object.keys(KIND).join(", ")})`);
      }
      const name = r.str(c.get("name"), `${f}.name`);
      if (!/^[\x20-\x7e]{1,16}$/.test(name) || name.includes('"')) r.fail(c.get("name"), `${f}.name`, "1 to 16 printable ASCII characters, no quotes");
      return {
        ...common, kind: "create", name,
        ...(c.has("user") ? { principal: r.str(c.get("user"), `${f}.user`) } : {}),
        ...(partitionKind !== undefined ? { partitionKind } : {}),
        ...(c.has("size") ? { size: r.bytes(c.get("size"), `${f}.size`) } : {}),
        ...(c.has("at") ? { at: parsePlacement(r, c.get("at"), `${f}.at`) } : {}),
      };
    }
    case "destroy":
      return { ...common, kind: "destroy", who: r.str(v, f) };
    case "merge": {
      const c = r.map(v, f, ["map", "index"], ["map", "index"]);
      return { ...common, kind: "merge", map: r.page(c.get("map"), `${f}.map`), index: r.int(c.get("index"), `${f}.index`, 0, 1023) };
    }
    case "split": {
      const c = r.map(v, f, ["map", "index", "into"], ["map", "index"]);
      return {
        ...common, kind: "split", map: r.page(c.get("map"), `${f}.map`), index: r.int(c.get("index"), `${f}.index`, 0, 1023),
        ...(c.has("into") ? { into: r.page(c.get("into"), `${f}.into`) } : {}),
      };
    }
    case "transaction":
      return { ...common, kind: "transaction", text: r.notation(v, f) };
    case "define": {
      const c = r.map(v, f, ["name", "kind", "user", "memory", "node", "vcpus", "channels"], ["name", "memory", "vcpus"]);
      const name = r.str(c.get("name"), `${f}.name`);
      if (!/^[A-Za-z0-9_.-]{1,16}$/.test(name) || name === "Ultravisor") r.fail(c.get("name"), `${f}.name`, "1 to 16 letters, digits, _ . - (and not Ultravisor)");
      let kind: KindName | undefined;
      if (c.has("kind")) {
        kind = r.str(c.get("kind"), `${f}.kind`) as KindName;
        if (!KINDS_DEFINABLE.includes(kind)) r.fail(c.get("kind"), `${f}.kind`, `expected one of ${KINDS_DEFINABLE.join(", ")}`);
      }
      const def: PartitionDef = {
        name, memory: r.bytes(c.get("memory"), `${f}.memory`), vcpus: readVcpus(r, c.get("vcpus"), `${f}.vcpus`),
        ...(kind ? { kind } : {}),
        ...(c.has("user") ? { user: r.str(c.get("user"), `${f}.user`) } : {}),
        ...(c.has("node") ? { node: r.int(c.get("node"), `${f}.node`, 0, 63) } : {}),
        ...(c.has("channels") ? { channels: readChannels(r, c.get("channels"), `${f}.channels`) } : {}),
      };
      return { ...common, kind: "define", def };
    }
    case "stop": {
      if (isScalar(v)) return { ...common, kind: "stop", who: r.str(v, f), inflight: [] };
      const c = r.map(v, f, ["partition", "inflight"], ["partition"]);
      const inflight = c.has("inflight") ? r.seq(c.get("inflight"), `${f}.inflight`).map((x, i) => r.str(x, `${f}.inflight[${i}]`)) : [];
      return { ...common, kind: "stop", who: r.str(c.get("partition"), `${f}.partition`), inflight };
    }
    case "ioComplete":
      return { ...common, kind: "ioComplete", server: r.str(v, f) };
    case "console": {
      const c = r.map(v, f, ["from", "text"], ["from", "text"]);
      return { ...common, kind: "console", from: r.str(c.get("from"), `${f}.from`), text: r.str(c.get("text"), `${f}.text`) };
    }
    case "submit": {
      const c = r.map(v, f, ["from", "transaction"], ["from", "transaction"]);
      return { ...common, kind: "submit", from: r.str(c.get("from"), `${f}.from`), text: r.notation(c.get("transaction"), `${f}.transaction`) };
    }
    case "schedule":
      return { ...common, kind: "schedule" };
    case "tick":
      return { ...common, kind: "tick", quanta: r.int(v, f, 1, 1 << 30) };
    default:
      return { ...common, kind: "backup" };
  }
}

/** Parses and validates a scenario from text; `file` is used in error messages. */
export function parseScenario(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new ScenarioError(file, lc.linePos(e.pos[0]).line, "(syntax)", e.message.split("\n")[0]!);
  }
  const r = new Reader(file, lc);
  const top = r.map(doc.contents as N, "(top)", ["name", "host", "operations", "expect"], ["host", "operations"]);
  const h = r.map(top.get("host"), "host", ["memory", "order", "bootMemory", "reserve", "split", "firmware", "pcpus", "nodes", "command"], ["memory"]);
  const host: HostConfig = { memory: r.bytes(h.get("memory"), "host.memory") };
  if (host.memory < 12n << 20n) r.fail(h.get("memory"), "host.memory", "at least 12 MB (boot, database and ultravisor pages)");
  if (h.has("order")) host.order = r.int(h.get("order"), "host.order", 2, 5);
  if (h.has("bootMemory")) host.bootBytes = r.bytes(h.get("bootMemory"), "host.bootMemory");
  if (h.has("reserve")) {
    const rs = r.seq(h.get("reserve"), "host.reserve");
    if (rs.length !== 2) r.fail(h.get("reserve"), "host.reserve", 'expected ["[G,M,K]", "[G,M,K]"]: first and last page');
    host.reserve = [[r.page(rs[0], "host.reserve[0]"), r.page(rs[1], "host.reserve[1]")]];
  }
  if (h.has("split")) {
    host.presplit = r.seq(h.get("split"), "host.split").map((n, i) => {
      const f = `host.split[${i}]`;
      const s = r.map(n, f, ["map", "index", "into"], ["map", "index", "into"]);
      return { map: r.page(s.get("map"), `${f}.map`), index: r.int(s.get("index"), `${f}.index`, 0, 1023), into: r.page(s.get("into"), `${f}.into`) };
    });
  }
  if (h.has("firmware")) {
    host.firmware = r.seq(h.get("firmware"), "host.firmware").map((n, i) => {
      const f = `host.firmware[${i}]`;
      const s = r.map(n, f, ["base", "length", "type"], ["base", "length", "type"]);
      const type = r.str(s.get("type"), `${f}.type`);
      if (type !== "usable" && type !== "reserved") r.fail(s.get("type"), `${f}.type`, 'expected "usable" or "reserved"');
      return { base: r.bytes(s.get("base"), `${f}.base`), length: r.bytes(s.get("length"), `${f}.length`), type: type as "usable" | "reserved" };
    });
  }
  let platform: PlatformConfig | undefined;
  if (h.has("pcpus")) {
    platform = { pcpus: r.int(h.get("pcpus"), "host.pcpus", 1, 4096) };
    if (h.has("nodes")) {
      platform.nodes = r.seq(h.get("nodes"), "host.nodes").map((n, i) => {
        const f = `host.nodes[${i}]`;
        const m = r.map(n, f, ["memory", "pcpus"], ["memory", "pcpus"]);
        return { memory: r.bytes(m.get("memory"), `${f}.memory`), pcpus: r.int(m.get("pcpus"), `${f}.pcpus`, 1, 4096) };
      });
      const sum = platform.nodes.reduce((a, n) => a + n.pcpus, 0);
      if (sum !== platform.pcpus) r.fail(h.get("nodes"), "host.nodes", `the nodes have ${sum} processors, host.pcpus says ${platform.pcpus}`);
    }
    if (h.has("command")) {
      const f = "host.command";
      const m = r.map(h.get("command"), f, ["name", "memory", "vcpus"]);
      platform.command = {
        ...(m.has("name") ? { name: r.str(m.get("name"), `${f}.name`) } : {}),
        ...(m.has("memory") ? { memory: r.bytes(m.get("memory"), `${f}.memory`) } : {}),
        ...(m.has("vcpus") ? { vcpus: readVcpus(r, m.get("vcpus"), `${f}.vcpus`) } : {}),
      };
    }
  } else if (h.has("nodes") || h.has("command")) {
    r.fail(h.get("nodes") ?? h.get("command"), "host", "nodes and command need host.pcpus (a host with processors)");
  }
  const operations = r.seq(top.get("operations"), "operations").map((n, i) => readOperation(r, n, `operations[${i}]`));
  if (!platform) {
    const op = operations.find((o) => PLATFORM_OPS.includes(o.kind));
    if (op) throw new ScenarioError(file, op.line, "host.pcpus", `operation ${op.kind} needs a host with processors: add host.pcpus`);
  }
  const expect: Scenario["expect"] = { owners: [], output: [] };
  if (top.has("expect")) {
    const e = r.map(top.get("expect"), "expect", ["owners", "mapPages", "output"]);
    if (e.has("output")) {
      expect.output = r.seq(e.get("output"), "expect.output").map((n, i) => ({ text: r.str(n, `expect.output[${i}]`), line: r.line(n) }));
    }
    if (e.has("mapPages")) {
      expect.mapPages = r.int(e.get("mapPages"), "expect.mapPages", 1, 1 << 20);
      expect.mapPagesLine = r.line(e.get("mapPages"));
    }
    if (e.has("owners")) {
      expect.owners = r.seq(e.get("owners"), "expect.owners").map((n, i) => {
        const f = `expect.owners[${i}]`;
        const o = r.map(n, f, ["address", "is"], ["address", "is"]);
        return { address: r.bytes(o.get("address"), `${f}.address`), is: r.str(o.get("is"), `${f}.is`), line: r.line(n) };
      });
    }
  }
  return { file, ...(top.has("name") ? { name: r.str(top.get("name"), "name") } : {}), host, ...(platform ? { platform } : {}), operations, expect };
}

export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "EISDIR" ? "is a directory; give a scenario file (YAML or JSON)" : `cannot read: ${(e as Error).message}`;
    throw new ScenarioError(file, 0, "(file)", why);
  }
  return parseScenario(text, file);
}
