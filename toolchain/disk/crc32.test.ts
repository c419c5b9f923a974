// crc32.ts against zlib: node:zlib's crc32 where this Node has it, Python's zlib.crc32 otherwise (same C library).
import { execFileSync } from "node:child_process";
import * as zlib from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.ts";

const nodeCrc = (zlib as unknown as { crc32?: (b: Uint8Array, v?: number) => number }).crc32;

function pythonCrcs(buffers: Uint8Array[]): number[] {
  const hex = buffers.map((b) => Buffer.from(b).toString("hex")).join("\n");
  const out = execFileSync("python3", ["-c", "import sys,zlib\nfor l in sys.stdin.read().split('\\n'): print(zlib.crc32(bytes.fromhex(l)))"], {
    input: hex,
    encoding: "utf8",
  });
  return out.trim().split("\n").map(Number);
}

function zlibCrcs(buffers: Uint8Array[]): number[] {
  return nodeCrc ? buffers.map((b) => nodeCrc(b)) : pythonCrcs(buffers);
}

describe("crc32", () => {
  it("matches zlib on random buffers", () => {
    const samples = fc.sample(fc.uint8Array({ maxLength: 5000 }), { numRuns: 200, seed: 42 });
    samples.push(new Uint8Array(0), new Uint8Array(16384), new TextEncoder().encode("123456789"));
    expect(samples.map((b) => crc32(b))).toEqual(zlibCrcs(samples));
  });

  it("matches Python's zlib too (the oracle used on older Node releases)", () => {
    const samples = fc.sample(fc.uint8Array({ maxLength: 300 }), { numRuns: 20, seed: 7 });
    expect(samples.map((b) => crc32(b))).toEqual(pythonCrcs(samples));
  });

  it("continues across chunks", () => {
    const data = fc.sample(fc.uint8Array({ minLength: 10, maxLength: 1000 }), { numRuns: 1, seed: 3 })[0]!;
    const cut = data.length >> 1;
    expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(crc32(data));
  });

  it("gives the standard check value for '123456789'", () => {
    // The catalogued check value of CRC-32/ISO-HDLC.
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});
