// Tests of `uvt disk create` and `uvt disk check` (cli/commands/disk.ts, image/data-disk.ts, image/disk-workload.ts):
// a created disk is sparse, whole and all zeros, refused over an existing file without --force and never left half
// made; the workload check accepts a disk whose blocks hold the acknowledged generations and names every kind of
// wrong block. The records on the disk are written here with blockRecord, the format the guests will write.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { UsageError } from "../command.ts";
import { blockRecord, parseBlock } from "../../image/disk-workload.ts";
import disk, { parseDiskSize } from "./disk.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-disk-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function quiet(argv: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const log = vi.spyOn(console, "log").mockImplementation((s) => void (out += `${String(s)}\n`));
  try {
    return { code: await disk.run(argv), out };
  } finally {
    log.mockRestore();
  }
}

function putBlock(file: string, n: number, bytes: Uint8Array): void {
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, n * 512);
  } finally {
    closeSync(fd);
  }
}

describe("uvt disk create", () => {
  it("makes a sparse all-zero disk of the size asked, whole sectors, and nothing else in the folder", async () => {
    const f = join(dir, "a.img");
    const r = await quiet(["create", f, "--size", "64M"]);
    expect(r.code).toBe(0);
    const st = statSync(f);
    expect(st.size).toBe(64 * 1024 * 1024);
    expect(st.blocks * 512, "sparse: far fewer bytes allocated than its size").toBeLessThan(1024 * 1024);
    // cmp against /dev/zero: the oracle for "all zeros"
    expect(execFileSync("cmp", ["-n", String(st.size), f, "/dev/zero"]).toString()).toBe("");
    expect(readdirSync(dir).filter((x) => x.includes(".tmp"))).toEqual([]);
  });

  it("refuses an existing file without --force, a bad size, a missing folder — and leaves nothing behind", async () => {
    const f = join(dir, "b.img");
    writeFileSync(f, "keep me");
    await expect(quiet(["create", f, "--size", "1M"])).rejects.toThrow(UsageError);
    expect(readFileSync(f, "utf8")).toBe("keep me");
    expect((await quiet(["create", f, "--size", "1M", "--force"])).code).toBe(0);
    expect(statSync(f).size).toBe(1 << 20);
    await expect(quiet(["create", join(dir, "c.img"), "--size", "1000"])).rejects.toThrow(/whole number of 512-byte sectors/);
    await expect(quiet(["create", join(dir, "c.img"), "--size", "2T"])).rejects.toThrow(/1 TiB/);
    await expect(quiet(["create", join(dir, "c.img"), "--size", "lots"])).rejects.toThrow(/--size takes a size/);
    await expect(quiet(["create", join(dir, "nope", "c.img"), "--size", "1M"])).rejects.toThrow(/does not exist/);
    await expect(quiet(["create", join(dir, "c.img")])).rejects.toThrow(/needs --size/);
    await expect(quiet(["frobnicate"])).rejects.toThrow(/unknown subcommand 'frobnicate'/);
    expect(existsSync(join(dir, "c.img"))).toBe(false);
    expect(readdirSync(dir).filter((x) => x.includes(".tmp"))).toEqual([]);
  });

  it("reads sizes in binary units", () => {
    expect([parseDiskSize("512"), parseDiskSize("4K"), parseDiskSize("64M"), parseDiskSize("1GiB")]).toEqual([512n, 4096n, 64n << 20n, 1n << 30n]);
  });
});

describe("uvt disk check", () => {
  it("passes a disk whose blocks hold every acknowledged generation (or the next pass), and counts them", async () => {
    const f = join(dir, "w.img");
    await quiet(["create", f, "--size", "64K"]);
    putBlock(f, 3, blockRecord(3, "X", 2));
    putBlock(f, 4, blockRecord(4, "X", 3)); // acked gen 2; gen 3 completed as the run ended
    putBlock(f, 9, blockRecord(9, "Y", 1));
    const log = join(dir, "w.log");
    writeFileSync(log, ["X: disk: acked block 3 gen 1", "X: disk: acked block 3 gen 2", "X: disk: acked block 4 gen 2", "Y: disk: acked block 9 gen 1", "io: other line"].join("\n"));
    const r = await quiet(["check", f, "--log", log, "--json"]);
    expect(JSON.parse(r.out)).toEqual({ blocks: 128, acknowledged: 3, records: 3, problems: [] });
    expect(r.code).toBe(0);
  });

  it("names a stale generation, another partition's record, a missing record, a misplaced one and garbage", async () => {
    const f = join(dir, "v.img");
    await quiet(["create", f, "--size", "64K"]);
    putBlock(f, 1, blockRecord(1, "X", 1)); // acked gen 3: stale
    putBlock(f, 2, blockRecord(2, "Y", 5)); // acked to X
    putBlock(f, 7, blockRecord(6, "X", 1)); // misplaced
    const junk = blockRecord(8, "X", 1);
    junk[500] = 1;
    putBlock(f, 8, junk); // not zero-padded
    const log = join(dir, "v.log");
    writeFileSync(log, ["X: disk: acked block 1 gen 3", "X: disk: acked block 2 gen 1", "X: disk: acked block 5 gen 1"].join("\n"));
    const r = await quiet(["check", f, "--log", log]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("block 1: X gen 3 was acknowledged, the block holds X gen 1");
    expect(r.out).toContain("block 2: X gen 1 was acknowledged, the block holds Y gen 5");
    expect(r.out).toContain("block 5: X gen 1 was acknowledged, the block holds no record");
    expect(r.out).toContain("block 7 holds the record of block 6 (X gen 1): misplaced");
    expect(r.out).toContain("block 8: not zero-padded to the end of the block");
    expect(r.out).toContain("block 2 holds Y gen 5, a partition this log acknowledged nothing for");
    expect(r.out).toContain("6 problems");
  });

  it("fails a log that acknowledges nothing, and records written in a form the guests never write", async () => {
    const f = join(dir, "u.img");
    await quiet(["create", f, "--size", "64K"]);
    const log = join(dir, "u.log");
    writeFileSync(log, "X: tick 1\n");
    const r = await quiet(["check", f, "--log", log]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("the log acknowledges no block");
    const padded = new Uint8Array(512);
    padded.set(Buffer.from("block 03 X gen 001", "latin1"));
    putBlock(f, 3, padded);
    writeFileSync(log, "X: disk: acked block 3 gen 1\n");
    const p = await quiet(["check", f, "--log", log]);
    expect(p.out).toContain("block 3: not a block record");
  });

  it("refuses a dangling symbolic link at the path without --force, as any existing name", async () => {
    const { symlinkSync } = await import("node:fs");
    const f = join(dir, "dangling.img");
    symlinkSync(join(dir, "nowhere"), f);
    await expect(quiet(["create", f, "--size", "1M"])).rejects.toThrow(/exists: pass --force/);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
  });

  it("writes and reads back the record format of the spec", () => {
    const b = blockRecord(12, "Z", 4);
    expect(Buffer.from(b.subarray(0, 16)).toString("latin1")).toBe("block 12 Z gen 4");
    expect(b.length).toBe(512);
    expect(parseBlock(b)).toEqual({ n: 12, partition: "Z", gen: 4 });
    expect(parseBlock(new Uint8Array(512))).toBeNull();
  });
});
