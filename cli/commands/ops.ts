// `uvt ops`: the operations partition from the command line (docs/specs/operations.md; ops/): create a store from
// an estate file, define partitions, list them, move them through the life cycle, export the definitions, and serve
// the web console. A STORE is a folder (the crash-safe definition store, ops/store/); commands that only read also
// take an estate FILE, loaded into a store in memory. Refusals are one line, `uvt ops SUB: what (where, what to do)`,
// exit 2.
import { existsSync, statSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";
import { parseBytes } from "../../core/mapview.ts";
import { loadEstate, readEstateFile } from "../../ops/estate.ts";
import { ACTIONS } from "../../ops/lifecycle.ts";
import { OpsError, type PartitionDefinition, ZONE_TYPES, type ZoneRef } from "../../ops/model.ts";
import { PolicyService } from "../../ops/policy.ts";
import { FileStore, StoreCorrupt, StoreRefused, type DefinitionStore } from "../../ops/store/store.ts";
import { NodeFs } from "../../ops/store/fs.ts";
import { StoreFenced, StoreOutcomeUnknown } from "../../ops/store/etcd-store.ts";
import { PowerCutFs } from "../../ops/store/power-cut.ts";

const SUBS: Record<string, { usage: string; help: string }> = {
  init: { usage: "uvt ops init STORE ESTATE-FILE", help: "Creates the store folder STORE (must be empty or absent) from an estate file (examples/ops/figure13.yaml):\nits zones, hosts and domains, and its partitions with their `then:` actions applied." },
  list: { usage: "uvt ops list STORE-or-FILE [--json]", help: "Lists the partition definitions: domain, name, stage, state, host, configuration, GUID.\n  --json   one JSON document { partitions: [...] } (the stored definitions)" },
  define: {
    usage: "uvt ops define STORE --name NAME --domain DOMAIN [--template T] [--channels type:zone,...] [--config NAME] [--memory SIZE] [--vcpus N] [--guid GUID] [--stage construction|template] [--json]",
    help: "Defines a partition in the construction stage ([0305]), or a template (--stage template: no memory or VCPUs,\n[0311]), or clones template T (its channels). With --memory a configuration (default name Default, --vcpus\ndefault 1) is added. Refused with a reason, nothing stored: a duplicate GUID or name, zones no host of the domain\noffers, a template given memory.",
  },
  transition: { usage: `uvt ops transition STORE NAME-or-GUID ACTION [--json]`, help: `Moves a partition through the life cycle (docs/specs/operations.md §2). ACTION: ${ACTIONS.join(", ")}.\nstart places it on a host of its domain offering its zones, through that host's command partition.` },
  export: { usage: "uvt ops export STORE-or-FILE [-o FILE] [--json]", help: "Writes the estate and every stored definition as one document (YAML, or JSON with --json) to FILE or stdout\n([0188]: scripted export of partition definitions)." },
  failover: {
    usage: "uvt ops failover [--partitions N] [--ttl SECONDS] [--pause] [--json]",
    help: "Runs the redundant operations service (claim 47; docs/specs/operations.md §7) and kills its active process:\nstarts a three-member etcd cluster on loopback ports (Debian's etcd-server; data in temporary folders, all stopped\nand removed at the end), writes a two-host estate into it, starts two service processes that define, provision\nand start N partitions (default 24), SIGKILLs the active one a third of the way (--pause: SIGSTOP, then wakes it\nafter the takeover — its commits must be refused), and prints how long the standby took to become active (lease\nTTL default 2 s). Then it reads the store: every partition present and started once, or exit 1.\n  --json   the measurements as one JSON object",
  },
  serve: { usage: "uvt ops serve [--port N] [--host ADDR] [--store DIR] STORE-or-FILE", help: "Serves the operations console ([0096]) on http://ADDR:N/ (default 127.0.0.1:8080; --port 0 picks a free one):\ndomains, hosts with their memory map and schedule, partitions with stage and state; define from a template and\nmove through the life cycle. A FILE is loaded into --store DIR (default: a new folder in the temp directory)." },
};

const help = `Usage: uvt ops SUBCOMMAND ... (uvt ops SUBCOMMAND --help for each)

The operations partition (docs/specs/operations.md): partition definitions with GUIDs and configurations in a
crash-safe store (a folder per domain, one checksummed file per partition, a journal), a policy service placing
them on simulated hosts by zones through each host's command partition, and a web console.

${Object.values(SUBS).map((s) => `  ${s.usage}`).join("\n")}

A STORE may also be an etcd cluster (docs/specs/operations.md §7): etcd://HOST:PORT[,HOST:PORT...][/PREFIX], the
definitions under PREFIX/ (default uv-ops/); the folder store stays the default.

Examples: uvt ops serve examples/ops/figure13.yaml
          uvt ops init /tmp/estate examples/ops/figure13.yaml && uvt ops transition /tmp/estate G3 start`;

const isStore = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/** Clients of etcd stores opened by this command: closed when it ends (an open gRPC channel keeps Node running). */
const etcdClients: Array<{ close(): void }> = [];
/** How long the first read of an etcd store may take before the cluster is called unreachable. */
const ETCD_FIRST_ANSWER_MS = 8000;

/**
 * A STORE written etcd://HOST:PORT[,HOST:PORT...][/PREFIX]: the definitions store on an etcd cluster
 * (docs/specs/operations.md §7; default prefix uv-ops/). undefined when `path` is not such a URL.
 */
async function etcdStore(path: string, sub: string): Promise<DefinitionStore | undefined> {
  const m = /^etcd:\/\/([^/]*)(?:\/(.*))?$/.exec(path);
  if (!m) return undefined;
  const hosts = m[1]!.split(",");
  for (const h of hosts) if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(h)) throw new UsageError(`${sub}: ${path}: "${h}" is not HOST:PORT (write etcd://127.0.0.1:2379[,HOST:PORT...][/PREFIX])`);
  const prefix = `${(m[2] ?? "uv-ops").replace(/\/+$/, "") || "uv-ops"}/`;
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/$/.test(prefix)) throw new UsageError(`${sub}: ${path}: prefix "${prefix}" may hold letters, digits, _ . - and /`);
  const { Etcd3 } = await import("etcd3");
  const { EtcdStore } = await import("../../ops/store/etcd-store.ts");
  const { withTimeout } = await import("../../ops/store/etcd-cluster.ts");
  const client = new Etcd3({ hosts: hosts.map((h) => `http://${h}`), dialTimeout: 3000 });
  etcdClients.push(client);
  const store = new EtcdStore(client, prefix);
  try {
    await withTimeout(store.load(), ETCD_FIRST_ANSWER_MS);
  } catch (e) {
    if (e instanceof StoreCorrupt) throw e;
    throw new OpsError(`${path}: no answer from the etcd cluster within ${ETCD_FIRST_ANSWER_MS / 1000} s (${(e as Error).message}); is etcd running there? (\`uvt ops failover\` starts a cluster of its own)`);
  }
  return store;
}

/** A store folder, or an estate file loaded into a store in memory. */
async function openAny(path: string | undefined, sub: string): Promise<{ store: DefinitionStore; ps?: PolicyService }> {
  if (!path) throw new UsageError(`${sub}: give a STORE folder or an estate FILE (uvt ops ${sub} --help)`);
  const etcd = await etcdStore(path, sub);
  if (etcd) return { store: etcd };
  if (isStore(path)) return { store: new FileStore(new NodeFs(path)) };
  if (!existsSync(path)) throw new UsageError(`${sub}: ${path} does not exist (give a STORE folder made by uvt ops init, or an estate FILE)`);
  const store = new FileStore(new PowerCutFs());
  return { store, ps: await loadEstate(store, readEstateFile(path)) };
}

async function openStore(path: string | undefined, sub: string): Promise<DefinitionStore> {
  const etcd = path === undefined ? undefined : await etcdStore(path, sub);
  if (etcd) return etcd;
  if (!path || !isStore(path)) throw new UsageError(`${sub}: ${path ?? "(none)"} is not a store folder (create one with uvt ops init STORE ESTATE-FILE)`);
  return new FileStore(new NodeFs(path));
}

function channelsArg(text: string | undefined): ZoneRef[] | undefined {
  if (text === undefined) return undefined;
  return text.split(",").filter(Boolean).map((t) => {
    const [type, zone] = t.split(":");
    if (!type || !zone || !(ZONE_TYPES as readonly string[]).includes(type)) throw new UsageError(`define: --channels ${t}: write type:zone with type one of ${ZONE_TYPES.join(", ")}`);
    return { type: type as ZoneRef["type"], zone };
  });
}

function table(defs: PartitionDefinition[]): string {
  const rows = [["DOMAIN", "NAME", "STAGE", "STATE", "HOST", "CONFIG", "GUID"], ...defs.map((d) => [d.domain, d.name, d.stage, d.state, d.placement?.host ?? "-", d.active ?? d.configurations[0]?.name ?? "-", d.guid])];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd()).join("\n");
}

async function defsOf(store: DefinitionStore): Promise<PartitionDefinition[]> {
  return [...(await store.load()).domains.values()].flatMap((m) => [...m.values()]).sort((a, b) => a.domain.localeCompare(b.domain) || a.name.localeCompare(b.name));
}

async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) throw new UsageError("give a subcommand: init, list, define, transition, export, failover or serve (uvt ops --help)");
  const s = SUBS[sub];
  if (!s) throw new UsageError(`unknown subcommand '${sub}' (known: ${Object.keys(SUBS).join(", ")})`);
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`Usage: ${s.usage}\n\n${s.help}`);
    return 0;
  }
  try {
    return await runSub(sub, rest);
  } catch (e) {
    if (e instanceof StoreOutcomeUnknown || e instanceof StoreFenced) {
      // Not a bad request: the cluster lost its majority (the batch may still land) or another writer holds it.
      console.error(`uvt ops ${sub}: ${e.message}`);
      return 1;
    }
    if (e instanceof OpsError || e instanceof StoreCorrupt || e instanceof StoreRefused) {
      console.error(e.message.split("\n").map((l) => `uvt ops ${sub}: ${l}`).join("\n"));
      return 2;
    }
    if (e instanceof UsageError) throw new UsageError(`${sub}: ${e.message.replace(new RegExp(`^${sub}: `), "")}`);
    throw e;
  } finally {
    for (const c of etcdClients.splice(0)) c.close();
  }
}

async function runSub(sub: string, rest: string[]): Promise<number> {
  if (sub === "init") {
    const a = parseArgs(rest, {});
    const [dir, file] = a.positionals;
    if (!dir || !file || a.positionals.length > 2) throw new UsageError("give STORE and ESTATE-FILE");
    const etcd = await etcdStore(dir, sub);
    if (!etcd && isStore(dir) && new NodeFs(dir).list("").length > 0) throw new UsageError(`${dir} is not empty: init creates a new store (choose a new folder)`);
    const e = readEstateFile(file);
    const ps = await loadEstate(etcd ?? new FileStore(new NodeFs(dir)), e);
    console.log(`${dir}: estate ${e.name}, ${ps.definitions().length} definition(s)`);
    return 0;
  }
  if (sub === "list") {
    const a = parseArgs(rest, { booleans: ["json"] });
    if (a.positionals.length !== 1) throw new UsageError("give one STORE or FILE");
    const { store } = await openAny(a.positionals[0], sub);
    const defs = await defsOf(store);
    console.log(a.bools.has("json") ? JSON.stringify({ partitions: defs }, null, 2) : table(defs));
    return 0;
  }
  if (sub === "export") {
    const a = parseArgs(rest, { values: ["out:o"], booleans: ["json"] });
    if (a.positionals.length !== 1) throw new UsageError("give one STORE or FILE");
    const { store } = await openAny(a.positionals[0], sub);
    const doc = { format: "uv-ops-export/1", estate: (await store.load()).estate, partitions: await defsOf(store) };
    const text = a.bools.has("json") ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc);
    const out = a.flags.get("out");
    if (out) writeFileSync(out, text);
    else process.stdout.write(text);
    return 0;
  }
  if (sub === "define") {
    const a = parseArgs(rest, { values: ["name", "domain", "template", "channels", "config", "memory", "vcpus", "guid", "stage"], booleans: ["json"] });
    if (a.positionals.length !== 1) throw new UsageError("give one STORE");
    const name = a.flags.get("name");
    const domain = a.flags.get("domain");
    if (!name || !domain) throw new UsageError("--name and --domain are required");
    const stage = a.flags.get("stage");
    if (stage !== undefined && stage !== "construction" && stage !== "template") throw new UsageError(`--stage ${stage}: construction or template`);
    let memory: number | undefined;
    if (a.flags.has("memory")) {
      try {
        memory = Number(parseBytes(a.flags.get("memory")!));
      } catch (e) {
        throw new UsageError(`--memory: ${(e as Error).message}`);
      }
    }
    const vcpus = a.flags.has("vcpus") ? Number(a.flags.get("vcpus")) : stage === "template" ? 0 : 1;
    const ps = await PolicyService.open(await openStore(a.positionals[0], sub));
    const channels = channelsArg(a.flags.get("channels"));
    const d = await ps.define({
      name, domain,
      ...(a.flags.has("template") ? { template: a.flags.get("template")! } : {}),
      ...(channels ? { channels } : {}),
      ...(a.flags.has("guid") ? { guid: a.flags.get("guid")! } : {}),
      ...(stage ? { stage: stage as "construction" | "template" } : {}),
      ...(memory !== undefined || a.flags.has("config") ? { configurations: [{ name: a.flags.get("config") ?? "Default", memory: memory ?? 0, vcpus }] } : {}),
    });
    console.log(a.bools.has("json") ? JSON.stringify(d, null, 2) : `${d.name} ${d.guid}: ${d.stage}, ${d.state}`);
    return 0;
  }
  if (sub === "transition") {
    const a = parseArgs(rest, { booleans: ["json"] });
    if (a.positionals.length !== 3) throw new UsageError("give STORE, NAME-or-GUID and ACTION");
    const [dir, id, action] = a.positionals as [string, string, string];
    const ps = await PolicyService.open(await openStore(dir, sub));
    const d = await ps.transition(id, action);
    console.log(a.bools.has("json") ? JSON.stringify(d, null, 2) : `${d.name}: ${action} → ${d.stage}, ${d.state}${d.placement ? ` on ${d.placement.host} as partition ${d.placement.partition}` : ""}`);
    return 0;
  }
  if (sub === "failover") return failover(rest);
  // serve
  const a = parseArgs(rest, { values: ["port", "host", "store"] });
  if (a.positionals.length !== 1) throw new UsageError("give one STORE or FILE");
  const port = Number(a.flags.get("port") ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${a.flags.get("port")}: a port number 0–65535`);
  const src = a.positionals[0]!;
  let ps: PolicyService;
  const etcd = await etcdStore(src, "serve");
  if (etcd) ps = await PolicyService.open(etcd);
  else if (isStore(src)) ps = await PolicyService.open(new FileStore(new NodeFs(src)));
  else {
    if (!existsSync(src)) throw new UsageError(`${src} does not exist (give a STORE folder or an estate FILE)`);
    const dir = a.flags.get("store") ?? mkdtempSync(join(tmpdir(), "uv-ops-store-"));
    if (isStore(dir) && new NodeFs(dir).list("").length > 0) throw new UsageError(`--store ${dir} is not empty (serve it as STORE, or choose a new folder)`);
    ps = await loadEstate(new FileStore(new NodeFs(dir)), readEstateFile(src));
    console.error(`uvt ops serve: store ${dir}`);
  }
  const { consoleServer } = await import("../../ops/console/server.ts");
  const server = consoleServer(ps);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, a.flags.get("host") ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const where = typeof addr === "object" && addr ? `http://${addr.address}:${addr.port}/` : String(addr);
  console.log(`operations console on ${where}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}

async function failover(rest: string[]): Promise<number> {
  const a = parseArgs(rest, { values: ["partitions", "ttl"], booleans: ["pause", "json"] });
  if (a.positionals.length) throw new UsageError(`takes no positional arguments (got ${a.positionals.join(" ")})`);
  const count = Number(a.flags.get("partitions") ?? 24);
  if (!Number.isInteger(count) || count < 3 || count > 200) throw new UsageError(`--partitions ${a.flags.get("partitions")}: an integer 3–200`);
  const ttl = Number(a.flags.get("ttl") ?? 2);
  if (!Number.isInteger(ttl) || ttl < 2 || ttl > 60) throw new UsageError(`--ttl ${a.flags.get("ttl")}: whole seconds 2–60 (etcd's smallest lease is about 2 s)`);
  const json = a.bools.has("json");
  const { runFailover, workName } = await import("../../ops/failover.ts");
  const { EtcdMissing } = await import("../../ops/store/etcd-cluster.ts");
  let r;
  try {
    r = await runFailover({ count, ttl, how: a.bools.has("pause") ? "pause" : "kill", print: json ? undefined : (l) => console.log(l) });
  } catch (e) {
    if (e instanceof EtcdMissing) throw new OpsError(e.message);
    throw e;
  }
  const byName = new Map(r.definitions.map((d) => [d.name, d]));
  const wrong: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = byName.get(workName(i));
    const starts = d?.history.filter((h) => h.what.startsWith("start on ")).length ?? 0;
    if (!d) wrong.push(`${workName(i)} missing`);
    else if (d.state !== "running" || starts !== 1) wrong.push(`${d.name}: ${d.state}, started ${starts} time(s)`);
  }
  if (a.bools.has("pause") && r.resumed?.code !== 3) wrong.push(`the woken service was not fenced (exit ${r.resumed?.code})`);
  const summary = { partitions: count, ttl_s: ttl, takeover_ms: r.takeoverMs, open_ms: r.openedMs, starts_before: r.startsBefore, starts_after: r.startsAfter, definitions: r.definitions.length, problems: wrong };
  if (json) console.log(JSON.stringify(summary));
  else console.log(wrong.length ? `FAILED: ${wrong.join("; ")}` : `ok: ${count} definitions present, each started once; standby active ${r.takeoverMs} ms after the signal (TTL ${ttl} s)`);
  return wrong.length ? 1 : 0;
}

const ops: Command = { name: "ops", summary: "the operations partition: definitions, life cycle, placement, web console", help, subcommands: true, run };
export default ops;
