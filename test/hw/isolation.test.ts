// Hardware tests of the isolation holes of issue #12 (test/hw, through qemu/'s Machine under OVMF): guests built to
// misbehave (test-only behaviours of partitions/programs.ts, never in the default image) attack the state the monitor
// must keep apart, and the serial log shows each attack contained. One boot serves every check, to stay well under
// the three minutes a hardware test file may take under TCG:
//  - extended state: guest sse-a loads a marker into its x87/SSE/AVX registers, MXCSR and fs, guest sse-b another; each
//    checks, every loop iteration across its quanta, that its own values survive being preempted and that none of
//    the other's ever shows up, and that it started from the defined initial state (docs/specs/partition-state.md);
//  - NX: guests that jump into a `ret` they wrote on their stack or in their .bss take a #PF on the instruction fetch
//    and are stopped alone; every user page of every partition, walked over QMP, is executable only if it is code;
//  - UMIP: a guest that runs sgdt takes a #GP (when the CPU offers UMIP; the boot line says which).
// A second, short boot of a test build that believes a state page has only 256 bytes for extended state: the
// ultravisor must refuse to boot with a line naming the sizes, before any partition exists.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { consoleLinesOf, PTE_ADDRESS, qwords, sseReport, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, type UltravisorImage } from "../../image/ultravisor.ts";
import { configFrom, loadConfig } from "../../partitions/config.ts";
import { XSAVE_SPACE } from "../../monitor-gen/layout.ts";
import { TEXT } from "../../monitor-gen/paging.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-isolation-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The host of examples/ultravisor-isolation.yaml, read through the host definition as `uvt build --config` reads it. */
const config = loadConfig(join(import.meta.dirname, "..", "..", "examples", "ultravisor-isolation.yaml"));

/** One partition's user leaves (PML4 slots 1–511) as read over QMP: virtual address → page-table entry. */
interface Space { name: string; window: bigint; leaves: Map<bigint, bigint> }
let boot: {
  img: UltravisorImage; lines: string[]; exit: unknown; spaces: Space[];
  /** The supervisor map's leaves (virtual address → size, NX) and the image's code range, from its load address. */
  kernelLeaves: Map<bigint, { size: bigint; nx: boolean }>; text: { start: bigint; end: bigint };
};

const ADDR = PTE_ADDRESS;
const NX = 1n << 63n;
const PS = 0x80n;
/** Every present leaf of PML4 slot 0, the supervisor identity map: 2 MiB pages, or 4 KiB pages where it was split. */
async function supervisorLeaves(m: Machine, cr3: bigint): Promise<Map<bigint, { size: bigint; nx: boolean }>> {
  const leaves = new Map<bigint, { size: bigint; nx: boolean }>();
  const pdpt = await qwords(m, (await qwords(m, cr3 & ADDR))[0]! & ADDR);
  for (let g = 0; g < 512; g++) {
    if (!(pdpt[g]! & 1n)) continue;
    const pd = await qwords(m, pdpt[g]! & ADDR);
    for (let k = 0; k < 512; k++) {
      const e = pd[k]!;
      if (!(e & 1n)) continue;
      const va = (BigInt(g) << 30n) | (BigInt(k) << 21n);
      if (e & PS) {
        leaves.set(va, { size: 0x200000n, nx: (e & NX) !== 0n });
        continue;
      }
      const pt = await qwords(m, e & ADDR);
      for (let l = 0; l < 512; l++) if (pt[l]! & 1n) leaves.set(va | (BigInt(l) << 12n), { size: 0x1000n, nx: (pt[l]! & NX) !== 0n });
    }
  }
  return leaves;
}

/** Every present 4 KiB user leaf outside the shared supervisor map (slot 0); the monitor builds no larger user page. */
async function userLeaves(m: Machine, cr3: bigint): Promise<Map<bigint, bigint>> {
  const leaves = new Map<bigint, bigint>();
  const pml4 = await qwords(m, cr3 & ADDR);
  for (let i = 1; i < 512; i++) {
    if (!(pml4[i]! & 1n)) continue;
    const pdpt = await qwords(m, pml4[i]! & ADDR);
    for (let j = 0; j < 512; j++) {
      if (!(pdpt[j]! & 1n)) continue;
      const pd = await qwords(m, pdpt[j]! & ADDR);
      for (let k = 0; k < 512; k++) {
        if (!(pd[k]! & 1n)) continue;
        const pt = await qwords(m, pd[k]! & ADDR);
        for (let l = 0; l < 512; l++) if (pt[l]! & 1n) leaves.set((BigInt(i) << 39n) | (BigInt(j) << 30n) | (BigInt(k) << 21n) | (BigInt(l) << 12n), pt[l]!);
      }
    }
  }
  return leaves;
}
const STARTED = /^ultravisor: partition (\S+) started at quantum \d+: cr3 (0x[0-9a-f]+) window (0x[0-9a-f]+) /;

beforeAll(async () => {
  const img = await buildUltravisorImage({ config });
  const out = await writeEfiImage(join(scratch, "isolation"), img);
  const m = await Machine.start({ name: "hw-isolation", image: out.esp, mem: "256M", timeoutMs: 120_000, log: () => undefined });
  try {
    // Paused while the page tables are read, so the run cannot end (and QEMU exit) under the reads.
    await m.waitFor(/^ultravisor: scheduler running/, 90_000);
    await m.qmp!.execute("stop");
    const spaces: Space[] = [];
    let kernelLeaves = new Map<bigint, { size: bigint; nx: boolean }>();
    let text = { start: 0n, end: 0n };
    for (const l of m.lines) {
      const p = STARTED.exec(l.text);
      if (!p) continue;
      spaces.push({ name: p[1]!, window: BigInt(p[3]!), leaves: await userLeaves(m, BigInt(p[2]!)) });
      // The shared supervisor map (PML4 slot 0): every present leaf, 2 MiB or 4 KiB, and its NX bit.
      kernelLeaves = await supervisorLeaves(m, BigInt(p[2]!));
    }
    const loaded = /^ultravisor: image loaded at (0x[0-9a-f]+)/.exec(m.lines.find((l) => l.text.startsWith("ultravisor: image loaded at "))?.text ?? "");
    if (!loaded) throw new Error("no image-loaded line");
    const rvaOf = (n: string): bigint => BigInt(img.symbols.find((x) => x.name === n)!.rva);
    text = { start: BigInt(loaded[1]!) + rvaOf(TEXT.start), end: BigInt(loaded[1]!) + rvaOf(TEXT.end) };
    await m.qmp!.execute("cont");
    const exit = await m.wait();
    boot = { img, lines: m.lines.map((l) => l.text), exit, spaces, kernelLeaves, text };
  } finally {
    await m.close();
  }
}, 150_000);

const linesOf = (name: string): string[] => consoleLinesOf(boot.lines, name);
const withLog = (check: () => void): void => withSerialLog(boot.lines, check);

describe("isolation holes of issue #12 on the bare-metal ultravisor", () => {
  it("saves and restores each partition's x87/SSE state eagerly: no marker crosses, none is lost, each starts from the initial state", () => {
    withLog(() => {
      const xs = boot.lines.find((l) => l.startsWith("ultravisor: extended state: "));
      expect(xs, "the monitor's extended-state line").toMatch(
        new RegExp(`^ultravisor: extended state: (XSAVE, XCR0 0x[0-9a-f]+ of 0x[0-9a-f]+ offered|FXSAVE \\(no XSAVE\\)), save area \\d+ of ${XSAVE_SPACE} bytes in the state page, saved and restored on every switch$`));
      // The guests read AVX state too whenever the monitor enabled it (XCR0 bit 2), as under TCG's -cpu max.
      const avx = xs!.startsWith("ultravisor: extended state: XSAVE") && (Number(/XCR0 (0x[0-9a-f]+)/.exec(xs!)![1]) & 4) !== 0;
      for (const g of ["sse-a", "sse-b"]) {
        const r = sseReport(boot.lines, g);
        expect(r.reads, `${g} reads`).toBe(avx ? "sse state read with XSAVE: x87, SSE, AVX" : "sse state read with FXSAVE: x87, SSE (AVX not enabled)");
        expect(r.initial, `${g} initial state`).toBe("sse initial state: clean");
        expect(r.ticks, `${g} lines`).toBeGreaterThan(3);
        expect(r.checks, `${g} checks`).toBeGreaterThan(100);
        expect({ lost: r.lost, foreign: r.foreign }, `${g}: ${r.last}`).toEqual({ lost: 0, foreign: 0 });
      }
      expect(boot.exit).toEqual({ kind: "guest", code: config.exitCode });
    });
  });

  const FAULT = /^partition (\S+): fault vector (\d+) at 0x([0-9a-f]+) rip 0x([0-9a-f]+) error 0x([0-9a-f]+)$/;
  function faultOf(name: string): { vector: number; at: bigint; rip: bigint; error: number; index: number } {
    const index = boot.lines.findIndex((l) => FAULT.exec(l)?.[1] === name);
    expect(index, `${name} fault line`).toBeGreaterThan(-1);
    const m = FAULT.exec(boot.lines[index]!)!;
    return { vector: Number(m[2]), at: BigInt(`0x${m[3]}`), rip: BigInt(`0x${m[4]}`), error: Number.parseInt(m[5]!, 16), index };
  }
  const stoppedAlone = (name: string, kind: string): void => {
    expect(linesOf(name)).toContain(`about to fault: ${kind}`);
    expect(linesOf(name)).not.toContain("still running after the fault: containment failed");
    expect(boot.lines.some((l) => new RegExp(`^ultravisor: partition ${name} number \\d+ state failed `).test(l)), `${name} failed`).toBe(true);
  };

  it("maps only code executable (NX): a jump into the own stack or data page faults on the instruction fetch and stops that guest alone", () => {
    withLog(() => {
      expect(boot.lines).toContain("ultravisor: NX on (EFER.NXE): pages other than code are no-execute, user and supervisor");
      const window = 0x0000_0080_0000_0000n;
      let last = -1;
      for (const [name, kind] of [["bad-exec-stack", "exec-stack"], ["bad-exec-data", "exec-data"]] as const) {
        const f = faultOf(name);
        last = Math.max(last, f.index);
        expect(f.vector, `${name} vector`).toBe(14);
        expect(f.at, `${name}: the fault is at the fetched address`).toBe(f.rip);
        // Error code: present (1), user (4), instruction fetch (0x10); not a write (2).
        expect(f.error & 0x17, `${name} error code 0x${f.error.toString(16)}`).toBe(0x15);
        const p = boot.img.partitions.find((x) => x.spec.name === name)!.packed!;
        if (kind === "exec-stack") expect(f.at >= window + 0x30000n && f.at < window + 0x34000n, `${name}: in its stack`).toBe(true);
        else expect(f.at, `${name}: its .bss buffer`).toBe(p.symbols.get("p_exec_data"));
        stoppedAlone(name, kind);
      }
      for (const g of ["sse-a", "sse-b", "Y"]) {
        expect(boot.lines.slice(last + 1).filter((l) => l.startsWith(`${g}: `)).length, `${g} keeps printing`).toBeGreaterThan(2);
      }
      // The supervisor map covers [0, 4 GiB) once, and only the image's code pages are executable in it.
      const { start, end } = boot.text;
      expect(start > 0n && end > start && (start & 0xfffn) === 0n && (end & 0xfffn) === 0n, "the image's code range").toBe(true);
      const covered = [...boot.kernelLeaves.values()].reduce((s, l) => s + l.size, 0n);
      expect(covered, "bytes the supervisor map covers").toBe(4n << 30n);
      const executable = [...boot.kernelLeaves].filter(([, l]) => !l.nx);
      expect(executable.every(([va, l]) => l.size === 0x1000n && va >= start && va < end), "executable supervisor pages are code pages").toBe(true);
      expect(BigInt(executable.length), "every code page is executable").toBe((end - start) / 0x1000n);
      // Every user page of every partition: executable exactly when it is one of the image's code pages.
      expect(boot.spaces.length).toBe(config.partitions.length - 1);
      for (const sp of boot.spaces) {
        const p = boot.img.partitions.find((x) => x.spec.name === sp.name)!.packed!;
        const codeEnd = window + new DataView(p.blob.buffer, p.blob.byteOffset).getBigUint64(48, true);
        expect(codeEnd > window + 0x1000n && (codeEnd & 0xfffn) === 0n, `${sp.name} code end`).toBe(true);
        expect(sp.leaves.size, `${sp.name} leaves`).toBeGreaterThan(52);
        for (const [va, pte] of sp.leaves) {
          const code = va >= window + 0x1000n && va < codeEnd;
          expect((pte & NX) === 0n, `${sp.name} page 0x${va.toString(16)} executable`).toBe(code);
        }
      }
    });
  });

  it("hides the descriptor tables from CPL 3 (UMIP when the CPU offers it): sgdt faults and stops that guest alone", () => {
    withLog(() => {
      const umip = boot.lines.find((l) => l.startsWith("ultravisor: UMIP "));
      expect(umip).toBeDefined();
      if (umip!.startsWith("ultravisor: UMIP on")) {
        const f = faultOf("bad-sgdt");
        expect(f.vector).toBe(13);
        expect(f.error).toBe(0);
        const p = boot.img.partitions.find((x) => x.spec.name === "bad-sgdt")!.packed!;
        expect(f.rip >= p.image.start && f.rip < p.image.end, "rip inside its image").toBe(true);
        expect(linesOf("bad-sgdt").some((l) => l.startsWith("sgdt at CPL 3"))).toBe(false);
        stoppedAlone("bad-sgdt", "sgdt");
      } else {
        // Without UMIP the instruction is not privileged: the guest reads the GDT's address (partition-state.md).
        expect(umip).toBe("ultravisor: UMIP off: the CPU does not offer it, sgdt and sidt reveal the descriptor tables' addresses at CPL 3");
        expect(linesOf("bad-sgdt").some((l) => l.startsWith("sgdt at CPL 3: base "))).toBe(true);
      }
    });
  });

  it("refuses to boot when the CPU's save area (CPUID 0xD) does not fit the state page's space", async () => {
    const small = configFrom({ revision: 2, partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2 }, { name: "Y", duty: 2 }] }, "three-partition host");
    const img = await buildUltravisorImage({ config: small, xstateSpace: 256 });
    const out = await writeEfiImage(join(scratch, "xstate-refusal"), img);
    const m = await Machine.start({ name: "hw-xstate-refusal", image: out.esp, mem: "256M", timeoutMs: 60_000, log: () => undefined });
    let lines: string[] = [];
    try {
      const exit = await m.wait();
      lines = m.lines.map((l) => l.text);
      const refusal = lines.find((l) => l.startsWith("ultravisor: refusing to boot: "));
      expect(refusal).toMatch(/^ultravisor: refusing to boot: the extended-state save area is (\d+) bytes for XCR0 0x[0-9a-f]+; a partition's state page holds 256$/);
      expect(Number(/is (\d+) bytes/.exec(refusal!)![1])).toBeGreaterThan(256);
      expect(lines.some((l) => l.startsWith("ultravisor: scheduler running") || l.startsWith("ultravisor: partition ")), "nothing started").toBe(false);
      expect(exit).toEqual({ kind: "guest", code: 126 });
    } catch (e) {
      console.error(lines.join("\n"));
      throw e;
    } finally {
      await m.close();
    }
  }, 90_000);
});
