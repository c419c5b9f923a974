// Tests of the AssemblyScript partition programs (partitions/assembly/io.ts, command.ts, guest.ts) run in V8 on a
// window laid out as docs/specs/image-layout.md says (info page at wasm 0, channel slot k at 0x40000 + 0x1000·k),
// with the hw imports played by the test: COM1 collects the I/O partition's bytes, hypercalls are recorded. The
// channels on the other side are core.wasm's — the simulator's channel code in its own linear memory — so the
// partitions' queue handling is checked against the implementation the channel ABI tests pin: pages are formatted
// and filled (or drained) by core, copied into the partition's window and back.
import { describe, expect, it, beforeAll } from "vitest";
import { carve, chanExports, ChannelType, type ChanExports, readQueueHeader } from "../sim/channel.ts";
import { loadCore, type Core } from "../core/wasm.ts";
import { WA, type WasmMemory, type WasmModule } from "../core/webassembly.ts";
import { AS_DATA_BASE, AS_MEMORY_BYTES, assembleAotIo, mergeObjects, packAotPartition, partitionWasm } from "./aot-guest.ts";
import { Assembler } from "../toolchain/x64/index.ts";
import { definitionBytes, definitionOf } from "./programs.ts";
import { fnv1a } from "./pack.ts";
import { CHAN, COM1, HC, INFO, WIN, WINDOW } from "../monitor-gen/layout.ts";

let core: Core;
let chan: ChanExports;
const modules = new Map<string, WasmModule>();
beforeAll(async () => {
  core = await loadCore();
  chan = chanExports(core);
  for (const p of ["io", "command", "guest"] as const) modules.set(p, new WA.Module(await partitionWasm(p)));
}, 60_000);

class Yielded extends Error {}

/** One partition instance: its window (= linear memory), the COM1 bytes it wrote and the hypercalls it made. */
function instantiate(program: string, opts: { stopAt?: (nr: number) => boolean; time?: () => bigint } = {}) {
  const com1: number[] = [];
  const calls: Array<[number, bigint]> = [];
  const hw = {
    inb: (port: number): number => (port === COM1 + 5 ? 0x20 : 0xff),
    outb: (port: number, v: number): void => {
      if (port !== COM1) throw new Error(`outb to port 0x${port.toString(16)}`);
      com1.push(v & 0xff);
    },
    hypercall: (nr: bigint, a: bigint): bigint => {
      calls.push([Number(nr), a]);
      if (opts.stopAt?.(Number(nr))) throw new Yielded();
      return Number(nr) === HC.time ? (opts.time?.() ?? 0n) : Number(nr) === HC.command || Number(nr) === HC.start ? -1n : 0n; // as the monitor answers a guest
    },
    mfence: (): void => undefined,
  };
  const inst = new WA.Instance(modules.get(program)!, { hw });
  const mem = inst.exports["memory"] as WasmMemory;
  return { inst, fn: inst.exports as Record<string, (...a: unknown[]) => unknown>, bytes: () => new Uint8Array(mem.buffer), com1: () => Buffer.from(com1).toString("latin1"), calls };
}

/** Writes the info page: name, slot records (address, role, peer); `address: 0` leaves a slot not live. */
function writeInfo(win: Uint8Array, name: string, slots: Array<{ role: number; peer: string; live?: boolean }>): void {
  const d = new DataView(win.buffer);
  d.setBigUint64(INFO.slots, BigInt(slots.length), true);
  win.set(Buffer.from(name), INFO.name);
  slots.forEach((s, k) => {
    d.setBigUint64(INFO.slot(k), s.live === false ? 0n : WINDOW + BigInt(WIN.slot(k)), true);
    d.setUint8(INFO.slot(k) + 8, s.role);
    win.set(Buffer.from(s.peer.padEnd(16, "\0")), INFO.slot(k) + 16);
  });
}

/** A console channel page formatted by core (as the image's template), in core's memory. */
function corePage(): number {
  const base = carve(core, 4096);
  expect(chan.chan_format(base, 4096, 1, CHAN.signalSize, CHAN.maxSlots, ChannelType.console)).toBe(0);
  return base;
}

/** The client's side, by core: one text request. */
function coreSend(base: number, text: string, opcode: number = CHAN.opText): void {
  const sig = carve(core, 4096);
  const m = new Uint8Array(core.memory.buffer);
  const d = new DataView(core.memory.buffer);
  d.setUint32(sig, opcode, true);
  d.setUint32(sig + 4, 1, true);
  d.setUint16(sig + 20, text.length, true);
  m.set(Buffer.from(text, "latin1").subarray(0, 64), sig + 64);
  expect(chan.chan_insert(base, 4096, 0, sig)).toBeGreaterThanOrEqual(0);
}

/** The server's side, by core: every request's inline bytes, removed. */
function coreReceive(base: number): Array<{ opcode: number; bytes: Buffer }> {
  const out: Array<{ opcode: number; bytes: Buffer }> = [];
  const dst = carve(core, 4096);
  while (chan.chan_remove(base, 4096, 0, dst) >= 0) {
    const d = new DataView(core.memory.buffer);
    out.push({ opcode: d.getUint32(dst, true), bytes: Buffer.from(new Uint8Array(core.memory.buffer, dst + 64, d.getUint16(dst + 20, true))) });
  }
  return out;
}

const toWindow = (win: Uint8Array, k: number, base: number): void => win.set(new Uint8Array(core.memory.buffer, base, 4096), WIN.slot(k));
const fromWindow = (win: Uint8Array, k: number, base: number): void => new Uint8Array(core.memory.buffer, base, 4096).set(win.subarray(WIN.slot(k), WIN.slot(k) + 4096));

describe("AssemblyScript partitions in V8", () => {
  it("the linear memory is the window's span", () => {
    const io = instantiate("io");
    expect(io.bytes().length).toBe(AS_MEMORY_BYTES);
    expect(AS_MEMORY_BYTES).toBe(WIN.slot(WIN.maxSlots));
  });

  it("I/O partition: drains each live server slot with core's queue code and tags every line with the client's name", () => {
    const io = instantiate("io");
    const win = io.bytes();
    writeInfo(win, "io", [{ role: 1, peer: "X" }, { role: 1, peer: "late", live: false }, { role: 1, peer: "command" }, { role: 0, peer: "client-side" }]);
    const pages = [corePage(), corePage(), corePage(), corePage()];
    coreSend(pages[0]!, "hello");
    coreSend(pages[0]!, "second line");
    coreSend(pages[1]!, "not live yet");
    coreSend(pages[2]!, `a\x01b\xff${"z".repeat(70)}`);
    coreSend(pages[3]!, "a client slot is not served");
    pages.forEach((p, k) => toWindow(win, k, p));
    const before = win.slice(WIN.slot(1), WIN.slot(2));
    const clientBefore = win.slice(WIN.slot(3), WIN.slot(4));
    expect(io.fn["serve"]!()).toBe(1);
    // Text clipped to 64 bytes, unprintable bytes as '.', CR LF after each line.
    expect(io.com1()).toBe(`X: hello\r\nX: second line\r\ncommand: a.b.${"z".repeat(60)}\r\n`);
    // The slot whose record has no address yet, and the client slot, were not touched (not even the counters).
    expect(Buffer.compare(win.subarray(WIN.slot(1), WIN.slot(2)), before)).toBe(0);
    expect(Buffer.compare(win.subarray(WIN.slot(3), WIN.slot(4)), clientBefore)).toBe(0);
    // Core, reading the pages back, sees the served queues empty and received counted.
    fromWindow(win, 0, pages[0]!);
    fromWindow(win, 2, pages[2]!);
    expect(chan.chan_pending(pages[0]!, 4096, 0)).toBe(0);
    expect(readQueueHeader(core.memory.buffer as ArrayBuffer, pages[0]!, 0).numReceived).toBe(2n);
    expect(chan.chan_pending(pages[2]!, 4096, 0)).toBe(0);
    // A pass with nothing new writes nothing.
    expect(io.fn["serve"]!()).toBe(0);
    expect(io.com1()).toBe(`X: hello\r\nX: second line\r\ncommand: a.b.${"z".repeat(60)}\r\n`);
    // The monitor fills slot 1's record in later (its client started): the next pass reads the record again and serves it.
    new DataView(win.buffer).setBigUint64(INFO.slot(1), WINDOW + BigInt(WIN.slot(1)), true);
    expect(io.fn["serve"]!()).toBe(1);
    expect(io.com1().endsWith("late: not live yet\r\n")).toBe(true);
  });

  it("I/O partition: skips a record whose address is not its slot's place, closes a channel that fails core's checks", () => {
    const io = instantiate("io");
    const win = io.bytes();
    writeInfo(win, "io", [{ role: 1, peer: "Y" }, { role: 1, peer: "W" }]);
    const p0 = corePage(), p1 = corePage();
    coreSend(p0, "tick");
    coreSend(p1, "misplaced");
    toWindow(win, 0, p0);
    toWindow(win, 1, p1);
    new DataView(win.buffer).setUint32(WIN.slot(0), 0x12345678, true); // Y rewrote its signature
    new DataView(win.buffer).setBigUint64(INFO.slot(1), WINDOW + 0x3f000n, true); // an address that is no slot
    expect(io.fn["serve"]!()).toBe(0);
    expect(io.com1()).toBe("Y: <channel failed the server's checks: closed>\r\n");
    expect(win[INFO.slot(0) + 8]).toBe(2);
    io.fn["serve"]!();
    expect(io.com1()).toBe("Y: <channel failed the server's checks: closed>\r\n");
  });

  it("I/O partition: main announces itself under its own name, then POLLs after a pass and YIELDs after an empty one", () => {
    const io = instantiate("io", { stopAt: (nr) => nr === HC.yield });
    writeInfo(io.bytes(), "io", []);
    expect(() => io.fn["main"]!()).toThrow(Yielded);
    expect(io.com1()).toBe("io: serving console channels; COM1 granted by the TSS I/O bitmap\r\n");
    expect(io.calls.map(([nr]) => nr)).toEqual([HC.poll, HC.yield]);
  });

  it("command partition: sends the build's payloads unchanged and in order, then submits the channel with COMMAND", () => {
    const cmd = instantiate("command", { stopAt: (nr) => nr === HC.yield });
    const win = cmd.bytes();
    writeInfo(win, "command", [{ role: 0, peer: "io" }, { role: 0, peer: "uv-partition" }]);
    const consolePage = corePage(), commandPage = corePage();
    toWindow(win, 0, consolePage);
    toWindow(win, 1, commandPage);
    // An opaque table as the build lays it out: u32 length, the bytes, 8-byte aligned; any bytes at all.
    const payloads = [
      definitionBytes(definitionOf({ name: "X", kind: "guest" }, 5)),
      Uint8Array.from({ length: 40 }, (_, i) => (i * 37) & 0xff),
      Uint8Array.of(7),
    ];
    const table = 0x20000;
    let at = table;
    for (const p of payloads) {
      new DataView(win.buffer).setUint32(at, p.length, true);
      win.set(p, at + 4);
      at = (at + 4 + p.length + 7) & ~7;
    }
    expect(() => cmd.fn["main"]!(WINDOW + BigInt(table), BigInt(payloads.length), 1n)).toThrow(Yielded);
    fromWindow(win, 0, consolePage);
    fromWindow(win, 1, commandPage);
    const sent = coreReceive(commandPage);
    expect(sent.map((s) => s.opcode)).toEqual(payloads.map(() => CHAN.opDefine));
    expect(sent.map((s) => [...s.bytes])).toEqual(payloads.map((p) => [...p]));
    expect(coreReceive(consolePage).map((s) => s.bytes.toString("latin1"))).toEqual([
      "applying 3 boot-time partition definitions",
      "command channel submitted, hypercall result -1", // the mock refused: a negative result prints signed
    ]);
    // One SIGNAL for the console's empty → non-empty transition, then COMMAND on slot 1, never SIGNAL on the command slot.
    expect(cmd.calls).toEqual([[HC.signal, 0n], [HC.command, 1n], [HC.yield, 0n]]);
  });

  it("guest: the probe's refusal line, then ticks with FNV-1a of the window range it was given", () => {
    let now = 0n;
    const page = corePage();
    const lines: string[] = [];
    // main runs for ever: the TIME hypercall collects what is in the console queue and stops it after three ticks.
    const g = instantiate("guest", {
      time: () => (now += 1n),
      stopAt: (nr) => {
        if (nr !== HC.time) return false;
        fromWindow(g.bytes(), 0, page);
        for (const r of coreReceive(page)) lines.push(r.bytes.toString("latin1"));
        toWindow(g.bytes(), 0, page);
        return lines.length >= 5;
      },
    });
    const win = g.bytes();
    writeInfo(win, "X", [{ role: 0, peer: "io" }]);
    toWindow(win, 0, page);
    win.set(Buffer.from("some code and constants to sum.."), 0x1000);
    expect(() => g.fn["main"]!(4n, WINDOW + 0x1000n, WINDOW + 0x1020n, 1n)).toThrow(Yielded);
    const sum = fnv1a(win.subarray(0x1000, 0x1020)).toString(16).padStart(8, "0");
    expect(lines.slice(0, 2)).toEqual(["command hypercall refused: result -1", "start hypercall refused: result -1"]);
    expect(lines.length).toBe(5);
    lines.slice(2).forEach((l, i) => {
      const m = /^tick (\d+) quantum (\d+) work (\d+) checksum 0x([0-9a-f]{8})$/.exec(l);
      expect(m, l).toBeTruthy();
      expect(m![1]).toBe(String(i + 1));
      expect(m![4]).toBe(sum);
    });
    // Consecutive lines are `period` quanta apart.
    const quanta = lines.slice(2).map((l) => Number(/quantum (\d+)/.exec(l)![1]));
    expect(quanta[1]! - quanta[0]!).toBe(4);
    expect(g.calls.filter(([nr]) => nr === HC.command)).toEqual([[HC.command, 0n]]);
    expect(g.calls.filter(([nr]) => nr === HC.start)).toEqual([[HC.start, 0n]]);
  });

  it("a trap's line: `trapped` writes it through the console channel", () => {
    const g = instantiate("guest");
    writeInfo(g.bytes(), "bad", [{ role: 0, peer: "io" }]);
    const page = corePage();
    toWindow(g.bytes(), 0, page);
    // The out-of-bounds checksum range of a wasm-oob guest: V8 traps where the AOT code traps (code 4).
    expect(() => g.fn["main"]!(0n, WINDOW + BigInt(AS_MEMORY_BYTES), WINDOW + BigInt(AS_MEMORY_BYTES) + 64n, 0n)).toThrow(/out of bounds/);
    g.fn["trapped"]!(4);
    fromWindow(g.bytes(), 0, page);
    expect(coreReceive(page).map((r) => r.bytes.toString("latin1"))).toEqual(["wasm trap 4; stopping with #UD"]);
  });
});

describe("AssemblyScript partition windows", () => {
  it("link the static data at its wasm address, last in the image, and refuse code that would push it further", async () => {
    const io = assembleAotIo(await partitionWasm("io"));
    const info = { name: "io", number: 3, slots: [] };
    const packed = packAotPartition(io, info);
    expect(packed.symbols.get("aot_data")).toBe(WINDOW + BigInt(AS_DATA_BASE));
    expect(packed.image.end).toBe(WINDOW + BigInt(AS_DATA_BASE + io.dataBytes));
    // Every data segment of the module is in the blob at its wasm address (= window offset).
    expect(io.compiled.datas.length).toBeGreaterThan(0);
    for (const d of io.compiled.datas) expect(Buffer.compare(packed.blob.subarray(d.offset, d.offset + d.bytes.length), d.bytes), `segment at 0x${d.offset.toString(16)}`).toBe(0);
    const big = new Assembler();
    big.section(".rdata");
    big.zero(AS_DATA_BASE);
    expect(() => packAotPartition({ ...io, object: mergeObjects(io.object, big.finish(), "big$") }, info)).toThrow(/too large for this layout/);
  });
});
