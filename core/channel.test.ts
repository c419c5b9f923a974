// Tests of core.wasm's memory channels (core/assembly/channel*.ts) against docs/specs/channel-abi.md: every field at
// the byte offset the spec gives, the queue algorithm and its barrier order, transition reporting, hostile peers,
// a fast-check model of the ring, CDB/MDL validation, channel types and cardinality. Expected values come from the
// spec's tables, typed in here, never from the module's own output.
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Core } from "./wasm.ts";
import { carve, ChannelType, loadChannelCore, Q, readQueueHeader, type ChanExports } from "./channel.ts";

// Length of the caller's mapping of every channel below: each lives in its own 64 KiB carved from core memory.
const MAP = 65536;
let core: Core;
let chan: ChanExports;
let mem: () => DataView;
let bytes: () => Uint8Array;
// Set by a test to observe memory at the moment of each barrier.
let onFence: (() => void) | undefined;

beforeAll(async () => {
  ({ core, chan } = await loadChannelCore({ hw: { mfence: () => onFence?.() } }));
  mem = () => new DataView(core.memory.buffer);
  bytes = () => new Uint8Array(core.memory.buffer);
});

const u32 = (a: number): number => mem().getUint32(a, true);
const u64 = (a: number): bigint => mem().getBigUint64(a, true);

function fill(at: number, n: number, seed: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push((seed * 131 + k * 7 + 1) & 0xff);
  bytes().set(out, at);
  return out;
}

describe("channel header and queue header bytes (sections 1-2)", () => {
  it("chan_format writes every field at the spec's offset", () => {
    const base = carve(core, 65536);
    const [nq, ss, slots] = [3, 64, 8];
    // bytes needed = 128 + nqueues·(128 + max_slots·signal_size)
    expect(chan.chan_format_bytes(nq, ss, slots)).toBe(128 + 3 * (128 + 8 * 64));
    expect(chan.chan_format(base, 4096, nq, ss, slots, ChannelType.storage)).toBe(Q.OK);
    const b = bytes();
    expect(Array.from(b.subarray(base, base + 8))).toEqual([0x45, 0x43, 0x4e, 0x4c, 0, 0, 0, 0]); // "ECNL"
    expect(u32(base + 8)).toBe(0); // legacy_state
    expect(u32(base + 12)).toBe(128); // header_size
    expect(u64(base + 16)).toBe(4096n); // size
    expect(u64(base + 24)).toBe(0n); // features
    // chtype at 32: vhba GUID 414815ed-c58c-11da-95a9-00e08161165f in EFI byte order
    expect(Buffer.from(b.subarray(base + 32, base + 48)).toString("hex")).toBe("ed1548418cc5da1195a900e08161165f");
    expect(u64(base + 64)).toBe(128n); // ch_space_offset
    expect(u32(base + 72)).toBe(1); // version_id
    expect(u32(base + 120)).toBe(0); // srv_state UNINITIALIZED
    for (let q = 0; q < nq; q++) {
      const qh = base + 128 + q * 128;
      expect(u32(qh + 0)).toBe(1); // version
      expect(u32(qh + 4)).toBe(q); // chtype: queue role
      expect(u64(qh + 8)).toBe(BigInt(slots * ss)); // size
      expect(u64(qh + 16)).toBe(BigInt((nq - q) * 128 + q * slots * ss)); // sig_base_offset
      expect(u32(qh + 48)).toBe(ss); // signal_size
      expect(u32(qh + 52)).toBe(slots); // max_slots
      expect(u32(qh + 56)).toBe(slots - 1); // max_signals
      expect(u32(qh + 60)).toBe(0); // head
      expect(u32(qh + 72)).toBe(0); // tail
    }
  });

  it("identity, state and error setters land at their offsets", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, 8192, 2, 32, 4, ChannelType.console)).toBe(Q.OK);
    const zone = base + 4096;
    bytes().set(Array.from({ length: 16 }, (_, i) => 0xa0 + i), zone);
    expect(chan.chan_set_identity(base, MAP, 0x1122334455n, 0xdeadbeef00n, 7, zone)).toBe(Q.OK);
    expect(chan.chan_set_features(base, MAP, 1n)).toBe(Q.OK);
    expect(chan.chan_set_misc(base, MAP, 2000, 0x55, 0x66, 0x77)).toBe(Q.OK);
    expect(chan.chan_set_errors(base, MAP, 0x12, 0x34, 1)).toBe(Q.OK);
    expect(chan.chan_server_state_set(base, MAP, 1)).toBe(Q.OK);
    expect(chan.chan_client_state_set(base, MAP, 0, 3)).toBe(Q.OK); // boot client DETACHED -> ATTACHED
    expect(chan.chan_client_state_set(base, MAP, 1, 5)).toBe(Q.OK); // OS client DETACHED -> OWNED
    expect(u64(base + 24)).toBe(1n); // features
    expect(u64(base + 48)).toBe(0x1122334455n); // partition_handle
    expect(u64(base + 56)).toBe(0xdeadbeef00n); // handle
    expect(u32(base + 76)).toBe(7); // partition_index
    expect(Array.from(bytes().subarray(base + 80, base + 96))).toEqual(Array.from({ length: 16 }, (_, i) => 0xa0 + i));
    expect(u32(base + 96)).toBe(2000); // cli_str_offset
    expect(u32(base + 100)).toBe(3); // cli_state_boot
    expect(u32(base + 104)).toBe(0x66); // cmd_state_cli
    expect(u32(base + 108)).toBe(5); // cli_state_os
    expect(u32(base + 112)).toBe(0x55); // ch_characteristic
    expect(u32(base + 116)).toBe(0x77); // cmd_state_srv
    expect(u32(base + 120)).toBe(1); // srv_state READY
    expect(bytes()[base + 124]).toBe(0x12); // cli_error_boot
    expect(bytes()[base + 125]).toBe(0x34); // cli_error_os
    expect(bytes()[base + 126]).toBe(0); // filler
    expect(bytes()[base + 127]).toBe(1); // recover_channel
    expect(chan.chan_set_misc(base, MAP, 8192, 0, 0, 0)).toBe(Q.BAD_ARGUMENT); // string offset outside the channel
  });

  it("refuses geometry that does not fit and leaves memory untouched", () => {
    const base = carve(core, 65536);
    fill(base, 4096, 9);
    const before = bytes().slice(base, base + 4096);
    expect(chan.chan_format(base, 1000, 2, 64, 8, 0)).toBe(Q.BAD_ARGUMENT); // needs 1280
    expect(chan.chan_format(base, 4096, 1, 64, 1, 0)).toBe(Q.BAD_ARGUMENT); // max_slots < 2
    expect(chan.chan_format(base, 4096, 1, 0, 8, 0)).toBe(Q.BAD_ARGUMENT); // signal_size 0
    expect(chan.chan_format(base, 4096, 1, 64, 8, 9)).toBe(Q.BAD_ARGUMENT); // unknown type
    expect(bytes().slice(base, base + 4096)).toEqual(before);
  });
});

describe("queue algorithm (section 3)", () => {
  it("one slot stays empty; overflow and empty are counted; slots sit where the spec says", () => {
    const base = carve(core, 65536);
    const [ss, slots] = [48, 5];
    expect(chan.chan_format(base, 4096, 2, ss, slots, ChannelType.network)).toBe(Q.OK);
    const src = base + 8192;
    const dst = base + 12288;
    const q = 1;
    const qh = base + 128 + q * 128;
    const sent: number[][] = [];
    for (let i = 0; i < slots - 1; i++) {
      sent.push(fill(src, ss, i));
      expect(chan.chan_insert(base, MAP, q, src)).toBe(i === 0 ? Q.TRANSITION : Q.OK);
      // the signal went to slot head = i+1, at ch_space_offset + q·128 + sig_base_offset + s·signal_size
      const slot = qh + Number(u64(qh + 16)) + (i + 1) * ss;
      expect(Array.from(bytes().subarray(slot, slot + ss))).toEqual(sent[i]);
      expect(u32(qh + 60)).toBe(i + 1);
    }
    expect(chan.chan_pending(base, MAP, q)).toBe(slots - 1);
    expect(chan.chan_insert(base, MAP, q, src)).toBe(Q.FULL_OR_EMPTY);
    expect(chan.chan_insert(base, MAP, q, src)).toBe(Q.FULL_OR_EMPTY);
    let h = readQueueHeader(core.memory.buffer, base, q);
    expect([h.numSent, h.numOverflows, h.head, h.tail]).toEqual([4n, 2n, 4, 0]);
    for (let i = 0; i < slots - 1; i++) {
      expect(chan.chan_remove(base, MAP, q, dst)).toBe(i === slots - 2 ? Q.TRANSITION : Q.OK);
      expect(Array.from(bytes().subarray(dst, dst + ss))).toEqual(sent[i]);
    }
    expect(chan.chan_remove(base, MAP, q, dst)).toBe(Q.FULL_OR_EMPTY);
    h = readQueueHeader(core.memory.buffer, base, q);
    expect([h.numReceived, h.numEmpty, h.head, h.tail]).toEqual([4n, 1n, 4, 4]);
    // the ring wraps: head goes 4 -> 0
    expect(chan.chan_insert(base, MAP, q, src)).toBe(Q.TRANSITION);
    expect(u32(qh + 60)).toBe(0);
    // queue 0 was never touched
    expect(readQueueHeader(core.memory.buffer, base, 0).numSent).toBe(0n);
  });

  it("the slot is written before the barrier and the index is published after it", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, 4096, 1, 64, 4, 0)).toBe(Q.OK);
    const qh = base + 128;
    const src = base + 8192;
    const payload = fill(src, 64, 3);
    const seen: { head: number; sent: bigint; slot: number[] }[] = [];
    onFence = () => {
      const slot = qh + Number(u64(qh + 16)) + 1 * 64;
      seen.push({ head: u32(qh + 60), sent: u64(qh + 32), slot: Array.from(bytes().subarray(slot, slot + 64)) });
    };
    try {
      expect(chan.chan_insert(base, MAP, 0, src)).toBe(Q.TRANSITION);
      expect(seen).toEqual([{ head: 0, sent: 0n, slot: payload }]); // slot in place, head and counter not yet
      expect(u32(qh + 60)).toBe(1);
      seen.length = 0;
      const fences: { tail: number; received: bigint; dst: number[] }[] = [];
      const dst = base + 12288;
      onFence = () => fences.push({ tail: u32(qh + 72), received: u64(qh + 64), dst: Array.from(bytes().subarray(dst, dst + 64)) });
      expect(chan.chan_remove(base, MAP, 0, dst)).toBe(Q.TRANSITION);
      expect(fences).toEqual([{ tail: 0, received: 0n, dst: payload }]); // read done, tail not yet handed back
      expect(u32(qh + 72)).toBe(1);
    } finally {
      onFence = undefined;
    }
  });

  it("reports only empty -> non-empty transitions, so a burst raises one interrupt", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, 65536, 1, 64, 64, ChannelType.storage)).toBe(Q.OK);
    const src = base + 40000;
    const dst = base + 50000;
    let interrupts = 0;
    for (let burst = 0; burst < 3; burst++) {
      for (let i = 0; i < 10; i++) {
        if (chan.chan_insert(base, MAP, 0, src) === Q.TRANSITION) {
          interrupts++;
          chan.chan_irq_received(base, MAP, 0); // the server's ISR counts it
        }
      }
      let r: number;
      do r = chan.chan_remove(base, MAP, 0, dst);
      while (r === Q.OK);
      expect(r).toBe(Q.TRANSITION);
    }
    const h = readQueueHeader(core.memory.buffer, base, 0);
    expect(interrupts).toBe(3);
    expect([h.numSent, h.numReceived, h.numIrqReceived, h.numEmpty]).toEqual([30n, 30n, 3n, 0n]);
  });

  it("a hostile peer's header cannot make core touch memory outside the channel", () => {
    const base = carve(core, 65536 * 2);
    const size = 4096;
    expect(chan.chan_format(base, size, 1, 64, 8, 0)).toBe(Q.OK);
    const qh = base + 128;
    const src = base + 65536;
    fill(src, 64, 1);
    const snapshot = (): Uint8Array => bytes().slice(base, base + 65536 + 4096);
    const cases: [string, () => void, number][] = [
      ["head beyond max_slots", () => mem().setUint32(qh + 60, 1000, true), Q.BAD_QUEUE],
      ["tail beyond max_slots", () => mem().setUint32(qh + 72, 8, true), Q.BAD_QUEUE],
      ["sig_base_offset past the end", () => mem().setBigUint64(qh + 16, 4000n, true), Q.BAD_QUEUE],
      ["max_signals inconsistent", () => mem().setUint32(qh + 56, 8, true), Q.BAD_QUEUE],
      ["huge signal_size", () => mem().setUint32(qh + 48, 0x10000000, true), Q.BAD_QUEUE],
      ["bad signature", () => mem().setUint8(base + 3, 0x4d), Q.BAD_CHANNEL],
      ["size larger than 4 GB", () => mem().setBigUint64(base + 16, 1n << 40n, true), Q.BAD_CHANNEL],
      ["size beyond the caller's mapping", () => mem().setBigUint64(base + 16, BigInt(MAP + 4096), true), Q.BAD_CHANNEL],
      ["ch_space_offset past the end", () => mem().setBigUint64(base + 64, 5000n, true), Q.BAD_CHANNEL],
    ];
    for (const [what, corrupt, code] of cases) {
      expect(chan.chan_format(base, size, 1, 64, 8, 0)).toBe(Q.OK);
      corrupt();
      const before = snapshot();
      expect([what, chan.chan_insert(base, MAP, 0, src)]).toEqual([what, code]);
      expect([what, chan.chan_remove(base, MAP, 0, src + 1024)]).toEqual([what, code]);
      expect(Buffer.compare(snapshot(), before)).toBe(0);
    }
    // a queue index past the channel's end
    expect(chan.chan_format(base, size, 1, 64, 8, 0)).toBe(Q.OK);
    expect(chan.chan_insert(base, MAP, 40, src)).toBe(Q.BAD_QUEUE);
    // a mapping length the memory does not have, or shorter than a header
    expect(chan.chan_insert(base, 0x7fff_0000, 0, src)).toBe(Q.BAD_CHANNEL);
    expect(chan.chan_insert(base, 64, 0, src)).toBe(Q.BAD_CHANNEL);
  });

  it("matches a model ring under random insert/remove sequences (fast-check)", () => {
    const base = carve(core, 65536);
    const src = base + 40000;
    const dst = base + 50000;
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.boolean(), { maxLength: 80 }),
        (slots, ss, ops) => {
          expect(chan.chan_format(base, 32768, 2, ss, slots, 3)).toBe(Q.OK);
          const model: number[][] = [];
          let [sent, over, recv, empty, seq] = [0, 0, 0, 0, 0];
          for (const ins of ops) {
            if (ins) {
              const payload = fill(src, ss, seq++);
              const r = chan.chan_insert(base, MAP, 1, src);
              if (model.length === slots - 1) {
                expect(r).toBe(Q.FULL_OR_EMPTY);
                over++;
              } else {
                expect(r).toBe(model.length === 0 ? Q.TRANSITION : Q.OK);
                model.push(payload);
                sent++;
              }
            } else {
              const r = chan.chan_remove(base, MAP, 1, dst);
              if (model.length === 0) {
                expect(r).toBe(Q.FULL_OR_EMPTY);
                empty++;
              } else {
                expect(r).toBe(model.length === 1 ? Q.TRANSITION : Q.OK);
                expect(Array.from(bytes().subarray(dst, dst + ss))).toEqual(model.shift());
                recv++;
              }
            }
            expect(chan.chan_pending(base, MAP, 1)).toBe(model.length);
          }
          const h = readQueueHeader(core.memory.buffer, base, 1);
          expect([h.numSent, h.numOverflows, h.numReceived, h.numEmpty]).toEqual(
            [sent, over, recv, empty].map(BigInt),
          );
          expect(h.head).toBe(sent % slots);
          expect(h.tail).toBe(recv % slots);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("chan_queue_init accepts a custom layout inside the channel and refuses one outside", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, 8192, 1, 16, 2, 0)).toBe(Q.OK);
    expect(chan.chan_queue_init(base, MAP, 0, 1024n, 100, 10, 7)).toBe(Q.OK);
    const h = readQueueHeader(core.memory.buffer, base, 0);
    expect([h.sigBaseOffset, h.signalSize, h.maxSlots, h.maxSignals, h.chtype, h.size]).toEqual([1024n, 100, 10, 9, 7, 1000n]);
    expect(chan.chan_queue_init(base, MAP, 0, 8000n, 100, 10, 0)).toBe(Q.BAD_ARGUMENT);
    expect(chan.chan_queue_init(base, MAP, 63, 128n, 8, 2, 0)).toBe(Q.BAD_ARGUMENT);
  });
});

describe("client states (section 1)", () => {
  it("accepts exactly the visorbus transitions", () => {
    const names = ["DETACHED", "DISABLED", "ATTACHING", "ATTACHED", "BUSY", "OWNED"];
    const allowed = new Set(
      ("DETACHED>DISABLED ATTACHING>DISABLED ATTACHED>DISABLED ATTACHING>DETACHED ATTACHED>DETACHED " +
        "DETACHED>ATTACHING ATTACHING>ATTACHED DETACHED>ATTACHED BUSY>ATTACHED ATTACHED>BUSY DETACHED>OWNED " +
        "DISABLED>OWNED ATTACHING>OWNED ATTACHED>OWNED BUSY>OWNED").split(" "),
    );
    for (let o = 0; o < 6; o++) {
      for (let n = 0; n < 6; n++) {
        const want = o === n || allowed.has(`${names[o]}>${names[n]}`);
        expect([names[o], names[n], chan.chan_client_transition_ok(o, n)]).toEqual([names[o], names[n], want ? 1 : 0]);
      }
    }
    expect(chan.chan_client_transition_ok(6, 0)).toBe(0);
    const base = carve(core, 65536);
    chan.chan_format(base, 4096, 1, 64, 4, 0);
    expect(chan.chan_client_state_set(base, MAP, 1, 4)).toBe(Q.BAD_ARGUMENT); // DETACHED -> BUSY refused
    expect(u32(base + 108)).toBe(0);
  });
});

describe("requests: CDB + MDL (section 4)", () => {
  // Client-owned ranges: [0x100000, +0x10000) and [0x110000, +0x8000) touch; [0x200000, +0x1000) is separate.
  const owned: [bigint, bigint][] = [[0x100000n, 0x10000n], [0x110000n, 0x8000n], [0x200000n, 0x1000n]];

  function request(sigSize: number, inline: number, entries: [bigint, number][]): { sig: number; ranges: number; out: number } {
    const sig = carve(core, 65536);
    const d = mem();
    d.setUint32(sig, 0x28, true); // opcode: READ(10)
    d.setUint32(sig + 4, 2, true);
    d.setBigUint64(sig + 8, 77n, true);
    d.setUint16(sig + 20, inline, true);
    d.setUint8(sig + 24, 10);
    for (const [a, l] of entries) expect(chan.chan_cdb_add_mdl(sig, sigSize, a, l)).toBeGreaterThan(0);
    const ranges = sig + 32768;
    owned.forEach(([b, l], i) => {
      d.setBigUint64(ranges + i * 16, b, true);
      d.setBigUint64(ranges + i * 16 + 8, l, true);
    });
    return { sig, ranges, out: sig + 40000 };
  }

  it("places MDL entries after the 8-aligned inline data and sums total_bytes", () => {
    const { sig } = request(256, 5, [[0x100000n, 512], [0x200000n, 100]]);
    expect(mem().getUint16(sig + 22, true)).toBe(2); // mdl_count
    expect(u64(sig + 48)).toBe(612n); // total_bytes
    // inline_len 5 -> MDL at 64 + 8 = 72
    expect(u64(sig + 72)).toBe(0x100000n);
    expect(u32(sig + 80)).toBe(512);
    expect(u64(sig + 88)).toBe(0x200000n);
    expect(u32(sig + 96)).toBe(100);
    // 256-byte signal: 64 + 8 + 16·n <= 256 -> at most 11 entries
    for (let i = 2; i < 11; i++) expect(chan.chan_cdb_add_mdl(sig, 256, 0x100000n, 1)).toBe(i + 1);
    expect(chan.chan_cdb_add_mdl(sig, 256, 0x100000n, 1)).toBe(-1);
  });

  it("accepts buffers inside the client's memory, including across touching ranges", () => {
    const { sig, ranges, out } = request(512, 0, [[0x100000n, 0x10000], [0x10f000n, 0x2000], [0x200fffn, 1]]);
    expect(chan.chan_cdb_validate(sig, 512, ranges, 3, out)).toBe(0);
    expect(u32(out)).toBe(0xffffffff);
  });

  it("rejects a request that reaches outside the client, naming the entry", () => {
    const cases: [string, [bigint, number][], number, number][] = [
      ["one byte past the last range", [[0x100000n, 16], [0x200000n, 0x1001]], -4, 1],
      ["gap between ranges", [[0x117000n, 0x2000]], -4, 0],
      ["below every range", [[0xfff00n, 0x100]], -4, 0],
      ["another partition's page", [[0x300000n, 4096]], -4, 0],
      ["address wraps 2^64", [[0xffff_ffff_ffff_ff00n, 0x200]], -3, 0],
    ];
    for (const [what, entries, code, index] of cases) {
      const { sig, ranges, out } = request(512, 0, entries);
      expect([what, chan.chan_cdb_validate(sig, 512, ranges, 3, out), u32(out)]).toEqual([what, code, index]);
    }
  });

  it("rejects malformed requests and bad range lists", () => {
    let r = request(512, 0, [[0x100000n, 64]]);
    mem().setUint32(r.sig + 64 + 8, 0, true); // zero length entry
    expect(chan.chan_cdb_validate(r.sig, 512, r.ranges, 3, r.out)).toBe(-2);
    r = request(512, 0, [[0x100000n, 64]]);
    mem().setBigUint64(r.sig + 48, 65n, true); // total_bytes lies
    expect(chan.chan_cdb_validate(r.sig, 512, r.ranges, 3, r.out)).toBe(-5);
    r = request(512, 400, []);
    mem().setUint16(r.sig + 22, 7, true); // 64 + 400 + 7·16 > 512
    expect(chan.chan_cdb_validate(r.sig, 512, r.ranges, 3, r.out)).toBe(-1);
    r = request(512, 0, []);
    mem().setUint8(r.sig + 24, 17); // cdb_len > 16
    expect(chan.chan_cdb_validate(r.sig, 512, r.ranges, 3, r.out)).toBe(-1);
    r = request(512, 0, [[0x100000n, 64]]);
    mem().setBigUint64(r.ranges + 16, 0x100100n, true); // second range overlaps the first
    expect(chan.chan_cdb_validate(r.sig, 512, r.ranges, 3, r.out)).toBe(-6);
    expect(chan.chan_cdb_validate(r.sig, 32, r.ranges, 0, r.out)).toBe(-1); // signal < 64 bytes: malformed
  });
});

describe("channel types and cardinality (section 5)", () => {
  const T = ChannelType;
  const list = (types: number[]): number => {
    const p = carve(core, 65536);
    bytes().set(types, p);
    return p;
  };

  it("carries the spec's GUIDs and rules", () => {
    const guids: Record<number, string> = {
      0: "102d3c2bf57ed84ab9663448b7386b3d", // 2b3c2d10-7ef5-4ad8-b966-3448b7386b3d
      4: "ed1548418cc5da1195a900e08161165f", // 414815ed-c58c-11da-95a9-00e08161165f
      5: "4d99d58c8ec5da1195a900e08161165f", // 8cd5994d-c58e-11da-95a9-00e08161165f
      6: "525c5d9a0e3b0c4f8e711c2f0d6a4b06", // 9a5d5c52-3b0e-4f0c-8e71-1c2f0d6a4b06
    };
    const p = carve(core, 65536);
    for (const [t, hex] of Object.entries(guids)) {
      expect(chan.chan_type_guid(Number(t), p)).toBe(0);
      expect(Buffer.from(bytes().subarray(p, p + 16)).toString("hex")).toBe(hex);
    }
    expect(chan.chan_type_guid(9, p)).toBe(-4);
    // rule codes: 0 all 0+, 1 all 1+, 2 exactly one, 3 zero or one, 4 highest 0+, 5 highest 1+
    const guest = [2, 3, 3, 3, 0, 0, 4, 4, 4];
    const host = [0, 2, 0, 0, 0, 0, 0, 0, 0];
    for (let t = 0; t < 9; t++) {
      expect(chan.chan_type_rule(t, 0)).toBe(guest[t]);
      expect(chan.chan_type_rule(t, 1)).toBe(host[t]);
    }
    expect(chan.chan_type_rule(9, 0) >>> 0).toBe(0xffffffff); // u32 results reach JS as i32
  });

  it("enforces the rules when a partition is defined", () => {
    const guest = (types: number[]): number => chan.chan_cardinality_check(0, list(types), types.length);
    const host = (types: number[]): number => chan.chan_cardinality_check(1, list(types), types.length);
    expect(guest([T.control, T.console, T.storage, T.storage, T.network, T.memory, T.memory])).toBe(0);
    expect(guest([T.console])).toBe(1 | (T.control << 8)); // control: exactly one, none given
    expect(guest([T.control, T.control])).toBe(2 | (T.control << 8));
    expect(guest([T.control, T.command, T.command])).toBe(2 | (T.command << 8));
    expect(guest([T.control, T.boot, T.boot])).toBe(2 | (T.boot << 8));
    expect(guest([T.control, 12])).toBe(3 | (1 << 8)); // unknown type at index 1
    expect(host([T.command, T.power, T.power, T.memory])).toBe(0);
    expect(host([T.power])).toBe(1 | (T.command << 8)); // a host must offer exactly one ultravisor
    expect(chan.chan_cardinality_check(2, list([]), 0)).toBe(4);
  });

  it("puts every channel in effect for 'all of' and only the lowest-numbered one for 'highest rank'", () => {
    const types = [T.control, T.memory, T.storage, T.memory, T.storage, T.processor, T.memory];
    const p = list(types);
    const out = p + 1024;
    expect(chan.chan_effective(0, p, types.length, out)).toBe(5);
    expect(Array.from(bytes().subarray(out, out + types.length))).toEqual([1, 1, 1, 0, 1, 1, 0]);
    expect(chan.chan_effective(1, p, types.length, out)).toBe(7); // hosts provide all zones ([0131])
  });
});
