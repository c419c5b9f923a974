// The policy service over simulated hosts (docs/specs/operations.md §2–§4): Fig. 13's guests placed by zones on the
// hosts [0277] names, each through its host's command partition (the ultravisor's server counts the command
// partition's transactions); stop and disable give the memory back on the host; bad requests are refused with a
// reason and change neither the store nor any host; schedules over a simulated month switch state and
// configuration at the times GNU date gives for that month's weekdays (the oracle for the calendar).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadEstate, readEstateFile, type EstateFile } from "./estate.ts";
import { OpsError, type PartitionDefinition } from "./model.ts";
import { PolicyService } from "./policy.ts";
import { FileStore, StoreCorrupt, type StoreState } from "./store/store.ts";
import { NodeFs } from "./store/fs.ts";
import { PowerCutFs } from "./store/power-cut.ts";

const root = join(import.meta.dirname, "..");
const FIG13 = join(root, "examples", "ops", "figure13.yaml");

/** Everything a refused request must leave alone: the store's content and every host's partitions and memory. */
async function snapshot(ps: PolicyService, store: FileStore): Promise<string> {
  const s = await store.load();
  const hosts = [...ps.hosts].map(([n, h]) => [n, [...h.platform.rs.names()], [...h.platform.host.view.ownedBytes()].map(([p, b]) => `${p}:${b}`)]);
  return JSON.stringify({ seq: s.seq, defs: [...s.domains].map(([d, m]) => [d, [...m.values()]]), hosts });
}

describe("policy service on Fig. 13", () => {
  let ps: PolicyService;
  let store: FileStore;
  beforeAll(async () => {
    store = new FileStore(new PowerCutFs());
    ps = await loadEstate(store, readEstateFile(FIG13));
  }, 60_000);

  it("places each started guest on a host [0277] allows, as a partition its command partition created", async () => {
    const allowed: Record<string, string[]> = { G1: ["H1", "H2"], G2: ["H1", "H2"], G4: ["H2"], G5: ["H3"], G6: ["H4", "H5"], G7: ["H4", "H5"] };
    for (const [g, hosts] of Object.entries(allowed)) {
      const d = ps.get(g);
      expect(d.state, g).toBe("running");
      expect(hosts, g).toContain(d.placement!.host);
      const pf = ps.hosts.get(d.placement!.host)!.platform;
      // The host's resource database knows it by the number the policy service recorded ([0180]) …
      expect(pf.rs.names().get(g)).toBe(d.placement!.partition);
      expect(pf.host.db.readDescriptor(d.placement!.partition)?.name).toBe(g);
      // … with the configuration's memory.
      expect(Number(pf.host.view.ownedBytes().get(d.placement!.partition))).toBeGreaterThanOrEqual(d.configurations[0]!.memory);
      // Every transaction after boot came from the command partition over its channel.
      const cmd = pf.host.db.commandPartition();
      expect(pf.ultravisor.served.filter((s) => s.opcode === 1 && s.status === 0).every((s) => s.submitter === cmd)).toBe(true);
      expect(pf.ultravisor.served.length).toBeGreaterThan(0);
    }
  });

  it("start → stop → disable: the host gets the memory back, and the store says so", async () => {
    const before = ps.get("G3");
    expect(before.stage).toBe("provisioning");
    const started = await ps.transition("G3", "start");
    const host = ps.hosts.get(started.placement!.host)!.platform;
    expect(host.rs.names().has("G3")).toBe(true);
    const stopped = await ps.transition("G3", "stop");
    expect(stopped.state).toBe("stopped");
    expect(stopped.placement).toBeUndefined();
    expect(host.rs.names().has("G3")).toBe(false);
    expect([...host.host.view.ownedBytes().keys()]).not.toContain(started.placement!.partition);
    await ps.transition("G3", "operate");
    await ps.transition("G3", "start");
    const disabled = await ps.transition("G3", "disable");
    expect([disabled.stage, disabled.state]).toEqual(["disabled", "disabled"]);
    expect(host.rs.names().has("G3")).toBe(false);
    const stored = [...(await store.load()).domains.get("Production")!.values()].find((d) => d.name === "G3")!;
    expect([stored.stage, stored.state, stored.placement]).toEqual(["disabled", "disabled", undefined]);
    expect(stored.history.map((h) => h.what.split(" ")[0])).toEqual(["cloned", "provision", "start", "start", "stop", "operate", "start", "start", "disable"]);
  });

  it("configurations: add one, select it for the next start ([0300]), and a template loses memory and processors ([0311])", async () => {
    await ps.define({ name: "Cfg", domain: "Production", channels: [{ type: "network", zone: "NET2" }] });
    await expect(ps.transition("Cfg", "provision")).rejects.toThrow(/needs at least one configuration/);
    await ps.addConfiguration("Cfg", { name: "Small", memory: 32 << 20, vcpus: 1 });
    await ps.addConfiguration("Cfg", { name: "Large", memory: 96 << 20, vcpus: 2 });
    await expect(ps.addConfiguration("Cfg", { name: "Small", memory: 8 << 20, vcpus: 1 })).rejects.toThrow(/has a configuration named Small already/);
    await ps.transition("Cfg", "provision");
    await ps.configure("Cfg", "Large");
    const started = await ps.transition("Cfg", "start");
    expect([started.active, started.next]).toEqual(["Large", undefined]);
    const pf = ps.hosts.get(started.placement!.host)!.platform;
    expect(Number(pf.host.view.ownedBytes().get(started.placement!.partition))).toBeGreaterThanOrEqual(96 << 20);
    expect(pf.describe("Cfg")).toMatch(/Guest/);
    const stopped = await ps.transition("Cfg", "stop");
    const tpl = await ps.transition(stopped.guid, "template");
    expect([tpl.stage, tpl.state, tpl.configurations.map((c) => [c.memory, c.vcpus])]).toEqual(["template", "disabled", [[0, 0], [0, 0]]]);
    const clone = await ps.define({ name: "Cfg2", domain: "Production", template: "Cfg", configurations: [{ name: "c", memory: 8 << 20, vcpus: 1 }] });
    expect(clone.channels).toEqual([{ type: "network", zone: "NET2" }]);
    expect(clone.guid).not.toBe(tpl.guid);
  });

  const refusals: Array<[string, (ps: PolicyService) => Promise<unknown>, RegExp]> = [
    ["a transition the life cycle does not allow", (p) => p.transition("G8", "start"), /start is not allowed in stage construction/],
    ["decommissioning a running partition", (p) => p.transition("G1", "decommission"), /decommission is not allowed in stage operating/],
    ["zones no host of the domain offers", (p) => p.define({ name: "G9", domain: "Production", channels: [{ type: "storage", zone: "SAN2" }, { type: "network", zone: "NET1" }], configurations: [{ name: "c", memory: 4 << 20, vcpus: 1 }] }),
      /G9 \(configuration c\): no host of domain Production offers every zone it needs: H1 lacks storage:SAN2; H2 lacks storage:SAN2; H3 lacks storage:SAN2; H4 lacks network:NET1; H5 lacks network:NET1/],
    ["a zone the estate does not have", (p) => p.define({ name: "G9", domain: "Production", channels: [{ type: "network", zone: "NET9" }] }), /zone network:NET9 is not a zone of the estate/],
    ["a template given memory", (p) => p.define({ name: "T2", domain: "Production", stage: "template", configurations: [{ name: "c", memory: 64 << 20, vcpus: 0 }] }), /a template never has processors or memory assigned \(\[0311\]\)/],
    ["a duplicate GUID", (p) => p.define({ name: "G9", domain: "Production", guid: p.get("G1").guid }), /is already the GUID of G1/],
    ["a duplicate name", (p) => p.define({ name: "G1", domain: "Production" }), /a partition named G1 exists already/],
    ["cloning a partition that is not a template", (p) => p.define({ name: "G9", domain: "Production", template: "G1" }), /not a template/],
    ["memory that is not a multiple of 4 MB", (p) => p.define({ name: "G9", domain: "Production", configurations: [{ name: "c", memory: 5 << 20, vcpus: 1 }] }), /not a positive multiple of 4 MB/],
    ["a guest in a system domain", (p) => p.define({ name: "G9", domain: "System" }), /system domain/],
    ["a start no host has room for", async (p) => {
      await p.define({ name: "Big", domain: "Production", channels: [{ type: "storage", zone: "DAS3" }], configurations: [{ name: "c", memory: 8 * 2 ** 30, vcpus: 1 }] });
      await p.transition("Big", "provision");
      return p.transition("Big", "start");
    }, /Big: every matching host refused it: H3: /],
  ];
  for (const [what, req, reason] of refusals) {
    it(`refuses ${what} with a reason and changes nothing`, async () => {
      // "Big" is defined and provisioned before its start is refused: snapshot after those.
      if (what.startsWith("a start")) {
        await expect(req(ps)).rejects.toThrow(OpsError);
        const snap = await snapshot(ps, store);
        await expect(ps.transition("Big", "start")).rejects.toThrow(reason);
        expect(await snapshot(ps, store)).toBe(snap);
        expect(ps.get("Big").state).toBe("stopped");
        return;
      }
      const snap = await snapshot(ps, store);
      await expect(req(ps)).rejects.toThrow(OpsError);
      await expect(req(ps)).rejects.toThrow(reason);
      expect(await snapshot(ps, store)).toBe(snap);
    });
  }
});

describe("policy service over a real store folder", () => {
  it("reopening places the running partitions again; a corrupt definition file is refused with its path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uv-ops-"));
    try {
      const e: EstateFile = readEstateFile(FIG13);
      const small: EstateFile = { ...e, hosts: e.hosts.filter((h) => h.name === "H4"), domains: e.domains.map((d) => ({ ...d, hosts: d.hosts.filter((h) => h === "H4") })), partitions: e.partitions.filter((p) => p.name === "G7") };
      const ps = await loadEstate(new FileStore(new NodeFs(dir)), small);
      expect(ps.get("G7").state).toBe("running");
      const again = await PolicyService.open(new FileStore(new NodeFs(dir)));
      const g7 = again.get("G7");
      expect([g7.state, g7.placement?.host]).toEqual(["running", "H4"]);
      expect(again.hosts.get("H4")!.platform.rs.names().has("G7")).toBe(true);
      const file = join(dir, "domains", "Production", `${g7.guid}.json`);
      writeFileSync(file, readFileSync(file, "utf8").replace('"G7"', '"G8"'));
      expect(() => new FileStore(new NodeFs(dir))).toThrow(StoreCorrupt);
      expect(() => new FileStore(new NodeFs(dir))).toThrow(`domains/Production/${g7.guid}.json: corrupt store file: checksum mismatch`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("schedules over a simulated month ([0308])", () => {
  it("January 2027: Weekend configuration from each Saturday 08:00, Weekday from each Monday 07:00, a monthly report run", async () => {
    const e = readEstateFile(FIG13);
    const estate: EstateFile = {
      ...e, hosts: e.hosts.filter((h) => h.name === "H4"), domains: e.domains.map((d) => ({ ...d, hosts: d.hosts.filter((h) => h === "H4") })),
      partitions: [
        ...e.partitions.filter((p) => p.name === "G6"),
        { name: "Report", domain: "Production", channels: [{ type: "network", zone: "NET2" }], configurations: [{ name: "Default", memory: 64 << 20, vcpus: 1 }],
          schedule: [{ when: { monthday: 1, time: "02:00" }, state: "running" }, { when: { monthday: 1, time: "06:30" }, state: "stopped" }], then: ["provision", "operate"] },
      ],
    };
    const ps = await loadEstate(new FileStore(new PowerCutFs()), estate);
    const epoch = ps.epoch.getTime();
    // The oracle: GNU date names each day of January 2027.
    const dayName = (d: number): string => execFileSync("date", ["-u", "-d", `2027-01-${String(d).padStart(2, "0")}`, "+%a"], { encoding: "utf8" }).trim().toLowerCase();
    const days = Array.from({ length: 31 }, (_, i) => dayName(i + 1));
    const minute = (day: number, hh: number, mm: number): number => (Date.UTC(2027, 0, day, hh, mm) - epoch) / 60_000;
    /** The configuration G6 must run at (day, hour): the latest Saturday-08:00 or Monday-07:00 before it. */
    const expected = (day: number, hh: number): string => {
      for (let d = day; d >= 1; d--) {
        const name = days[d - 1];
        if (name === "sat" && (d < day || hh >= 8)) return "Weekend";
        if (name === "mon" && (d < day || hh >= 7)) return "Weekday";
      }
      return "Weekday"; // started with its first configuration on January 1
    };
    const host = ps.hosts.get("H4")!.platform;
    let checked = 0;
    for (let day = 1; day <= 31; day++) {
      for (const hh of [1, 4, 7, 12, 20]) {
        await ps.advanceTo(minute(day, hh, 30));
        const g6 = ps.get("G6");
        const want = expected(day, hh);
        expect(g6.state, `2027-01-${day} ${hh}:30`).toBe("running");
        expect(g6.active, `2027-01-${day} ${hh}:30`).toBe(want);
        const bytes = Number(host.host.view.ownedBytes().get(g6.placement!.partition) ?? 0n);
        const mem = g6.configurations.find((c) => c.name === want)!.memory;
        expect(bytes, `G6's memory on H4 at 2027-01-${day} ${hh}:30`).toBeGreaterThanOrEqual(mem);
        expect(bytes).toBeLessThan(mem + (16 << 20));
        const report = ps.get("Report");
        expect(report.state, `Report at 2027-01-${day} ${hh}:30`).toBe(day === 1 && hh === 4 ? "running" : "stopped");
        expect(host.rs.names().has("Report")).toBe(report.state === "running");
        checked++;
      }
    }
    expect(checked).toBe(155);
    const sats = days.filter((d) => d === "sat").length;
    const mons = days.filter((d) => d === "mon").length;
    // Each Saturday and each Monday restarts G6 (stop + start), the report runs once.
    expect(ps.log.filter((l) => /G6: start/.test(l)).length).toBe(sats + mons);
    expect(ps.log.filter((l) => /Report: start/.test(l)).length).toBe(1);
  }, 120_000);
});

describe("a host lost ([0307]; operations.md §7)", () => {
  it("its running partitions are placed again on a host with their zones and room; none left: stopped with the reason", async () => {
    const lan = [{ type: "network" as const, zone: "LAN" }];
    const estate: EstateFile = {
      estate: 1, name: "two", zones: [{ type: "network", name: "LAN" }],
      hosts: ["A", "B"].map((name) => ({ name, memory: 512 << 20, pcpus: 4, domain: "System", zones: [{ type: "network" as const, zone: "LAN" }] })),
      domains: [{ name: "System", kind: "system", hosts: ["A", "B"] }, { name: "Lab", kind: "partition", hosts: ["A", "B"] }],
      partitions: ["P1", "P2", "P3", "P4"].map((name) => ({ name, domain: "Lab", channels: lan, configurations: [{ name: "c", memory: 32 << 20, vcpus: 1 }], then: ["provision", "start"] as ("provision" | "start")[] })),
    };
    const store = new FileStore(new PowerCutFs());
    const ps = await loadEstate(store, estate);
    const onA = ps.definitions().filter((d) => d.placement?.host === "A").map((d) => d.name);
    const onB = ps.definitions().filter((d) => d.placement?.host === "B").map((d) => d.name);
    expect(onA.length).toBeGreaterThan(0);
    const b = ps.hosts.get("B")!.platform;
    const lines = await ps.hostDown("A");
    expect(lines).toHaveLength(onA.length);
    for (const n of onA) {
      const d = ps.get(n);
      expect([d.state, d.placement?.host], n).toEqual(["running", "B"]);
      // B's own resource database holds it under the number the store recorded.
      expect(b.rs.names().get(n)).toBe(d.placement!.partition);
      expect(d.history.at(-1)!.what).toMatch(/^re-hosted from A to B as partition \d+ \(A: its lease expired\)$/);
    }
    const stored = flatDefs(await store.load());
    for (const n of [...onA, ...onB]) expect(stored.get(n)!.placement!.host, n).toBe("B");
    expect(await ps.hostDown("A")).toEqual([]);
    // The last host lost: nowhere to go, each one stopped with the reason, stored.
    const last = await ps.hostDown("B");
    expect(last).toHaveLength(4);
    for (const d of flatDefs(await store.load()).values()) {
      expect(d.state).toBe("stopped");
      expect(d.history.at(-1)!.what).toMatch(/^stopped: host B lost \(its lease expired\) and P\d: every matching host refused it: A: not running; B: not running$/);
    }
  }, 60_000);
});

function flatDefs(s: StoreState): Map<string, PartitionDefinition> {
  return new Map([...s.domains.values()].flatMap((m) => [...m.values()]).map((d) => [d.name, d]));
}
