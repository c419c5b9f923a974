// One process of the redundant operations service, or one announcing host (layer: ops/; started by failover.ts, the
// tests and the failover example, docs/specs/operations.md §7). Lines on stdout, each written after what it reports
// is committed: `standby ID`, `active ID REVISION`, `opened ID DEFINITIONS`, `define|provision|start ID NAME ...`,
// `host NAME up|down`, `rehost ID NAME: ...` (a lost host's partition placed again), `done ID`. The active one
// begins the list once PREFIX/go exists. `fenced ID` (exit 3): its commits are refused because another service is
// active; `unknown ID` (exit 3): a commit got no answer from a majority (it may still land: the state must be
// loaded again).
//   service ENDPOINTS PREFIX ID COUNT STEP-MS TTL
//   host ENDPOINTS PREFIX TTL NAME...
import { writeSync } from "node:fs";
import { Etcd3 } from "etcd3";
import { HostAnnouncement, HostWatcher } from "./liveness.ts";
import { OperationsService } from "./service.ts";
import { StoreFenced, StoreOutcomeUnknown } from "./store/etcd-store.ts";
import { WORK_DOMAIN, WORK_ZONE, workGuid, workName } from "./failover.ts";

const say = (line: string): void => {
  writeSync(1, `${line}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function service(client: Etcd3, prefix: string, id: string, count: number, stepMs: number, ttl: number): Promise<void> {
  say(`standby ${id}`);
  const svc = await OperationsService.campaign(client, { prefix, id, ttl });
  say(`active ${id} ${svc.leaderRevision}`);
  say(`opened ${id} ${svc.ps.definitions().length}`);
  // Host liveness: a host whose lease expired is lost; its partitions are placed again (policy.ts hostDown).
  await HostWatcher.start(client, prefix, (e) => {
    say(`host ${e.host} ${e.up ? "up" : "down"}`);
    if (!e.up) {
      svc.ps.hostDown(e.host).then((lines) => lines.forEach((l) => say(`rehost ${id} ${l}`)), (err: Error) => {
        say(`${err instanceof StoreFenced ? "fenced" : err instanceof StoreOutcomeUnknown ? "unknown" : "error"} ${id} ${err.message}`);
        process.exit(3);
      });
    }
  });
  // The run starts when the orchestrator says so (both services up), so the kill lands mid-run on a slow machine too.
  while ((await client.get(`${prefix}go`).string()) === null) await sleep(20);
  const ps = svc.ps;
  for (let i = 0; i < count; i++) {
    if (svc.lost) throw new StoreFenced(`lease lost: ${svc.lost.message}`);
    let d = ps.definitions().find((x) => x.guid === workGuid(i));
    if (!d) {
      d = await ps.define({ name: workName(i), domain: WORK_DOMAIN, guid: workGuid(i), channels: [{ type: "network", zone: WORK_ZONE }], configurations: [{ name: "Default", memory: 8 << 20, vcpus: 1 }] });
      say(`define ${id} ${d.name}`);
      await sleep(stepMs);
    }
    if (d.stage === "construction") {
      d = await ps.transition(d.guid, "provision");
      say(`provision ${id} ${d.name}`);
      await sleep(stepMs);
    }
    if (d.state === "stopped") {
      d = await ps.transition(d.guid, "start");
      say(`start ${id} ${d.name} ${d.placement!.host} ${d.placement!.partition}`);
      await sleep(stepMs);
    }
  }
  say(`done ${id}`);
  // Stay active (holding the lease) until told to stop.
  await new Promise(() => {});
}

async function host(client: Etcd3, prefix: string, ttl: number, names: string[]): Promise<void> {
  const held: HostAnnouncement[] = [];
  for (const n of names) {
    held.push(await HostAnnouncement.announce(client, prefix, n, ttl));
    say(`announced ${n}`);
  }
  process.on("SIGTERM", () => {
    void Promise.all(held.map((h) => h.revoke())).then(() => process.exit(0));
  });
  await new Promise(() => {});
}

const [mode, endpoints, prefix, ...rest] = process.argv.slice(2);
if (!mode || !endpoints || !prefix) throw new Error("usage: failover-child.ts service|host ENDPOINTS PREFIX ...");
const client = new Etcd3({ hosts: endpoints.split(","), dialTimeout: 2000 });
try {
  if (mode === "service") {
    const [id, count, stepMs, ttl] = rest;
    await service(client, prefix, id!, Number(count), Number(stepMs), Number(ttl));
  } else {
    const [ttl, ...names] = rest;
    await host(client, prefix, Number(ttl), names);
  }
} catch (e) {
  if (e instanceof StoreFenced || e instanceof StoreOutcomeUnknown) {
    // Either way this process's picture of the state can no longer be trusted: stop; a service that starts (or the
    // standby) loads the store again.
    say(`${e instanceof StoreFenced ? "fenced" : "unknown"} ${rest[0]} ${e.message}`);
    process.exit(3);
  }
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
}
