// Hardware test of Linux partitions inside the ultravisor (test/hw; issue 25, docs/specs/linux-partition.md §9 and
// docs/specs/linux-pc.md): one boot under QEMU/OVMF with TCG's SVM + NPT of a host with two Linux partitions beside
// ring-3 guests — L (128 MB, Debian's kernel with the default initramfs and command line) and M (96 MB, the same kernel
// with a user's initramfs and command line) — created by the command partition's definitions, their memory given by
// the resource database. L's /init prints uname and MemTotal and runs the workload; M's /init prints a token and then
// sweeps guest-physical addresses above its memory through /dev/mem (test/hw/linux/sweep.c, built here with gcc
// -static): the host-physical pages of L's upper half and of the guest Z that follows M lie there. Both stop through
// the keyboard controller; the guests X and Z keep printing. Afterwards the whole of RAM is read over QMP: M's 64-bit
// token is found nowhere outside M's own allotment.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definitionFrom } from "../../definition/load.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { machineMemoryMiB, buildUltravisorImage } from "../../image/ultravisor.ts";
import { bareMetalConfig } from "../../partitions/config.ts";
import { Machine } from "../../qemu/index.ts";
import { findLinuxCache } from "../../toolchain/linux/cache.ts";
import { WORKLOAD_N } from "../../toolchain/linux/default-initramfs.ts";
import { Initramfs } from "../../toolchain/initramfs/initramfs.ts";
import { consoleLinesOf, withSerialLog } from "./machine-reads.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-linux-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const MiB = 1 << 20;
const L_MIB = 128;
const M_MIB = 96;
/** M sweeps [its memory's end, +SWEEP_PAGES pages): past L's upper half and Z's allotment in host-physical terms. */
const SWEEP_PAGES = 40960;
const token = randomBytes(8);
const tokenHex = token.toString("hex");
const tokenValue = token.readBigUInt64BE(0);

/** M's /init: the user's line, its memory and command line, the sweep, the stop. */
function userInit(): string {
  const start = `0x${(M_MIB * MiB).toString(16)}`;
  return [
    "#!/bin/sh",
    "/bin/busybox --install -s /bin",
    "export PATH=/bin",
    "mount -t proc proc /proc",
    `echo "user-init: token ${tokenHex}"`,
    'echo "user-init: $(grep MemTotal /proc/meminfo)"',
    'echo "user-init: cmdline $(cat /proc/cmdline)"',
    // Its console channel page is right above its memory (mapped: skipped); everything after it is not its own.
    `/bin/sweep ${start} ${SWEEP_PAGES} ${start} 1 ${tokenHex}`,
    'echo "user-init: done"',
    "reboot -f",
    "while true; do sleep 1; done",
    "",
  ].join("\n");
}

const ALLOTMENT = /^ultravisor: partition (\S+) started at quantum \d+: cr3 0x[0-9a-f]+ window (0x[0-9a-f]+) allotment (\d+) pages owned by (0x[0-9a-f]+)/;
const STOPPED = /^ultravisor: svm: partition (\S+): reset through the keyboard controller \(0xFE to port 0x64\): stopped/;

let boot: { lines: string[]; tokenAt: number[]; ramBytes: number };

beforeAll(async () => {
  // The user's initramfs: busybox, the sweep program, /dev/console and /dev/mem.
  const sweep = join(scratch, "sweep");
  execFileSync("gcc", ["-static", "-O2", "-Wall", "-o", sweep, join(import.meta.dirname, "linux", "sweep.c")], { stdio: "pipe" });
  const initrd = join(scratch, "user.cpio.gz");
  writeFileSync(initrd, new Initramfs()
    .dir("/bin")
    .file("/bin/busybox", readFileSync(findLinuxCache().busybox), 0o755)
    .symlink("/bin/sh", "busybox")
    .file("/bin/sweep", readFileSync(sweep), 0o755)
    .dir("/dev")
    .device("/dev/console", "char", 5, 1)
    .device("/dev/mem", "char", 1, 1)
    .dir("/proc", 0o555)
    .file("/init", userInit(), 0o755)
    .gzip());
  const d = definitionFrom({
    revision: 2,
    name: "two Linux partitions beside ring-3 guests",
    run: { runQuanta: 60_000 },
    partitions: [
      { name: "idle", kind: "idle" },
      { name: "uv-partition", kind: "ultravisor", duty: 1 },
      { name: "io", kind: "io", duty: 2 },
      { name: "command", kind: "command", duty: 1 },
      { name: "X", kind: "guest", duty: 1, behaviour: { lang: "as" } },
      { name: "L", kind: "guest", duty: 5, memory: `${L_MIB} MB`, linux: {} },
      { name: "M", kind: "guest", duty: 5, memory: `${M_MIB} MB`, linux: { initrd, cmdline: `console=ttyS0 reboot=k panic=-1 uv.token=${tokenHex}` } },
      { name: "Z", kind: "guest", duty: 1, behaviour: { lang: "as" } },
    ],
  }, "linux hardware test host");
  const img = await buildUltravisorImage({ config: bareMetalConfig(d) });
  const out = await writeEfiImage(join(scratch, "linux"), img);
  const ramBytes = machineMemoryMiB(img.linux) * MiB;
  const m = await Machine.start({ name: "hw-linux", image: out.esp, mem: `${ramBytes / MiB}M`, timeoutMs: 175_000, log: () => undefined });
  try {
    const seen = async (what: (lines: string[]) => boolean, ms: number): Promise<void> => {
      for (const end = Date.now() + ms; Date.now() < end && !what(m.lines.map((l) => l.text)); ) await new Promise((r) => setTimeout(r, 200));
    };
    // Both stopped, or one of them ended otherwise (a violation line: the checks below then say what happened).
    const ended = (ls: string[]): string[] => ls.map((l) => STOPPED.exec(l)?.[1] ?? /^ultravisor: svm: partition (\S+) stopped: violation/.exec(l)?.[1]).filter((x): x is string => x !== undefined);
    await seen((ls) => ended(ls).includes("L") && ended(ls).includes("M"), 150_000);
    // Both stopped: X and Z must still print afterwards.
    const after = m.lines.length;
    await seen((ls) => ["X", "Z"].every((n) => ls.slice(after).some((l) => l.startsWith(`${n}: `))), 15_000);
    await m.qmp!.execute("stop");
    const ram = Buffer.from(await m.readPhysical(0, ramBytes));
    const pattern = Buffer.alloc(8);
    pattern.writeBigUInt64LE(tokenValue);
    const tokenAt: number[] = [];
    for (let i = ram.indexOf(pattern); i >= 0; i = ram.indexOf(pattern, i + 1)) tokenAt.push(i);
    boot = { lines: m.lines.map((l) => l.text), tokenAt, ramBytes };
  } finally {
    if (process.env.UV_HW_LINUX_LOG) writeFileSync(process.env.UV_HW_LINUX_LOG, m.lines.map((l) => l.text).join("\n"));
    await m.close();
  }
}, 178_000);

const withLog = (check: () => void): void => withSerialLog(boot.lines, check);
const linesOf = (name: string): string[] => consoleLinesOf(boot.lines, name);
const allotment = (name: string): { window: number; pages: number; owner: string } => {
  const a = boot.lines.map((l) => ALLOTMENT.exec(l)).find((x) => x?.[1] === name);
  if (!a) throw new Error(`no start line of partition ${name}`);
  return { window: Number(a[2]), pages: Number(a[3]), owner: a[4]! };
};
const memTotalKiB = (lines: string[], tag: string): number => {
  const l = lines.map((x) => new RegExp(`^${tag} MemTotal:\\s+(\\d+) kB$`).exec(x)).find((x) => x);
  if (!l) throw new Error(`no MemTotal line from ${tag}`);
  return Number(l[1]);
};

describe("Linux partitions in the ultravisor (SVM + NPT under TCG)", () => {
  it("L boots Debian's kernel to /init in memory the database gave it: uname, MemTotal within 128 MiB, the workload, the stop", () => {
    withLog(() => {
      const l = linesOf("L");
      const release = findLinuxCache().kernelPackage.replace(/^linux-image-/, "");
      expect(l.find((x) => x.startsWith("init: uname "))).toContain(` ${release} `);
      // The allotment the monitor checked page by page with the database (GetMemOwner) before it started L: its memory
      // and one console channel page, owned by L's descriptor.
      expect(allotment("L").pages).toBe((L_MIB * MiB) / 4096 + 1);
      const kb = memTotalKiB(l, "init:");
      expect(kb).toBeLessThan(L_MIB * 1024);
      expect(kb).toBeGreaterThan((L_MIB * 1024) / 2);
      expect(l).toContain(`init: workload sum 1..${WORKLOAD_N} = ${(WORKLOAD_N * (WORKLOAD_N + 1)) / 2}`);
      expect(l).toContain("init: done, powering off");
      // The kernel's map is exactly the zero page's: the partition's memory and nothing else.
      const e820 = l.map((x) => /BIOS-e820: (\[mem 0x[0-9a-f]+-0x[0-9a-f]+\] \w+)/.exec(x)?.[1]).filter((x) => x);
      expect(e820).toEqual([
        "[mem 0x0000000000000000-0x000000000009ffff] usable",
        "[mem 0x00000000000a0000-0x00000000000fffff] reserved",
        `[mem 0x0000000000100000-0x${(L_MIB * MiB - 1).toString(16).padStart(16, "0")}] usable`,
      ]);
      expect(boot.lines.filter((x) => STOPPED.exec(x)?.[1] === "L")).toHaveLength(1);
    });
  });

  it("M runs a user's initramfs and command line at the same time, and sees its own 96 MiB only", () => {
    withLog(() => {
      const m = linesOf("M");
      expect(m).toContain(`user-init: token ${tokenHex}`);
      expect(allotment("M").pages).toBe((M_MIB * MiB) / 4096 + 1);
      const kb = memTotalKiB(m, "user-init:");
      expect(kb).toBeLessThan(M_MIB * 1024);
      expect(kb).toBeGreaterThan((M_MIB * 1024) / 2);
      // The user's command line as given, with the TSC frequency the monitor appended (docs/specs/linux-pc.md §8).
      expect(m.find((x) => x.startsWith("user-init: cmdline "))).toMatch(new RegExp(`^user-init: cmdline console=ttyS0 reboot=k panic=-1 uv\\.token=${tokenHex} tsc=reliable tsc_early_khz=[1-9]\\d*$`));
      expect(m).toContain("user-init: done");
      // Both ran at once: each printed kernel lines before the other stopped.
      const firstInit = (n: string): number => boot.lines.findIndex((x) => x.startsWith(`${n}: init:`) || x.startsWith(`${n}: user-init:`));
      const stopAt = (n: string): number => boot.lines.findIndex((x) => STOPPED.exec(x)?.[1] === n);
      expect(firstInit("L")).toBeLessThan(stopAt("M"));
      expect(firstInit("M")).toBeLessThan(stopAt("L"));
    });
  });

  it("containment: M's reads and writes of every page above its memory — other partitions' host pages among them — reach nothing", () => {
    withLog(() => {
      const start = M_MIB * MiB;
      const sweep = linesOf("M").map((x) => /^sweep: 0x([0-9a-f]+)-0x([0-9a-f]+) (\d+) pages: (\d+) reads not all ones, (\d+) writes that stuck, (\d+) channel pages$/.exec(x)).find((x) => x);
      expect(sweep, "the sweep's report").toBeTruthy();
      expect([Number(`0x${sweep![1]}`), Number(sweep![3]), Number(sweep![4]), Number(sweep![5]), Number(sweep![6])]).toEqual([start, SWEEP_PAGES, 0, 0, 1]);
      // The swept guest-physical range covers host-physical pages of other partitions: Z's whole allotment and the
      // upper part of L's memory (guest-physical addresses there equal to those host addresses).
      const end = start + SWEEP_PAGES * 4096;
      const z = allotment("Z");
      const l = allotment("L");
      expect(z.window, "Z's allotment lies inside the swept range").toBeGreaterThanOrEqual(start + 4096);
      expect(z.window + z.pages * 4096).toBeLessThanOrEqual(end);
      expect(l.window + l.pages * 4096, "the end of L's allotment lies inside the swept range").toBeGreaterThan(start + 4096);
      // Its token is in RAM only inside M's own allotment (its process's memory, the page cache of its initramfs).
      const own = allotment("M");
      const outside = boot.tokenAt.filter((a) => a < own.window || a >= own.window + own.pages * 4096);
      expect(outside.map((a) => `0x${a.toString(16)}`), `M's 64-bit token outside its allotment 0x${own.window.toString(16)} (+${own.pages} pages)`).toEqual([]);
      // The others kept their quanta: X and Z printed after both Linux partitions stopped.
      const lastStop = Math.max(...["L", "M"].map((n) => boot.lines.findIndex((x) => STOPPED.exec(x)?.[1] === n)));
      for (const n of ["X", "Z"]) expect(boot.lines.slice(lastStop).some((x) => x.startsWith(`${n}: `)), `${n} prints after the stops`).toBe(true);
      expect(boot.lines.filter((x) => /svm: partition [LM] stopped: violation/.test(x))).toEqual([]);
    });
  });
});
