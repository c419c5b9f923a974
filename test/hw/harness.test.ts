// Hardware tests of the QEMU harness itself (qemu/): real QEMU + OVMF boots without our image. OVMF with no disk
// reaches its boot manager and prints "BdsDxe: loading ..." on the serial console; the firmware file on disk is the
// oracle for what QMP reads at the reset vector; an I/O write from the monitor exercises isa-debug-exit decoding.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clearProcessAccelCache, kvmDeviceProblem } from "../../qemu/accel.ts";
import { BootError, discoverOvmf, findQemu, HarnessError, Machine } from "../../qemu/index.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-harness-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = { log: () => undefined, artifactsDir: join(scratch, "artifacts") };

describe("Machine on real QEMU + OVMF", () => {
  it("boots the firmware on a fresh copy of its variable store, answers QMP, reads the reset vector, and decodes an isa-debug-exit code", async () => {
    const installedVars = readFileSync(discoverOvmf().vars);
    const m = await Machine.start({ ...quiet, name: "hw-firmware", mem: "128M", timeoutMs: 120_000 });
    // The writable pflash unit is a copy made for this run (the firmware stores boot options in it), never the
    // installed file; it goes away with the run.
    const vars = /if=pflash,format=raw,unit=1,file=(\S+)/.exec(m.commandLine)?.[1];
    expect(vars).toBeDefined();
    expect(vars).not.toBe(discoverOvmf().vars);
    try {
      const hit = await m.waitFor(/BdsDxe: (loading|starting) Boot\d+/, 110_000);
      expect(hit[0]).toMatch(/^BdsDxe/);
      expect(existsSync(vars!)).toBe(true);
      expect(await m.qmp!.queryStatus()).toMatchObject({ status: "running", running: true });
      // pflash unit 0 ends at 4 GiB, so its last 16 bytes are what the CPU fetches at reset (0xFFFFFFF0).
      const code = readFileSync(discoverOvmf().code);
      const mem = await m.readPhysical(0xfffffff0, 16);
      expect(Buffer.from(mem).toString("hex")).toBe(code.subarray(code.length - 16).toString("hex"));
      expect(await m.qmp!.humanMonitorCommand("info status")).toMatch(/running/);
      // A one-byte write of 42 to port 0xf4: QEMU exits with (42 << 1) | 1 and the harness gives 42 back.
      await m.qmp!.humanMonitorCommand("o /b 0xf4 42").catch(() => undefined);
      expect(await m.wait()).toEqual({ kind: "guest", code: 42 });
      expect(m.artifacts).toBeUndefined();
    } finally {
      await m.close();
    }
    expect(existsSync(vars!)).toBe(false);
    expect(readFileSync(discoverOvmf().vars).equals(installedVars)).toBe(true);
  }, 150_000);

  it("attaches data disks as modern virtio-blk PCI devices on their own block nodes (uvt run --disk)", async () => {
    const { createDataDisk } = await import("../../image/data-disk.ts");
    const files = [join(scratch, "d0.img"), join(scratch, "d,1.img")];
    for (const f of files) createDataDisk(f, 1n << 20n);
    const m = await Machine.start({ ...quiet, name: "hw-disks", mem: "128M", timeoutMs: 60_000, disks: files });
    try {
      await m.waitFor(/BdsDxe/, 55_000);
      const block = await m.qmp!.execute("query-named-block-nodes") as Array<{ "node-name": string; file: string; drv: string }>;
      for (const n of files.keys()) expect(block.find((b) => b["node-name"] === `data${n}`)).toMatchObject({ drv: "raw" });
      expect(JSON.stringify(block)).toContain("d,1.img");
      // Every PCI function QEMU emulates, by vendor and device: 1af4:1042 is virtio-blk on the modern transport only.
      const pci = await m.qmp!.execute("query-pci") as Array<{ devices: Array<{ id: { vendor: number; device: number }; qdev_id: string }> }>;
      const modern = pci.flatMap((b) => b.devices).filter((d) => d.id.vendor === 0x1af4 && d.id.device === 0x1042).map((d) => d.qdev_id).sort();
      expect(modern).toEqual(["data0-dev", "data1-dev"]);
      await m.qmp!.quit();
      expect(await m.wait()).toEqual({ kind: "shutdown" });
    } finally {
      await m.close();
    }
  });

  it("sends system_powerdown (QEMU reports the POWERDOWN event) and quits over QMP", async () => {
    const m = await Machine.start({ ...quiet, name: "hw-qmp", mem: "128M", timeoutMs: 60_000 });
    try {
      const seen = new Promise<string>((resolve) => m.qmp!.onEvent((e) => e.event === "POWERDOWN" && resolve(e.event)));
      await m.qmp!.systemPowerdown();
      expect(await seen).toBe("POWERDOWN");
      await m.qmp!.quit();
      expect(await m.wait()).toEqual({ kind: "shutdown" });
      expect(m.qmp!.events.map((e) => e.event)).toContain("SHUTDOWN");
    } finally {
      await m.close();
    }
  }, 150_000);

  it("types into the serial console: the firmware's shell powers the machine off on `reset -s`", async () => {
    const m = await Machine.start({ ...quiet, name: "hw-serial-input", mem: "128M", timeoutMs: 120_000 });
    try {
      // Any key skips the shell's 5-second startup.nsh countdown; the prompt has no newline, hence `partial`.
      await m.waitFor(/Press ESC in \d+ seconds/, 110_000, { partial: true });
      m.sendSerial("\r");
      await m.waitFor(/Shell> $/, 30_000, { partial: true });
      m.sendSerial("reset -s\r");
      expect(await m.wait()).toEqual({ kind: "shutdown" });
      expect(m.lines.some((l) => l.text.includes("reset -s"))).toBe(true); // the shell echoed what we typed
    } finally {
      await m.close();
    }
  }, 150_000);

  it("keeps serial log, stderr and command line when a waited-for line never comes", async () => {
    const m = await Machine.start({ ...quiet, name: "hw-never", mem: "128M", timeoutMs: 60_000 });
    try {
      const err = await m.waitFor(/this line never appears/, 1_500).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(BootError);
      const dir = (err as BootError).artifacts!;
      expect((err as Error).message).toContain(dir);
      expect(readdirSync(dir).sort()).toEqual(["qemu-cmdline.txt", "qemu-stderr.txt", "reason.txt", "serial.log"]);
      expect(readFileSync(join(dir, "qemu-cmdline.txt"), "utf8")).toMatch(/-machine q35,accel=(tcg|kvm) .*isa-debug-exit/);
      expect(await m.wait()).toEqual({ kind: "timeout", seconds: 1.5 });
    } finally {
      await m.close();
    }
  }, 150_000);

  it("kills QEMU when the boot runs past its time limit", async () => {
    const m = await Machine.start({ ...quiet, name: "hw-timeout", mem: "128M", timeoutMs: 1_000 });
    try {
      expect(await m.wait()).toEqual({ kind: "timeout", seconds: 1 });
      expect(existsSync(join(m.artifacts!, "serial.log"))).toBe(true);
    } finally {
      await m.close();
    }
  }, 150_000);

  it("auto picks KVM exactly when a KVM boot really works on this host", async () => {
    const qemu = findQemu();
    const ovmf = discoverOvmf();
    clearProcessAccelCache();
    const choice = await Machine.chooseAccel("auto", qemu, ovmf, null);
    if (kvmDeviceProblem()) {
      expect(choice).toMatchObject({ accel: "tcg", source: "no-kvm-device" });
      return;
    }
    // The oracle: boot under KVM on purpose and see whether the firmware gets to its boot manager.
    let works: boolean;
    const m = await Machine.start({ ...quiet, name: "hw-kvm", accel: "kvm", mem: "128M", timeoutMs: 30_000, keepArtifactsOnFailure: false }).catch(() => undefined);
    if (!m) works = false;
    else {
      try {
        works = await m.waitFor(/BdsDxe/, 20_000).then(() => true, () => false);
      } finally {
        await m.close();
      }
    }
    expect(choice.accel).toBe(works ? "kvm" : "tcg");
    expect(choice.source).toBe("probe");
  }, 150_000);

  it("turns bad input into one-line errors saying what to install or pass", async () => {
    await expect(Machine.start({ ...quiet, image: join(scratch, "missing.img") })).rejects.toThrow(/image not found: .*uvt build/);
    await expect(Machine.start({ ...quiet, mem: "100000G" })).rejects.toThrow(/more than this host/);
    await expect(Machine.start({ ...quiet, mem: "12M" })).rejects.toThrow(/too small/);
    await expect(Machine.start({ ...quiet, smp: 0 })).rejects.toThrow(/--smp/);
    await expect(Machine.start({ ...quiet, qemu: join(scratch, "no-qemu") })).rejects.toThrow(/apt-get install qemu-system-x86/);
    await expect(Machine.start({ ...quiet, ovmf: { dirs: [scratch] } })).rejects.toThrow(HarnessError);
  }, 150_000);
});
