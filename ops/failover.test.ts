// The redundant operations service and host liveness on a real three-member etcd cluster (claim 47;
// docs/specs/operations.md §7): two service processes work through one list of partitions; the active one is killed
// (SIGKILL) or frozen (SIGSTOP) mid-run; the standby must become active within the lease's bound, and the store —
// read here after the run — must hold every partition of the list, each started exactly once (one "start on" entry
// in its history, no name in both services' start reports), each at the placement its starter reported. A frozen service that wakes after the
// takeover must find its commits refused. Hosts announced by a process that is then killed must be reported down by
// the watch within their lease's TTL plus slack (and not before a third of it: nothing told the cluster at once).
// Each test starts its own cluster and stops it; a missing `etcd` binary fails the test.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEstate } from "./estate.ts";
import { FAILOVER_ESTATE, type FailoverResult, runFailover, spawnChild, workName } from "./failover.ts";
import { type HostEvent, HostWatcher } from "./liveness.ts";
import { EtcdCluster } from "./store/etcd-cluster.ts";
import { EtcdStore } from "./store/etcd-store.ts";

const COUNT = 24;
const TTL = 2;
/** TTL, plus etcd's lease-expiry check (every 500 ms), the standby's 100 ms poll and a loaded two-core machine. */
const BOUND_MS = TTL * 1000 + 4000;

function checkStore(r: FailoverResult): void {
  const byName = new Map(r.definitions.map((d) => [d.name, d]));
  const want = Array.from({ length: COUNT }, (_, i) => workName(i));
  expect([...byName.keys()].sort()).toEqual([...want].sort());
  for (const n of want) {
    const d = byName.get(n)!;
    expect([d.stage, d.state], n).toEqual(["provisioning", "running"]);
    expect(d.history.filter((h) => h.what.startsWith("start on ")), `${n}: starts in its history`).toHaveLength(1);
  }
  // Each start a service reported is the placement the store holds for that partition, and no name was started by
  // both services. (Slots are compared per service: each process simulates its own hosts, so the taker-over's hosts
  // are new ones and their partition numbers start again — §7.)
  const names = r.starts.map((s) => s.name);
  expect(new Set(names).size).toBe(names.length);
  for (const s of r.starts) expect(byName.get(s.name)!.placement, s.name).toEqual({ host: s.host, partition: s.partition });
  for (const by of ["ops-1", "ops-2"]) {
    const slots = r.starts.filter((s) => s.by === by).map((s) => `${s.host}/${s.partition}`);
    expect(new Set(slots).size, by).toBe(slots.length);
  }
  // The starts split between the two services. A line is printed after its commit returned, so the one start the
  // first service may have committed just before the signal can be in the store without a line: COUNT or COUNT-1.
  expect(r.startsBefore).toBeGreaterThanOrEqual(COUNT / 3);
  expect(r.startsAfter).toBeGreaterThan(0);
  expect([COUNT - 1, COUNT]).toContain(r.startsBefore + r.startsAfter);
}

describe("redundant operations service (claim 47)", () => {
  it(`the active service killed (SIGKILL) mid-run: the standby is active within ${BOUND_MS} ms, every definition present, none started twice`, async () => {
    const r = await runFailover({ count: COUNT, ttl: TTL, how: "kill" });
    expect(r.takeoverMs).toBeLessThan(BOUND_MS);
    checkStore(r);
  }, 120_000);

  it("the active service frozen (SIGSTOP) past its lease: the standby takes over; woken, the old one's commit is fenced and it exits", async () => {
    const r = await runFailover({ count: COUNT, ttl: TTL, how: "pause" });
    expect(r.takeoverMs).toBeLessThan(BOUND_MS);
    expect(r.resumed!.code).toBe(3);
    // Woken, it either learns first that its lease is gone (etcd3's keep-alive answer) or tries a commit and is
    // refused by the fence; either way it stops without a start (the fence alone: store.test.ts).
    expect(r.resumed!.lines.join("\n")).toMatch(/^fenced ops-1 (failover\/leader is no longer held|lease lost)/m);
    expect(r.resumed!.lines.filter((l) => l.startsWith("start "))).toEqual([]);
    checkStore(r);
  }, 120_000);
});

describe("host liveness by lease", () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await EtcdCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 30_000);

  it("hosts of a process killed with SIGKILL go down within their TTL; a host that shuts down cleanly goes at once", async () => {
    const client = cluster.client();
    const events: HostEvent[] = [];
    const w = await HostWatcher.start(client, "live/", (e) => events.push(e));
    const ttl = 3;
    const a = spawnChild(["host", cluster.endpoints.join(","), "live/", String(ttl), "H1", "H2"]);
    const b = spawnChild(["host", cluster.endpoints.join(","), "live/", String(ttl), "H3"]);
    try {
      await a.waitFor(/^announced H2/, 30_000);
      await b.waitFor(/^announced H3/, 30_000);
      const until = async (pred: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        return pred();
      };
      expect(await until(() => w.alive.size === 3, 5000)).toBe(true);
      expect([...w.alive].sort()).toEqual(["H1", "H2", "H3"]);
      // Let a keep-alive or two pass, so the leases were renewed while the process lived.
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = Date.now();
      await a.kill("SIGKILL");
      expect(await until(() => !w.alive.has("H1") && !w.alive.has("H2"), ttl * 1000 + 3000)).toBe(true);
      const down = events.filter((e) => !e.up && (e.host === "H1" || e.host === "H2")).map((e) => e.at - t0);
      expect(down).toHaveLength(2);
      for (const ms of down) {
        // Not at once (nothing told the cluster), but after the lease ran out: renewals come every TTL/3, and on a
        // loaded machine one may come late, so the bound is a third of the TTL.
        expect(ms).toBeGreaterThanOrEqual((ttl * 1000) / 3);
        expect(ms).toBeLessThan(ttl * 1000 + 3000);
      }
      expect(w.alive.has("H3")).toBe(true);
      // The keys are gone in the cluster itself, not only in the watcher's view.
      expect(await client.getAll().prefix("live/hosts/").keys()).toEqual(["live/hosts/H3"]);
      const t1 = Date.now();
      await b.kill("SIGTERM");
      expect(await until(() => !w.alive.has("H3"), 1500)).toBe(true);
      expect(Date.now() - t1).toBeLessThan(1500);
      await b.exited;
    } finally {
      await a.kill("SIGKILL");
      await b.kill("SIGKILL");
      await w.close();
      client.close();
    }
  }, 60_000);
});

describe("host liveness drives the operations service", () => {
  it("a host's process killed: when its lease expires the active service places its partitions again on the other host, stored", async () => {
    const cluster = await EtcdCluster.start();
    const client = cluster.client();
    const ep = cluster.endpoints.join(",");
    const procs = [spawnChild(["host", ep, "rehost/", "2", "A"]), spawnChild(["host", ep, "rehost/", "2", "B"])];
    try {
      await loadEstate(new EtcdStore(client, "rehost/"), FAILOVER_ESTATE);
      const [hostA, hostB] = procs as [ReturnType<typeof spawnChild>, ReturnType<typeof spawnChild>];
      await hostA.waitFor(/^announced A/, 30_000);
      await hostB.waitFor(/^announced B/, 30_000);
      const svc = spawnChild(["service", ep, "rehost/", "ops-1", "8", "5", "2"]);
      procs.push(svc);
      await svc.waitFor(/^opened ops-1/, 30_000);
      await client.put("rehost/go").value("1");
      await svc.waitFor(/^done ops-1/, 60_000);
      const onA = svc.lines.filter((l) => / A \d+$/.test(l) && l.startsWith("start ")).map((l) => l.split(" ")[2]!);
      expect(onA.length).toBeGreaterThan(0);
      await hostA.kill("SIGKILL");
      await svc.waitFor(/^host A down/, 10_000);
      for (const n of onA) await svc.waitFor(new RegExp(`^rehost ops-1 ${n}: re-hosted from A to B as partition \\d+ \\(A: its lease expired\\)$`), 10_000);
      const st = await new EtcdStore(client, "rehost/").load();
      const defs = [...st.domains.values()].flatMap((m) => [...m.values()]);
      expect(defs).toHaveLength(8);
      for (const d of defs) {
        expect([d.state, d.placement?.host], d.name).toEqual(["running", "B"]);
        expect(d.history.filter((h) => h.what.startsWith("start on ")), d.name).toHaveLength(1);
        expect(d.history.some((h) => h.what.startsWith("re-hosted from A to B")), d.name).toBe(onA.includes(d.name));
      }
      expect(svc.lines.some((l) => l.startsWith("host B down"))).toBe(false);
    } finally {
      for (const p of procs) await p.kill("SIGKILL");
      client.close();
      await cluster.stop();
    }
  }, 90_000);
});
