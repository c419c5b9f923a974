// The data center on real etcd leases (live.ts; docs/specs/operations.md §7): a three-member cluster started here,
// a host of the small example failing at 1 s. The oracle for where its partitions go is the deterministic run of
// the same scenario (simulated heartbeats): placement and re-hosting are the same code and nothing else happens in
// between, so both runs must re-host and lose the same partitions to the same hosts. What the live run adds is
// timing by a real lease: the failure is noticed not at once (no sooner than a third of the TTL after the host fell
// silent: renewals come every TTL/3, one may be late on a loaded machine) and within TTL plus etcd's expiry check
// and a loaded machine's slack.
// Every host key is gone from the cluster afterwards. A missing `etcd` binary fails the test.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { EtcdCluster } from "../ops/store/etcd-cluster.ts";
import { DataCenter, type DcEvent } from "./datacenter.ts";
import { runLive } from "./live.ts";
import { checkScenario } from "./scenario.ts";

const root = join(import.meta.dirname, "..");

describe("data center on etcd leases", () => {
  it("H2 falls silent at 1 s: its lease expires within the TTL bound, and its partitions go where the deterministic run sends them", async () => {
    const doc = parse(readFileSync(join(root, "examples", "dc", "small.yaml"), "utf8")) as Record<string, unknown>;
    // The example without its migration, and shorter: only the failure.
    const scenario = checkScenario({ ...doc, until: 7000, events: [{ at: 1000, fail: "H2" }] });
    const outcome = (events: DcEvent[]) => events.filter((e) => e.kind === "rehosted" || e.kind === "lost").map((e) => [e.kind, e.partition, e.from, e.to ?? null, e.kind === "lost" ? e.reason : null]);
    const sim = (await DataCenter.create(scenario)).run();
    expect(outcome(sim.events).length).toBeGreaterThan(0);

    const cluster = await EtcdCluster.start();
    const client = cluster.client();
    try {
      const ttl = 2;
      const live = await runLive(scenario, client, { prefix: "dc/", ttl });
      const failed = live.events.find((e) => e.kind === "host-failed")!;
      const expired = live.events.filter((e) => e.kind === "lease-expired");
      expect(expired.map((e) => e.host)).toEqual(["H2"]);
      const after = expired[0]!.t - failed.t;
      expect(after).toBeGreaterThanOrEqual((ttl * 1000) / 3);
      expect(after).toBeLessThan(ttl * 1000 + 2500);
      expect(expired[0]!.reason).toMatch(/^its etcd lease \(TTL 2 s\) expired; \d+ partition\(s\) to re-host$/);
      expect(outcome(live.events)).toEqual(outcome(sim.events));
      // The hosts' databases agree with the outcome: a re-hosted partition is in its new host's database only.
      for (const e of live.events.filter((x) => x.kind === "rehosted")) {
        expect(live.hosts.get(e.to!)!.platform.rs.names().has(e.partition!), `${e.partition} on ${e.to}`).toBe(true);
      }
      expect(await client.getAll().prefix("dc/hosts/").keys()).toEqual([]);
    } finally {
      client.close();
      await cluster.stop();
    }
  }, 90_000);
});
