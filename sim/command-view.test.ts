// The command partition's program (partitions/assembly/command.ts) with a read-only view of a database, in V8: a
// simulated host's database copied to the addresses where the machine's monitor maps it in the command partition's
// linear memory (monitor-gen/layout.ts COMMAND_VIEW: physical page p at wasm address p), the lines typed on the console
// put on queue 1 of its console channel by core's queue code, as the I/O partition does. Every line is checked against
// that database (names, Available memory, servers), and a stop builds the teardown transaction with the simulator's
// own builder: the same bytes as V8's rs_build_destroy over the same database. It lives in sim/ because the database
// comes from the simulator (sim may use every layer below; partitions/ may not import sim/).
import { beforeAll, describe, expect, it } from "vitest";
import { carve, chanExports, ChannelType, type ChanExports } from "../core/channel.ts";
import { loadCore, type Core } from "../core/wasm.ts";
import { WA, type WasmMemory } from "../core/webassembly.ts";
import { partitionWasm } from "../partitions/aot-guest.ts";
import { fnv1a } from "../partitions/pack.ts";
import { CMDCHAN, COMMAND_VIEW, HYPERCALL, INFO, WINDOW, WINDOW_LAYOUT } from "../monitor-gen/layout.ts";
import { Host } from "./host.ts";
import { ResourceService } from "./resource-service.ts";

const MB = 1n << 20n;
let core: Core;
let chan: ChanExports;
let sig = 0;
beforeAll(async () => {
  core = await loadCore();
  chan = chanExports(core);
  sig = carve(core, 4096);
}, 60_000);

class Yielded extends Error {}

/** The command program over `view` (the host's first 8 MiB): its console lines after it read `typed`. */
async function runCommand(host: Host, typed: string[], withView = true): Promise<string[]> {
  const mod = new WA.Module(await partitionWasm("command"));
  const lines: string[] = [];
  const page = carve(core, 4096);
  expect(chan.chan_format(page, 4096, CMDCHAN.queues, CMDCHAN.signalSize, CMDCHAN.maxSlots, ChannelType.console)).toBe(0);
  // The program's memory, once instantiated (the hypercall import below needs it, and comes first).
  const w: { mem: Uint8Array } = { mem: new Uint8Array(0) };
  const slot0 = WINDOW_LAYOUT.slot(0);
  const drain = (): void => {
    const mem = w.mem;
    new Uint8Array(core.memory.buffer, page, 4096).set(mem.subarray(slot0, slot0 + 4096));
    const d = new DataView(core.memory.buffer);
    while (chan.chan_remove(page, 4096, 0, sig) >= 0) lines.push(Buffer.from(new Uint8Array(core.memory.buffer, sig + 64, d.getUint16(sig + 20, true))).toString("latin1"));
    mem.set(new Uint8Array(core.memory.buffer, page, 4096), slot0);
  };
  const hw = {
    hypercall: (nr: bigint): bigint => {
      drain();
      if (Number(nr) === HYPERCALL.yield) throw new Yielded();
      return 0n;
    },
    mfence: (): void => undefined,
  };
  const inst = new WA.Instance(mod, { hw });
  const mem = (w.mem = new Uint8Array((inst.exports["memory"] as WasmMemory).buffer));
  expect(mem.length).toBe(COMMAND_VIEW.hi);
  const d = new DataView(mem.buffer);
  d.setBigUint64(INFO.slots, 1n, true);
  d.setBigUint64(INFO.slot(0), WINDOW + BigInt(slot0), true);
  if (withView) {
    mem.set(new Uint8Array(host.memory.buffer, COMMAND_VIEW.lo, COMMAND_VIEW.hi - COMMAND_VIEW.lo), COMMAND_VIEW.lo);
    d.setBigUint64(INFO.database, 1n, true);
  }
  for (const t of typed) {
    new Uint8Array(core.memory.buffer, sig, 4096).fill(0);
    const c = new DataView(core.memory.buffer);
    c.setUint32(sig, 1, true);
    c.setUint32(sig + 4, 2, true);
    c.setUint16(sig + 20, t.length, true);
    c.setUint8(sig + 24, 1);
    new Uint8Array(core.memory.buffer).set(Buffer.from(t, "latin1"), sig + 64);
    expect(chan.chan_insert(page, 4096, 1, sig)).toBeGreaterThanOrEqual(0);
  }
  mem.set(new Uint8Array(core.memory.buffer, page, 4096), slot0);
  const run = inst.exports["main"] as (...a: bigint[]) => void;
  expect(() => run(WINDOW + 0x20000n, 0n, 1n, BigInt(host.db.indexPage().index))).toThrow(Yielded);
  return lines.filter((l) => l.startsWith("> "));
}

describe("the command partition's program with a read-only view of the database", () => {
  it("checks typed lines against the database and builds a stop's teardown with the resource service's builder", async () => {
    const h = await Host.create({ memory: 256n * MB, order: 2 });
    const rs = new ResourceService(h);
    rs.create({ name: "io", size: 8n * MB });
    const x = rs.create({ name: "X", size: 8n * MB });
    const got = await runCommand(h, ["create X 8M", "create G 1G", "create G 8M console:nobody", "create G 8M console:io", "stop nobody", "stop X"]);
    // V8's builder over the same database: the teardown the command program must have built.
    const req = h.db.requestBuffer();
    const n = h.builders().buildDestroy(h.db.indexPage().index, req, 8192, x, 0, 0);
    expect(n).toBeGreaterThan(16);
    const records = new DataView(h.memory.buffer).getUint32(req + 8, true);
    const fnv = fnv1a(new Uint8Array(h.memory.buffer, req, n)).toString(16).padStart(8, "0");
    expect(got).toEqual([
      "> refused (status -2004)",
      "> refused (status -2002)",
      "> refused (status -2005)",
      "> G create: read, not run here (status -2006)",
      "> refused (status -2004)",
      "> X stop: read, not run here (status -2006)",
      `> X: teardown ${records} records fnv 0x${fnv}`,
    ]);
  });

  it("without a view (INFO.database 0) reads lines but checks nothing against a database", async () => {
    const h = await Host.create({ memory: 256n * MB, order: 2 });
    expect(await runCommand(h, ["create X 8M", "create G 8M printer:io"], false)).toEqual([
      "> X create: read, not run here (status -2006)",
      "> refused (status -2003)",
    ]);
  });
});
