// Tests of the initramfs writer (toolchain/initramfs/) against GNU cpio as the oracle: archives are listed with
// `cpio -itv` and extracted with `cpio -idv` (as root, so device nodes are made), and names, kinds, modes, device
// numbers, symlink targets and contents are compared with what was put in. gzip output is read back by `gzip -dc`.
// A missing cpio or gzip fails the test (scripts/setup installs cpio).
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeNewc } from "./cpio.ts";
import { Initramfs } from "./initramfs.ts";

const work = mkdtempSync(join(tmpdir(), "uv-initramfs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs GNU cpio with `args`, the archive on stdin; returns its stdout (`-t` lists there). */
function cpio(archive: Uint8Array, args: string[], cwd = work): string {
  return execFileSync("cpio", args, { input: archive, cwd, encoding: "latin1", stdio: ["pipe", "pipe", "pipe"] });
}

interface Listed { perms: string; size: string; name: string; link?: string }
/** Parses `cpio -itv` lines: "crw-------   1 root  root  5,   1 Jan  1  1970 dev/console". */
function listing(archive: Uint8Array): Listed[] {
  const out = cpio(archive, ["-itv", "--quiet"]).trim();
  if (out === "") return [];
  return out.split("\n").map((line) => {
    const m = /^(\S{10})\s+\d+\s+\S+\s+\S+\s+(\d+,\s*\d+|\d+)\s+\w{3}\s+\d+\s+\d+\s+(.*)$/.exec(line);
    if (!m) throw new Error(`unexpected cpio -itv line: ${line}`);
    const [name, link] = m[3]!.split(" -> ");
    return { perms: m[1]!, size: m[2]!.replace(/\s+/g, ""), name: name!, ...(link !== undefined ? { link } : {}) };
  });
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7 + 1) & 0xff);
}

describe("the initramfs writer, against GNU cpio", () => {
  const fs = new Initramfs()
    .dir("/dev")
    .device("/dev/console", "char", 5, 1)
    .device("/dev/sda3", "block", 8, 3, 0o660)
    .file("/bin/tool", bytes(1001, 1), 0o4755)
    .symlink("/bin/sh", "tool")
    .dir("/proc", 0o555)
    .dir("/tmp", 0o1777);
  // Names and data of every length mod 4, so each padding case of header, name and data is exercised.
  for (let n = 0; n < 9; n++) fs.file(`/pad/${"abcdefghi".slice(0, n + 1)}`, bytes(n, n), 0o600 + n);
  const archive = fs.cpio();

  it("lists every entry with its kind, permissions, device numbers, size and symlink target", () => {
    const l = listing(archive);
    const by = new Map(l.map((e) => [e.name, e]));
    expect(l.map((e) => e.name)).toEqual(["dev", "dev/console", "dev/sda3", "bin", "bin/tool", "bin/sh", "proc", "tmp", "pad", ...Array.from({ length: 9 }, (_, n) => `pad/${"abcdefghi".slice(0, n + 1)}`)]);
    expect(by.get("dev/console")).toMatchObject({ perms: "crw-------", size: "5,1" });
    expect(by.get("dev/sda3")).toMatchObject({ perms: "brw-rw----", size: "8,3" });
    expect(by.get("bin/tool")).toMatchObject({ perms: "-rwsr-xr-x", size: "1001" });
    expect(by.get("bin/sh")).toMatchObject({ perms: "lrwxrwxrwx", link: "tool" });
    expect(by.get("tmp")!.perms).toBe("drwxrwxrwt");
    expect(by.get("proc")!.perms).toBe("dr-xr-xr-x");
    expect(by.get("dev")!.perms).toBe("drwxr-xr-x");
  });

  it("extracts to the same tree: modes, device numbers, symlink targets and contents", () => {
    const dest = mkdtempSync(join(work, "x-"));
    cpio(archive, ["-idmu", "--no-absolute-filenames", "--quiet"], dest);
    const con = lstatSync(join(dest, "dev/console"));
    expect(con.isCharacterDevice()).toBe(true);
    // Linux dev_t: major in bits 8..19, minor in bits 0..7 (and 20..31) for small numbers.
    expect([con.rdev >> 8, con.rdev & 0xff]).toEqual([5, 1]);
    expect(con.mode & 0o7777).toBe(0o600);
    const sda = lstatSync(join(dest, "dev/sda3"));
    expect(sda.isBlockDevice()).toBe(true);
    expect([sda.rdev >> 8, sda.rdev & 0xff]).toEqual([8, 3]);
    expect(lstatSync(join(dest, "bin/tool")).mode & 0o7777).toBe(0o4755);
    expect(readFileSync(join(dest, "bin/tool"))).toEqual(Buffer.from(bytes(1001, 1)));
    expect(readlinkSync(join(dest, "bin/sh"))).toBe("tool");
    for (let n = 0; n < 9; n++) {
      const p = join(dest, `pad/${"abcdefghi".slice(0, n + 1)}`);
      expect(readFileSync(p)).toEqual(Buffer.from(bytes(n, n)));
      expect(lstatSync(p).mode & 0o7777).toBe(0o600 + n);
    }
  });

  it("gzip output is the same archive (gzip -dc), and the same input gives the same bytes", () => {
    const gz = fs.gzip();
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    const f = join(work, "a.cpio.gz");
    writeFileSync(f, gz);
    expect(new Uint8Array(execFileSync("gzip", ["-dc", f]))).toEqual(archive);
    expect(fs.gzip()).toEqual(gz);
  });

  it("refuses what an archive cannot hold, before writing anything", () => {
    expect(() => new Initramfs().file("bin/x", "")).toThrow(/not absolute/);
    expect(() => new Initramfs().file("/a/../b", "")).toThrow(/'\.\.' component/);
    expect(() => new Initramfs().file("/a", "").file("/a", "")).toThrow(/already in the archive/);
    expect(() => new Initramfs().file("/a", "").file("/a/b", "")).toThrow(/needs '\/a' to be a directory/);
    expect(() => writeNewc([{ path: "x", kind: "char", mode: 0o600 }])).toThrow(/needs major and minor/);
    expect(() => writeNewc([{ path: "x", kind: "file", mode: 0o10000, data: new Uint8Array() }])).toThrow(/permission bits/);
    expect(() => writeNewc([{ path: "TRAILER!!!", kind: "dir", mode: 0o755 }])).toThrow(/end-of-archive/);
    expect(() => writeNewc([{ path: "x", kind: "char", mode: 0o600, major: 2 ** 32, minor: 0 }])).toThrow(/32-bit/);
  });

  it("an empty archive is just the trailer, which cpio reads as empty", () => {
    expect(listing(writeNewc([])).length).toBe(0);
  });
});
