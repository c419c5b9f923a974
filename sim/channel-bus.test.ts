// Tests of the simulator's channel table (sim/channel-bus.ts) over core.wasm's queues: transition-only interrupts and
// their counters ([0120]), console text from a guest to an I/O partition printed with the guest's name, and the
// teardown order of [0182]/[0186]. Until the simulated host exists, ChannelMemory is a page ledger here that refuses
// any reclaim while a server still maps the pages, so a wrong order fails loudly.
import { beforeAll, describe, expect, it } from "vitest";
import type { Core } from "../core/wasm.ts";
import { carve, checkCardinality, loadChannelCore, type ChanExports } from "../core/channel.ts";
import { ChannelBus, ChannelError, consoleRequests, consoleText, type Channel, type ChannelMemory } from "./channel-bus.ts";

let core: Core;
let chan: ChanExports;

beforeAll(async () => {
  ({ core, chan } = await loadChannelCore());
});

class Ledger implements ChannelMemory {
  readonly owner = new Map<number, string>(); // page address -> owner
  readonly mapped = new Map<number, Set<string>>(); // page address -> servers mapping it
  readonly log: string[] = [];
  allocateForClient(client: string, bytes: number): number {
    const base = carve(core, bytes);
    for (let a = base; a < base + bytes; a += 4096) this.owner.set(a, client);
    this.log.push(`allocate ${client} ${bytes}`);
    return base;
  }
  mapIntoServer(server: string, base: number, bytes: number): void {
    for (let a = base; a < base + bytes; a += 4096) {
      if (!this.owner.has(a)) throw new Error(`map of unowned page ${a}`);
      (this.mapped.get(a) ?? this.mapped.set(a, new Set()).get(a)!).add(server);
    }
    this.log.push(`map ${server}`);
  }
  unmapFromServer(server: string, base: number, bytes: number): void {
    for (let a = base; a < base + bytes; a += 4096) this.mapped.get(a)?.delete(server);
    this.log.push(`unmap ${server}`);
  }
  reclaimClient(client: string): void {
    for (const [a, o] of this.owner) {
      if (o !== client) continue;
      if ((this.mapped.get(a)?.size ?? 0) > 0) throw new Error(`reclaim of ${client} while page ${a} is still mapped`);
      this.owner.set(a, "Available");
    }
    this.log.push(`reclaim ${client}`);
  }
  reclaimProcessors(client: string): void {
    this.log.push(`processors ${client}`);
  }
}

describe("channel bus", () => {
  it("interrupts the receiver only on empty -> non-empty; counters agree", () => {
    const mem = new Ledger();
    const bus = new ChannelBus(core, chan, mem);
    const ch = bus.create({ client: "X", server: "IOb", type: "storage", slots: 8, signalSize: 128 });
    const got: number[] = [];
    bus.onInterrupt("IOb", (c, q) => {
      for (const s of bus.drain(c, q)) got.push(s[0]!);
    });
    // burst 1: the server drains on the interrupt, so every send finds the queue empty again
    for (let i = 0; i < 3; i++) expect(bus.send(ch, 0, "X", Uint8Array.of(i))).toBe(true);
    expect(bus.interrupts.get("IOb")).toBe(3);
    // burst 2: the server is busy (no handler): 7 fit, one interrupt, the 8th and 9th overflow
    bus.onInterrupt("IOb", () => {});
    for (let i = 0; i < 9; i++) bus.send(ch, 0, "X", Uint8Array.of(10 + i));
    expect(bus.interrupts.get("IOb")).toBe(4);
    const c = bus.counters(ch, 0);
    expect([c.numSent, c.numOverflows, c.numIrqReceived]).toEqual([10n, 2n, 4n]);
    expect(bus.drain(ch, 0).map((s) => s[0])).toEqual([10, 11, 12, 13, 14, 15, 16]);
    expect(got).toEqual([0, 1, 2]);
    expect(() => bus.send(ch, 0, "IOb", Uint8Array.of(1))).toThrow(ChannelError); // the server does not insert requests
  });

  it("carries console text from a guest to the I/O partition, printed with the guest's name", () => {
    const bus = new ChannelBus(core, chan, new Ledger());
    const printed: string[] = [];
    const names = new Map<Channel, string>();
    bus.onInterrupt("IOa", (c, q) => {
      for (const s of bus.drain(c, q)) printed.push(`[${names.get(c)}] ${consoleText(s)}`);
    });
    const x = bus.create({ client: "X", server: "IOa", type: "console", signalSize: 96 });
    names.set(x, "X");
    const text = "hello from partition X, a line longer than one signal";
    for (const sig of consoleRequests(text, 96)) expect(bus.send(x, 0, "X", sig)).toBe(true);
    expect(printed.map((p) => p.slice(4)).join("")).toBe(text);
    expect(printed.every((p) => p.startsWith("[X] "))).toBe(true);
    expect(printed).toHaveLength(2); // 96-byte signals carry 32 bytes of text each
  });

  it("stopping a client reclaims processors at once and memory only after the last server disconnects", () => {
    const mem = new Ledger();
    const bus = new ChannelBus(core, chan, mem);
    bus.create({ client: "Y", server: "IOa", type: "network" });
    bus.create({ client: "Y", server: "IOb", type: "storage" });
    const later: Channel[] = [];
    bus.stopClient("Y", (ch) => (ch.server === "IOb" ? later.push(ch) : bus.disconnect(ch))); // IOb has I/O in flight
    expect(mem.log).toContain("processors Y");
    expect(mem.log).not.toContain("reclaim Y");
    expect(() => bus.create({ client: "Y", server: "IOa", type: "console" })).toThrow(/stopping/);
    bus.disconnect(later[0]!);
    expect(mem.log.slice(-2)).toEqual(["unmap IOb", "reclaim Y"]);
    expect([...mem.owner.values()].every((o) => o === "Available")).toBe(true);
    expect(bus.events).toContain("processors reclaimed Y"); // (indexOf -1 would pass the order check below)
    expect(bus.events.indexOf("processors reclaimed Y")).toBeLessThan(bus.events.indexOf("memory reclaimed Y"));
  });

  it("stopping a server closes and disconnects its channels first", () => {
    const mem = new Ledger();
    const bus = new ChannelBus(core, chan, mem);
    const a = bus.create({ client: "X", server: "IOa", type: "network" });
    const b = bus.create({ client: "Z", server: "IOa", type: "console" });
    const c = bus.create({ client: "Z", server: "IOb", type: "storage" });
    bus.stopServer("IOa");
    expect(bus.events.slice(-3)).toEqual([`disconnect ${a.id} server=IOa`, `disconnect ${b.id} server=IOa`, "server stopped IOa"]);
    expect(a.closed && b.closed && !c.closed).toBe(true);
    expect(new DataView(core.memory.buffer).getUint32(a.base + 120, true)).toBe(0); // srv_state UNINITIALIZED
    expect(() => bus.send(a, 0, "X", Uint8Array.of(1))).toThrow(/not connected/);
    expect(bus.send(c, 0, "Z", Uint8Array.of(1))).toBe(true);
  });
});

describe("partition definitions", () => {
  it("enforce the cardinality rules with a message naming type and rule", () => {
    expect(() => checkCardinality(core, chan, "guest", ["control", "console", "storage", "storage", "memory"])).not.toThrow();
    expect(() => checkCardinality(core, chan, "guest", ["console"])).toThrow("a guest needs exactly one control channel, and the definition has 0");
    expect(() => checkCardinality(core, chan, "guest", ["control", "boot", "boot"])).toThrow("a guest may have zero or one boot channel, and the definition has 2");
    expect(() => checkCardinality(core, chan, "host", ["power"])).toThrow(/exactly one command channel/);
  });
});
