// The channel ABI against an outside oracle: core/abi/channel_oracle.c, compiled by the machine's gcc from
// core/abi/channel.h, checks every offset with offsetof/sizeof against the spec's numbers; this test also compares
// its output with the tables of docs/specs/channel-abi.md and then exchanges signals with core.wasm through a shared
// file in both directions (core inserts, C removes; C inserts, core removes), and in one process on the very same
// bytes: the oracle loaded as a shared library (koffi) works on core.wasm's linear memory in turn with core.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import koffi from "koffi";
import type { Core } from "./wasm.ts";
import { carve, ChannelType, loadChannelCore, Q, readQueueHeader, type ChanExports } from "./channel.ts";

const here = dirname(fileURLToPath(import.meta.url));
const specPath = resolve(here, "../docs/specs/channel-abi.md");
let dir: string;
let oracle: string;
let oracleLib: string;
// Length of the caller's mapping of every channel below: each lives in its own 64 KiB carved from core memory.
const MAP = 65536;
let core: Core;
let chan: ChanExports;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "uv-chan-abi-"));
  oracle = join(dir, "channel_oracle");
  oracleLib = join(dir, "libchannel_oracle.so");
  const cc = ["-std=c11", "-D_DEFAULT_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-I", join(here, "abi")];
  execFileSync("gcc", [...cc, "-o", oracle, join(here, "abi", "channel_oracle.c")]);
  execFileSync("gcc", [...cc, "-shared", "-fPIC", "-o", oracleLib, join(here, "abi", "channel_oracle.c")]);
  ({ core, chan } = await loadChannelCore());
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `{name: [offset, size]}` from the markdown table that follows `heading` in the spec (rows with numeric cells). */
function specTable(heading: string, prefix: string): Map<string, [number, number]> {
  const text = readFileSync(specPath, "utf8");
  const start = text.indexOf(heading);
  expect(start, `heading ${heading} in channel-abi.md`).toBeGreaterThanOrEqual(0);
  const out = new Map<string, [number, number]>();
  let inTable = false;
  for (const line of text.slice(start).split("\n").slice(1)) {
    const m = /^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*`([a-z_0-9]+)`\s*\|/.exec(line);
    if (line.startsWith("|")) inTable = true;
    else if (inTable) break;
    if (m) out.set(`${prefix}.${m[3]}`, [Number(m[1]), Number(m[2])]);
  }
  return out;
}

function oracleRun(...args: string[]): string {
  return execFileSync(oracle, args, { encoding: "utf8" });
}

function pattern(tag: number, i: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => (tag * 131 + i * 31 + k * 7 + 1) & 0xff);
}

describe("channel ABI: gcc offsetof oracle", () => {
  it("channel.h matches the spec's numbers, and the spec's tables match channel.h", () => {
    const out = oracleRun("layout"); // exits non-zero (and execFileSync throws) on any mismatch with its own numbers
    const got = new Map<string, [number, number]>();
    for (const line of out.trim().split("\n")) {
      const [name, off, size] = line.split(" ");
      if (name !== "signature-bytes") got.set(name!, [Number(off), Number(size)]);
    }
    expect(out).toContain("signature-bytes 45 43 4e 4c 00 00 00 00");
    expect(got.get("channel")).toEqual([0, 128]);
    expect(got.get("queue")).toEqual([0, 128]);
    expect(got.get("cdb")).toEqual([0, 64]);
    const tables = [
      specTable("## 1. Channel header", "channel"),
      specTable("## 2. Signal-queue header", "queue"),
      specTable("## 4. Requests", "cdb"),
    ];
    let compared = 0;
    for (const table of tables) {
      for (const [name, want] of table) {
        expect([name, got.get(name)]).toEqual([name, want]);
        compared++;
      }
    }
    // 23 channel fields + 20 queue fields + 11 CDB fields, all in the spec and all in the header
    expect(compared).toBe(23 + 20 + 11);
    const fieldsInHeader = [...got.keys()].filter((k) => /^(channel|queue|cdb)\./.test(k)).length;
    expect(fieldsInHeader).toBe(compared);
  });
});

describe("channel ABI: signals between core.wasm and C through a shared file", () => {
  const [ss, slots, size] = [40, 6, 4096];

  function toFile(base: number): string {
    const file = join(dir, `chan-${base}.bin`);
    writeFileSync(file, new Uint8Array(core.memory.buffer, base, size));
    return file;
  }

  function fromFile(file: string, base: number): void {
    new Uint8Array(core.memory.buffer).set(readFileSync(file), base);
  }

  it("core inserts, C removes", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, size, 2, ss, slots, ChannelType.storage)).toBe(Q.OK);
    const src = base + 8192;
    for (let i = 0; i < 3; i++) {
      new Uint8Array(core.memory.buffer).set(pattern(5, i, ss), src);
      expect(chan.chan_insert(base, MAP, 0, src)).toBe(i === 0 ? Q.TRANSITION : Q.OK);
    }
    const file = toFile(base);
    const lines = oracleRun("remove", file, "0", "5").trim().split("\n");
    const hex = (i: number): string => Buffer.from(pattern(5, i, ss)).toString("hex");
    expect(lines).toEqual([`remove 0 0 ${hex(0)}`, `remove 1 0 ${hex(1)}`, `remove 2 1 ${hex(2)}`, "remove 3 -1", "remove 4 -1"]);
    fromFile(file, base);
    const h = readQueueHeader(core.memory.buffer, base, 0);
    expect([h.numSent, h.numReceived, h.numEmpty, h.head, h.tail]).toEqual([3n, 3n, 2n, 3, 3]);
    expect(chan.chan_pending(base, MAP, 0)).toBe(0);
    expect(chan.chan_remove(base, MAP, 0, src)).toBe(Q.FULL_OR_EMPTY);
  });

  it("C inserts (overflowing), core removes", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, size, 2, ss, slots, ChannelType.network)).toBe(Q.OK);
    const file = toFile(base);
    const lines = oracleRun("insert", file, "1", "7", "9").trim().split("\n");
    // one slot always empty: 5 of 7 fit; the first reports the empty -> non-empty transition
    expect(lines).toEqual(["insert 0 1", "insert 1 0", "insert 2 0", "insert 3 0", "insert 4 0", "insert 5 -1", "insert 6 -1"]);
    fromFile(file, base);
    let h = readQueueHeader(core.memory.buffer, base, 1);
    expect([h.numSent, h.numOverflows, h.head, h.tail]).toEqual([5n, 2n, 5, 0]);
    const dst = base + 8192;
    for (let i = 0; i < 5; i++) {
      expect(chan.chan_remove(base, MAP, 1, dst)).toBe(i === 4 ? Q.TRANSITION : Q.OK);
      expect(Array.from(new Uint8Array(core.memory.buffer, dst, ss))).toEqual(pattern(9, i, ss));
    }
    expect(chan.chan_remove(base, MAP, 1, dst)).toBe(Q.FULL_OR_EMPTY);
    h = readQueueHeader(core.memory.buffer, base, 1);
    expect([h.numReceived, h.numEmpty]).toEqual([5n, 1n]);
    // and back to C: the ring wraps across the two implementations
    const file2 = toFile(base);
    expect(oracleRun("insert", file2, "1", "2", "11").trim().split("\n")).toEqual(["insert 0 1", "insert 1 0"]);
    fromFile(file2, base);
    expect(readQueueHeader(core.memory.buffer, base, 1).head).toBe(1); // 5 -> 0 -> 1
    for (let i = 0; i < 2; i++) {
      expect(chan.chan_remove(base, MAP, 1, dst)).toBeGreaterThanOrEqual(0);
      expect(Array.from(new Uint8Array(core.memory.buffer, dst, ss))).toEqual(pattern(11, i, ss));
    }
  });

  it("C refuses a channel whose peer-written indices are out of range", () => {
    const base = carve(core, 65536);
    expect(chan.chan_format(base, size, 1, ss, slots, 0)).toBe(Q.OK);
    new DataView(core.memory.buffer).setUint32(base + 128 + 60, 99, true); // head = 99
    const file = toFile(base);
    expect(oracleRun("remove", file, "0", "1").trim()).toBe("remove 0 -3");
    expect(chan.chan_remove(base, MAP, 0, base + 8192)).toBe(Q.BAD_QUEUE);
  });
});

describe("channel ABI: C and core.wasm on the same memory", () => {
  it("interleaved inserts and removes by both sides agree with a model ring, wrapping many times", () => {
    const [ss, slots, size, q] = [24, 5, 4096, 1];
    const base = carve(core, 65536);
    expect(chan.chan_format(base, size, 2, ss, slots, ChannelType.console)).toBe(Q.OK);
    const lib = koffi.load(oracleLib);
    try {
      const cInsert = lib.func("int uv_oracle_insert(uint8_t *base, size_t len, uint32_t q, uint32_t tag, uint32_t i)") as
        (b: Uint8Array, len: number, q: number, tag: number, i: number) => number;
      const cRemove = lib.func("int uv_oracle_remove(uint8_t *base, size_t len, uint32_t q, uint8_t *dst)") as
        (b: Uint8Array, len: number, q: number, dst: Uint8Array) => number;
      // A view of the channel inside linear memory: koffi hands C its address, so C reads and writes core's bytes.
      const mem = new Uint8Array(core.memory.buffer);
      const channel = mem.subarray(base, base + size);
      const [src, dst] = [base + 8192, base + 12288];
      const model: number[][] = [];
      let [sent, overflows, received, empty, tags] = [0, 0, 0, 0, 0];
      // Actor per step from a fixed xorshift sequence: 0 core inserts, 1 C inserts, 2 core removes, 3 C removes.
      let x = 0x2545f491;
      for (let step = 0; step < 400; step++) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
        const actor = x % 4;
        if (actor < 2) {
          const payload = pattern(7, tags, ss);
          const rc = actor === 0
            ? (mem.set(payload, src), chan.chan_insert(base, MAP, q, src))
            : cInsert(channel, size, q, 7, tags);
          const want = model.length === slots - 1 ? Q.FULL_OR_EMPTY : model.length === 0 ? Q.TRANSITION : Q.OK;
          expect([step, actor, rc]).toEqual([step, actor, want]);
          if (rc === Q.FULL_OR_EMPTY) overflows++;
          else { model.push(payload); sent++; }
          tags++;
        } else {
          const out = new Uint8Array(ss);
          const rc = actor === 2
            ? chan.chan_remove(base, MAP, q, dst)
            : cRemove(channel, size, q, out);
          if (actor === 2 && rc >= 0) out.set(mem.subarray(dst, dst + ss));
          const want = model.length === 0 ? Q.FULL_OR_EMPTY : model.length === 1 ? Q.TRANSITION : Q.OK;
          expect([step, actor, rc]).toEqual([step, actor, want]);
          if (rc === Q.FULL_OR_EMPTY) empty++;
          else { expect([step, Array.from(out)]).toEqual([step, model.shift()]); received++; }
        }
      }
      const h = readQueueHeader(core.memory.buffer, base, q);
      expect([h.numSent, h.numOverflows, h.numReceived, h.numEmpty]).toEqual([sent, overflows, received, empty].map(BigInt));
      // Both sides did everything, and the ring wrapped many times.
      expect(Math.min(sent, overflows, received, empty)).toBeGreaterThan(10);
      expect(sent).toBeGreaterThan(10 * slots);
    } finally {
      lib.unload();
    }
  });
});
