// Unit tests of --mem parsing (qemu/size.ts).
import { describe, expect, it } from "vitest";
import { HarnessError } from "./errors.ts";
import { parseMemSize } from "./size.ts";

describe("parseMemSize", () => {
  it("reads MiB and GiB the way QEMU's -m does", () => {
    expect(parseMemSize("256M", 4096)).toBe(256);
    expect(parseMemSize("1G", 4096)).toBe(1024);
    expect(parseMemSize("512", 4096)).toBe(512);
    expect(parseMemSize("2GiB", 4096)).toBe(2048);
  });

  it("rejects nonsense, sizes OVMF cannot boot in, and more than the host has", () => {
    expect(() => parseMemSize("lots", 4096)).toThrow(HarnessError);
    expect(() => parseMemSize("1.5G", 4096)).toThrow(/not understood/);
    expect(() => parseMemSize("16M", 4096)).toThrow(/too small/);
    expect(() => parseMemSize("0", 4096)).toThrow(/too small/);
    expect(() => parseMemSize("8G", 4096)).toThrow(/more than this host/);
  });
});
