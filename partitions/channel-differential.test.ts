// Differential test of the hand-written x64 channel queues (partitions/runtime.ts: the console client's chan_insert
// every typed-assembler partition carries, the ultravisor partition's command-channel server chan_post / chan_peek +
// chan_pop) against core's queue code (core/assembly/channel.ts in V8), on the same random operation sequences
// (fast-check), including hostile header values the peer can write at any time. The hand routines run natively
// (toolchain/x64/native.ts) on one copy of the channel page, core on another copy; after every step the two pages
// must be byte-identical and the results the same. The hand path is specialised on the image's fixed geometry, so
// where a hostile write leaves a different but self-consistent geometry core may accept what the hand path refuses:
// then the hand path must have written nothing, and core's copy is reset to it. Core refusing what the hand path
// accepts fails the test. Why the hand path stays (code size, measured): docs/adr/0012-hand-channel-path.md.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Assembler } from "../toolchain/x64/index.ts";
import { link } from "../toolchain/x64/link.ts";
import { ExecRegion, HostBuffer } from "../toolchain/x64/native.ts";
import { loadCore, type Core } from "../core/wasm.ts";
import { carve, chanExports, ChannelType, type ChanExports } from "../core/channel.ts";
import { CHANNEL_HEADER as CH, QUEUE_HEADER as QH, SIGNAL } from "../core/channel-layout.ts";
import { CHAN, CMDCHAN } from "../monitor-gen/layout.ts";
import { emitCommandServer, emitRuntime } from "./runtime.ts";

const BYTES = 4 * 4096; // the channel page and three pages a bad geometry would reach
let core: Core;
let chan: ChanExports;
let page: number; // core's copy
let sig: number; // a signal buffer in core's memory
let hand: HostBuffer; // the hand routines' copy
let text: HostBuffer; // the hand routines' input (line text or a signal to post)
let rt: { code: ExecRegion; data: HostBuffer; at: Map<string, number>; reqid: number };

beforeAll(async () => {
  core = await loadCore();
  chan = chanExports(core);
  page = carve(core, BYTES);
  sig = carve(core, 4096);
  const a = new Assembler();
  emitRuntime(a);
  emitCommandServer(a);
  const obj = a.finish();
  const ti = obj.sections.findIndex((s) => s.kind === "text");
  const code = new ExecRegion(obj.sections[ti]!.bytes.length);
  const data = new HostBuffer(16384);
  let off = 0;
  const bases = obj.sections.map((s, i) => {
    if (i === ti) return code.address;
    const b = data.address + BigInt(off);
    off = Math.ceil((off + s.bytes.length) / 64) * 64;
    return b;
  });
  expect(off).toBeLessThanOrEqual(16384);
  const linked = link(obj, bases);
  code.load(linked.sections[ti]!);
  obj.sections.forEach((s, i) => {
    if (i !== ti && s.kind !== "bss") data.bytes.set(linked.sections[i]!, Number(bases[i]! - data.address));
  });
  const at = new Map(["chan_insert", "chan_post", "chan_peek", "chan_pop"].map((n) => [n, Number(linked.symbols.get(n)! - code.address)]));
  rt = { code, data, at, reqid: Number(linked.symbols.get("p_reqid")! - data.address) };
  hand = new HostBuffer(BYTES);
  text = new HostBuffer(4096);
});
afterAll(() => {
  rt?.code.dispose();
  for (const b of [rt?.data, hand, text]) b?.dispose();
});

const call = (fn: string, ...args: bigint[]): bigint => BigInt.asIntN(64, rt.code.call(rt.at.get(fn)!, ...args));
const mem = (): Uint8Array => new Uint8Array(core.memory.buffer);
const corePage = (): Uint8Array => mem().subarray(page, page + BYTES);
const same = (): boolean => Buffer.compare(hand.bytes, corePage()) === 0;

/** Both copies: `apply` runs on a DataView of each (the peer's writes, identical on both). */
function both(apply: (v: DataView, base: number) => void): void {
  apply(hand.view, 0);
  apply(new DataView(core.memory.buffer), page);
}

/** A header field the peer may rewrite, with its width and its channel offset (queue q's header for queue fields). */
type Field = { name: string; off: number; width: 4 | 8 };
const fieldsOf = (queues: number): Field[] => [
  { name: "signature", off: CH.signature, width: 8 }, { name: "header_size", off: CH.header_size, width: 4 },
  { name: "ch_space_offset", off: CH.ch_space_offset, width: 8 },
  ...Array.from({ length: queues }, (_, q) => {
    const h = 128 + q * 128;
    return ([["size", 8], ["sig_base_offset", 8], ["num_sent", 8], ["num_overflows", 8], ["signal_size", 4], ["max_slots", 4],
      ["max_signals", 4], ["head", 4], ["num_received", 8], ["tail", 4], ["num_empty", 8]] as const)
      .map(([n, w]): Field => ({ name: `q${q}.${n}`, off: h + QH[n], width: w }));
  }).flat(),
];

type Op =
  | { op: "send"; len: number; fill: number } // the side under test inserts (client line / server completion)
  | { op: "take" } // the side under test removes (server only)
  | { op: "peer" } // the peer removes (console) or inserts a request (command), by core on both copies
  | { op: "poke"; field: number; value: bigint };

const opArb = (fields: number, server: boolean): fc.Arbitrary<Op> => fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("send" as const), len: fc.integer({ min: 0, max: 100 }), fill: fc.integer({ min: 0, max: 255 }) }) },
  { weight: server ? 5 : 0, arbitrary: fc.constant({ op: "take" as const }) },
  { weight: 4, arbitrary: fc.constant({ op: "peer" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("poke" as const), field: fc.nat({ max: fields - 1 }),
      // Hostile values: small numbers (near the geometry), the ring's edges, anything at all.
      value: fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.constantFrom(13n, 14n, 15n, 16n, 17n, 127n, 128n, 256n, 0xffff_ffffn), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
    }),
  },
);

interface Tally { agreed: number; handOnlyRefused: number }

/** Runs one sequence; throws (via expect) on the first disagreement. */
function run(ops: Op[], server: boolean, t: Tally): void {
  const fields = fieldsOf(server ? 2 : 1);
  // Formatted by core with the image's geometry and made READY, on core's copy; the hand copy gets the same bytes.
  mem().fill(0, page, page + BYTES);
  const r = server
    ? chan.chan_format(page, 4096, CMDCHAN.queues, CMDCHAN.signalSize, CMDCHAN.maxSlots, ChannelType.command)
    : chan.chan_format(page, 4096, 1, CHAN.signalSize, CHAN.maxSlots, ChannelType.console);
  expect(r).toBe(0);
  hand.bytes.set(corePage());
  const mine = server ? CMDCHAN.completions : 0; // the queue the side under test inserts into
  const theirs = server ? CMDCHAN.requests : 0; // the queue it removes from (server) or the peer removes from (console)
  let peerId = 0;
  for (const o of ops) {
    const before = hand.bytes.slice();
    if (o.op === "poke") {
      const f = fields[o.field]!;
      both((v, b) => (f.width === 4 ? v.setUint32(b + f.off, Number(o.value & 0xffff_ffffn), true) : v.setBigUint64(b + f.off, o.value, true)));
      continue;
    }
    if (o.op === "peer") {
      // The peer's own operation, by core on each copy: results and bytes agree by construction unless the copies
      // already differ (checked after every step).
      if (server) {
        const put = (): number => {
          mem().fill(0, sig, sig + CMDCHAN.signalSize);
          const d = new DataView(core.memory.buffer);
          d.setUint32(sig + SIGNAL.opcode, CMDCHAN.requests + 2, true);
          d.setBigUint64(sig + SIGNAL.request_id, BigInt(++peerId), true);
          return chan.chan_insert(page, 4096, theirs, sig);
        };
        const rc = put();
        const saved = corePage().slice();
        corePage().set(hand.bytes);
        peerId--;
        expect(put()).toBe(rc);
        hand.bytes.set(corePage());
        corePage().set(saved);
      } else {
        const rc = chan.chan_remove(page, 4096, theirs, sig);
        const saved = corePage().slice();
        corePage().set(hand.bytes);
        expect(chan.chan_remove(page, 4096, theirs, sig)).toBe(rc);
        hand.bytes.set(corePage());
        corePage().set(saved);
      }
      expect(same(), "after the peer's operation").toBe(true);
      continue;
    }
    const coreBefore = corePage().slice();
    let handRc: bigint;
    let coreRc: number;
    let handSignal: Uint8Array | undefined;
    if (o.op === "send" && !server) {
      text.bytes.fill(o.fill, 0, 128);
      const id = rt.data.view.getBigUint64(rt.reqid, true) + 1n;
      handRc = call("chan_insert", hand.address, text.address, BigInt(CHAN.opText), BigInt(o.len));
      const n = Math.min(o.len, CHAN.maxText);
      mem().fill(0, sig, sig + CHAN.signalSize);
      const d = new DataView(core.memory.buffer);
      d.setUint32(sig + SIGNAL.opcode, CHAN.opText, true);
      d.setUint32(sig + SIGNAL.flags, 1, true);
      d.setBigUint64(sig + SIGNAL.request_id, id, true);
      d.setUint16(sig + SIGNAL.inline_len, n, true);
      mem().fill(o.fill, sig + SIGNAL.inline, sig + SIGNAL.inline + n);
      coreRc = chan.chan_insert(page, 4096, mine, sig);
    } else if (o.op === "send") {
      text.bytes.fill(o.fill, 0, CMDCHAN.signalSize);
      text.view.setUint32(0, o.len, true);
      handRc = call("chan_post", hand.address, text.address, BigInt(mine));
      mem().set(text.bytes.subarray(0, CMDCHAN.signalSize), sig);
      coreRc = chan.chan_insert(page, 4096, mine, sig);
    } else {
      const p = call("chan_peek", hand.address, 0n, BigInt(theirs));
      if (p > 0n) {
        handSignal = hand.bytes.slice(Number(p - hand.address), Number(p - hand.address) + CMDCHAN.signalSize);
        call("chan_pop", hand.address, 0n, BigInt(theirs));
        handRc = 0n;
      } else handRc = p === 0n ? -1n : -2n; // empty / refused, in chan_insert's terms
      coreRc = chan.chan_remove(page, 4096, theirs, sig);
      if (coreRc > 0) coreRc = 0; // core also reports the non-empty → empty transition; chan_pop does not
    }
    const label = `${o.op} ${JSON.stringify(o)}`;
    if (handRc === -2n) {
      // Refused by the hand path: nothing written.
      expect(Buffer.compare(hand.bytes, before), `${label}: the hand path wrote to a page it refused`).toBe(0);
      if (coreRc >= -1) {
        t.handOnlyRefused++;
        corePage().set(coreBefore);
      }
    } else {
      expect(coreRc, `${label}: core's result`).toBe(Number(handRc));
      if (handSignal) expect(Buffer.compare(handSignal, mem().subarray(sig, sig + CMDCHAN.signalSize)), `${label}: the signal taken`).toBe(0);
      t.agreed++;
    }
    expect(same(), `${label}: the pages differ`).toBe(true);
  }
}

describe("hand-written x64 channel queues against core's, on random operation sequences with hostile header values", () => {
  for (const server of [false, true]) {
    const what = server ? "the ultravisor partition's command server (chan_post, chan_peek + chan_pop)" : "the console client (chan_insert)";
    it(`${what}: same results, same page bytes`, () => {
      const t: Tally = { agreed: 0, handOnlyRefused: 0 };
      fc.assert(fc.property(fc.array(opArb(fieldsOf(server ? 2 : 1).length, server), { minLength: 1, maxLength: 60 }), (ops) => run(ops, server, t)), { numRuns: 300 });
      // The sequences exercised both kinds of outcome.
      expect(t.agreed).toBeGreaterThan(300);
      expect(t.handOnlyRefused).toBeGreaterThan(0);
    });
  }
});
