// Tests of the AssemblyScript partition programs (partitions/assembly/io.ts, command.ts, guest.ts) run in V8 on a
// window laid out as docs/specs/image-layout.md says (info page at wasm 0, channel slot k at 0x40000 + 0x1000·k),
// with the hw imports played by the test: COM1 collects the I/O partition's bytes, hypercalls are recorded. The
// channels on the other side are core.wasm's — the simulator's channel code in its own linear memory — so the
// partitions' queue handling is checked against the implementation the channel ABI tests pin: pages are formatted
// and filled (or drained) by core, copied into the partition's window and back.
import { describe, expect, it, beforeAll } from "vitest";
import { carve, chanExports, ChannelType, type ChanExports, readQueueHeader } from "../core/channel.ts";
import { loadCore, type Core } from "../core/wasm.ts";
import { WA, type WasmMemory, type WasmModule } from "../core/webassembly.ts";
import { AS_DATA_BASE, AS_MEMORY_BYTES, assembleAotIo, packAotPartition, partitionWasm } from "./aot-guest.ts";
import { mergeObjects } from "../toolchain/aot/merge-objects.ts";
import { Assembler } from "../toolchain/x64/index.ts";
import { IO_NO_INPUT, definitionBytes, definitionOf } from "./programs.ts";
import { fnv1a } from "./pack.ts";
import { CHAN, CMDCHAN, COM1, HYPERCALL, INFO, WINDOW_LAYOUT, WINDOW } from "../monitor-gen/layout.ts";
import { SIGNAL_FLAGS } from "../core/channel-layout.ts";

let core: Core;
let chan: ChanExports;
/** One signal buffer in core's memory for the tests' inserts and removes (carve grows the memory by 64 KiB each call). */
let sigBuf: number;
const modules = new Map<string, WasmModule>();
beforeAll(async () => {
  core = await loadCore();
  chan = chanExports(core);
  sigBuf = carve(core, 4096);
  for (const p of ["io", "command", "guest"] as const) modules.set(p, new WA.Module(await partitionWasm(p)));
}, 60_000);

class Yielded extends Error {}

/** One partition instance: its window (= linear memory), the COM1 bytes it wrote and the hypercalls it made. */
function instantiate(program: string, opts: { stopAt?: (nr: number) => boolean; time?: () => bigint; answer?: (nr: number, a: bigint) => bigint | undefined; rx?: number[] } = {}) {
  const com1: number[] = [];
  const calls: Array<[number, bigint]> = [];
  // COM1 as a 16550 reads: LSR (base + 5) says the transmitter is empty, and data ready while `rx` holds typed bytes.
  const rx = opts.rx ?? [];
  const hw = {
    inb: (port: number): number => (port === COM1 + 5 ? 0x20 | (rx.length ? 1 : 0) : port === COM1 && rx.length ? rx.shift()! : 0xff),
    outb: (port: number, v: number): void => {
      if (port !== COM1) throw new Error(`outb to port 0x${port.toString(16)}`);
      com1.push(v & 0xff);
    },
    hypercall: (nr: bigint, a: bigint): bigint => {
      calls.push([Number(nr), a]);
      if (calls.length > 100_000) throw new Error(`${program}: more than 100000 hypercalls, stopping a runaway loop`);
      if (opts.stopAt?.(Number(nr))) throw new Yielded();
      const answered = opts.answer?.(Number(nr), a);
      if (answered !== undefined) return answered;
      return Number(nr) === HYPERCALL.time ? (opts.time?.() ?? 0n) : Number(nr) === HYPERCALL.command || Number(nr) === HYPERCALL.start ? -1n : 0n; // as the monitor answers a guest
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
    d.setBigUint64(INFO.slot(k), s.live === false ? 0n : WINDOW + BigInt(WINDOW_LAYOUT.slot(k)), true);
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

/** The command partition's console page as the image's input template: the command geometry, type console. */
function inputPage(): number {
  const base = carve(core, 4096);
  expect(chan.chan_format(base, 4096, CMDCHAN.queues, CMDCHAN.signalSize, CMDCHAN.maxSlots, ChannelType.console)).toBe(0);
  return base;
}

/** A command channel page formatted by core as the image's command template: 2 queues (requests, completions). */
function commandPage(): number {
  const base = carve(core, 4096);
  expect(chan.chan_format(base, 4096, CMDCHAN.queues, CMDCHAN.signalSize, CMDCHAN.maxSlots, ChannelType.command)).toBe(0);
  return base;
}

/** A completion as the ultravisor partition sends it (docs/specs/image-layout.md), inserted by core into queue 1. */
interface Answer { status: number; source: number; number: number; flags?: number; requestId?: bigint }
function coreComplete(base: number, req: { opcode: number; requestId: bigint }, a: Answer): number {
  const sig = sigBuf;
  new Uint8Array(core.memory.buffer, sig, 4096).fill(0);
  const d = new DataView(core.memory.buffer);
  d.setUint32(sig, req.opcode, true);
  d.setUint32(sig + 4, a.flags ?? CMDCHAN.completionFlags, true);
  d.setBigUint64(sig + 8, a.requestId ?? req.requestId, true);
  d.setInt32(sig + 16, a.status, true);
  d.setUint16(sig + 20, 4, true);
  d.setUint8(sig + 24, 4);
  d.setUint32(sig + 32, a.source, true);
  d.setUint32(sig + 64, a.number, true);
  return chan.chan_insert(base, 4096, CMDCHAN.completions, sig);
}

/**
 * The ultravisor partition's side, by core: drains the command page in slot 1 of `win` (via core page `base`) and
 * answers each request with `answer(payload, index)` (null: no completion), in reverse order when `reverse`.
 */
function serveAsUltravisor(win: Uint8Array, base: number, answer: (payload: Buffer, i: number) => Answer[] | null, reverse = false): number {
  fromWindow(win, 1, base);
  const reqs = coreReceive(base);
  const order = reverse ? [...reqs].reverse() : reqs;
  order.forEach((r, i) => {
    for (const a of answer(r.bytes, i) ?? []) expect(coreComplete(base, r, a)).toBeGreaterThanOrEqual(0);
  });
  toWindow(win, 1, base);
  return reqs.length;
}

/** The client's side, by core: one text request. */
function coreSend(base: number, text: string, opcode: number = CHAN.opText, flags: number = SIGNAL_FLAGS.toServer, inlineLen = text.length): void {
  const sig = sigBuf;
  new Uint8Array(core.memory.buffer, sig, 4096).fill(0);
  const m = new Uint8Array(core.memory.buffer);
  const d = new DataView(core.memory.buffer);
  d.setUint32(sig, opcode, true);
  d.setUint32(sig + 4, flags, true);
  d.setUint16(sig + 20, inlineLen, true);
  m.set(Buffer.from(text, "latin1").subarray(0, 64), sig + 64);
  expect(chan.chan_insert(base, 4096, 0, sig)).toBeGreaterThanOrEqual(0);
}

/** The server's side, by core: every request's inline bytes, removed. */
function coreReceive(base: number): Array<{ opcode: number; requestId: bigint; bytes: Buffer }> {
  const out: Array<{ opcode: number; requestId: bigint; bytes: Buffer }> = [];
  const dst = sigBuf;
  while (chan.chan_remove(base, 4096, 0, dst) >= 0) {
    const d = new DataView(core.memory.buffer);
    out.push({ opcode: d.getUint32(dst, true), requestId: d.getBigUint64(dst + 8, true), bytes: Buffer.from(new Uint8Array(core.memory.buffer, dst + 64, d.getUint16(dst + 20, true))) });
  }
  return out;
}

const toWindow = (win: Uint8Array, k: number, base: number): void => win.set(new Uint8Array(core.memory.buffer, base, 4096), WINDOW_LAYOUT.slot(k));
const fromWindow = (win: Uint8Array, k: number, base: number): void => new Uint8Array(core.memory.buffer, base, 4096).set(win.subarray(WINDOW_LAYOUT.slot(k), WINDOW_LAYOUT.slot(k) + 4096));

/** The command partition's definition table as the build lays it out: u32 length, the bytes, 8-byte aligned. */
function writeDefinitionTable(win: Uint8Array, table: number, payloads: readonly Uint8Array[]): void {
  let at = table;
  for (const p of payloads) {
    new DataView(win.buffer, win.byteOffset).setUint32(at, p.length, true);
    win.set(p, at + 4);
    at = (at + 4 + p.length + 7) & ~7;
  }
}

describe("AssemblyScript partitions in V8", () => {
  it("the linear memory is the window's span", () => {
    const io = instantiate("io");
    expect(io.bytes().length).toBe(AS_MEMORY_BYTES);
    expect(AS_MEMORY_BYTES).toBe(WINDOW_LAYOUT.slot(WINDOW_LAYOUT.maxSlots));
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
    const before = win.slice(WINDOW_LAYOUT.slot(1), WINDOW_LAYOUT.slot(2));
    const clientBefore = win.slice(WINDOW_LAYOUT.slot(3), WINDOW_LAYOUT.slot(4));
    expect(io.fn["serve"]!()).toBe(1);
    // Text clipped to 64 bytes, unprintable bytes as '.', CR LF after each line.
    expect(io.com1()).toBe(`X: hello\r\nX: second line\r\ncommand: a.b.${"z".repeat(60)}\r\n`);
    // The slot whose record has no address yet, and the client slot, were not touched (not even the counters).
    expect(Buffer.compare(win.subarray(WINDOW_LAYOUT.slot(1), WINDOW_LAYOUT.slot(2)), before)).toBe(0);
    expect(Buffer.compare(win.subarray(WINDOW_LAYOUT.slot(3), WINDOW_LAYOUT.slot(4)), clientBefore)).toBe(0);
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
    new DataView(win.buffer).setBigUint64(INFO.slot(1), WINDOW + BigInt(WINDOW_LAYOUT.slot(1)), true);
    expect(io.fn["serve"]!()).toBe(1);
    expect(io.com1().endsWith("late: not live yet\r\n")).toBe(true);
  });

  it("I/O partition: joins a line's MORE parts per slot, bounded by 256 bytes, never into another slot's line", () => {
    const io = instantiate("io");
    const win = io.bytes();
    writeInfo(win, "io", [{ role: 1, peer: "L" }, { role: 1, peer: "X" }]);
    const [l, x] = [corePage(), corePage()];
    const MORE = SIGNAL_FLAGS.toServer | SIGNAL_FLAGS.more;
    // A line in three parts (the last without MORE), with X's whole line arriving between the parts.
    coreSend(l, "a".repeat(64), CHAN.opText, MORE);
    coreSend(l, "b".repeat(10), CHAN.opText, MORE);
    coreSend(x, "x line");
    toWindow(win, 0, l);
    toWindow(win, 1, x);
    expect(io.fn["serve"]!()).toBe(1);
    // Nothing of L is printed yet: its line is not finished; X's line comes whole and alone.
    expect(io.com1()).toBe("X: x line\r\n");
    fromWindow(win, 0, l);
    coreSend(l, "c");
    toWindow(win, 0, l);
    io.fn["serve"]!();
    expect(io.com1()).toBe(`X: x line\r\nL: ${"a".repeat(64)}${"b".repeat(10)}c\r\n`);
    // A hostile client: MORE for ever, and an inline length past the text a request may carry (clipped to 64). Each
    // 256 bytes it sent go out as a line of their own; the buffer never grows past that, and X is unaffected.
    const before = io.com1().length;
    fromWindow(win, 0, l);
    for (let k = 0; k < 9; k++) coreSend(l, String.fromCharCode(0x61 + k).repeat(64), CHAN.opText, MORE, 0xffff);
    toWindow(win, 0, l);
    io.fn["serve"]!();
    const out = io.com1().slice(before);
    const want = (from: number): string => Array.from({ length: 4 }, (_, k) => String.fromCharCode(0x61 + from + k).repeat(64)).join("");
    expect(out).toBe(`L: ${want(0)}\r\nL: ${want(4)}\r\n`); // the ninth part waits for the next ones
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
    new DataView(win.buffer).setUint32(WINDOW_LAYOUT.slot(0), 0x12345678, true); // Y rewrote its signature
    new DataView(win.buffer).setBigUint64(INFO.slot(1), WINDOW + 0x3f000n, true); // an address that is no slot
    expect(io.fn["serve"]!()).toBe(0);
    expect(io.com1()).toBe("Y: <channel failed the server's checks: closed>\r\n");
    expect(win[INFO.slot(0) + 8]).toBe(2);
    io.fn["serve"]!();
    expect(io.com1()).toBe("Y: <channel failed the server's checks: closed>\r\n");
  });

  it("I/O partition: checks every queue-header field against the console geometry before it removes (issue #12)", () => {
    // The attack: W sets signal_size = 1 in its queue header and advances its head; core then copies one byte of W's
    // slot and the I/O partition printed the rest of its buffer — another client's earlier line — under W's name.
    const geometry: Array<[string, number, number, number]> = [
      // field, offset in queue 0's header (channel offset 128 + …), width, value
      ["signal_size", 48, 4, 1],
      ["max_slots", 52, 4, 8],
      ["max_signals", 56, 4, 3],
      ["sig_base_offset", 16, 8, 256],
      ["size", 8, 8, 64],
    ];
    for (const [field, off, width, value] of geometry) {
      const io = instantiate("io");
      const win = io.bytes();
      writeInfo(win, "io", [{ role: 1, peer: "X" }, { role: 1, peer: "W" }]);
      const px = corePage(), pw = corePage();
      coreSend(px, "a secret line of X");
      coreSend(pw, "w");
      toWindow(win, 0, px);
      toWindow(win, 1, pw);
      const d = new DataView(win.buffer);
      const at = WINDOW_LAYOUT.slot(1) + 128 + off;
      if (width === 4) d.setUint32(at, value, true);
      else d.setBigUint64(at, BigInt(value), true);
      io.fn["serve"]!();
      expect(io.com1(), field).toBe("X: a secret line of X\r\nW: <channel failed the server's checks: closed>\r\n");
      expect(win[INFO.slot(1) + 8], `${field}: W's slot closed`).toBe(2);
    }
    // The channel header's own geometry: ch_space_offset and header_size.
    for (const [off, value] of [[64, 256], [12, 64]] as const) {
      const io = instantiate("io");
      const win = io.bytes();
      writeInfo(win, "io", [{ role: 1, peer: "W" }]);
      const pw = corePage();
      coreSend(pw, "w");
      toWindow(win, 0, pw);
      new DataView(win.buffer).setUint32(WINDOW_LAYOUT.slot(0) + off, value, true);
      io.fn["serve"]!();
      expect(io.com1(), `header offset ${off}`).toBe("W: <channel failed the server's checks: closed>\r\n");
    }
  });

  it("I/O partition: main announces itself under its own name, then POLLs after a pass and YIELDs after an empty one", () => {
    const io = instantiate("io", { stopAt: (nr) => nr === HYPERCALL.yield });
    writeInfo(io.bytes(), "io", []);
    expect(() => io.fn["main"]!(IO_NO_INPUT)).toThrow(Yielded);
    expect(io.com1()).toBe("io: serving console channels; COM1 granted by the TSS I/O bitmap\r\n");
    expect(io.calls.map(([nr]) => nr)).toEqual([HYPERCALL.poll, HYPERCALL.yield]);
  });

  it("I/O partition: forwards each line typed on COM1 to queue 1 of the input slot, cut at 63 bytes (flagged), control bytes dropped", () => {
    const typed = `create G 8M console:io\r\nstop X\n${"L".repeat(70)}\r\x01ba\x7fd\x1b\r\r\n`;
    const io = instantiate("io", { stopAt: (nr) => nr === HYPERCALL.yield, rx: [...Buffer.from(typed, "latin1")] });
    const win = io.bytes();
    writeInfo(win, "io", [{ role: 1, peer: "command" }, { role: 1, peer: "X" }]);
    const input = inputPage(), x = corePage();
    toWindow(win, 0, input);
    toWindow(win, 1, x);
    expect(() => io.fn["main"]!(0n)).toThrow(Yielded);
    fromWindow(win, 0, input);
    const got: Array<{ text: string; truncated: number; flags: number }> = [];
    const d = new DataView(core.memory.buffer);
    while (chan.chan_remove(input, 4096, 1, sigBuf) >= 0) {
      got.push({ text: Buffer.from(new Uint8Array(core.memory.buffer, sigBuf + 64, d.getUint16(sigBuf + 20, true))).toString("latin1"), truncated: d.getUint8(sigBuf + 32), flags: d.getUint32(sigBuf + 4, true) });
    }
    expect(got).toEqual([
      { text: "create G 8M console:io", truncated: 0, flags: 2 },
      { text: "stop X", truncated: 0, flags: 2 },
      { text: "L".repeat(63), truncated: 1, flags: 2 },
      { text: "bad", truncated: 0, flags: 2 },
    ]);
    // One SIGNAL for the queue's empty → non-empty transition, on the input slot.
    expect(io.calls.filter(([nr]) => nr === HYPERCALL.signal)).toEqual([[HYPERCALL.signal, 0n]]);
    expect(io.com1()).not.toMatch(/not delivered/);
  });

  it("I/O partition: a typed line whose input slot fails the geometry check is not delivered, and says so", () => {
    const io = instantiate("io", { stopAt: (nr) => nr === HYPERCALL.yield, rx: [...Buffer.from("stop X\r", "latin1")] });
    const win = io.bytes();
    writeInfo(win, "io", [{ role: 1, peer: "command" }]);
    toWindow(win, 0, corePage()); // a one-queue console where the input template belongs
    expect(() => io.fn["main"]!(0n)).toThrow(Yielded);
    expect(io.com1()).toContain("io: typed line not delivered to the command partition: status -4\r\n");
  });

  it("command partition: answers each typed line with the line reader's verdict, hostile lengths and cut lines refused", () => {
    const lines: string[] = [];
    const consolePage = inputPage();
    const drain = (): void => {
      fromWindow(cmd.bytes(), 0, consolePage);
      for (const r of coreReceive(consolePage)) lines.push(r.bytes.toString("latin1"));
      toWindow(cmd.bytes(), 0, consolePage);
    };
    const cmd = instantiate("command", { stopAt: (nr) => { drain(); return nr === HYPERCALL.yield; } });
    const win = cmd.bytes();
    writeInfo(win, "command", [{ role: 0, peer: "io" }, { role: 0, peer: "uv-partition" }]);
    const typed = (text: string, o: { truncated?: boolean; inlineLen?: number } = {}): void => {
      new Uint8Array(core.memory.buffer, sigBuf, 4096).fill(0);
      const d = new DataView(core.memory.buffer);
      d.setUint32(sigBuf, 1, true);
      d.setUint32(sigBuf + 4, 2, true);
      d.setUint16(sigBuf + 20, o.inlineLen ?? text.length, true);
      d.setUint8(sigBuf + 24, 1);
      d.setUint8(sigBuf + 32, o.truncated ? 1 : 0);
      new Uint8Array(core.memory.buffer).set(Buffer.from(text, "latin1").subarray(0, 64), sigBuf + 64);
      expect(chan.chan_insert(consolePage, 4096, 1, sigBuf)).toBeGreaterThanOrEqual(0);
    };
    typed("create G1 64M console:io storage:io");
    typed("create G1 64M printer:io");
    typed("stop");
    typed("restart fifteen-chars-x");
    typed("stop X", { truncated: true });
    typed("stop X", { inlineLen: 4000 });
    toWindow(win, 0, consolePage);
    writeDefinitionTable(win, 0x20000, []);
    expect(() => cmd.fn["main"]!(WINDOW + 0x20000n, 0n, 1n, 0n)).toThrow(Yielded);
    expect(lines.filter((l) => l.startsWith("> "))).toEqual([
      "> G1 create: read, not run here (status -2006)",
      "> refused (status -2003)",
      "> refused (status -2001)",
      "> fifteen-chars-x restart: read, not run here (status -2006)",
      "> refused (status -2001)",
      "> refused (status -2001)",
    ]);
  });

  it("command partition: sends the build's payloads unchanged and in order, then submits the channel with COMMAND", () => {
    const cmd = instantiate("command", { stopAt: (nr) => nr === HYPERCALL.yield });
    const win = cmd.bytes();
    writeInfo(win, "command", [{ role: 0, peer: "io" }, { role: 0, peer: "uv-partition" }]);
    const consolePage = corePage(), cmdPage = commandPage();
    toWindow(win, 0, consolePage);
    toWindow(win, 1, cmdPage);
    // An opaque table as the build lays it out: u32 length, the bytes, 8-byte aligned; any bytes at all.
    const payloads = [
      definitionBytes(definitionOf({ name: "X", kind: "guest" }, 5)),
      Uint8Array.from({ length: 40 }, (_, i) => (i * 37) & 0xff),
      Uint8Array.of(7),
    ];
    const table = 0x20000;
    writeDefinitionTable(win, table, payloads);
    expect(() => cmd.fn["main"]!(WINDOW + BigInt(table), BigInt(payloads.length), 1n, 0n)).toThrow(Yielded);
    fromWindow(win, 0, consolePage);
    fromWindow(win, 1, cmdPage);
    const sent = coreReceive(cmdPage);
    expect(sent.map((s) => s.opcode)).toEqual(payloads.map(() => CHAN.opDefine));
    expect(sent.map((s) => [...s.bytes])).toEqual(payloads.map((p) => [...p]));
    expect(coreReceive(consolePage).map((s) => s.bytes.toString("latin1"))).toEqual([
      "applying 3 boot-time partition definitions",
      "command channel submitted, hypercall result -1", // the mock refused: a negative result prints signed
    ]);
    // One SIGNAL for the console's empty → non-empty transition, then COMMAND on slot 1, never SIGNAL on the command
    // slot; refused, so nobody will answer: it idles at once instead of waiting.
    expect(cmd.calls).toEqual([[HYPERCALL.signal, 0n], [HYPERCALL.command, 1n], [HYPERCALL.yield, 0n]]);
  });

  /** A command partition on a command page formatted by core, its table holding `payloads`; COMMAND runs `onCommand`. */
  function commandPartition(payloads: Uint8Array[], o: { onCommand?: (win: Uint8Array, page: number) => void; time?: () => bigint; stopAt: (lines: string[], nr: number) => boolean }) {
    const lines: string[] = [];
    const consolePage = corePage(), page = commandPage();
    // The console is drained at every hypercall, as the I/O partition would between two quanta.
    const drain = (): void => {
      fromWindow(cmd.bytes(), 0, consolePage);
      for (const r of coreReceive(consolePage)) lines.push(r.bytes.toString("latin1"));
      toWindow(cmd.bytes(), 0, consolePage);
    };
    const cmd = instantiate("command", {
      ...(o.time ? { time: o.time } : {}),
      stopAt: (nr) => {
        drain();
        return o.stopAt(lines, nr);
      },
      answer: (nr) => {
        if (nr !== HYPERCALL.command) return undefined;
        o.onCommand?.(cmd.bytes(), page);
        return 0n;
      },
    });
    const win = cmd.bytes();
    writeInfo(win, "command", [{ role: 0, peer: "io" }, { role: 0, peer: "uv-partition" }]);
    toWindow(win, 0, consolePage);
    toWindow(win, 1, page);
    const table = 0x20000;
    writeDefinitionTable(win, table, payloads);
    const run = (): void => expect(() => cmd.fn["main"]!(WINDOW + BigInt(table), BigInt(payloads.length), 1n, 0n)).toThrow(Yielded);
    return { cmd, lines, page, run };
  }
  const def = (name: string, n: number): Uint8Array => definitionBytes(definitionOf({ name, kind: "guest" }, n));

  it("command partition: reads queue 1 with core's code and prints one line per completion, matched by request_id", () => {
    const payloads = [def("X", 5), def("fifteen-chars-x", 6), Uint8Array.of(0x41, 0x42)];
    const answers: Record<string, Answer> = {
      X: { status: 0, source: CMDCHAN.source.applied, number: 0x40f },
      "fifteen-chars-x": { status: -1003, source: CMDCHAN.source.core, number: 0 },
      AB: { status: CMDCHAN.refusal.notDefinition, source: CMDCHAN.source.ultravisor, number: 0 },
    };
    let served = 0;
    const c = commandPartition(payloads, {
      // The ultravisor's side answers in reverse order, with a stray completion and a signal that is no completion first.
      onCommand: (win, page) => {
        served += serveAsUltravisor(win, page, (bytes, i) => {
          const name = bytes.subarray(0, 16).toString("latin1").replace(/\0.*$/s, "");
          const extra: Answer[] = i === 0 ? [{ status: 0, source: 0, number: 1, requestId: 999n }, { status: 0, source: 0, number: 1, flags: 1 }] : [];
          return [...extra, answers[name]!];
        }, true);
      },
      stopAt: (_lines, nr) => nr === HYPERCALL.yield,
    });
    c.run();
    expect(served).toBe(3);
    expect(c.lines).toEqual([
      "applying 3 boot-time partition definitions",
      "command channel submitted, hypercall result 0",
      "completion for no outstanding request: 999",
      "not a completion, skipped: request 4", // the console line took request_id 1
      "definition AB: refused: error -1 (ultravisor)",
      "definition fifteen-chars-x: refused: error -1003 (core)",
      "definition X: partition 0x0000040f started",
    ]);
    for (const l of c.lines) expect(l.length).toBeLessThanOrEqual(64);
    // COMMAND once; the completions were there at once: no POLL or YIELD before the idle loop's (SIGNALs are the
    // console's, whose queue the test drains at every hypercall).
    expect(c.cmd.calls.map(([nr]) => nr).filter((n) => n !== HYPERCALL.signal)).toEqual([HYPERCALL.command, HYPERCALL.time, HYPERCALL.yield]);
    expect(c.cmd.calls.filter(([nr]) => nr === HYPERCALL.signal).every(([, a]) => a === 0n)).toBe(true);
    // Core's counters: every completion removed, the queue empty.
    fromWindow(c.cmd.bytes(), 1, c.page);
    expect(chan.chan_pending(c.page, 4096, CMDCHAN.completions)).toBe(0);
    expect(readQueueHeader(core.memory.buffer as ArrayBuffer, c.page, CMDCHAN.completions).numReceived).toBe(5n);
  });

  it("command partition: START's refusal and a completion after some quanta of POLL and YIELD", () => {
    let now = 0n;
    let polls = 0;
    const c = commandPartition([def("X", 5), def("Y", 6)], {
      time: () => now,
      stopAt: (lines, nr) => {
        if (nr === HYPERCALL.yield) now += 16n;
        if (nr === HYPERCALL.poll && ++polls === 3) {
          // The ultravisor partition runs now: both definitions answered, X started and Y refused by START.
          serveAsUltravisor(c.cmd.bytes(), c.page, (bytes) => [bytes[0] === 0x58 ? { status: 0, source: 0, number: 0x40e } : { status: -4, source: CMDCHAN.source.start, number: 0 }]);
        }
        return lines.length === 4;
      },
    });
    c.run();
    expect(c.lines.slice(2)).toEqual(["definition X: partition 0x0000040e started", "definition Y: refused: error -4 (START)"]);
    const nrs = c.cmd.calls.map(([nr]) => nr).filter((n) => n !== HYPERCALL.signal);
    expect(nrs.slice(0, 2)).toEqual([HYPERCALL.command, HYPERCALL.time]);
    expect(nrs.filter((n) => n === HYPERCALL.poll).length).toBe(3);
  });

  it("command partition: gives up waiting 2000 quanta after COMMAND when no completion comes, then idles", () => {
    let now = 0n;
    let idle = 0;
    const c = commandPartition([def("X", 5), def("Y", 6), def("Z", 7)], {
      time: () => (now += 100n),
      stopAt: (lines, nr) => nr === HYPERCALL.yield && lines.some((l) => l.startsWith("gave up")) && ++idle === 3,
    });
    c.run();
    expect(c.lines).toEqual([
      "applying 3 boot-time partition definitions",
      "command channel submitted, hypercall result 0",
      "gave up waiting after 2000 quanta: 3 completions missing",
    ]);
    // TIME at COMMAND (100) and then once per empty pass until 2100; POLL, and YIELD while nothing is signalled.
    const nrs = c.cmd.calls.map(([nr]) => nr);
    expect(nrs.filter((n) => n === HYPERCALL.time).length).toBe(21);
    expect(nrs.filter((n) => n === HYPERCALL.poll).length).toBe(19);
    expect(nrs.slice(-3)).toEqual([HYPERCALL.yield, HYPERCALL.yield, HYPERCALL.yield]);
  });

  it("command partition: more definitions than queue 1 holds go in batches, each submitted and answered", () => {
    const names = Array.from({ length: 15 }, (_, i) => `G${i + 1}`);
    let commands = 0;
    const c = commandPartition(names.map((n, i) => def(n, i + 5)), {
      onCommand: (win, page) => {
        commands++;
        serveAsUltravisor(win, page, (bytes) => [{ status: 0, source: 0, number: 0x400 + bytes[1]! }]);
      },
      stopAt: (lines, nr) => nr === HYPERCALL.yield && lines.length === 18,
    });
    c.run();
    expect(commands).toBe(2);
    const batch = CMDCHAN.maxSlots - 1;
    expect(c.lines.filter((l) => l.startsWith("command channel submitted")).length).toBe(2);
    expect(c.lines.filter((l) => l.startsWith("definition "))).toEqual(names.map((n) => `definition ${n}: partition 0x${(0x400 + n.charCodeAt(1)).toString(16).padStart(8, "0")} started`));
    expect(c.lines.indexOf("command channel submitted, hypercall result 0", 2)).toBe(2 + batch);
  });

  it("guest: the probe's refusal line, then ticks with FNV-1a of the window range it was given", () => {
    let now = 0n;
    const page = corePage();
    const lines: string[] = [];
    // main runs for ever: the TIME hypercall collects what is in the console queue and stops it after three ticks.
    const g = instantiate("guest", {
      time: () => (now += 1n),
      stopAt: (nr) => {
        if (nr !== HYPERCALL.time) return false;
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
    expect(g.calls.filter(([nr]) => nr === HYPERCALL.command)).toEqual([[HYPERCALL.command, 0n]]);
    expect(g.calls.filter(([nr]) => nr === HYPERCALL.start)).toEqual([[HYPERCALL.start, 0n]]);
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
