// Hosts packed into one arena (sim/arena.ts) are the same hosts as hosts with a memory of their own: the same
// partitions, worked step by step across the hosts (so the arena's one core instance switches databases between
// steps), leave the same bytes with each owner and the same schedule (the oracle: a host booted the old way, with a
// core instance of its own, read through the map); each keeps its own database (a partition of one is unknown to the
// other's core, and every database re-attaches — core rebuilds and checks its map directory); the arena's memory
// never grows after creation (a grow makes V8 account the whole memory again); a page outside a host's slot is refused.
import { describe, expect, it } from "vitest";
import { HostArena } from "./arena.ts";
import { Platform } from "./platform.ts";

const G = 1n << 30n;
const SYSTEM = {
  system: [
    { name: "IOa", kind: "IO" as const, user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }] },
    { name: "Command", kind: "Command" as const, user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }], channels: [{ type: "command" as const, server: "Ultravisor" }] },
  ],
};

async function boot(arena?: HostArena): Promise<Platform> {
  return Platform.boot({ memory: 16n * G, keepBackup: false, ...(arena ? { arena } : {}) }, { pcpus: 8 }, () => {}, SYSTEM);
}

/** Bytes per owner, by the owner's name (numbers differ: each database lies elsewhere). */
function byOwner(p: Platform): Record<string, string> {
  const ui = p.host.db.indexPage();
  const names = new Map<number, string>([[ui.avail, "Available"], [ui.missing, "Missing"], [ui.ultra, "Ultravisor"], [ui.boot, "Boot"], [ui.idle, "Idle"]]);
  for (const [n, q] of p.rs.names()) names.set(q, n);
  const out: Record<string, string> = {};
  for (const [owner, bytes] of p.host.view.ownedBytes()) out[names.get(owner) ?? `unnamed ${owner}`] = String(bytes);
  return out;
}

const STEPS: Array<(p: Platform) => void> = [
  (p) => p.definePartition({ name: "A", kind: "Guest", memory: 4n * G, vcpus: [{ duty: 4 }, { duty: 4 }] }),
  (p) => p.definePartition({ name: "B", kind: "Guest", memory: 3n * G, vcpus: [{ duty: 2 }] }),
  (p) => p.stop("A"),
  (p) => p.advance(16n),
];

function work(p: Platform): void {
  for (const step of STEPS) step(p);
}

describe("host arena", () => {
  it("hosts in an arena hold what a host of its own holds, each in its own database", async () => {
    const own = await boot();
    work(own);
    const arena = await HostArena.create(3);
    const bytes = arena.memory.buffer.byteLength;
    const hosts = [await boot(arena), await boot(arena), await boot(arena)];
    // Step by step across the hosts: the arena's one core instance switches databases before every step.
    for (const step of STEPS) for (const h of hosts) step(h);
    expect(arena.memory.buffer.byteLength).toBe(bytes);
    for (const h of hosts) {
      expect(byOwner(h)).toEqual(byOwner(own));
      expect(h.scheduleData().pcpus).toEqual(own.scheduleData().pcpus);
      expect(h.rejections()).toEqual([]);
      // The one-owner sum the shards use agrees with the whole map's.
      for (const [owner, bytes] of h.host.view.ownedBytes()) expect(h.host.view.bytesOwnedBy(owner)).toBe(bytes);
    }
    // B of host 0 is unknown to host 2's core: that page is plain Available memory there.
    const b0 = hosts[0]!.rs.resolve("B");
    expect(hosts[0]!.host.db.owner(BigInt(b0) * 4096n)).toBe(b0);
    expect(hosts[2]!.host.db.owner(BigInt(b0) * 4096n)).toBe(hosts[2]!.host.db.indexPage().avail);
    // Every database is still whole after its neighbours booted and worked: core re-attaches each (map walk, checks).
    for (const h of hosts) expect(() => h.host.db.attach(h.host.db.indexPage().index)).not.toThrow();
    const ui = hosts.map((h) => h.host.db.indexPage().index);
    expect(new Set(ui.map((p) => p >> 10)).size).toBe(3);
  });

  it("refuses a page outside the host's slot, a fourth host in a 3-slot arena, and a layout of its own", async () => {
    const arena = await HostArena.create(3);
    const h = await boot(arena);
    const ui = h.host.db.indexPage();
    expect(() => h.host.ensurePage((ui.index >> 10) * 1024 + 2048)).toThrow(/outside this host's slot/);
    expect(() => h.host.ensurePage(0)).toThrow(/outside this host's slot/);
    await boot(arena);
    await boot(arena);
    expect(arena.free).toBe(0);
    await expect(boot(arena)).rejects.toThrow(/slots are taken/);
    await expect(HostArena.create(0)).rejects.toThrow(RangeError);
    await expect(Platform.boot({ memory: 16n * G, arena: await HostArena.create(1), layout: { private: 3 } }, { pcpus: 8 })).rejects.toThrow(/layout/);
  });
});
