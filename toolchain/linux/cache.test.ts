// Tests of the Debian package cache reader (toolchain/linux/cache.ts): the real cache scripts/setup fills, and
// missing or incomplete caches refused with a message that says to run scripts/setup.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findLinuxCache, LinuxCacheError, linuxCacheDir } from "./cache.ts";

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), "uv-linux-cache-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("the Linux package cache", () => {
  it("finds the kernel and busybox scripts/setup unpacked (a missing cache fails: run scripts/setup)", () => {
    const c = findLinuxCache();
    expect(c.kernelPackage).toMatch(/^linux-image-\d+\.\d+\.\d+-\d+-amd64$/);
    expect(c.kernel).toMatch(/\/boot\/vmlinuz-\d/);
    // The real files: a bzImage starts its setup header at 0x1F1 with "HdrS" at 0x202; busybox is an ELF.
    expect(readFileSync(c.kernel).subarray(0x202, 0x206).toString("latin1")).toBe("HdrS");
    expect(readFileSync(c.busybox).subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  });

  it("honours UV_LINUX_CACHE, then XDG_CACHE_HOME", () => {
    expect(linuxCacheDir({ UV_LINUX_CACHE: "/x/y" })).toBe("/x/y");
    expect(linuxCacheDir({ XDG_CACHE_HOME: "/c" })).toBe("/c/ultravisor/linux");
  });

  it("refuses a missing manifest, a manifest without a field, and a file that is gone, each saying to run scripts/setup", () => {
    const d = tmp();
    expect(() => findLinuxCache(d)).toThrow(LinuxCacheError);
    expect(() => findLinuxCache(d)).toThrow(/run scripts\/setup/);
    writeFileSync(join(d, "manifest"), "package=linux-image-x\nkernel=/nonexistent\n");
    expect(() => findLinuxCache(d)).toThrow(/no 'busybox=' line: run scripts\/setup/);
    writeFileSync(join(d, "busybox"), "x");
    writeFileSync(join(d, "manifest"), `package=linux-image-x\nkernel=${join(d, "gone")}\nbusybox=${join(d, "busybox")}\n`);
    expect(() => findLinuxCache(d)).toThrow(/cached kernel .*gone.* is missing: run scripts\/setup/);
  });
});
