// Tests of a Linux partition's definition (definition/host.ts `linux:`, check.ts, linux.ts): a good one resolves to
// the cached Debian kernel, the default initramfs and command line; each bad case of issue 25 item 3 — a missing
// file, not a bzImage, a protocol too old, init_size + initrd larger than memory — and the rest (no memory, not a
// guest, beside behaviour, an initrd that is no archive, a command line too long) is refused before anything is
// built, one positioned line at its key. Kernels are real: the cached Debian kernel and corrupted copies of it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findLinuxCache } from "../toolchain/linux/cache.ts";
import { DEFAULT_CMDLINE } from "../toolchain/linux/default-initramfs.ts";
import { DefinitionError, formatProblem } from "./errors.ts";
import { linuxInputs } from "./linux.ts";
import { loadDefinition } from "./load.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-linux-def-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cache = findLinuxCache();
const real = readFileSync(cache.kernel);

/** A host file with one Linux partition whose YAML mapping is `linux` (and `extra` keys), written to dir/NAME.yaml. */
function host(name: string, linux: string, extra = "memory: 128 MB"): string {
  const f = join(dir, `${name}.yaml`);
  writeFileSync(f, [
    "revision: 2",
    "partitions:",
    "  - { name: idle, kind: idle }",
    "  - { name: io, kind: io, duty: 2 }",
    `  - { name: L, duty: 8, ${extra}, linux: ${linux} }`,
    "",
  ].join("\n"));
  return f;
}

/** The refusal lines for FILE: schema and cross-field problems (loadDefinition), then the file checks. */
function refusal(file: string): string[] {
  let d;
  try {
    d = loadDefinition(file);
  } catch (e) {
    if (e instanceof DefinitionError) return e.problems.map(formatProblem);
    throw e;
  }
  return linuxInputs(d).problems.map(formatProblem);
}

/** "FILE:LINE:COL" of the first `needle` on 1-based line `line` of `file` (the oracle of positions is the text). */
function at(file: string, line: number, needle: string): string {
  const col = readFileSync(file, "utf8").split("\n")[line - 1]!.indexOf(needle);
  expect(col, `${needle} on line ${line}`).toBeGreaterThanOrEqual(0);
  return `${file}:${line}:${col + 1}`;
}

function kernelCopy(name: string, edit: (b: Buffer) => void): string {
  const b = Buffer.from(real);
  edit(b);
  writeFileSync(join(dir, name), b);
  return name;
}

describe("a Linux partition's definition", () => {
  it("linux: {} is the cached Debian kernel, the default initramfs and command line, laid out in its memory", () => {
    const d = loadDefinition(host("good", "{}"));
    const { inputs, problems } = linuxInputs(d);
    expect(problems).toEqual([]);
    const l = inputs.get(2)!;
    expect(l.kernelPath).toBe(cache.kernel);
    expect(l.initrdPath).toBeUndefined();
    expect([l.initrd[0], l.initrd[1]]).toEqual([0x1f, 0x8b]);
    expect(l.cmdline).toBe(DEFAULT_CMDLINE);
    expect(l.layout.memory).toBe(128 << 20);
  });

  it("paths are relative to the definition's folder; a user's initrd and command line are taken as given", () => {
    writeFileSync(join(dir, "my.cpio"), "070701" + "0".repeat(100));
    const d = loadDefinition(host("own", `{ kernel: ${kernelCopy("k-ok", () => undefined)}, initrd: my.cpio, cmdline: "console=ttyS0 quiet" }`));
    const { inputs, problems } = linuxInputs(d);
    expect(problems).toEqual([]);
    expect(inputs.get(2)).toMatchObject({ kernelPath: join(dir, "k-ok"), initrdPath: join(dir, "my.cpio"), cmdline: "console=ttyS0 quiet" });
  });

  it("a missing kernel or initrd file", () => {
    const f = host("missing", "{ kernel: nope/bzImage, initrd: gone.gz }");
    expect(refusal(f)).toEqual([
      `${at(f, 5, "nope/")}: partitions[2].linux.kernel: ${join(dir, "nope/bzImage")}: no such file (give a bzImage, relative to the definition's folder, or leave kernel out for Debian's cached kernel)`,
      `${at(f, 5, "gone.gz")}: partitions[2].linux.initrd: ${join(dir, "gone.gz")}: no such file (give an initramfs, relative to the definition's folder, or leave initrd out for the default)`,
    ]);
  });

  it("not a bzImage", () => {
    writeFileSync(join(dir, "notes.txt"), "hello\n".repeat(1000));
    const f = host("text", "{ kernel: notes.txt }");
    expect(refusal(f)).toEqual([`${at(f, 5, "notes.txt")}: partitions[2].linux.kernel: ${join(dir, "notes.txt")}: not a bzImage: boot flag at 0x1FE is 0x6568, not 0xAA55`]);
    const g = host("nomagic", `{ kernel: ${kernelCopy("k-magic", (b) => b.write("XXXX", 0x202, "latin1"))} }`);
    expect(refusal(g)[0]).toMatch(/partitions\[2\]\.linux\.kernel: .*k-magic: not a bzImage: no "HdrS" magic at 0x202/);
  });

  it("a boot protocol too old", () => {
    const f = host("old", `{ kernel: ${kernelCopy("k-old", (b) => b.writeUInt16LE(0x0206, 0x206))} }`);
    expect(refusal(f)).toEqual([`${at(f, 5, "k-old")}: partitions[2].linux.kernel: ${join(dir, "k-old")}: boot protocol 2.06 is too old (at least 2.12: xloadflags, pref_address and init_size)`]);
  });

  it("init_size plus the initrd larger than the partition's memory, at memory, naming the minimum", () => {
    const f = host("small", "{}", "memory: 64 MB");
    const lines = refusal(f);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${at(f, 5, "64 MB").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: partitions\\[2\\]\\.memory: 64 MiB is too small: the kernel needs up to [\\d.]+ MiB \\(pref_address 16 MiB \\+ init_size [\\d.]+ MiB\\) and the initrd [\\d.]+ MiB above it; give at least \\d+ MiB$`));
    // A big initrd in an otherwise ample partition: 16 MiB + init_size (63.6 MiB) + 60 MiB and 2 bytes = 139.6 MiB,
    // in 4 MB units 140.
    writeFileSync(join(dir, "big.gz"), Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(60 << 20)]));
    expect(refusal(host("bigrd", "{ initrd: big.gz }"))[0]).toMatch(/partitions\[2\]\.memory: 128 MiB is too small: .*give at least 140 MiB$/);
  });

  it("an initrd that is no archive, a command line too long or with a newline", () => {
    writeFileSync(join(dir, "junk.bin"), "not an archive");
    expect(refusal(host("junk", "{ initrd: junk.bin }"))[0]).toMatch(/partitions\[2\]\.linux\.initrd: .*junk\.bin is not an initramfs \(a cpio newc archive, or one compressed with gzip/);
    expect(refusal(host("long", `{ cmdline: "${"x".repeat(3000)}" }`))[0]).toMatch(/partitions\[2\]\.linux\.cmdline: the command line is 3000 bytes plus the 49 the monitor keeps for tsc=reliable tsc_early_khz=N \(name tsc_early_khz= yourself to give them back\), more than the kernel's cmdline_size allows \(2047\)/);
    // The monitor's room counts (docs/specs/linux-pc.md §8): 2000 bytes fit the kernel's 2047 alone but not with it;
    // a line that names tsc_early_khz itself gets nothing appended and may use all 2047.
    expect(refusal(host("room", `{ cmdline: "${"x".repeat(2000)}" }`))[0]).toMatch(/the command line is 2000 bytes plus the 49 the monitor keeps/);
    expect(refusal(host("own", `{ cmdline: "tsc_early_khz=1000 ${"x".repeat(2047 - 19)}" }`))).toEqual([]);
    expect(refusal(host("own-long", `{ cmdline: "tsc_early_khz=1000 ${"x".repeat(2048 - 19)}" }`))[0]).toMatch(/the command line is 2048 bytes, more than/);
    expect(refusal(host("nl", '{ cmdline: "a\\nb" }'))[0]).toMatch(/partitions\[2\]\.linux\.cmdline: control characters/);
  });

  it("no memory, not a guest, or beside behaviour", () => {
    const f = join(dir, "shape.yaml");
    writeFileSync(f, [
      "revision: 2",
      "partitions:",
      "  - { name: idle, kind: idle }",
      "  - { name: io, kind: io, duty: 2, memory: 128 MB, linux: {} }",
      "  - { name: L, duty: 8, linux: {} }",
      "  - { name: M, duty: 1, memory: 128 MB, linux: {}, behaviour: { lang: as } }",
      "",
    ].join("\n"));
    expect(refusal(f)).toEqual([
      `${at(f, 4, "linux")}: partitions[1].linux: only a guest runs Linux (this is a 'io' partition)`,
      `${at(f, 5, "linux")}: partitions[2].linux: a Linux partition needs memory (e.g. memory: 128 MB: the kernel's init_size, its initrd and what it runs in)`,
      `${at(f, 6, "behaviour")}: partitions[3].behaviour: a Linux partition's program is its kernel: no behaviour beside linux`,
    ]);
  });
});
