// `uvt run` and its QEMU under signals: a run stopped by SIGTERM or SIGINT stops QEMU and exits 143 or 130, and a run
// killed with SIGKILL (no handler runs) still leaves no QEMU behind — QEMU gets the parent-death signal — and its temp
// folder is swept by the next run. The image runs for ever (runQuanta 0), so only the signal can end it.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { configFrom, figure1Definition } from "../../partitions/config.ts";
import { alive, WORKDIR_PREFIX } from "../../qemu/workdir.ts";

const root = join(import.meta.dirname, "..", "..");
const scratch = mkdtempSync(join(tmpdir(), "uv-hw-signals-"));
/**
 * The runs' own TMPDIR: every run sweeps the stale temp folders of its TMPDIR, so a run of another test file at the
 * same moment would sweep the killed run's folder before this test looks for it.
 */
const runTmp = join(scratch, "tmp");
mkdirSync(runTmp);
const runEnv = { ...process.env, TMPDIR: runTmp };
let image = "";
afterAll(() => {
  // A failing run of this test would leave QEMU behind: that is the bug it looks for, so it cleans up after itself.
  if (image) for (const pid of qemusOf(image)) process.kill(pid, "SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

beforeAll(async () => {
  const def = figure1Definition();
  const img = await buildUltravisorImage({ config: configFrom({ ...def, run: { ...def.run, runQuanta: 0 } }, "endless Figure 1 host") });
  image = (await writeEfiImage(join(scratch, "img"), img)).esp;
}, 120_000);

/** QEMU processes whose command line names `image` (setpriv execs QEMU, so the process is QEMU itself). */
function qemusOf(path: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (cmd[0]?.includes("qemu-system") && cmd.some((a) => a.includes(path))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Starts `uvt run` on the endless image and resolves once the guest's console is streaming. */
async function startRun(): Promise<{ run: ResultPromise; qemu: number }> {
  const run = execa("node", ["cli/uvt.js", "run", "--image", image, "--accel", "tcg", "--timeout", "150"], { cwd: root, reject: false, buffer: true, env: runEnv });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no console line within 90 s")), 90_000);
    run.stdout!.on("data", (b: Buffer) => {
      if (b.toString().includes("ultravisor: ")) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const qemu = qemusOf(image);
  expect(qemu.length, "one QEMU for the run").toBe(1);
  return { run, qemu: qemu[0]! };
}

async function gone(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (!alive(pid)) return true;
  return !alive(pid);
}

describe("uvt run under signals", () => {
  it("SIGTERM stops QEMU and exits 143; SIGINT exits 130", async () => {
    for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
      const { run, qemu } = await startRun();
      run.kill(sig);
      const r = await run;
      expect(r.exitCode, `${sig}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toContain(`uvt run: stopped by ${sig}`);
      expect(await gone(qemu, 5000), `QEMU ${qemu} after ${sig}`).toBe(true);
    }
  }, 170_000);

  it("SIGKILL leaves no QEMU running, and the next run sweeps the killed run's temp folder", async () => {
    const { run, qemu } = await startRun();
    const folders = readdirSync(runTmp).filter((n) => n.startsWith(WORKDIR_PREFIX) && readFileSync(join(runTmp, n, "owner.pid"), "utf8").trim() === String(run.pid));
    expect(folders.length, "the run's temp folder").toBe(1);
    run.kill("SIGKILL");
    await run;
    expect(await gone(qemu, 5000), `QEMU ${qemu} after its parent's SIGKILL`).toBe(true);
    expect(existsSync(join(runTmp, folders[0]!))).toBe(true);
    // The next run (here one given a second before its timeout) sweeps the folders whose owner is gone.
    const next = await execa("node", ["cli/uvt.js", "run", "--image", image, "--accel", "tcg", "--timeout", "1"], { cwd: root, reject: false, env: runEnv });
    expect(next.exitCode).not.toBe(0);
    expect(existsSync(join(runTmp, folders[0]!)), "swept").toBe(false);
  }, 170_000);
});
