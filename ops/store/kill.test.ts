// A real crash of a real process: a child commits to the store on disk and is killed with SIGKILL mid-sequence
// (kill-child.ts); reopening the folder must give the state of the last sequence number the child printed (printed
// only after its commit returned) or of the one after it (in flight when killed), equal to the model's state for
// that number (sequence.ts), never anything half-written. A SIGKILL keeps the page cache, so this test alone would
// not catch a missing fsync: store.test.ts's power-cut layer does.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { NodeFs } from "./fs.ts";
import { FileStore } from "./store.ts";
import { batches, model } from "./sequence.ts";

const root = join(import.meta.dirname, "..", "..");

describe("FileStore survives SIGKILL", () => {
  for (const after of [40, 260]) {
    it(`child killed after ${after} printed commits: the reopened store holds the last committed state`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "uv-ops-kill-"));
      try {
        const child = spawn(process.execPath, ["--import", "tsx", "ops/store/kill-child.ts", dir, "100000"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        const last = await new Promise<number>((resolve, reject) => {
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            const lines = out.split("\n").filter(Boolean);
            if (lines.length >= after && !child.killed) {
              child.kill("SIGKILL");
            }
          });
          child.on("exit", (code, signal) => {
            if (signal !== "SIGKILL") reject(new Error(`child exited ${code} before the kill: ${err}`));
            const lines = out.split("\n").filter((l) => /^\d+$/.test(l));
            resolve(Number(lines.at(-1)));
          });
        });
        expect(last).toBeGreaterThanOrEqual(after);
        const state = await new FileStore(new NodeFs(dir)).load();
        expect([last, last + 1]).toContain(state.seq);
        const defs = new Map<string, unknown>();
        for (const [d, m] of state.domains) for (const [g, v] of m) defs.set(`${d}/${g}`, v);
        const want = model(batches(state.seq), state.seq);
        expect({ seq: state.seq, estate: state.estate, defs }).toEqual(want);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  }
});
