// Tests of the bzImage reader (toolchain/linux/bzimage.ts) against the real cached Debian kernel (scripts/setup)
// and hand-corrupted copies of it. The expected header values are read from the file with plain DataView offsets
// written here from Documentation/arch/x86/boot.rst, and the file is cross-checked with `file(1)`'s own bzImage
// parser (it must call it a bzImage of the cached package's release), so the reader is not its own oracle.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { findLinuxCache } from "./cache.ts";
import { BzImageError, parseBzImage } from "./bzimage.ts";

const cache = findLinuxCache();
const real = new Uint8Array(readFileSync(cache.kernel));
const copy = (): Uint8Array => new Uint8Array(real);
const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

function refusal(b: Uint8Array): BzImageError {
  try {
    parseBzImage(b);
  } catch (e) {
    if (e instanceof BzImageError) return e;
    throw e;
  }
  throw new Error("accepted");
}

describe("parseBzImage on Debian's kernel", () => {
  it("reads the setup header", () => {
    const k = parseBzImage(real);
    const d = dv(real);
    expect(k.version).toBe(d.getUint16(0x206, true));
    expect(k.version).toBeGreaterThanOrEqual(0x020c);
    expect(k.setupSects).toBe(real[0x1f1]);
    expect(k.kernelOffset).toBe((real[0x1f1]! + 1) * 512);
    expect(k.kernel.length).toBe(real.length - k.kernelOffset);
    expect(k.xloadflags & 1).toBe(1);
    expect(k.relocatable).toBe(true);
    expect(k.prefAddress).toBe(Number(d.getBigUint64(0x258, true)));
    expect(k.prefAddress).toBe(0x1000000); // CONFIG_PHYSICAL_START of Debian's config
    expect(k.initSize).toBe(d.getUint32(0x260, true));
    expect(k.kernelAlignment).toBe(d.getUint32(0x230, true));
    expect(k.cmdlineSize).toBe(2047);
    expect(k.headerEnd).toBe(0x202 + real[0x201]!);
  });

  it("agrees with file(1): a bzImage of the cached package's release, at the header's kernel_version offset", () => {
    const out = execFileSync("file", ["-b", cache.kernel], { encoding: "utf8" });
    // "Linux kernel x86 boot executable bzImage, version 6.1.0-57-amd64 (...) ..., RO-rootFS, swap_dev 0X8, Normal VGA"
    expect(out).toMatch(/Linux kernel x86 boot executable bzImage/);
    const release = cache.kernelPackage.replace(/^linux-image-/, "");
    expect(out).toContain(`version ${release}`);
    // The kernel version string file(1) prints is at 0x200 + kernel_version (offset 0x20E), inside the setup code.
    const at = 0x200 + dv(real).getUint16(0x20e, true);
    expect(new TextDecoder().decode(real.subarray(at, at + release.length))).toBe(release);
  });
});

describe("parseBzImage refuses corrupted copies", () => {
  it("a wrong boot flag", () => {
    const b = copy();
    b[0x1fe] = 0;
    expect(refusal(b)).toMatchObject({ problem: "not-bzimage", message: expect.stringMatching(/boot flag at 0x1FE/) });
  });
  it("no HdrS magic", () => {
    const b = copy();
    b[0x202] = 0x41;
    expect(refusal(b)).toMatchObject({ problem: "not-bzimage", message: expect.stringMatching(/"HdrS"/) });
  });
  it("a protocol older than 2.12", () => {
    const b = copy();
    dv(b).setUint16(0x206, 0x020b, true);
    expect(refusal(b)).toMatchObject({ problem: "protocol", message: expect.stringMatching(/2\.11 is too old \(at least 2\.12/) });
  });
  it("no XLF_KERNEL_64", () => {
    const b = copy();
    dv(b).setUint16(0x236, dv(b).getUint16(0x236, true) & ~1, true);
    expect(refusal(b)).toMatchObject({ problem: "not-64-bit" });
  });
  it("a truncated file, at the header and before the payload", () => {
    expect(refusal(real.subarray(0, 0x200))).toMatchObject({ problem: "not-bzimage", message: expect.stringMatching(/too short/) });
    const k = parseBzImage(real);
    expect(refusal(real.subarray(0, k.kernelOffset))).toMatchObject({ message: expect.stringMatching(/truncated/) });
  });
  it("a zImage (no LOADED_HIGH), an init_size smaller than the kernel, a bad alignment", () => {
    let b = copy();
    b[0x211]! &= ~1;
    expect(refusal(b).message).toMatch(/LOADED_HIGH/);
    b = copy();
    dv(b).setUint32(0x260, 0x1000, true);
    expect(refusal(b).message).toMatch(/init_size/);
    b = copy();
    dv(b).setUint32(0x230, 0x300000, true);
    expect(refusal(b).message).toMatch(/power of two/);
  });
  it("an ELF or text file is not a bzImage", () => {
    expect(refusal(new Uint8Array(readFileSync(cache.busybox))).problem).toBe("not-bzimage");
    expect(refusal(new TextEncoder().encode("#!/bin/sh\n".repeat(200))).problem).toBe("not-bzimage");
  });
});
