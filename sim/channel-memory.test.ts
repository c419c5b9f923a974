// Channels on the simulated host's real resource database (sim/channel-memory.ts + sim/channel-bus.ts): the channel
// pages become the client's by transaction, only the client's pages can be mapped into a server, and stopping the
// client evicts its VCPUs from the schedule at once but gives its memory back only after the last server disconnects.
import { beforeAll, describe, expect, it } from "vitest";
import { Host } from "./host.ts";
import { KIND } from "../core/notation.ts";
import { chanExports } from "../core/channel.ts";
import { cdbRequest, ChannelBus, type Channel } from "./channel-bus.ts";
import { ChannelMemoryError, HostChannelMemory } from "./channel-memory.ts";
import { ResourceService } from "./resource-service.ts";
import { ScheduleControl, Scheduler } from "../core/schedule.ts";

let host: Host;

beforeAll(async () => {
  host = await Host.create({ memory: 64n << 20n });
});

/** A partition with a descriptor and no memory, defined the way the resource service defines every partition. */
function definePartition(name: string, kind: number): number {
  return new ResourceService(host).create({ name, kind, at: [] });
}

describe("channels on the resource database", () => {
  it("assign channel pages to the client, map them into the server, reclaim after the last disconnect", () => {
    const names = new Map([["X", definePartition("X", KIND.Guest)], ["IOa", definePartition("IOa", KIND.IO)], ["IOb", definePartition("IOb", KIND.IO)]]);
    const X = names.get("X")!;
    const ui = host.db.indexPage();
    // the schedule: X's VCPU shares PCPU 0 with nobody else; the idle partition fills the rest
    const s = new Scheduler(host.core, 2, 4);
    const ctl = new ScheduleControl(s.sched, host.core);
    const { table } = s.compute([{ vcpu: 1, partition: X, duty: 8 }], 2, { partition: ui.idle, vcpuBase: 100 });
    ctl.install(table, 0n);
    const mem = new HostChannelMemory(host, names, (p) => s.sched.sched_evict(ctl.tableAt(0n), p));
    const bus = new ChannelBus(host.core, chanExports(host.core), mem);

    const net = bus.create({ client: "X", server: "IOa", type: "network", slots: 16, signalSize: 256 });
    const disk = bus.create({ client: "X", server: "IOb", type: "storage", slots: 64, signalSize: 256 });
    for (const ch of [net, disk]) {
      for (let a = ch.base; a < ch.base + ch.bytes; a += 4096) expect(host.db.owner(BigInt(a))).toBe(X);
    }
    expect(disk.bytes).toBe(Math.ceil((128 + 2 * (128 + 64 * 256)) / 4096) * 4096);
    expect(mem.serversMapping("X").sort()).toEqual(["IOa", "IOb"]);
    expect(new DataView(host.memory.buffer).getBigUint64(net.base + 48, true)).toBe(BigInt(X)); // partition_handle
    expect(bus.send(net, 0, "X", Uint8Array.of(7))).toBe(true);

    // a server may not map memory that is not a client's (here: the ultravisor's private page)
    expect(() => mem.mapIntoServer("IOa", 0x800000, 4096)).toThrow(ChannelMemoryError);

    const later: Channel[] = [];
    bus.stopClient("X", (ch) => (ch.server === "IOb" ? later.push(ch) : bus.disconnect(ch)));
    expect(ctl.lookup(0, 0n)).toBe(100); // processors reclaimed at once: the idle VCPU of PCPU 0 runs
    expect(host.db.owner(BigInt(disk.base))).toBe(X); // IOb still has it mapped: memory stays
    expect(() => mem.reclaimClient("X")).toThrow(/still mapped by IOb/);
    bus.disconnect(later[0]!);
    for (const ch of [net, disk]) {
      for (let a = ch.base; a < ch.base + ch.bytes; a += 4096) expect(host.db.owner(BigInt(a))).toBe(ui.avail);
    }
    expect(host.db.owner(BigInt(X) * 4096n)).toBe(X); // the descriptor page stays until the partition is destroyed
    expect(mem.journal.filter((j) => j.startsWith("reclaim"))).toHaveLength(1);
    expect(mem.journal).toContain("evict processors of X"); // (indexOf -1 would pass the order check below)
    expect(mem.journal.indexOf("evict processors of X")).toBeLessThan(mem.journal.findIndex((j) => j.startsWith("reclaim")));
  });

  it("the server rejects a request whose MDL reaches outside the client's memory (claims 18, 20, 21)", () => {
    const names = new Map([["A", definePartition("A", KIND.Guest)], ["B", definePartition("B", KIND.Guest)], ["IO", definePartition("IO", KIND.IO)]]);
    const mem = new HostChannelMemory(host, names);
    const bus = new ChannelBus(host.core, chanExports(host.core), mem);
    const ch = bus.create({ client: "A", server: "IO", type: "storage", signalSize: 256 });
    const bufA = mem.allocateForClient("A", 16384); // A's I/O buffers
    const bufB = mem.allocateForClient("B", 8192);
    const read = (mdl: Array<[bigint, number]>) => cdbRequest({ opcode: 0x28, flags: 2, requestId: 9n, cdb: [0x28, 0, 0, 0, 0, 8], mdl }, 256);
    expect(bus.validateRequest(ch, read([[BigInt(bufA), 4096], [BigInt(bufA + 8192), 8192]]))).toEqual({ ok: true, code: 0, name: "CDB_OK", entry: null });
    expect(bus.validateRequest(ch, read([[BigInt(bufA), 512], [BigInt(bufB), 512]]))).toMatchObject({ ok: false, name: "CDB_OUTSIDE_CLIENT", entry: 1 });
    expect(bus.validateRequest(ch, read([[BigInt(bufA + 12288), 8192]]))).toMatchObject({ ok: false, name: "CDB_OUTSIDE_CLIENT", entry: 0 });
    const descriptorOfA = BigInt(names.get("A")!) * 4096n;
    expect(bus.validateRequest(ch, read([[descriptorOfA, 64]]))).toMatchObject({ ok: false, name: "CDB_OUTSIDE_CLIENT", entry: 0 });
    // B's own request for its buffer holds until B is stopped and its memory goes back to Available
    const chB = bus.create({ client: "B", server: "IO", type: "storage", signalSize: 256 });
    expect(bus.validateRequest(chB, read([[BigInt(bufB), 8192]])).ok).toBe(true);
    bus.stopClient("B");
    expect(host.db.owner(BigInt(bufB))).toBe(host.db.indexPage().avail);
    expect(bus.validateRequest(chB, read([[BigInt(bufB), 8192]]))).toMatchObject({ ok: false, name: "CDB_OUTSIDE_CLIENT" });
  });

  it("splits an Available 4 MiB entry when no 4 KiB run is long enough", () => {
    const names = new Map([["Big", definePartition("Big", KIND.Guest)]]);
    const mem = new HostChannelMemory(host, names);
    const base = mem.allocateForClient("Big", 4 << 20); // 1024 pages: only a freshly split 4 MiB entry has them
    expect(base % (4 << 20)).toBe(0);
    expect(mem.journal[0]).toMatch(/^split /);
    for (const a of [base, base + (2 << 20), base + (4 << 20) - 4096]) expect(host.db.owner(BigInt(a))).toBe(names.get("Big"));
    expect(host.db.owner(BigInt(base + (4 << 20)))).not.toBe(names.get("Big"));
    expect(() => mem.allocateForClient("Big", (4 << 20) + 4096)).toThrow(/exceeds one 4 MiB map page/);
  });
});

