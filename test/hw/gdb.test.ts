// Debian's gdb against `uvt run --gdb` (issue 22, Debugging): gdb attaches to QEMU halted at the reset vector, lets it
// run (detach resumes QEMU's stub), uvt run prints the add-symbol-file line once the loader reports where the firmware
// loaded the image, and a second gdb loads BOOTX64.elf with that offset, breaks on the monitor's timer routine
// (on_timer), continues and must stop there. The image runs for ever (runQuanta 0), so on_timer keeps firing however
// late gdb attaches. Then the one-step workflow of docs/specs/efi-abi.md: a second boot of the same image, symbols
// loaded at reset with the first boot's offset (OVMF's load address is deterministic), a hardware breakpoint on the
// loader's entry efi_main (a software one, written before the firmware copies the image in, would be overwritten by
// the copy). A missing gdb fails the test: scripts/setup installs it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeEfiImage, type WrittenImage } from "../../image/efi-image.ts";
import { imageBaseOf, parseSymbolMap } from "../../image/symbol-map.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { configFrom, figure1Definition } from "../../partitions/config.ts";

const root = join(import.meta.dirname, "..", "..");
const scratch = mkdtempSync(join(tmpdir(), "uv-hw-gdb-"));
let out: WrittenImage;
let run: ResultPromise | undefined;
/** What the first boot learnt: the load address and the add-symbol-file line uvt run printed. */
let learnt: { loadedAt: string; addSymbolFile: string } | undefined;
afterAll(async () => {
  if (run && run.exitCode === undefined) {
    run.kill("SIGTERM");
    await run.catch(() => undefined);
  }
  rmSync(scratch, { recursive: true, force: true });
});

beforeAll(async () => {
  const def = figure1Definition();
  const img = await buildUltravisorImage({ config: configFrom({ ...def, run: { ...def.run, runQuanta: 0 } }, "endless Figure 1 host") });
  out = await writeEfiImage(join(scratch, "img"), img);
}, 120_000);

function gdbVersion(): string {
  try {
    return execFileSync("gdb", ["--version"], { encoding: "utf8" }).split("\n")[0]!;
  } catch {
    throw new Error("gdb is missing: this test drives Debian's gdb; ./scripts/setup installs it (apt-get install -y gdb)");
  }
}

/** A TCP port nobody listens on now (the kernel's choice; freed again for QEMU to take). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Resolves with the first match of `re` in the run's stderr (accumulated), or rejects after `ms`. */
function stderrMatch(p: ResultPromise, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  let text = "";
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${re} on uvt run's stderr within ${ms / 1000} s; it said:\n${text}`)), ms);
    const check = (b: Buffer): void => {
      text += b.toString();
      const m = re.exec(text);
      if (m) {
        clearTimeout(t);
        p.stderr!.off("data", check);
        resolve(m);
      }
    };
    p.stderr!.on("data", check);
  });
}

/** gdb in batch mode on the given commands (no init files); its whole output. */
async function gdb(commands: string[]): Promise<string> {
  const r = await execa("gdb", ["-batch", "-nx", ...commands.flatMap((c) => ["-ex", c])], { cwd: root, reject: false, all: true, timeout: 90_000 });
  return r.all ?? "";
}

describe("uvt run --gdb with Debian's gdb", () => {
  it("attaches at reset, loads BOOTX64.elf at the reported offset, breaks on on_timer and stops there", async () => {
    expect(gdbVersion()).toMatch(/GNU gdb/);
    const port = await freePort();
    run = execa("node", ["cli/uvt.js", "run", "--image", out.esp, "--accel", "tcg", `--gdb=${port}`, "--timeout", "150"], { cwd: root, reject: false });
    const attach = stderrMatch(run, /attach with:\n {2}(gdb .*)\n/, 60_000);
    const symbolLine = stderrMatch(run, /image loaded at (0x[0-9a-f]+); in gdb \(Ctrl-C first if it is running\): (add-symbol-file (\S+) -o (\S+))\n/, 120_000);
    const printed = (await attach)[1]!;
    expect(printed).toBe(`gdb -nx -ex 'set architecture i386:x86-64' -ex 'target remote 127.0.0.1:${port}'`);
    // The printed command's own -ex arguments, then: where is the CPU (the reset vector, F000:FFF0), and let it run.
    const exs = [...printed.matchAll(/-ex '([^']*)'/g)].map((m) => m[1]!);
    const first = await gdb([...exs, "p/x $pc", "detach"]);
    expect(first, first).toMatch(/\$1 = 0xfff0\b/);
    expect(first).toMatch(/Inferior 1 \(process 1\) detached/);

    const [, loadedAt, addSymbolFile, elfPath, offset] = await symbolLine;
    expect(elfPath).toBe(out.elf);
    const mapText = readFileSync(out.map, "utf8");
    const base = imageBaseOf(mapText)!;
    const expectedOffset = BigInt(loadedAt!) - base;
    expect(offset).toBe(expectedOffset < 0n ? `-0x${(-expectedOffset).toString(16)}` : `0x${expectedOffset.toString(16)}`);
    const onTimer = parseSymbolMap(mapText).find((s) => s.name === "on_timer");
    expect(onTimer, "on_timer in BOOTX64.map").toBeDefined();
    const at = onTimer!.address + expectedOffset;

    learnt = { loadedAt: loadedAt!, addSymbolFile: addSymbolFile! };
    const second = await gdb([...exs, addSymbolFile!, "break on_timer", "continue", "p/x $pc", "info symbol $pc", "detach"]);
    expect(second, second).toMatch(new RegExp(`Breakpoint 1 at 0x${at.toString(16)}\\b`));
    expect(second, second).toMatch(new RegExp(`Breakpoint 1, 0x0*${at.toString(16)} in on_timer \\(\\)`));
    expect(second).toMatch(new RegExp(`\\$1 = 0x${at.toString(16)}\\b`));
    expect(second).toMatch(/^on_timer in section \.text$/m);

    run.kill("SIGTERM");
    const r = await run;
    expect(r.exitCode, String(r.stderr)).toBe(143);
  }, 170_000);

  it("with the offset of an earlier boot, hbreak efi_main before the firmware loads the image stops at the loader's entry", async () => {
    expect(learnt, "the first test's load address").toBeDefined();
    const port = await freePort();
    run = execa("node", ["cli/uvt.js", "run", "--image", out.esp, "--accel", "tcg", `--gdb=${port}`, "--timeout", "150"], { cwd: root, reject: false });
    const attach = (await stderrMatch(run, /attach with:\n {2}(gdb .*)\n/, 60_000))[1]!;
    const exs = [...attach.matchAll(/-ex '([^']*)'/g)].map((m) => m[1]!);
    const symbolLine = stderrMatch(run, /image loaded at (0x[0-9a-f]+);/, 120_000);
    const efiMain = parseSymbolMap(readFileSync(out.map, "utf8")).find((s) => s.name === "efi_main")!.address;
    const at = efiMain + BigInt(learnt!.loadedAt) - imageBaseOf(readFileSync(out.map, "utf8"))!;
    const g = await gdb([...exs, learnt!.addSymbolFile, "hbreak efi_main", "continue", "p/x $pc", "info symbol $pc", "detach"]);
    expect(g, g).toMatch(new RegExp(`Hardware assisted breakpoint 1 at 0x${at.toString(16)}\\b`));
    expect(g, g).toMatch(new RegExp(`Breakpoint 1, 0x0*${at.toString(16)} in efi_main \\(\\)`));
    expect(g).toMatch(/^efi_main in section \.text$/m);
    // Resumed by detach, the loader reports the same address as the first boot: the offset learnt there was right.
    expect((await symbolLine)[1], "OVMF's load address, same image and memory as the first boot").toBe(learnt!.loadedAt);
    run.kill("SIGTERM");
    const r = await run;
    expect(r.exitCode, String(r.stderr)).toBe(143);
  }, 170_000);
});
