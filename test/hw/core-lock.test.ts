// Hardware test of the ring-0 core shared by every processor (docs/specs/smp.md §2.4, monitor-gen/core-db.ts
// coreLock): a storage pair whose clients A and B run on PCPU 1 while the pair members serve them on PCPU 0. Each
// client asks PAIR_EPOCH (core's pair_ctl_epoch) whenever its completion queue is empty; each member asks DMA_ADDR
// (core's GetMemOwner) for every page of every request. Both enter the one AOT-compiled core instance, whose context
// (stack limit, the stack a trap returns to), arguments and result are shared. Without the core lock the two
// processors swapped them: in two of four runs a client faulted at a small rip (vector 14 at 0x40, 0x58, 0x60) with
// its workload unfinished. Oracles: every client's workload completes, no partition faults, and the disk image read
// from the host after each run (`uvt disk check`'s code) is clean. Three boots (about 25 s each under TCG), since the
// race is not certain in one.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { checkDiskImage } from "../../image/disk-workload.ts";
import { loadConfig } from "../../partitions/config.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-core-lock-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Shares chosen so that a member on PCPU 0 and a client on PCPU 1 run in the same quanta most of the time.
const HOST = `revision: 2
name: storage pair, clients on processor 1
host: { pcpus: 2 }
partitions:
  - { name: idle, kind: idle }
  - { name: io, kind: io, duty: 1 }
  - { name: sa, kind: io, duty: 12, behaviour: { pair: primary } }
  - { name: sb, kind: io, duty: 2, behaviour: { pair: secondary } }
  - { name: A, kind: guest, duty: 8, pcpu: 1, behaviour: { disk: { first: 0, blocks: 64, passes: 40 } } }
  - { name: B, kind: guest, duty: 7, pcpu: 1, behaviour: { disk: { first: 64, blocks: 64, passes: 40 } } }
devices:
  - { disk: 0, owner: sa }
  - { disk: 1, owner: sb }
run:
  runQuanta: 9000
`;
const DONE = [/^A: disk: done; /, /^B: disk: done; /];
const RUNS = 3;

describe("one core instance for two processors", () => {
  it(`pair clients on PCPU 1 and pair members on PCPU 0 in core at once: ${RUNS} runs complete, no fault, disk clean`, async () => {
    const path = join(scratch, "host.yaml");
    writeFileSync(path, HOST);
    const img = await buildUltravisorImage({ config: loadConfig(path) });
    const out = await writeEfiImage(join(scratch, "img"), img);
    for (let run = 1; run <= RUNS; run++) {
      const disk = join(scratch, `disk${run}.img`);
      writeFileSync(disk, new Uint8Array(1 << 20));
      const m = await Machine.start({ name: `hw-core-lock-${run}`, image: out.esp, accel: "tcg", smp: 2, disks: [disk, disk], mem: "256M", timeoutMs: 110_000, log: () => undefined });
      let lines: string[];
      try {
        await m.wait();
      } finally {
        lines = m.lines.map((l) => l.text);
        await m.close();
      }
      withSerialLog(lines, () => {
        expect(lines.filter((l) => / fault vector /.test(l) || / state failed /.test(l)), `run ${run}: no partition faulted`).toEqual([]);
        for (const re of DONE) expect(lines.some((l) => re.test(l)), `run ${run}: ${re}`).toBe(true);
        expect(lines.some((l) => l === "ultravisor: schedule (PCPU 1, quanta 0-15): A A A A A A A A B B B B B B B idle"), `run ${run}: A and B on PCPU 1`).toBe(true);
        const check = checkDiskImage(disk, lines.join("\n"));
        expect(check.problems, `run ${run}: disk check`).toEqual([]);
      });
    }
  }, 170_000);
});
