// `uvt ops` end to end through the real entry point (cli/uvt.js): init a store folder from the example estate,
// define, list and export with --json, move a partition through the life cycle, and the refusals (exit 2, one line
// saying what, where and what to do, and the store unchanged, read back from its folder by the store itself); the
// same commands over a STORE on an etcd cluster this file starts; `uvt ops failover`.
import { execa } from "execa";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { PartitionDefinition } from "../../ops/model.ts";
import { EtcdCluster } from "../../ops/store/etcd-cluster.ts";
import { EtcdStore } from "../../ops/store/etcd-store.ts";

const root = join(import.meta.dirname, "..", "..");
const uvt = (args: string[]) => execa("node", ["cli/uvt.js", "ops", ...args], { cwd: root, reject: false });
const scratch = mkdtempSync(join(tmpdir(), "uvt-ops-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const store = join(scratch, "store");

async function listJson(): Promise<PartitionDefinition[]> {
  const r = await uvt(["list", store, "--json"]);
  expect(r.exitCode, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { partitions: PartitionDefinition[] }).partitions;
}

describe("uvt ops", () => {
  it("every subcommand has --help; bad input exits 2 naming what to do", async () => {
    for (const sub of ["init", "list", "define", "transition", "export", "failover", "serve"]) {
      const r = await uvt([sub, "--help"]);
      expect([r.exitCode, r.stdout.split("\n")[0]]).toEqual([0, expect.stringMatching(new RegExp(`^Usage: uvt ops ${sub} `))]);
    }
    const top = await uvt(["--help"]);
    expect(top.stdout).toMatch(/^Usage: uvt ops SUBCOMMAND/);
    const bad = await uvt(["frobnicate"]);
    expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, "uvt ops: unknown subcommand 'frobnicate' (known: init, list, define, transition, export, failover, serve)"]);
    const flag = await uvt(["list", "examples/ops/small.yaml", "--colour"]);
    expect([flag.exitCode, flag.stderr.trim()]).toEqual([2, "uvt ops: list: unknown option --colour (known: --json)"]);
    const missing = await uvt(["transition", join(scratch, "nowhere"), "svc", "start"]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain("is not a store folder (create one with uvt ops init STORE ESTATE-FILE)");
  }, 240_000); // ten process starts: tsx start-up is slow on a loaded 2-core machine

  it("failover: the README's command runs a cluster, kills the active service and reports the takeover; bad options exit 2", async () => {
    const bad = await uvt(["failover", "--ttl", "1"]);
    expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, "uvt ops: failover: --ttl 1: whole seconds 2–60 (etcd's smallest lease is about 2 s)"]);
    const r = await uvt(["failover", "--partitions", "9", "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { definitions: number; takeover_ms: number; starts_before: number; starts_after: number; problems: string[] };
    expect(s.problems).toEqual([]);
    expect(s.definitions).toBe(9);
    expect(s.starts_before).toBeGreaterThan(0);
    expect(s.takeover_ms).toBeLessThan(5000);
  }, 120_000);

  it("a STORE on etcd (etcd://HOST:PORT,.../PREFIX): init, transition and list through the cluster; the store read back directly", async () => {
    const cluster = await EtcdCluster.start();
    const client = cluster.client();
    try {
      const url = `etcd://${cluster.endpoints.map((e) => e.replace("http://", "")).join(",")}/cli-test`;
      const init = await uvt(["init", url, "examples/ops/small.yaml"]);
      expect([init.exitCode, init.stdout], init.stderr).toEqual([0, `${url}: estate Small lab, 3 definition(s)`]);
      const stop = await uvt(["transition", url, "svc", "stop"]);
      expect([stop.exitCode, stop.stdout], stop.stderr).toEqual([0, "svc: stop → operating, stopped"]);
      const list = await uvt(["list", url, "--json"]);
      const defs = (JSON.parse(list.stdout) as { partitions: PartitionDefinition[] }).partitions;
      expect(defs.map((d) => [d.name, d.state])).toEqual([["base", "disabled"], ["batch", "stopped"], ["svc", "stopped"]]);
      // The cluster holds them under the prefix, read without the CLI.
      const st = await new EtcdStore(client, "cli-test/").load();
      expect([...st.domains.get("Lab")!.values()].find((d) => d.name === "svc")!.state).toBe("stopped");
      const again = await uvt(["init", url, "examples/ops/small.yaml"]);
      expect([again.exitCode, again.stderr.trim()]).toEqual([2, "uvt ops init: the store holds an estate already"]);
      const bad = await uvt(["list", "etcd://no host/x"]);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toContain('"no host" is not HOST:PORT');
    } finally {
      client.close();
      await cluster.stop();
    }
  }, 120_000);

  it("init → define → transition → list/export, and refusals that change nothing", async () => {
    const init = await uvt(["init", store, "examples/ops/small.yaml"]);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(readdirSync(join(store, "domains", "Lab")).filter((f) => f.endsWith(".json"))).toHaveLength(3);

    const def = await uvt(["define", store, "--name", "web1", "--domain", "Lab", "--template", "base", "--memory", "64 MB", "--json"]);
    expect(def.exitCode, def.stderr).toBe(0);
    const web1 = JSON.parse(def.stdout) as PartitionDefinition;
    expect([web1.stage, web1.state, web1.channels.map((c) => `${c.type}:${c.zone}`)]).toEqual(["construction", "uninstalled", ["network:LAN", "console:Serial"]]);
    expect(JSON.parse(readFileSync(join(store, "domains", "Lab", `${web1.guid}.json`), "utf8")).data.name).toBe("web1");

    for (const action of ["provision", "start"]) {
      const t = await uvt(["transition", store, "web1", action, "--json"]);
      expect(t.exitCode, t.stderr).toBe(0);
    }
    const started = (await listJson()).find((d) => d.name === "web1")!;
    expect([started.stage, started.state]).toEqual(["provisioning", "running"]);
    expect(started.placement!.host).toBe("B"); // the only host with console:Serial

    const before = await listJson();
    const refusals: Array<[string[], string]> = [
      [["transition", store, "web1", "decommission"], "uvt ops transition: web1: decommission is not allowed in stage provisioning (state running); it is allowed from disabled"],
      [["define", store, "--name", "T2", "--domain", "Lab", "--stage", "template", "--memory", "64 MB"], "uvt ops define: T2: a template never has processors or memory assigned ([0311]); configuration Default gives 64 MB"],
      [["define", store, "--name", "x", "--domain", "Lab", "--guid", web1.guid], `uvt ops define: GUID ${web1.guid} is already the GUID of web1 (every definition has its own)`],
      [["define", store, "--name", "x", "--domain", "Lab", "--channels", "storage:SAN,console:Serial", "--memory", "8 MB"], "uvt ops define: x (configuration Default): no host of domain Lab offers every zone it needs: A lacks console:Serial; B lacks storage:SAN"],
    ];
    for (const [args, line] of refusals) {
      const r = await uvt(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr.trim()).toBe(line);
    }
    expect(await listJson()).toEqual(before);

    const exp = await uvt(["export", store, "--json"]);
    expect(exp.exitCode).toBe(0);
    const doc = JSON.parse(exp.stdout) as { format: string; estate: { name: string }; partitions: PartitionDefinition[] };
    expect([doc.format, doc.estate.name, doc.partitions.map((p) => p.name)]).toEqual(["uv-ops-export/1", "Small lab", ["base", "batch", "svc", "web1"]]);
  }, 300_000);

  it("a corrupt definition file: exit 2 with the file's path", async () => {
    const d = join(scratch, "corrupt");
    expect((await uvt(["init", d, "examples/ops/small.yaml"])).exitCode).toBe(0);
    const dir = join(d, "domains", "Lab");
    const f = readdirSync(dir).find((x) => x.endsWith(".json"))!;
    writeFileSync(join(dir, f), readFileSync(join(dir, f), "utf8").replace('"Lab"', '"Lab2"'));
    const r = await uvt(["list", d]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe(`uvt ops list: domains/Lab/${f}: corrupt store file: checksum mismatch (restore it from a backup, or remove it to drop that definition)`);
  }, 60_000);
});
