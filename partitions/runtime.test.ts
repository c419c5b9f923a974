// Tests of the ultravisor partition's command-channel server (partitions/runtime.ts emitCommandServer): the typed-
// assembler routines run on this machine's CPU (toolchain/x64/native.ts) on a channel page that core.wasm formatted
// with the image's command geometry, and exchange signals with core's own queue code (the client's side, as the
// AssemblyScript command partition runs it): requests inserted by core are peeked and popped here, completions posted
// here are removed by core, across the ring's wrap-around; a page whose header the client rewrote is refused untouched.
// And the client half every typed-assembler partition carries (chan_insert): a page whose header its server rewrote
// is refused untouched too (issue #12).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Assembler, type Label, r15, rax, rdi, ptr } from "../toolchain/x64/index.ts";
import { link } from "../toolchain/x64/link.ts";
import { ExecRegion, HostBuffer } from "../toolchain/x64/native.ts";
import { loadCore, type Core } from "../core/wasm.ts";
import { carve, chanExports, ChannelType, type ChanExports, readQueueHeader } from "../core/channel.ts";
import { CHAN, CMDCHAN, cmdSigBase } from "../monitor-gen/layout.ts";
import { COMPLETION, emitCommandServer, emitRuntime } from "./runtime.ts";

let core: Core;
let chan: ChanExports;
let page: number; // the channel in core's memory
let sig: number; // a signal buffer in core's memory
let code: ExecRegion;
let data: HostBuffer; // the routines' .bss (p_completion)
let channel: HostBuffer; // the channel page the routines work on
let signal: HostBuffer; // a signal the routines post
const at = new Map<string, number>();

beforeAll(async () => {
  core = await loadCore();
  chan = chanExports(core);
  page = carve(core, 4096);
  sig = carve(core, 4096);
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  a.section(".text");
  emitCommandServer(a);
  // begin(rdi = request) → rax = the completion cmd_begin made (r15 is the request in the ultravisor's loop).
  a.bind(L("t_begin"));
  a.push(r15).mov(r15, rdi).call(L("cmd_begin")).pop(r15);
  a.lea(rax, ptr(L(COMPLETION))).ret();
  const obj = a.finish();
  const text = obj.sections.findIndex((s) => s.name === ".text");
  const bss = obj.sections.findIndex((s) => s.name === ".bss");
  code = new ExecRegion(obj.sections[text]!.bytes.length);
  data = new HostBuffer(4096);
  const linked = link(obj, obj.sections.map((_, i) => (i === text ? code.address : data.address)));
  expect(obj.sections.length).toBe(2);
  expect(obj.sections[bss]!.bytes.length).toBeLessThanOrEqual(4096);
  code.load(linked.sections[text]!);
  for (const n of ["chan_peek", "chan_pop", "chan_post", "t_begin"]) at.set(n, Number(linked.symbols.get(n)! - code.address));
  channel = new HostBuffer(4096);
  signal = new HostBuffer(4096);
});
afterAll(() => {
  code?.dispose();
  for (const b of [data, channel, signal]) b?.dispose();
});

const call = (fn: string, ...args: bigint[]): bigint => BigInt.asIntN(64, code.call(at.get(fn)!, ...args));
const coreMem = (): Uint8Array => new Uint8Array(core.memory.buffer);
/** Core's page → the native channel, and back. */
const toNative = (): void => channel.bytes.set(coreMem().subarray(page, page + 4096));
const toCore = (): void => coreMem().set(channel.bytes, page);

function format(): void {
  expect(chan.chan_format(page, 4096, CMDCHAN.queues, CMDCHAN.signalSize, CMDCHAN.maxSlots, ChannelType.command)).toBe(0);
  toNative();
}

/** The client inserts a request with core's chan_insert (opcode, request_id, a byte pattern inline). */
function clientRequest(id: number): number {
  toCore();
  const m = coreMem();
  m.fill(0, sig, sig + 128);
  const d = new DataView(core.memory.buffer);
  d.setUint32(sig, CMDCHAN.requests + 2, true);
  d.setUint32(sig + 4, 1, true);
  d.setBigUint64(sig + 8, BigInt(id), true);
  d.setUint16(sig + 20, 40, true);
  for (let i = 0; i < 40; i++) m[sig + 64 + i] = (id * 7 + i) & 0xff;
  const r = chan.chan_insert(page, 4096, CMDCHAN.requests, sig);
  toNative();
  return r;
}

describe("the ultravisor partition's command-channel server (native) with core's queue code on the other side", () => {
  it("peeks and pops the requests core inserted, in order, and counts an empty peek", () => {
    format();
    for (let round = 0; round < 4; round++) {
      // 4 rounds of 5 wrap queue 0's 14 slots.
      for (let i = 0; i < 5; i++) expect(clientRequest(round * 5 + i + 1)).toBe(i === 0 ? 1 : 0);
      for (let i = 0; i < 5; i++) {
        const p = call("chan_peek", channel.address, 0n, BigInt(CMDCHAN.requests));
        expect(p).toBeGreaterThan(0n);
        const off = Number(BigInt(p) - channel.address);
        // The slot is inside queue 0's slot area; its bytes are the request core inserted.
        expect(off).toBeGreaterThanOrEqual(128 + cmdSigBase(0));
        expect(off).toBeLessThan(128 + cmdSigBase(0) + CMDCHAN.maxSlots * 128);
        expect(Number(channel.view.getBigUint64(off + 8, true))).toBe(round * 5 + i + 1);
        expect(channel.bytes[off + 64 + 3]).toBe(((round * 5 + i + 1) * 7 + 3) & 0xff);
        call("chan_pop", channel.address, 0n, BigInt(CMDCHAN.requests));
      }
      expect(call("chan_peek", channel.address, 0n, BigInt(CMDCHAN.requests))).toBe(0n);
    }
    toCore();
    expect(chan.chan_pending(page, 4096, CMDCHAN.requests)).toBe(0);
    const q = readQueueHeader(core.memory.buffer as ArrayBuffer, page, CMDCHAN.requests);
    expect(q.numReceived).toBe(20n);
    expect(q.numEmpty).toBe(4n);
  });

  it("posts completions that core removes in order; reports the empty → non-empty transition; drops (and counts) when full", () => {
    format();
    const post = (id: number): bigint => {
      signal.bytes.fill(0, 0, 128);
      signal.view.setUint32(0, 2, true);
      signal.view.setUint32(4, CMDCHAN.completionFlags, true);
      signal.view.setBigUint64(8, BigInt(id), true);
      signal.view.setInt32(16, -id, true);
      return call("chan_post", channel.address, signal.address, BigInt(CMDCHAN.completions));
    };
    const drain = (): number[] => {
      toCore();
      const ids: number[] = [];
      while (chan.chan_remove(page, 4096, CMDCHAN.completions, sig) >= 0) {
        const d = new DataView(core.memory.buffer);
        expect(d.getInt32(sig + 16, true)).toBe(-Number(d.getBigUint64(sig + 8, true)));
        ids.push(Number(d.getBigUint64(sig + 8, true)));
      }
      toNative();
      return ids;
    };
    // 13 fit (one slot stays empty); the 14th is dropped and counted.
    const results = Array.from({ length: CMDCHAN.maxSlots }, (_, i) => post(i + 1));
    expect(results).toEqual([1n, ...Array<bigint>(CMDCHAN.maxSlots - 2).fill(0n), -1n]);
    expect(drain()).toEqual(Array.from({ length: CMDCHAN.maxSlots - 1 }, (_, i) => i + 1));
    // Around the ring a few times.
    for (let round = 0; round < 5; round++) {
      const ids = [100 + round * 10, 101 + round * 10, 102 + round * 10];
      expect(ids.map(post)).toEqual([1n, 0n, 0n]);
      expect(drain()).toEqual(ids);
    }
    toCore();
    const q = readQueueHeader(core.memory.buffer as ArrayBuffer, page, CMDCHAN.completions);
    expect(q.numOverflows).toBe(1n);
    expect(q.numSent).toBe(BigInt(CMDCHAN.maxSlots - 1 + 15));
    // Queue 0 was not touched.
    expect(readQueueHeader(core.memory.buffer as ArrayBuffer, page, CMDCHAN.requests).numSent).toBe(0n);
  });

  it("cmd_begin echoes the request's opcode and request_id with the completion flags, inline length 4 and cdb_len 4", () => {
    format();
    clientRequest(0x1234);
    const p = call("chan_peek", channel.address, 0n, BigInt(CMDCHAN.requests));
    data.bytes.fill(0xee, 0, 128);
    const c = Number(call("t_begin", p) - BigInt(data.address));
    const v = data.view;
    expect(v.getUint32(c, true)).toBe(2);
    expect(v.getUint32(c + 4, true)).toBe(6);
    expect(v.getBigUint64(c + 8, true)).toBe(0x1234n);
    expect(v.getInt32(c + 16, true)).toBe(0);
    expect(v.getUint16(c + 20, true)).toBe(4);
    expect(data.bytes[c + 24]).toBe(4);
    expect(v.getUint32(c + 32, true)).toBe(0);
    expect(v.getUint32(c + 64, true)).toBe(0);
    // Every other byte is zero.
    expect([...data.bytes.subarray(c + 25, c + 32), ...data.bytes.subarray(c + 36, c + 64), ...data.bytes.subarray(c + 68, c + 128)].every((b) => b === 0)).toBe(true);
  });

  it("refuses a page whose header the client rewrote, touching nothing", () => {
    const q0 = 128, q1 = 256;
    const cases: Array<[string, (v: DataView) => void]> = [
      ["signature", (v) => v.setUint32(0, 0x12345678, true)],
      ["ch_space_offset", (v) => v.setBigUint64(64, 64n, true)],
      ["queue 1 signal_size", (v) => v.setUint32(q1 + 48, 4096, true)],
      ["queue 1 max_slots", (v) => v.setUint32(q1 + 52, 200, true)],
      ["queue 1 sig_base_offset", (v) => v.setBigUint64(q1 + 16, 1n << 40n, true)],
      ["queue 1 head", (v) => v.setUint32(q1 + 60, CMDCHAN.maxSlots, true)],
      ["queue 1 tail", (v) => v.setUint32(q1 + 72, 0xffffffff, true)],
      ["queue 0 max_slots", (v) => v.setUint32(q0 + 52, 15, true)],
      ["queue 0 sig_base_offset", (v) => v.setBigUint64(q0 + 16, 128n, true)],
      ["queue 0 head", (v) => v.setUint32(q0 + 60, 1000, true)],
    ];
    for (const [what, corrupt] of cases) {
      format();
      clientRequest(7);
      corrupt(channel.view);
      const before = channel.bytes.slice();
      const q = what.startsWith("queue 0") ? CMDCHAN.requests : what.startsWith("queue 1") ? CMDCHAN.completions : -1;
      if (q !== CMDCHAN.completions) {
        expect(call("chan_peek", channel.address, 0n, BigInt(CMDCHAN.requests)), `${what}: peek`).toBe(-1n);
        call("chan_pop", channel.address, 0n, BigInt(CMDCHAN.requests));
      }
      if (q !== CMDCHAN.requests) expect(call("chan_post", channel.address, signal.address, BigInt(CMDCHAN.completions)), `${what}: post`).toBe(-2n);
      expect(Buffer.compare(channel.bytes, before), `${what}: page unchanged`).toBe(0);
    }
    // A queue number past the channel's two.
    format();
    expect(call("chan_post", channel.address, signal.address, 2n)).toBe(-2n);
  });
});

// ---- the client half: chan_insert (every typed-assembler partition's console line, partitions/runtime.ts) ----------
describe("the typed-assembler partitions' console client (native): chan_insert trusts no header field its server can write", () => {
  let rt: { code: ExecRegion; data: HostBuffer; at: number };
  let area: HostBuffer; // the channel page, then three pages a bad geometry would reach
  let text: HostBuffer;
  beforeAll(() => {
    const a = new Assembler();
    emitRuntime(a);
    const obj = a.finish();
    const text0 = obj.sections.findIndex((s) => s.kind === "text");
    const codeBytes = obj.sections[text0]!.bytes.length;
    const code = new ExecRegion(codeBytes);
    const data = new HostBuffer(16384);
    // Every other section after the code, in the data buffer, each 64-byte aligned.
    let off = 0;
    const bases = obj.sections.map((s, i) => {
      if (i === text0) return code.address;
      const b = data.address + BigInt(off);
      off = Math.ceil((off + s.bytes.length) / 64) * 64;
      return b;
    });
    expect(off).toBeLessThanOrEqual(16384);
    const linked = link(obj, bases);
    code.load(linked.sections[text0]!);
    obj.sections.forEach((s, i) => {
      if (i !== text0 && s.kind !== "bss") data.bytes.set(linked.sections[i]!, Number(bases[i]! - data.address));
    });
    rt = { code, data, at: Number(linked.symbols.get("chan_insert")! - code.address) };
    area = new HostBuffer(16384);
    text = new HostBuffer(4096);
    text.bytes.set(Buffer.from("a line"));
  });
  afterAll(() => {
    rt?.code.dispose();
    for (const b of [rt?.data, area, text]) b?.dispose();
  });

  /** A console page as the image's template (core's chan_format), at the start of `area`; the rest zero. */
  function consolePage(): void {
    expect(chan.chan_format(page, 4096, 1, CHAN.signalSize, CHAN.maxSlots, ChannelType.console)).toBe(0);
    area.bytes.fill(0);
    area.bytes.set(coreMem().subarray(page, page + 4096));
  }
  const insert = (): bigint => BigInt.asIntN(64, rt.code.call(rt.at, area.address, text.address, BigInt(CHAN.opText), 6n));

  it("inserts into a console page core formatted, and core's remove reads the line back", () => {
    consolePage();
    expect(insert()).toBe(1n);
    expect(insert()).toBe(0n);
    coreMem().set(area.bytes.subarray(0, 4096), page);
    expect(chan.chan_remove(page, 4096, 0, sig)).toBe(0);
    const d = new DataView(core.memory.buffer);
    expect(d.getUint16(sig + 20, true)).toBe(6);
    expect(Buffer.from(coreMem().subarray(sig + 64, sig + 70)).toString()).toBe("a line");
  });

  // Queue 0's header is at channel offset 128. Each rewrite is one the server can make; each must be refused with −2
  // before anything is written (the slot, the counters, the pages after the channel).
  const attacks: Array<[string, number, 4 | 8, bigint]> = [
    ["signature", 0, 8, 0x1234n],
    ["ch_space_offset", 64, 8, 256n],
    ["sig_base_offset", 128 + 16, 8, 8192n],
    ["signal_size", 128 + 48, 4, 512n],
    ["max_slots", 128 + 52, 4, 64n],
    ["head", 128 + 60, 4, 16n],
    ["tail", 128 + 72, 4, 200n],
  ];
  for (const [field, off, width, value] of attacks) {
    it(`refuses a page whose ${field} its server rewrote, writing nothing`, () => {
      consolePage();
      if (field === "max_slots") area.view.setUint32(128 + 60, 40, true); // head 40: fine for 64 slots, not for 16
      if (width === 4) area.view.setUint32(off, Number(value), true);
      else area.view.setBigUint64(off, value, true);
      const before = area.bytes.slice();
      expect(insert()).toBe(-2n);
      expect(Buffer.compare(area.bytes, before)).toBe(0);
    });
  }
});
