// The storage channel's server logic (core.wasm stor_check/stor_complete, through sim/storage-server.ts) on a simulated
// disk and client: good requests move exactly the bytes they name; every hostile request of docs/specs/storage-
// channel.md §3 is refused with its reason and sense, and moves nothing — neither the disk nor any byte of memory,
// the client's or another partition's, changes. A fast-check property holds that over random (mostly hostile)
// requests.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCore } from "../core/wasm.ts";
import type { Core } from "../core/wasm.ts";
import { decodeCompletion, encodeRequest, rwCdb, STORAGE, StorageCore, StorOp, type StorRequest } from "../core/storage.ts";
import { type ClientMemory, StorageServer } from "./storage-server.ts";

/** Physical memory of 8 pages: the client owns pages 1–2 and 5 (its own address space = these addresses); 0, 3, 4, 6, 7 are others'. */
const MEM_BYTES = 8 * 4096;
const CLIENT = [{ base: 0x1000n, length: 0x2000n }, { base: 0x5000n, length: 0x1000n }];
const DISK_BLOCKS = 64;

function memory(): { bytes: Uint8Array; client: ClientMemory } {
  const bytes = new Uint8Array(MEM_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  return {
    bytes,
    client: {
      ranges: CLIENT,
      read: (a, n) => bytes.slice(Number(a), Number(a) + n),
      write: (a, b) => bytes.set(b, Number(a)),
    },
  };
}

function disk(): Uint8Array {
  const d = new Uint8Array(DISK_BLOCKS * STORAGE.blockSize);
  for (let i = 0; i < d.length; i++) d[i] = (i * 13 + 1) & 0xff;
  return d;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

let core: Core;
beforeAll(async () => {
  core = await loadCore();
});

const req = (r: Partial<StorRequest> & Pick<StorRequest, "opcode" | "cdb">): Uint8Array => encodeRequest({ requestId: 77n, mdl: [], ...r });

describe("the storage channel's server checks (core.wasm), served by the simulator", () => {
  it("writes then reads back blocks through the MDL, completing GOOD with the bytes moved and the tag echoed", () => {
    const { bytes, client } = memory();
    const s = new StorageServer(core, disk());
    const w = s.serve(req({ opcode: StorOp.write10, cdb: rwCdb(StorOp.write10, 3n, 2), mdl: [{ address: 0x1800n, length: 512 }, { address: 0x5000n, length: 512 }] }), client);
    const c = decodeCompletion(w.completion);
    expect(c).toMatchObject({ opcode: StorOp.write10, flags: 4, requestId: 77n, status: 0, reason: 0, transferred: 1024n });
    expect(s.disk.subarray(3 * 512, 4 * 512)).toEqual(bytes.subarray(0x1800, 0x1a00));
    expect(s.disk.subarray(4 * 512, 5 * 512)).toEqual(bytes.subarray(0x5000, 0x5200));
    const r = s.serve(req({ opcode: StorOp.read16, cdb: rwCdb(StorOp.read16, 3n, 1), mdl: [{ address: 0x2000n, length: 512 }] }), client);
    expect(decodeCompletion(r.completion).transferred).toBe(512n);
    expect(bytes.subarray(0x2000, 0x2200)).toEqual(s.disk.subarray(3 * 512, 4 * 512));
  });

  it("answers INQUIRY and READ CAPACITY (10) and (16) with the disk's identity and last block", () => {
    const { bytes, client } = memory();
    const s = new StorageServer(core, disk());
    s.serve(req({ opcode: StorOp.inquiry, cdb: Uint8Array.of(0x12, 0, 0, 0, 36, 0), mdl: [{ address: 0x1000n, length: 64 }] }), client);
    expect(Buffer.from(bytes.subarray(0x1008, 0x1000 + 36)).toString("latin1")).toBe("ULTRAVSRSTORAGE CHANNEL 0001");
    s.serve(req({ opcode: StorOp.readCapacity10, cdb: Uint8Array.of(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0), mdl: [{ address: 0x1100n, length: 8 }] }), client);
    const v = new DataView(bytes.buffer);
    expect([v.getUint32(0x1100), v.getUint32(0x1104)]).toEqual([DISK_BLOCKS - 1, 512]);
    const c16 = new Uint8Array(16);
    c16[0] = 0x9e;
    c16[1] = 0x10;
    new DataView(c16.buffer).setUint32(10, 32);
    s.serve(req({ opcode: StorOp.serviceActionIn16, cdb: c16, mdl: [{ address: 0x1200n, length: 32 }] }), client);
    expect([v.getBigUint64(0x1200), v.getUint32(0x1208)]).toEqual([BigInt(DISK_BLOCKS - 1), 512]);
  });

  // Each hostile request: reason, sense (key/ASC) and the MDL index where there is one. Nothing may move.
  const hostile: Array<[string, () => Uint8Array, number, [number, number], number?]> = [
    ["an MDL entry in another partition's page", () => req({ opcode: StorOp.write10, cdb: rwCdb(StorOp.write10, 0n, 2), mdl: [{ address: 0x1000n, length: 512 }, { address: 0x3000n, length: 512 }] }), -14, [5, 0x24], 1],
    ["an MDL entry that runs off the client's memory", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 2), mdl: [{ address: 0x2e00n, length: 1024 }] }), -14, [5, 0x24], 0],
    ["a read into another partition's page", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0x4000n, length: 512 }] }), -14, [5, 0x24], 0],
    ["an MDL address that wraps", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0xffff_ffff_ffff_ff00n, length: 512 }] }), -13, [5, 0x24], 0],
    ["a zero-length MDL entry", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0x1000n, length: 512 }, { address: 0x1200n, length: 0 }] }), -12, [5, 0x24], 1],
    ["blocks past the end of the disk", () => req({ opcode: StorOp.write10, cdb: rwCdb(StorOp.write10, BigInt(DISK_BLOCKS - 1), 2), mdl: [{ address: 0x1000n, length: 1024 }] }), -4, [5, 0x21]],
    ["an LBA near 2^64 (lba + blocks overflows)", () => req({ opcode: StorOp.read16, cdb: rwCdb(StorOp.read16, 0xffff_ffff_ffff_ffffn, 1), mdl: [{ address: 0x1000n, length: 512 }] }), -4, [5, 0x21]],
    ["an MDL shorter than the blocks", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 2), mdl: [{ address: 0x1000n, length: 512 }] }), -5, [5, 0x24]],
    ["total_bytes that lies about the MDL", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0x1000n, length: 512 }, { address: 0x1200n, length: 512 }], totalBytes: 512n }), -15, [5, 0x24], -1],
    ["an unknown operation", () => req({ opcode: 0x42, cdb: Uint8Array.of(0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0) }), -2, [5, 0x20]],
    ["opcode and cdb[0] that differ", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.write10, 0n, 1), mdl: [{ address: 0x1000n, length: 512 }] }), -1, [5, 0x24]],
    ["a CDB length that is not the operation's", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), cdbLen: 16, mdl: [{ address: 0x1000n, length: 512 }] }), -1, [5, 0x24]],
    ["a write flagged as a read", () => req({ opcode: StorOp.write10, cdb: rwCdb(StorOp.write10, 0n, 1), flags: 2, mdl: [{ address: 0x1000n, length: 512 }] }), -3, [5, 0x24]],
    ["13 MDL entries (12 fit)", () => req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 13), mdl: Array.from({ length: 13 }, (_, i) => ({ address: 0x1000n + BigInt(i) * 512n, length: 512 })) }), -1, [5, 0x24]],
    ["READ CAPACITY (16) into too small a buffer", () => { const c = new Uint8Array(16); c[0] = 0x9e; c[1] = 0x10; c[13] = 32; return req({ opcode: StorOp.serviceActionIn16, cdb: c, mdl: [{ address: 0x1000n, length: 8 }] }); }, -6, [5, 0x24]],
    ["a SERVICE ACTION IN other than READ CAPACITY", () => { const c = new Uint8Array(16); c[0] = 0x9e; c[1] = 0x11; return req({ opcode: StorOp.serviceActionIn16, cdb: c, flags: 2 }); }, -2, [5, 0x20]],
    ["a transfer past the 65,536-block limit (its byte count would not fit the plan's 32 bits)", () => req({ opcode: StorOp.read16, cdb: rwCdb(StorOp.read16, 0n, 65537), mdl: [{ address: 0x1000n, length: 512 }], totalBytes: 65537n * 512n }), -5, [5, 0x24]],
    ["INQUIRY for a vital product data page", () => req({ opcode: StorOp.inquiry, cdb: Uint8Array.of(0x12, 1, 0x83, 0, 36, 0), mdl: [{ address: 0x1000n, length: 64 }] }), -1, [5, 0x24]],
    ["a request whose status field is not 0", () => { const r = req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0x1000n, length: 512 }] }); r[16] = 1; return r; }, -1, [5, 0x24]],
    ["an MDL entry whose reserved word is not 0", () => { const r = req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0x1000n, length: 512 }] }); r[64 + 12] = 1; return r; }, -1, [5, 0x24]],
    ["TEST UNIT READY with a buffer", () => req({ opcode: StorOp.testUnitReady, cdb: new Uint8Array(6), mdl: [{ address: 0x1000n, length: 512 }] }), -5, [5, 0x24]],
  ];
  for (const [what, build, reason, [key, asc], index] of hostile) {
    it(`refuses ${what}: CHECK CONDITION ${key}/${asc.toString(16)}, reason ${reason}, nothing moved`, () => {
      const { bytes, client } = memory();
      const before = bytes.slice();
      const s = new StorageServer(core, disk());
      const d0 = s.disk.slice();
      const c = decodeCompletion(s.serve(build(), client).completion);
      expect(c).toMatchObject({ status: 2, reason, transferred: 0n, requestId: 77n });
      expect([c.sense[0], c.sense[2], c.sense[12]]).toEqual([0x70, key, asc]);
      if (index !== undefined) expect(c.mdlIndex).toBe(index);
      expect(same(bytes, before), "memory unchanged").toBe(true);
      expect(same(s.disk, d0), "disk unchanged").toBe(true);
    });
  }

  it("a device error completes MEDIUM ERROR with nothing counted as transferred", () => {
    const { client } = memory();
    const s = new StorageServer(core, disk(), () => true);
    const c = decodeCompletion(s.serve(req({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 1), mdl: [{ address: 0x1000n, length: 512 }] }), client).completion);
    expect(c).toMatchObject({ status: 2, reason: 0, transferred: 0n });
    expect([c.sense[2], c.sense[12]]).toEqual([3, 0x11]);
  });

  it("builds MDL entries as core's chan_cdb_add_mdl does (one layout, two writers agree)", () => {
    const stor = new StorageCore(core);
    let sig = encodeRequest({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 2), requestId: 5n, mdl: [] });
    for (const e of [{ address: 0x1000n, length: 512 }, { address: 0x5000n, length: 512 }]) sig = stor.addMdl(sig, e.address, e.length).signal;
    expect(sig).toEqual(encodeRequest({ opcode: StorOp.read10, cdb: rwCdb(StorOp.read10, 0n, 2), requestId: 5n, mdl: [{ address: 0x1000n, length: 512 }, { address: 0x5000n, length: 512 }] }));
  });

  it("over random requests, moves bytes only inside the client's memory and only when it completes GOOD", () => {
    const s = new StorageServer(core, disk());
    const addr = fc.oneof(fc.bigInt({ min: 0n, max: BigInt(MEM_BYTES) }), fc.constantFrom(0x1000n, 0x2fffn, 0x5000n, 0xffff_ffff_ffff_fe00n));
    const arb = fc.record({
      opcode: fc.constantFrom(0x00, 0x12, 0x25, 0x28, 0x2a, 0x35, 0x88, 0x8a, 0x9e, 0x42),
      lba: fc.oneof(fc.bigInt({ min: 0n, max: 80n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      blocks: fc.integer({ min: 0, max: 4 }),
      mdl: fc.array(fc.record({ address: addr, length: fc.constantFrom(0, 8, 512, 1024, 4096) }), { maxLength: 14 }),
      flags: fc.option(fc.integer({ min: 0, max: 7 })),
      lie: fc.option(fc.bigInt({ min: 0n, max: 8192n })),
    });
    const seen = { good: 0, refused: 0 };
    // Half the requests are plausible: READ/WRITE of 1–4 blocks, one 512-byte entry each, near or in the client's pages.
    const near = fc.constantFrom(0x1000n, 0x1200n, 0x2e00n, 0x3000n, 0x0e00n, 0x5000n, 0x5e00n, 0x6000n, 0x4e00n);
    const plausible = fc.record({
      opcode: fc.constantFrom(0x28, 0x2a, 0x88, 0x8a),
      lba: fc.bigInt({ min: 0n, max: 64n }),
      blocks: fc.integer({ min: 1, max: 4 }),
      mdl: fc.array(fc.record({ address: near, length: fc.constant(512) }), { minLength: 1, maxLength: 4 }),
      flags: fc.constant(null),
      lie: fc.constant(null),
    }).map((r) => ({ ...r, blocks: r.mdl.length }));
    fc.assert(fc.property(fc.oneof(arb, plausible), (r) => {
      const { bytes, client } = memory();
      const before = bytes.slice();
      const d0 = s.disk.slice();
      const rw = [0x28, 0x2a, 0x88, 0x8a].includes(r.opcode);
      const cdb = rw ? rwCdb(r.opcode, r.opcode === 0x28 || r.opcode === 0x2a ? r.lba & 0xffff_ffffn : r.lba, r.blocks) : Uint8Array.of(r.opcode, 0x10, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0).subarray(0, r.opcode < 0x20 ? 6 : r.opcode < 0x80 ? 10 : 16);
      const c = decodeCompletion(s.serve(req({ opcode: r.opcode, cdb, mdl: r.mdl, ...(r.flags !== null ? { flags: r.flags } : {}), ...(r.lie !== null ? { totalBytes: r.lie } : {}) }), client).completion);
      const changed: number[] = [];
      for (let i = 0; i < MEM_BYTES; i++) if (bytes[i] !== before[i]) changed.push(i);
      const inClient = (i: number): boolean => CLIENT.some((g) => BigInt(i) >= g.base && BigInt(i) < g.base + g.length);
      seen[c.status === 0 ? "good" : "refused"]++;
      if (c.status !== 0) {
        if (changed.length || !same(s.disk, d0) || c.transferred !== 0n) throw new Error(`a refused request (reason ${c.reason}) moved data`);
      } else if (!changed.every(inClient)) {
        throw new Error(`a GOOD request wrote outside the client's memory at 0x${changed.find((i) => !inClient(i))!.toString(16)}`);
      }
    }), { numRuns: 2000 });
    // Both outcomes are exercised, the moving one too (fast-check's shrinking runs count as well).
    expect(seen.good, "GOOD completions").toBeGreaterThan(50);
    expect(seen.refused, "refusals").toBeGreaterThan(500);
  });
});
