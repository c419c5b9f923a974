// Tests of `uvt build` (and of `uvt run`'s argument checks, which fail before any QEMU starts): the three outputs
// land in --out, the EFI file on the ESP is byte for byte the BOOTX64.EFI beside it (read back with mtools), the map
// names the entry point objdump reports, and user mistakes are one-line UsageErrors. Booting is test/hw's job.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { objdumpPrivate } from "../../toolchain/pe/objdump.ts";
import { parseSymbolMap } from "../../image/symbol-map.ts";
import { UsageError } from "../command.ts";
import { DefinitionError } from "../../definition/errors.ts";
import build from "./build.ts";
import run from "./run.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-build-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function quiet<T>(fn: () => Promise<T>): Promise<{ value: T; out: string }> {
  let out = "";
  const log = vi.spyOn(console, "log").mockImplementation((s) => void (out += `${String(s)}\n`));
  try {
    return { value: await fn(), out };
  } finally {
    log.mockRestore();
  }
}

describe("uvt build", () => {
  it("writes BOOTX64.EFI, esp.img and the symbol map into --out, creating it", async () => {
    const out = join(dir, "a", "b");
    // The first EFI application: small and fixed (two DIR64 pointers); the default ultravisor image has its own tests.
    const r = await quiet(() => build.run(["--target", "first", "--out", out]));
    expect(r.value).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["BOOTX64.EFI", "BOOTX64.elf", "BOOTX64.map", "esp.img"]);
    expect(r.out).toMatch(/built .*BOOTX64\.EFI \(\d+ bytes, 2 base relocations\)/);
    const efi = readFileSync(join(out, "BOOTX64.EFI"));
    const offset = /ESP at byte offset (\d+)/.exec(r.out)?.[1];
    expect(offset).toBeDefined();
    const onDisk = execFileSync("mtype", ["-i", `${join(out, "esp.img")}@@${offset}`, "::/EFI/BOOT/BOOTX64.EFI"]);
    expect(Buffer.compare(onDisk, efi)).toBe(0);
    const p = objdumpPrivate(join(out, "BOOTX64.EFI"));
    const main = parseSymbolMap(readFileSync(join(out, "BOOTX64.map"), "utf8")).find((s) => s.name === "efi_main");
    expect(main?.address).toBe(p.fields.get("ImageBase")! + p.fields.get("AddressOfEntryPoint")!);
  });

  it("builds the Figure 1 ultravisor host by default, entry at efi_main", async () => {
    const out = join(dir, "uv");
    const r = await quiet(() => build.run(["--out", out]));
    expect(r.value).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["BOOTX64.EFI", "BOOTX64.elf", "BOOTX64.map", "esp.img"]);
    const symbols = parseSymbolMap(readFileSync(join(out, "BOOTX64.map"), "utf8"));
    const p = objdumpPrivate(join(out, "BOOTX64.EFI"));
    expect(symbols.find((s) => s.name === "efi_main")?.address).toBe(p.fields.get("ImageBase")! + p.fields.get("AddressOfEntryPoint")!);
    // The lead monitor and the AOT-compiled core are in the image, not only the loader.
    expect(symbols.some((s) => s.name === "uv_main")).toBe(true);
  });

  it("refuses bad usage with one-line errors", async () => {
    await expect(build.run(["--target", "second"])).rejects.toThrow(/--target must be 'ultravisor' or 'first'/);
    await expect(build.run(["--target", "first", "--config", "x.yaml"])).rejects.toThrow(/--config applies to the ultravisor target only/);
    await expect(build.run(["--config", join(dir, "missing.yaml")])).rejects.toThrow(DefinitionError);
    const file = join(dir, "plain-file");
    writeFileSync(file, "");
    await expect(build.run(["--target", "first", "--out", file])).rejects.toThrow(new UsageError(`cannot write into ${file}: a file of that name is in the way, pass another --out`));
    await expect(build.run(["extra"])).rejects.toThrow(/unexpected argument 'extra'/);
    await expect(build.run(["--out", ""])).rejects.toThrow(UsageError);
    await expect(build.run(["--target", "second"])).rejects.toThrow(/--target must be 'ultravisor' or 'first'/);
    await expect(build.run(["--target", "first", "--config", "x.yaml"])).rejects.toThrow(/--config applies to the ultravisor target only/);
  });
});

describe("uvt run argument checks", () => {
  it("rejects bad values before starting QEMU", async () => {
    await expect(run.run(["--smp", "1.5", "--image", join(dir, "none.img")])).rejects.toThrow(/--smp must be a whole number/);
    await expect(run.run(["--timeout", "soon", "--image", join(dir, "none.img")])).rejects.toThrow(/--timeout must be a positive number/);
    await expect(run.run(["--accel", "hvf", "--image", join(dir, "none.img")])).rejects.toThrow(/pass auto, kvm or tcg/);
    await expect(run.run(["--image", join(dir, "none.img")])).rejects.toThrow(/image not found: .*uvt build/);
    await expect(run.run(["stray"])).rejects.toThrow(/unexpected argument 'stray'/);
  });
});
