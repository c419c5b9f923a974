// Hardware tests of the bare-metal ultravisor (loader-efi/ultravisor.ts, monitor-gen/, partitions/) under OVMF in
// QEMU through qemu/'s Machine. A few boots, several checks from each boot's serial log:
//  1. the Figure 1 host on two processors (X and Y on PCPU 1, docs/specs/smp.md §2): the loader's stages up to
//     "ultravisor: entered", every partition's console lines tagged by
//     the I/O partition, each guest's checksum equal to FNV-1a of its linked code and read-only data computed here
//     (guests X, Y, Z are AssemblyScript compiled by toolchain/aot, reading their window as linear memory), the command channel
//     end to end, the refused command hypercall with its audit line, and quanta shares equal to the schedule table;
//     and the resource database that the AOT-compiled core built at boot, read over QMP, equal byte for byte to
//     the simulator's after the same db_bootstrap call, with core's private 4 MiB page where the loader carved it and
//     nothing of the ultravisor's in firmware memory; the simulator's inputs are derived (RAM from -m on q35, the
//     loader's placement from the firmware map, allotments from the host definition) and the machine's printed
//     values compared with them, never copied (docs/testing.md);
//     and each partition's page tables, walked over QMP, map only its window and its channels' pages;
//  2. containment: guests that write outside their window, or execute cli, hlt, out or mov cr3, are each stopped
//     and logged with the right vector while the others keep printing — once with the database switched off (every
//     partition started at boot, unchecked) and once on the normal path, the guests created and started from the
//     database by the ultravisor partition.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { consoleLinesOf, PTE_ADDRESS, qwords } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage, CORE_DB_PLAN, type UltravisorImage, type UltravisorImageOptions } from "../../image/ultravisor.ts";
import { Database, privateArea } from "../../core/database.ts";
import { Host } from "../../sim/host.ts";
import { parseFirmwareMap, BOOT_DB_LINES } from "../../loader-efi/uv-boot-db.ts";
import { firmwareRegions, nonRamOverlaps, USABLE_UEFI_TYPES, type UefiDescriptor } from "../../core/boot-module.ts";
import { LOADER_LINES } from "../../loader-efi/ultravisor.ts";
import { allotmentPages, scheduleRuns } from "../../image/ultravisor.ts";
import { SVM_RESERVE } from "../../monitor-gen/svm/layout.ts";
import { configFrom, figure1Config, figure1Definition, type UltravisorConfig } from "../../partitions/config.ts";
import { fnv1a } from "../../partitions/pack.ts";
import { definitionBytes, definitionOf, type Definition, OUTSIDE_ADDRESS, UNMAPPED_WINDOW_ADDRESS, type FaultKind } from "../../partitions/programs.ts";
import { COMMAND_VIEW, DB_PAGES, DBWIN, PRIVATE_PAGE_BYTES, WINDOW_LAYOUT, WINDOW } from "../../monitor-gen/layout.ts";
import { span } from "../../core/mapview.ts";
import { ALLOTMENT_SCALE, MAP_SCALES, OWNER_PROBE } from "../../partitions/uv-core.ts";
import { readSchedule } from "../../core/schedule.ts";

/** QEMU's -m for every boot here: the RAM layout the comparison derives starts from it, not from the machine's report. */
const MEM = "256M";
/** The Figure 1 boot runs on two processors (its host has two rows): the database comparison holds with several. */
const SMP = 2;

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-ultravisor-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Boot {
  img: UltravisorImage;
  lines: string[];
  exit: unknown;
  /** Physical memory read over QMP once all partitions run: address → bytes. */
  reads: Map<number, Uint8Array>;
  /** Why the reads were not made: the line they wait for never came (QEMU's message). */
  missed?: string;
}

/** One partition's address space as read back over QMP: PML4 entries and every present user leaf (va → pte). */
interface AddressSpace {
  name: string;
  cr3: bigint;
  window: bigint;
  pml4: bigint[];
  leaves: Map<bigint, bigint>;
  /** Present entries above the leaves whose size bit (PS) is set: none may exist in a user hierarchy. */
  largePages: number;
  /** Physical pages of the walked hierarchy: the PML4 and every PDPT, PD and PT under slots 1–511. */
  tables: bigint[];
}

const ADDR = PTE_ADDRESS;

/** Walks PML4 slots 1–511 (everything but the shared supervisor identity map in slot 0). */
async function walk(m: Machine, name: string, cr3: bigint, window: bigint): Promise<AddressSpace> {
  const pml4 = await qwords(m, cr3 & ADDR);
  const tables = [cr3 & ADDR];
  const leaves = new Map<bigint, bigint>();
  let largePages = 0;
  for (let i = 1; i < 512; i++) {
    if (!(pml4[i]! & 1n)) continue;
    const pdpt = await qwords(m, pml4[i]! & ADDR);
    tables.push(pml4[i]! & ADDR);
    for (let j = 0; j < 512; j++) {
      if (!(pdpt[j]! & 1n)) continue;
      if (pdpt[j]! & 0x80n) { largePages++; continue; }
      const pd = await qwords(m, pdpt[j]! & ADDR);
      tables.push(pdpt[j]! & ADDR);
      for (let k = 0; k < 512; k++) {
        if (!(pd[k]! & 1n)) continue;
        if (pd[k]! & 0x80n) { largePages++; continue; }
        const pt = await qwords(m, pd[k]! & ADDR);
        tables.push(pd[k]! & ADDR);
        for (let l = 0; l < 512; l++) {
          if (pt[l]! & 1n) leaves.set((BigInt(i) << 39n) | (BigInt(j) << 30n) | (BigInt(k) << 21n) | (BigInt(l) << 12n), pt[l]!);
        }
      }
    }
  }
  return { name, cr3, window, pml4, leaves, largePages, tables };
}

/** Physical ranges to read over QMP, or a function of the serial lines so far (ranges the boot chose and printed). */
type Reads = Array<[number, number]> | ((lines: string[]) => Array<[number, number]>);

async function boot(name: string, config: UltravisorConfig, reads: Reads = [], spaces?: AddressSpace[], build: Omit<UltravisorImageOptions, "config"> = {}, readAfter = /^ultravisor: scheduler running/, smp = 1): Promise<Boot> {
  const img = await buildUltravisorImage({ config, ...build });
  const out = await writeEfiImage(join(scratch, name), img);
  const m = await Machine.start({ name: `hw-${name}`, image: out.esp, mem: MEM, smp, timeoutMs: 100_000, log: () => undefined });
  try {
    const got = new Map<number, Uint8Array>();
    const want = typeof reads === "function" || reads.length > 0;
    // A boot that never reaches the point of reading is reported by the first test (missed), not thrown: the tests
    // that check its lines then still run and name what went wrong (e.g. the host size the loader found).
    let missed: string | undefined;
    if (want || spaces) {
      try {
        await m.waitFor(readAfter, 90_000);
      } catch (e) {
        missed = e instanceof Error ? e.message : String(e);
      }
    }
    if (!missed && (want || spaces)) {
      // Paused while reading, so the run cannot end (and QEMU exit) under the reads.
      await m.qmp!.execute("stop");
      const read = typeof reads === "function" ? reads(m.lines.map((l) => l.text)) : reads;
      for (const [lo, hi] of read) got.set(lo, await m.readPhysical(lo, hi - lo));
      for (const l of spaces ? m.lines : []) {
        const p = STARTED.exec(l.text);
        if (p) spaces!.push(await walk(m, p[1]!, BigInt(p[3]!), BigInt(p[4]!)));
      }
      await m.qmp!.execute("cont");
    }
    const exit = await m.wait();
    return { img, lines: m.lines.map((l) => l.text), exit, reads: got, ...(missed ? { missed } : {}) };
  } finally {
    await m.close();
  }
}

/** Lines the I/O partition wrote for partition `name` (it tags each with the client's name). */
const linesOf = (b: Boot, name: string): string[] => consoleLinesOf(b.lines, name);
const TICK = /^tick (\d+) quantum (\d+) work (\d+) checksum 0x([0-9a-f]{8})$/;
const SUMMARY = /^ultravisor: partition (\S+) number (\d+) state (ready|waiting|failed) quanta (\d+) tsc (\d+) hypercalls (\d+)$/;
/** The monitor's line when it has built a partition's address space from the database view (monitor-gen/lead.ts). */
const STARTED = /^ultravisor: partition (\S+) started at quantum (\d+): cr3 (0x[0-9a-f]+) window (0x[0-9a-f]+) allotment (\d+) pages owned by (0x[0-9a-f]+)$/;

interface Started {
  quantum: number;
  window: bigint;
  pages: number;
  /** The partition's number in the database (−1 printed as 0xffff… without a database). */
  owner: number;
}
function startedPartitions(lines: readonly string[]): Map<string, Started> {
  const out = new Map<string, Started>();
  for (const l of lines) {
    const m = STARTED.exec(l);
    if (m) out.set(m[1]!, { quantum: Number(m[2]), window: BigInt(m[4]!), pages: Number(m[5]), owner: Number(BigInt(m[6]!) & 0xffffffffn) });
  }
  return out;
}

function summary(b: Boot): Map<string, { state: string; quanta: number; tsc: number }> {
  const m = new Map<string, { state: string; quanta: number; tsc: number }>();
  for (const l of b.lines) {
    const s = SUMMARY.exec(l);
    if (s) m.set(s[1]!, { state: s[3]!, quanta: Number(s[4]), tsc: Number(s[5]) });
  }
  return m;
}

function expectedChecksum(img: UltravisorImage, name: string): number {
  const p = img.partitions.find((x) => x.spec.name === name)!.packed!;
  const start = Number(p.symbols.get("p_image_start")! - WINDOW);
  const end = Number(p.symbols.get("p_ro_end")! - WINDOW);
  return fnv1a(p.blob.subarray(start, end));
}

/** Core's private 4 MiB page as the loader printed it (carved from the top of the ultravisor region). */
function privatePage(lines: readonly string[]): { base: number; m: number } {
  const p = lines.map((l) => LOADER_LINES.privatePage.exec(l)).find(Boolean);
  if (!p) throw new Error("no core private page line from the loader");
  const base = Number(p[1]!);
  if (Number(p[2]!) !== base + PRIVATE_PAGE_BYTES - 1 || Number(p[3]!) * PRIVATE_PAGE_BYTES !== base) throw new Error(`inconsistent private page line: ${p[0]}`);
  return { base, m: Number(p[3]!) };
}

/**
 * What the boot writes and the comparison covers: the database's 4 MiB page [0,1,*] (CORE_DB_PLAN.dbPage) and core's
 * map directory and audit log in its private page. The private page's first 64 KiB (scratch, request buffer) are
 * read too and compared on their own, with the one range that differs by design named there.
 */
function dbRanges(lines: string[]): Array<[number, number]> {
  const pa = privateArea(privatePage(lines).m);
  return [[CORE_DB_PLAN.dbPage.lo, CORE_DB_PLAN.dbPage.hi], [pa.directory, pa.end]];
}

/** Does the union of the printed map's RAM descriptors (the types the boot makes Available) cover [lo, hi)? */
function inRam(firmware: UefiDescriptor[], lo: bigint, hi: bigint): boolean {
  const ram = firmware.filter((d) => (USABLE_UEFI_TYPES as readonly number[]).includes(d.type)).map((d) => [d.base, d.base + d.pages * 4096n] as const)
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  let at = lo;
  for (const [a, b] of ram) if (a <= at && b > at) at = b;
  return at >= hi;
}

/**
 * RAM below 4 GiB on QEMU's q35 for `-m` (hw/i386/pc_q35.c): all of it when it is below 0xb0000000, else 2 GiB (the
 * rest goes above 4 GiB). The host size the database is bootstrapped for, derived here, never read from the machine.
 */
function q35LowRam(mem: string): bigint {
  const m = /^(\d+)([MG])$/.exec(mem);
  if (!m) throw new Error(`unsupported -m ${mem}`);
  const bytes = BigInt(m[1]!) << (m[2] === "G" ? 30n : 20n);
  return bytes >= 0xb000_0000n ? 0x8000_0000n : bytes;
}

/**
 * q35's fixed non-RAM ranges below 4 GiB that OVMF may describe in its map (hw/i386/pc_q35.c, OVMF's PlatformPei):
 * the PCIe ECAM window (MMCONFIG, 256 MiB at 0xb0000000) and the firmware flash (below 4 GiB, at most 16 MiB).
 */
const Q35_FIXED: Array<[bigint, bigint]> = [[0xb000_0000n, 0xc000_0000n], [0xff00_0000n, 0x1_0000_0000n]];
/** The legacy VGA and BIOS hole [640 KiB, 1 MiB) that q35 leaves out of RAM as every PC does. */
const LEGACY_HOLE: [bigint, bigint] = [0xa0000n, 0x100000n];

/**
 * What must hold of OVMF's map (the one thing only the machine knows: QMP has no UEFI memory map) for a q35 machine
 * with RAM [0, ramTop) below 4 GiB: descriptors do not overlap; below ramTop they cover RAM exactly once, except the
 * legacy hole; above it only q35's fixed ranges appear. Returns the problems found (none: []).
 */
function firmwareMapProblems(map: UefiDescriptor[], ramTop: bigint): string[] {
  const out: string[] = [];
  const hex = (v: bigint): string => `0x${v.toString(16)}`;
  const ranges = map.map((d) => ({ lo: d.base, hi: d.base + d.pages * 4096n, type: d.type })).sort((x, y) => (x.lo < y.lo ? -1 : x.lo > y.lo ? 1 : 0));
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]!.lo < ranges[i - 1]!.hi) out.push(`descriptors overlap at ${hex(ranges[i]!.lo)}`);
  }
  // Walk RAM: every byte of [0, ramTop) outside the legacy hole is in exactly one descriptor (no overlaps above).
  let at = 0n;
  for (const r of ranges.filter((x) => x.lo < ramTop)) {
    if (r.hi > ramTop) out.push(`descriptor ${hex(r.lo)}-${hex(r.hi)} runs past the RAM top ${hex(ramTop)}`);
    if (r.lo > at && !(at === LEGACY_HOLE[0] && r.lo === LEGACY_HOLE[1])) out.push(`RAM ${hex(at)}-${hex(r.lo)} in no descriptor`);
    if (r.lo < LEGACY_HOLE[1] && r.hi > LEGACY_HOLE[0]) out.push(`descriptor ${hex(r.lo)}-${hex(r.hi)} in the legacy hole`);
    at = r.hi > at ? r.hi : at;
  }
  if (at < ramTop) out.push(`RAM ${hex(at)}-${hex(ramTop)} in no descriptor`);
  for (const r of ranges.filter((x) => x.lo >= ramTop && x.lo < 1n << 32n)) {
    if (!Q35_FIXED.some(([lo, hi]) => r.lo >= lo && r.hi <= hi)) out.push(`descriptor of type ${r.type} at ${hex(r.lo)}-${hex(r.hi)} above RAM and not where q35 puts MMIO`);
    if ((USABLE_UEFI_TYPES as readonly number[]).includes(r.type)) out.push(`usable type ${r.type} above the RAM top at ${hex(r.lo)}`);
  }
  return out;
}

/** Where the boot must put things, derived from the host definition and the firmware map (not from the machine's lines). */
interface Placement {
  hostBytes: bigint;
  /** The ultravisor region the monitor's bump allocator uses, [base, end), and core's private page right above it. */
  region: { base: bigint; end: bigint };
  privateM: number;
  /** Each partition's allotment (window and client channel pages) in configuration order from `allotLo`. */
  windows: Map<string, { window: bigint; pages: number }>;
  allot: { lo: bigint; hi: bigint };
}

/**
 * The loader's placement, recomputed from the map it printed (taken after its allocations, so its ranges show as
 * loader data, type 2): the region is the largest loader-data range in usable RAM above 1 MiB — the loader keeps the
 * largest range it allocated, and no firmware loader-data range there is larger under OVMF — and core's private page
 * is the highest 4 MiB-aligned page inside it, cut off its top (loader-efi/ultravisor.ts). The allotments follow in
 * configuration order, each allotmentPages long (image/ultravisor.ts; a virtualized partition's SVM pages after it,
 * SVM_RESERVE), from `allotLo`: where the monitor's bump
 * allocator stood after its own tables, the one value taken from the machine (checked to lie in the region).
 */
function derivePlacement(map: UefiDescriptor[], ramTop: bigint, config: UltravisorConfig, channels: UltravisorImage["channels"], allotLo: bigint): Placement {
  const loaderData = map.filter((d) => d.type === 2 && d.base >= 0x100000n && d.base + d.pages * 4096n <= ramTop);
  const largest = loaderData.reduce((a, d) => (d.pages > a.pages ? d : a));
  const top = (largest.base + largest.pages * 4096n) & ~BigInt(PRIVATE_PAGE_BYTES - 1);
  const priv = top - BigInt(PRIVATE_PAGE_BYTES);
  const windows = new Map<string, { window: bigint; pages: number }>();
  let at = allotLo;
  let svmSetUp = false;
  config.partitions.forEach((p, i) => {
    if (p.kind === "idle") return;
    const pages = allotmentPages(i, channels);
    windows.set(p.name, { window: at, pages });
    at += BigInt(pages) * 4096n;
    // A virtualized partition's VM page and VMCB follow its allotment; the first also brings the SVM set-up pages.
    if (p.vm) {
      at += BigInt((svmSetUp ? 0 : SVM_RESERVE.setupPages) + SVM_RESERVE.partitionPages) * 4096n;
      svmSetUp = true;
    }
  });
  return { hostBytes: ramTop, region: { base: largest.base, end: priv }, privateM: Number(priv / BigInt(PRIVATE_PAGE_BYTES)), windows, allot: { lo: allotLo, hi: at } };
}

/**
 * The simulator's side of the same boot: sim/host.ts's Host.create from the firmware map the loader printed (checked
 * by firmwareMapProblems) with the host size of -m and core's private page where derivePlacement puts it (its
 * bootstrap, the boot partition's transactions by the same boot module in V8 — the derived ultravisor region given
 * from Available to the ultravisor partition after the backup point, its allotment part at 4 KiB granularity first);
 * then the boot module's create of each partition the boot partition creates and of each definition the ultravisor
 * partition applies, each with its derived allotment taken from the ultravisor.
 * Nothing here is read from the machine's lines but the firmware map and the allotments' start.
 */
async function simulatedBoot(place: Placement, firmware: UefiDescriptor[], bootCreated: string[], definitions: Definition[]): Promise<{ bytes: Uint8Array; db: Database; host: Host; created: number[]; bootTx: number }> {
  const host = await Host.create({
    memory: place.hostBytes, firmware: firmwareRegions(firmware), keepBackup: false, layout: { private: place.privateM },
    ultravisorRegion: { region: [place.region.base, place.region.end], allotments: [place.allot.lo, place.allot.hi] },
  });
  const ui = host.db.indexPage();
  // Committed so far: those before the backup point plus the region's (still in the log).
  const bootTx = host.db.logHeader().nextSeq - 1;
  // The boot module's own create (what the lead monitor and the ultravisor partition run), each allotment taken from
  // the ultravisor.
  const create = (d: Definition): number => {
    const s = place.windows.get(d.name);
    if (!s) throw new Error(`partition ${d.name} has no allotment in the derived placement`);
    return host.createFromPages({ name: d.name, principal: d.principal, kind: d.kind }, Number(s.window / 4096n), s.pages, ui.ultra);
  };
  for (const name of bootCreated) create(definitionOf(fig1Spec(name), 0));
  const created = definitions.map(create);
  return { bytes: new Uint8Array(host.memory.buffer), db: host.db, host, created, bootTx };
}

function fig1Spec(name: string): { name: string; kind: string } {
  const p = figure1Config().partitions.find((x) => x.name === name);
  if (!p) throw new Error(`no partition ${name} in the Figure 1 configuration`);
  return p;
}

/** The partitions' allotments as the lead monitor reserved them (its line): [lo, hi). */
function allotments(lines: readonly string[]): { lo: bigint; hi: bigint } {
  const m = lines.map((l) => /^ultravisor: partition allotments (0x[0-9a-f]+)-(0x[0-9a-f]+) reserved /.exec(l)).find(Boolean);
  if (!m) throw new Error("no allotment line from the lead monitor");
  return { lo: BigInt(m[1]!), hi: BigInt(m[2]!) };
}

/** The ultravisor region from the loader's allocation line: [base, end). */
function ultravisorRegion(lines: readonly string[]): { base: bigint; end: bigint } {
  const m = lines.map((l) => LOADER_LINES.allocated.exec(l)).find(Boolean);
  if (!m) throw new Error("no allocation line from the loader");
  const base = BigInt(m[3]!);
  return { base, end: base + BigInt(m[4]!) * 4096n };
}

/** First differing byte of `hw` (read at `base`) against the simulator's memory, as "address: hw vs sim". */
function firstDifference(base: number, hw: Uint8Array, sim: Uint8Array): string | null {
  for (let i = 0; i < hw.length; i++) {
    if (hw[i] !== sim[base + i]) return `0x${(base + i).toString(16)}: hardware 0x${hw[i]!.toString(16)} vs simulator 0x${sim[base + i]!.toString(16)}`;
  }
  return null;
}

const FAULTS: FaultKind[] = ["write-outside", "write-unmapped", "cli", "hlt", "out", "cr3"];
/** A host with a command and an ultravisor partition whose guests include one per fault kind (bad-KIND) and X, Y. */
function containmentConfig(): UltravisorConfig {
  return configFrom({
    revision: 2,
    run: { runQuanta: 480 },
    partitions: [
      { name: "idle", kind: "idle" },
      { name: "io", kind: "io", duty: 2 },
      { name: "uv-partition", kind: "ultravisor", duty: 1 },
      { name: "command", kind: "command", duty: 1 },
      { name: "X", kind: "guest", duty: 2 },
      { name: "Y", kind: "guest", duty: 2 },
      ...FAULTS.map((f) => ({ name: `bad-${f}`.slice(0, 15), kind: "guest" as const, duty: 1, behaviour: { fault: f, faultAfter: 2 } })),
      { name: "bad-wasm", kind: "guest", duty: 1, behaviour: { lang: "as", fault: "wasm-oob" } },
    ],
  }, "containment host");
}

/**
 * Each faulting guest of `faults` (named bad-KIND) stopped with its vector at an address inside its own image, the
 * AssemblyScript guest's out-of-bounds read trapped in the generated bounds check, and the others (X, Y, io) still
 * printing after the last fault and ready at the end: containment, whichever way the guests were started.
 */
function expectContained(c: Boot, faults: FaultKind[]): void {
  const s = summary(c);
  // Stopped alone: the faulting guests and nobody else have a fault line or end failed.
  const bad = [...faults.map((f) => `bad-${f}`.slice(0, 15)), "bad-wasm"];
  const faulted = c.lines.map((l) => /^partition (\S+): fault vector /.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  expect([...new Set(faulted)].sort(), "partitions with a fault line").toEqual([...bad].sort());
  expect([...s].filter(([, x]) => x.state === "failed").map(([n]) => n).sort(), "partitions failed").toEqual([...bad].sort());
  let lastFault = -1;
  for (const f of faults) {
    const name = `bad-${f}`.slice(0, 15);
    const p = c.img.partitions.find((x) => x.spec.name === name)!.packed!;
    const idx = c.lines.findIndex((l) => l.startsWith(`partition ${name}: fault vector `));
    expect(idx, `${name} fault line`).toBeGreaterThan(-1);
    lastFault = Math.max(lastFault, idx);
    const m = /^partition \S+: fault vector (\d+) at 0x([0-9a-f]+) rip 0x([0-9a-f]+) error 0x[0-9a-f]+$/.exec(c.lines[idx]!)!;
    expect(m, c.lines[idx]).toBeTruthy();
    const rip = BigInt(`0x${m[3]}`);
    expect(rip >= p.image.start && rip < p.image.end, `${name} rip inside its image`).toBe(true);
    if (f === "write-outside" || f === "write-unmapped") {
      expect(Number(m[1])).toBe(14);
      expect(BigInt(`0x${m[2]}`)).toBe(f === "write-outside" ? BigInt(OUTSIDE_ADDRESS) : UNMAPPED_WINDOW_ADDRESS);
    } else {
      expect(Number(m[1]), `${name} vector`).toBe(13);
    }
    expect(linesOf(c, name)).toContain(`about to fault: ${f}`);
    expect(linesOf(c, name)).not.toContain("still running after the fault: containment failed");
    expect(s.get(name)?.state).toBe("failed");
  }
  // The AssemblyScript guest's out-of-bounds read trapped in the generated bounds check (trap 4), came back out of
  // the entry thunk and ended the partition with #UD (vector 6) — before it printed anything else.
  expect(linesOf(c, "bad-wasm")).toEqual(["wasm trap 4; stopping with #UD"]);
  const wasmFault = c.lines.findIndex((l) => /^partition bad-wasm: fault vector 6 at 0x[0-9a-f]+ rip 0x[0-9a-f]+ error 0x[0-9a-f]+$/.test(l));
  expect(wasmFault, "bad-wasm fault line").toBeGreaterThan(-1);
  lastFault = Math.max(lastFault, wasmFault);
  expect(s.get("bad-wasm")?.state).toBe("failed");
  // The others keep printing after the last fault, and end in state ready.
  for (const g of ["X", "Y"]) {
    const after = c.lines.slice(lastFault + 1).filter((l) => l.startsWith(`${g}: tick `));
    expect(after.length, `${g} lines after the last fault`).toBeGreaterThan(3);
    expect(s.get(g)?.state).toBe("ready");
  }
  expect(s.get("io")?.state).toBe("ready");
}

describe("ultravisor on OVMF (TCG)", () => {
  const fig1 = figure1Config();
  let b: Boot;
  const spaces: AddressSpace[] = [];

  it("boots the Figure 1 host: loader stages, every partition's lines, checksums, command channel, schedule shares", async () => {
    const last = fig1.partitions.filter((p) => p.kind !== "idle").at(-1)!.name;
    // Read when the monitor has started the last guest (its page tables are built, the database is final): the
    // monitor's line, not the ultravisor partition's, which the I/O partition may print first (the monitor's log
    // waits while the I/O partition is in the middle of a line).
    b = await boot("figure1", fig1, (lines) => [...dbRanges(lines), [privatePage(lines).base, privateArea(privatePage(lines).m).directory]], spaces, {}, new RegExp(`^ultravisor: partition ${last} started at quantum `), SMP);
    const text = b.lines.join("\n");
    try {
      expect(b.missed, "the boot reached the last guest's start, where the database is read").toBeUndefined();
      // Loader (stage B): memory allocated, boot services left, own descriptors and paging.
      expect(b.lines).toContain("ultravisor: loader started");
      const alloc = b.lines.map((l) => /^ultravisor: allocated (\d+) pages in (\d+) ranges; region (0x[0-9a-f]+) of (\d+) pages; firmware pool 1024 pages$/.exec(l)).find(Boolean);
      expect(alloc, "allocation line").toBeTruthy();
      // 256 MiB guest: OVMF keeps roughly 50 MiB; we take all but the 4 MiB pool of the rest.
      expect(Number(alloc![1]) * 4096).toBeGreaterThan(120 << 20);
      expect(b.lines.some((l) => /^ultravisor: entered: boot services exited after [1-4] ExitBootServices call\(s\)/.test(l))).toBe(true);
      expect(text).toContain("ultravisor: paging: own 4-level tables");
      expect(b.lines.some((l) => /^ultravisor: 8 partitions and 7 channels planned; ultravisor region used \d+ pages$/.test(l))).toBe(true);
      expect(b.lines.some((l) => /^ultravisor: scheduler running \(\d+ TSC cycles since loader entry\)$/.test(l))).toBe(true);
      // The boot starts the ultravisor, I/O and command partitions before the scheduler runs; the guests start when
      // the ultravisor partition has created them from the command partition's definitions.
      const started = startedPartitions(b.lines);
      const running = b.lines.findIndex((l) => l.startsWith("ultravisor: scheduler running"));
      for (const n of ["uv-partition", "io", "command"]) {
        expect(started.get(n)?.quantum, `${n} started at boot`).toBe(0);
        expect(b.lines.findIndex((l) => l.startsWith(`ultravisor: partition ${n} started`)), `${n} started before the scheduler`).toBeLessThan(running);
      }
      for (const n of ["X", "Y", "Z", "V"]) {
        expect(b.lines.findIndex((l) => l.startsWith(`ultravisor: partition ${n} started`)), `${n} started after the scheduler`).toBeGreaterThan(running);
      }
      // Two processors (docs/specs/smp.md §2): core's table for two, X and Y on PCPU 1 as the host prefers.
      expect(b.img.schedules[SMP - 1]!.rows).toEqual(["io io V V uv-partition Z Z command idle idle idle idle idle idle idle idle", "X X X X Y Y Y idle idle idle idle idle idle idle idle idle"]);
      b.img.schedules[SMP - 1]!.rows.forEach((r, p) => expect(b.lines).toContain(`ultravisor: schedule (PCPU ${p}, quanta 0-15): ${r}`));
      // Every non-idle partition's lines, tagged with its name by the I/O partition.
      expect(linesOf(b, "io")[0]).toMatch(/^serving console channels/);
      const uvLines = linesOf(b, "uv-partition");
      const served = uvLines.indexOf("resource manager at CPL 3, serving the command channel");
      expect(served, "resource manager line").toBeGreaterThan(1);
      // The command partition learns each outcome from the ultravisor partition's completions (numbers checked
      // against the simulator's below).
      expect(linesOf(b, "command").map((l) => l.replace(/0x[0-9a-f]{8}/, "N"))).toEqual(["applying 4 boot-time partition definitions", "command channel submitted, hypercall result 0",
        "definition X: partition N started", "definition Y: partition N started", "definition Z: partition N started", "definition V: partition N started"]);
      // The command channel end to end: every definition, in order, received and applied by the ultravisor partition.
      const defined = ["X", "Y", "Z", "V"];
      expect(uvLines.slice(served + 1, served + 1 + 2 * defined.length).map((l) => l.replace(/: partition 0x[0-9a-f]+ created$/, ""))).toEqual(
        defined.flatMap((n, i) => [`command ${i + 1}: define ${n}`, `command ${i + 1}: ${n} started`]));
      expect(b.lines).toContain("ultravisor: command channel submitted by partition command");
      // A guest may not submit the command channel: refused, audited.
      expect(linesOf(b, "X").slice(0, 2)).toEqual(["command hypercall refused: result -1", "start hypercall refused: result -1"]);
      expect(b.lines).toContain("ultravisor: audit: partition X: start refused (only the ultravisor partition starts partitions)");
      expect(b.lines).toContain("ultravisor: audit: partition X: command channel submission refused");
      for (const g of ["X", "Y", "Z"]) {
        const ticks = linesOf(b, g).map((l) => TICK.exec(l)).filter((m) => m !== null);
        expect(ticks.length, `${g} lines`).toBeGreaterThan(10);
        ticks.forEach((m, i) => expect(Number(m[1]), `${g} counter`).toBe(i + 1));
        for (const m of ticks) expect(parseInt(m[4]!, 16), `${g} checksum`).toBe(expectedChecksum(b.img, g));
      }
      // Shares: dispatches per partition equal the schedule table's entries of its row per cycle × cycles; on the
      // application processor less the quanta it never saw (it counts them: a late processor merges quantum IPIs).
      const table = readSchedule(b.img.schedules[SMP - 1]!.bytes.buffer as ArrayBuffer, 0);
      const s = summary(b);
      const cycles = fig1.runQuanta / 16;
      const lost = Number(b.lines.map((l) => /^ultravisor: smp: application processor 1 \(local APIC id \d+\): \d+ quantum interrupts, (\d+) lost/.exec(l)?.[1]).find((x) => x !== undefined));
      fig1.partitions.forEach((p, i) => {
        if (p.kind === "idle") return;
        const row = table.rows.findIndex((r) => r.entries.some((e) => e.partition === i + 1));
        const perCycle = table.rows[row]!.entries.filter((e) => e.partition === i + 1).length;
        expect(perCycle, `${p.name} in the table`).toBe(p.duty);
        expect(s.get(p.name)?.state, p.name).toBe("ready");
        // Guests never yield, so from the quantum they were started in they are dispatched exactly their entries of
        // the table; yielding partitions at least theirs.
        if (p.kind === "guest") {
          // The run ends at runQuanta once the ultravisor partition's summary is out, else later (at most twice
          // as long): the monitor's summary line says at which quantum it ended, and that is where the count stops.
          const from = startedPartitions(b.lines).get(p.name)!.quantum;
          const end = Number(b.lines.map((l) => /^ultravisor: summary after (\d+) quanta/.exec(l)?.[1]).find((x) => x !== undefined));
          expect(end, "the quantum the run ended at").toBeGreaterThanOrEqual(fig1.runQuanta);
          let due = 0;
          for (let q = from; q < end; q++) if (table.rows[row]!.entries[q % 16]!.partition === i + 1) due++;
          if (row === 0) expect(s.get(p.name)!.quanta, `${p.name} quanta`).toBe(due);
          else {
            expect(s.get(p.name)!.quanta, `${p.name} quanta on PCPU ${row}: at most its entries`).toBeLessThanOrEqual(due);
            expect(s.get(p.name)!.quanta, `${p.name} quanta on PCPU ${row}: its entries less the ${lost} quanta the processor lost`).toBeGreaterThanOrEqual(due - lost - 1);
          }
          expect(due, `${p.name} ran most of the run`).toBeGreaterThan(perCycle * cycles * 0.8);
        }
      });
      // Busy guests' processor time follows their duty (TSC measured by the monitor at each switch): each guest's
      // share of the guests' total within a factor 0.5–1.6 of its share of their quanta (TCG delivers the timer late at times).
      const guests = fig1.partitions.filter((p) => p.kind === "guest");
      const totalTsc = guests.reduce((n, p) => n + s.get(p.name)!.tsc, 0);
      const totalDuty = guests.reduce((n, p) => n + p.duty, 0);
      for (const p of guests) {
        const share = s.get(p.name)!.tsc / totalTsc / (p.duty / totalDuty);
        expect(share, `${p.name} processor share / duty share`).toBeGreaterThan(0.5);
        expect(share, `${p.name} processor share / duty share`).toBeLessThan(1.6);
      }
      expect(b.exit).toEqual({ kind: "guest", code: fig1.exitCode });
    } catch (e) {
      console.error(text);
      throw e;
    }
  }, 150_000);

  it("maps for CPL 3 only each partition's own window pages and the pages of its channels (page tables read over QMP)", () => {
    const parts = fig1.partitions.filter((p) => p.kind !== "idle");
    expect(spaces.map((x) => x.name)).toEqual(parts.map((p) => p.name));
    const owner = new Map<bigint, string>(); // physical page → partition whose window holds it
    const slotPages = new Map<string, bigint[]>();
    // The CPU sets Accessed/Dirty (bits 5–6) as it walks: compare entries without them.
    const AD = 0x60n;
    const kernelSlot = spaces[0]!.pml4[0]! & ~AD;
    const priv = BigInt(privatePage(b.lines).base);
    for (const sp of spaces) {
      // Slot 0: the same supervisor-only identity map everywhere (U/S clear); slot 1: the window; nothing else.
      expect(sp.pml4[0]! & ~AD, `${sp.name} PML4[0]`).toBe(kernelSlot);
      expect(sp.pml4[0]! & 4n, `${sp.name} PML4[0] U/S`).toBe(0n);
      // Slot 2 only in the ultravisor partition: the resource database's pages, for its deprivileged core.
      const dbView = sp.name === "uv-partition";
      // The command partition's read-only view of the database's own 4 MiB page, at WINDOW + p (COMMAND_VIEW).
      const cmdView = sp.name === "command";
      let cmdViewPages = 0;
      expect(sp.pml4.slice(dbView ? 3 : 2).every((e) => e === 0n), `${sp.name} PML4 slots ${dbView ? 3 : 2}-511 empty`).toBe(true);
      if (dbView) expect(sp.pml4[2]! & 5n).toBe(5n);
      let dbPages = 0;
      expect(sp.largePages, `${sp.name} large pages in the user hierarchy`).toBe(0);
      const slots: bigint[] = [];
      for (const [va, pte] of sp.leaves) {
        expect(pte & 5n, `${sp.name} ${va.toString(16)} present+user`).toBe(5n);
        const off = va - WINDOW;
        const pa = pte & ADDR;
        if (cmdView && off >= BigInt(COMMAND_VIEW.lo) && off < BigInt(COMMAND_VIEW.hi)) {
          expect(pa, `${sp.name} view page ${off.toString(16)}`).toBe(off);
          expect(pte & 2n, `${sp.name} view page ${off.toString(16)} is read-only`).toBe(0n);
          cmdViewPages++;
        } else if (dbView && va >= DBWIN) {
          expect(pa, `${sp.name} database view ${va.toString(16)}`).toBe(va - DBWIN);
          const inDb = pa >= BigInt(DB_PAGES.lo) && pa < BigInt(DB_PAGES.hi);
          const inPrivate = pa >= priv && pa < priv + BigInt(PRIVATE_PAGE_BYTES);
          expect(inDb || inPrivate, `${sp.name} maps database page ${pa.toString(16)}`).toBe(true);
          dbPages++;
        } else if (off >= 0n && off < BigInt(WINDOW_LAYOUT.stackTop)) {
          expect(pa, `${sp.name} window page ${off.toString(16)}`).toBe(sp.window + off);
          expect(owner.has(pa), `page ${pa.toString(16)} in two windows`).toBe(false);
          owner.set(pa, sp.name);
        } else {
          const k = Number(off - BigInt(WINDOW_LAYOUT.slot(0))) / 4096;
          expect(Number.isInteger(k) && k >= 0 && k < WINDOW_LAYOUT.maxSlots, `${sp.name} maps ${va.toString(16)}, outside its window and slots`).toBe(true);
          slots[k] = pa;
        }
      }
      expect(dbPages, `${sp.name} database pages`).toBe(dbView ? (DB_PAGES.hi - DB_PAGES.lo + PRIVATE_PAGE_BYTES) / 4096 : 0);
      expect(cmdViewPages, `${sp.name} read-only view pages`).toBe(cmdView ? (COMMAND_VIEW.hi - COMMAND_VIEW.lo) / 4096 : 0);
      expect(sp.leaves.size - dbPages - cmdViewPages - slots.filter((x) => x !== undefined).length, `${sp.name} window pages`).toBe(WINDOW_LAYOUT.pages);
      slotPages.set(sp.name, slots);
    }
    // Exactly the channels of the plan: the client's and the server's slot map the same page, and no window page
    // is a channel page.
    const pages = b.img.channels.map((c) => {
      const client = slotPages.get(fig1.partitions[c.client]!.name)![c.clientSlot]!;
      const server = slotPages.get(fig1.partitions[c.server]!.name)![c.serverSlot]!;
      expect(server, `channel ${c.kind} of ${fig1.partitions[c.client]!.name}`).toBe(client);
      expect(owner.has(client)).toBe(false);
      return client;
    });
    expect(new Set(pages).size).toBe(b.img.channels.length);
    const mapped = [...slotPages.values()].reduce((n, sl) => n + sl.filter((x) => x !== undefined).length, 0);
    expect(mapped, "slot mappings = 2 per channel").toBe(2 * b.img.channels.length);
  });

  // One boot, several claims: what every one of them needs is derived once from the boot's lines (derived()), the
  // simulator's side by running the same transactions in V8 — never copied from the machine.
  let derivedOnce: ReturnType<typeof deriveAll> | undefined;
  const derived = (): ReturnType<typeof deriveAll> => (derivedOnce ??= deriveAll());
  async function deriveAll() {
    const firmware = parseFirmwareMap(b.lines);
    const priv = privatePage(b.lines);
    const region = ultravisorRegion(b.lines);
    const definitions = fig1.partitions.flatMap((p, i) => (p.kind === "guest" ? [definitionOf(p, i + 1)] : []));
    const bootCreated = fig1.partitions.filter((p) => p.kind === "io" || p.kind === "command").map((p) => p.name);
    const ramTop = q35LowRam(MEM);
    const place = derivePlacement(firmware, ramTop, fig1, b.img.channels, allotments(b.lines).lo);
    const { bytes: sim, db, host, created, bootTx } = await simulatedBoot(place, firmware, bootCreated, definitions);
    return { firmware, priv, region, definitions, bootCreated, ramTop, place, sim, db, host, created, bootTx, DB_RANGES: dbRanges(b.lines), ultraId: db.indexPage().ultra };
  }

  it("bootstraps the resource database on the machine with the AOT-compiled core: the host size from -m, and the loader's region, private page and allotments where the UEFI map puts them", async () => {
    const { firmware, priv, region, ramTop, place } = await derived();
    const line = b.lines.map((l) => /^ultravisor: resource database bootstrapped by the AOT-compiled core: trap (\d+) status (0x[0-9a-f]+) host bytes (0x[0-9a-f]+)$/.exec(l)).find(Boolean);
    expect(line, "bootstrap line").toBeTruthy();
    // The host size first: derived from -m, never taken from the machine (a loader that overstates it fails here).
    expect(BigInt(line![3]!), `host bytes the machine found: q35's RAM below 4 GiB for -m ${MEM}`).toBe(q35LowRam(MEM));
    expect(line![1], "trap code").toBe("0");
    expect(line![2], "db_bootstrap status").toBe("0x0");
    expect(firmware.length, "firmware map lines").toBeGreaterThan(5);
    // OVMF's map holds reserved or ACPI ranges and usable ones: both kinds of boot transaction run.
    expect(firmwareRegions(firmware).some((r) => r.type === "reserved")).toBe(true);
    // Core's private 4 MiB page: carved from the top of the ultravisor region (conventional memory the loader
    // allocated), so the firmware-memory conflict of the old fixed place [0,2,*] is gone and nothing warns about it.
    expect(BigInt(priv.base), "private page right above the region the bump allocator uses").toBe(region.end);
    expect(b.lines.filter((l) => /warning|skipped/.test(l) && l.startsWith("ultravisor: "))).toEqual([]);
    // Every input of the simulator derived, then the machine's own report compared with it (never copied).
    expect(firmwareMapProblems(firmware, ramTop), "OVMF's map against q35's layout").toEqual([]);
    expect({ base: priv.base, m: priv.m }, "core's private page where the loader must carve it").toEqual({ base: place.privateM * PRIVATE_PAGE_BYTES, m: place.privateM });
    expect(region, "the ultravisor region: the largest range the loader allocated, below the private page").toEqual(place.region);
    expect(inRam(firmware, region.base, region.end + BigInt(PRIVATE_PAGE_BYTES)), "the loader's allocations in usable RAM").toBe(true);
    expect(place.allot.lo >= region.base && place.allot.lo < region.end && (place.allot.lo & 4095n) === 0n, "the allotments start in the region").toBe(true);
    expect(allotments(b.lines), "the allotments: each partition's allotmentPages in configuration order").toEqual(place.allot);
    for (const [n, st] of startedPartitions(b.lines)) expect({ window: st.window, pages: st.pages }, `${n}'s window and allotment`).toEqual(place.windows.get(n));
  });

  it("the database bytes on the machine (QMP) equal the simulator's after the same boot transactions and definitions", async () => {
    const { priv, definitions, sim, db, bootTx, DB_RANGES } = await derived();
    // The machine's index page (read over QMP) names the private page the loader printed.
    const uiAt = db.indexPage().index * 4096;
    const dbPage = b.reads.get(CORE_DB_PLAN.dbPage.lo)!;
    expect(new DataView(dbPage.buffer, dbPage.byteOffset).getUint32(uiAt - CORE_DB_PLAN.dbPage.lo + 64, true), "the index page names the private page").toBe(priv.m);
    // The machine committed as many boot transactions as the simulator (its log's sequence numbers say so too).
    const done = b.lines.map((l) => BOOT_DB_LINES.done.exec(l)).find(Boolean);
    expect(done, "boot transactions line").toBeTruthy();
    expect(done![1], "boot module trap code").toBe("0");
    expect(Number(done![2]), "boot transactions committed").toBe(bootTx);
    for (const [lo, hi] of DB_RANGES) {
      const hw = b.reads.get(lo)!;
      expect(hw.length).toBe(hi - lo);
      expect(firstDifference(lo, hw, sim), `database bytes [0x${lo.toString(16)}, 0x${hi.toString(16)})`).toBeNull();
    }
    // The private page's first 64 KiB (core's scratch and request buffer) too, byte for byte, but for one range: the
    // ultravisor partition copies each definition's payload to the request buffer's last 256 bytes for core's boot
    // module (partitions/uv-core.ts, PAYLOAD_OFFSET), where the simulator's resource service takes the Definition
    // as an argument. That range must hold exactly the last definition's payload on the machine.
    const head = b.reads.get(priv.base)!;
    const area = privateArea(priv.m);
    expect(head.length).toBe(area.directory - priv.base);
    const payloadAt = area.requestBuffer + 0x7f00;
    const payload = definitionBytes(definitions.at(-1)!);
    expect([...head.subarray(payloadAt - priv.base, payloadAt - priv.base + payload.length)], "the last definition's payload in the request buffer").toEqual([...payload]);
    const headSim = sim.slice(priv.base, area.directory);
    headSim.set(payload, payloadAt - priv.base);
    expect(firstDifference(0, head, headSim), "core's scratch and request buffer (private page's first 64 KiB)").toBeNull();
    // The comparison covers everything core wrote: in the simulator, every byte outside those ranges and the private
    // page's first 64 KiB (compared above) is still zero.
    const skip: Array<[number, number]> = [...DB_RANGES, [priv.base, privateArea(priv.m).directory]];
    const nonzero = sim.findIndex((x, i) => x !== 0 && !skip.some(([lo, hi]) => i >= lo && i < hi));
    expect(nonzero, nonzero >= 0 ? `simulator wrote 0x${nonzero.toString(16)}` : "").toBe(-1);
    expect(b.reads.get(DB_RANGES[0]![0])!.some((x) => x !== 0)).toBe(true);
  });

  it("nothing of the ultravisor's lies in firmware memory: every page core writes or the database gives the ultravisor is RAM in the UEFI map", async () => {
    const { firmware, priv, db, host, ultraId } = await derived();
    // Nothing of the ultravisor's lies in firmware memory. Every page core writes (the two 4 MiB pages) and every
    // page the database gives the ultravisor lies in RAM of the firmware map the boot printed, and no page of a
    // reserved, ACPI (NVS), MMIO or runtime range is the ultravisor's.
    for (const [lo, hi] of [[CORE_DB_PLAN.dbPage.lo, CORE_DB_PLAN.dbPage.hi], [priv.base, priv.base + PRIVATE_PAGE_BYTES]]) {
      expect(inRam(firmware, BigInt(lo!), BigInt(hi!)), `core writes [0x${lo!.toString(16)}, 0x${hi!.toString(16)}): RAM in the firmware map`).toBe(true);
    }
    const mem = db.i32();
    let ultraRuns = 0;
    for (const mp of host.view.maps()) {
      for (let i = 0; i < 1024; i++) {
        if (mem[(mp.page * 4096) / 4 + i] !== ultraId) continue;
        const lo = mp.base + BigInt(i) * span(mp.scale);
        ultraRuns++;
        expect(inRam(firmware, lo, lo + span(mp.scale)), `the ultravisor owns 0x${lo.toString(16)} (+${span(mp.scale)}): RAM in the firmware map`).toBe(true);
      }
    }
    expect(ultraRuns).toBeGreaterThan(0);
    const notRam = nonRamOverlaps(firmware, 0n, 1n << 32n);
    expect(notRam.some((r) => r.type === 10 && r.lo < 0xc00000n && r.hi > 0x800000n), "OVMF's ACPI NVS in 8–12 MiB, the old fixed place").toBe(true);
    for (const r of notRam) {
      for (let pa = r.lo & ~4095n; pa < r.hi; pa += 4096n) {
        const o = db.owner(pa) >>> 0;
        if (o === ultraId) expect.fail(`firmware memory of type ${r.type} at 0x${pa.toString(16)} is owned by the ultravisor in the database`);
      }
    }
  });

  it("the address spaces follow the database: every mapped page is its partition's there, every page table the ultravisor's", async () => {
    const { db, ultraId } = await derived();
    // The address spaces follow the database that equals the machine's bytes: every window page a partition maps is
    // its own there, every channel page its client's (the server maps it as granted), and the page tables themselves
    // are the ultravisor's (monitor memory, never free).
    const numberOf = new Map([...startedPartitions(b.lines)].map(([n, x]) => [n, x.owner]));
    expect(numberOf.get("uv-partition"), "the ultravisor partition is the database's ultravisor").toBe(ultraId);
    ["io", "command", "X", "Y", "Z"].forEach((n) => {
      expect(numberOf.get(n), `${n} started`).toBeDefined();
      expect(numberOf.get(n), `${n} has its own number`).not.toBe(ultraId);
    });
    for (const sp of spaces) {
      for (const pa of sp.tables) expect(db.owner(pa) >>> 0, `${sp.name}: owner of table page 0x${pa.toString(16)}`).toBe(ultraId);
      for (const [va, pte] of sp.leaves) {
        if (va >= DBWIN) continue;
        // The command partition's read-only view shows the database's own page whatever owns each page of it.
        if (sp.name === "command" && va - WINDOW >= BigInt(COMMAND_VIEW.lo) && va - WINDOW < BigInt(COMMAND_VIEW.hi)) continue;
        const pa = pte & ADDR;
        const off = va - WINDOW;
        const slot = off >= BigInt(WINDOW_LAYOUT.slot(0)) ? Number(off - BigInt(WINDOW_LAYOUT.slot(0))) / 4096 : -1;
        const ch = slot < 0 ? undefined : b.img.channels.find((c) => (fig1.partitions[c.client]!.name === sp.name && c.clientSlot === slot) || (fig1.partitions[c.server]!.name === sp.name && c.serverSlot === slot));
        const who = ch ? fig1.partitions[ch.client]!.name : sp.name;
        expect(db.owner(pa) >>> 0, `${sp.name}: owner of page 0x${pa.toString(16)} at 0x${va.toString(16)} (${ch ? `channel of ${who}` : "window"})`).toBe(numberOf.get(who));
      }
    }
  });

  it("the ultravisor partition ran the same core at CPL 3: attach, GetMemOwner and each created number agree with the simulator; the I/O partition prints the summary", async () => {
    const { definitions, db, created } = await derived();
    // The ultravisor partition ran the same core at CPL 3 over its view of those pages: attach, order, index page,
    // GetMemOwner and each created partition's number agree with the simulator's core.
    const fn = db.core.exports as Record<string, (...a: number[]) => number>;
    const hex8 = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, "0")}`;
    const uvLines = linesOf(b, "uv-partition");
    const served = uvLines.indexOf("resource manager at CPL 3, serving the command channel");
    expect(uvLines.slice(0, served)).toEqual([
      `db attach 0x00000000 order ${fn["db_order"]!()} ui ${hex8(fn["db_ui_address"]!())}`,
      // Read before the definitions were applied: the owner the boot transactions left.
      `owner of 0x${OWNER_PROBE.toString(16)}: ${hex8(fn["db_get_owner"]!(OWNER_PROBE, 0))}`,
    ]);
    expect(uvLines.slice(served + 1, served + 1 + 2 * definitions.length)).toEqual(
      definitions.flatMap((d, i) => [`command ${i + 1}: define ${d.name}: partition ${hex8(created[i]!)} created`, `command ${i + 1}: ${d.name} started`]));
    // Each completion carried the number the simulator's resource service gave that definition.
    expect(linesOf(b, "command").slice(2)).toEqual(definitions.map((d, i) => `definition ${d.name}: partition ${hex8(created[i]!)} started`));
    // The summary the I/O partition wrote near the end of the run: the map at the 4 MiB (PMM) and 4 KiB (PKM) scales
    // as runs of one owner, each as GetMemOwner answers in V8 after the same transactions, then the schedule.
    const expectedMap: string[] = [];
    // Owners by the name in their descriptor when the ultravisor partition can see that page, else by number.
    const ownerName = (p: number): string => {
      const at = p * 4096;
      const d = at >= DB_PAGES.lo && at < DB_PAGES.hi ? db.readDescriptor(p) : undefined;
      return d && d.name ? d.name : hex8(p);
    };
    const reserved = allotments(b.lines);
    const allotLo = Number(reserved.lo & ~0x3fffffn);
    const allotHi = Number((reserved.hi + 0x3fffffn) & ~0x3fffffn);
    for (const m of [...MAP_SCALES, { name: ALLOTMENT_SCALE, lo: allotLo, hi: allotHi, step: 0x1000 }]) {
      let start = 0, owner: number | null = null;
      const close = (end: number): void => {
        expectedMap.push(`map ${m.name} ${hex8(m.lo + start)}-${hex8(m.lo + end - 1)}: ${ownerName(owner!)}`);
      };
      for (let off = 0; off < m.hi - m.lo; off += m.step) {
        const o = fn["db_get_owner"]!((m.lo + off) >>> 0, 0) >>> 0;
        if (o !== owner) {
          if (owner !== null) close(off);
          owner = o;
          start = off;
        }
      }
      close(m.hi - m.lo);
    }
    // The allotments' 4 MiB page shows each partition's memory under its own name.
    for (const n of ["io", "command", "X", "Y", "Z"]) expect(expectedMap.some((l) => l.startsWith(`map ${ALLOTMENT_SCALE} `) && l.endsWith(`: ${n}`)), `${n} in the allotment map`).toBe(true);
    const rows = readSchedule(b.img.schedule.buffer as ArrayBuffer, 0).rows[0]!.entries;
    const sched = scheduleRuns(rows.map((e) => fig1.partitions[e.partition - 1]!.name));
    const at = uvLines.indexOf("summary: memory map (runs of one owner) and schedule");
    expect(at, "summary header").toBeGreaterThan(served + definitions.length);
    expect(uvLines.slice(at + 1)).toEqual([...expectedMap, ...sched]);
    expect(sched[0]).toBe("schedule quanta 0-3: X");
    // Boot marked more than the database's page: firmware ranges went to Boot, memory to Available, holes stay Missing.
    const ui = db.indexPage();
    for (const who of [ui.boot, ui.avail, ui.missing]) expect(expectedMap.some((l) => l.startsWith("map 4M") && l.endsWith(`: ${ownerName(who)}`)), `owner ${ownerName(who)} in the PMM summary`).toBe(true);
    // The I/O partition wrote them before the ultravisor's own end-of-run lines.
    const summaryLine = b.lines.indexOf(`uv-partition: ${sched.at(-1)}`);
    expect(summaryLine).toBeGreaterThan(-1);
    expect(summaryLine).toBeLessThan(b.lines.findIndex((l) => l.startsWith("ultravisor: summary after")));
  });

  it("stops a guest that writes outside its memory (supervisor page or unmapped window page) or runs cli, hlt, out, mov cr3 — and only that guest", async () => {
    const config = containmentConfig();
    // This build also makes the loader's first ExitBootServices fail on a stale map key: the retry must recover; and
    // it allows no conventional memory in the database's own 4 MiB page, which OVMF's map has there: the loader must
    // name the conflict and the database is skipped. Every partition then starts at boot unchecked; the ultravisor
    // partition gets no view of the database and refuses the command partition's definitions.
    const c = await boot("containment", config, [], undefined, { staleMapKeyOnce: true, coreDbPageTypes: [3, 4] });
    const text = c.lines.join("\n");
    try {
      expect(c.lines.some((l) => l.startsWith("ultravisor: entered: boot services exited after 2 ExitBootServices call(s)")), "map-key retry").toBe(true);
      const conflict = c.lines.find((l) => l.startsWith("ultravisor: resource database skipped: its 4 MiB page 0x400000-0x7fffff holds firmware memory of type "));
      expect(conflict, "the database page's conflict named").toMatch(/ of type 7 at 0x[0-9a-f]+-0x[0-9a-f]+$/);
      expect(c.lines).toContain("ultravisor: resource database skipped (the loader's line above says why)");
      expect(c.lines.some((l) => /^ultravisor: (core private page|resource database bootstrapped)/.test(l)), "nothing of the database built").toBe(false);
      expect(c.lines.some((l) => l.startsWith("ultravisor: database pages ")), "no database view mapped").toBe(false);
      const started = startedPartitions(c.lines);
      for (const p of config.partitions.filter((x) => x.kind !== "idle")) {
        expect(started.get(p.name), `${p.name} started at boot, unchecked`).toMatchObject({ quantum: 0, owner: 0xffffffff });
      }
      const uv = linesOf(c, "uv-partition");
      expect(uv[0]).toBe("no resource database (skipped at boot): definitions are refused");
      const guests = config.partitions.filter((x) => x.kind === "guest").length;
      expect(uv.filter((l) => /^command \d+: refused: no resource database$/.test(l)).length, "every definition refused").toBe(guests);
      // … and each refusal reached the command partition as a completion: no resource database (−3, the ultravisor's).
      expect(linesOf(c, "command").slice(2)).toEqual(config.partitions.filter((x) => x.kind === "guest").map((g) => `definition ${g.name}: refused: error -3 (ultravisor)`));
      expect(summary(c).get("uv-partition")?.state).toBe("ready");
      expectContained(c, FAULTS);
      expect(c.exit).toEqual({ kind: "guest", code: config.exitCode });
    } catch (e) {
      console.error(text);
      throw e;
    }
  }, 150_000);

  it("contains the same faults on the normal path: guests created from the database by the ultravisor partition fault and are stopped alone", async () => {
    // The database-backed boot (no coreDbPageTypes): the boot starts io, command and the ultravisor partition; every
    // guest is defined by the command partition and created and started by the ultravisor partition from the database.
    const config = containmentConfig();
    const c = await boot("containment-db", config);
    const text = c.lines.join("\n");
    try {
      expect(c.lines.some((l) => l.startsWith("ultravisor: resource database bootstrapped by the AOT-compiled core: trap 0 status 0x0")), "database built").toBe(true);
      const started = startedPartitions(c.lines);
      const guests = config.partitions.filter((p) => p.kind === "guest");
      const uv = linesOf(c, "uv-partition");
      guests.forEach((g, i) => {
        const st = started.get(g.name);
        // Started by the ultravisor partition after the scheduler ran, as the database's partition it created.
        expect(st, `${g.name} started`).toBeDefined();
        expect(st!.quantum, `${g.name} started from the database, not at boot`).toBeGreaterThan(0);
        // The ultravisor partition's answer on the command channel, as the command partition printed it: the number
        // it created. (Its own console lines may be dropped when the I/O partition is behind — a full console queue
        // drops a line, partitions/runtime.ts — so the completion, which is never dropped, is the evidence; where
        // its own line did arrive, it must say the same.)
        const done = linesOf(c, "command").map((l) => new RegExp(`^definition ${g.name}: partition (0x[0-9a-f]+) started$`).exec(l)).find(Boolean);
        expect(done, `${g.name} created and started by the ultravisor partition`).toBeTruthy();
        expect(st!.owner, `${g.name} runs as the partition created for it`).toBe(Number(BigInt(done![1]!)));
        const made = uv.map((l) => new RegExp(`^command ${i + 1}: define ${g.name}: partition (0x[0-9a-f]+) created$`).exec(l)).find(Boolean);
        if (made) expect(Number(BigInt(made[1]!)), `${g.name}: the ultravisor partition's own line`).toBe(st!.owner);
      });
      expect(linesOf(c, "command").slice(2)).toEqual(guests.map((g) => expect.stringMatching(new RegExp(`^definition ${g.name}: partition 0x[0-9a-f]{8} started$`))));
      expectContained(c, FAULTS);
      expect(summary(c).get("uv-partition")?.state).toBe("ready");
      expect(summary(c).get("command")?.state).toBe("ready");
      expect(c.exit).toEqual({ kind: "guest", code: config.exitCode });
    } catch (e) {
      console.error(text);
      throw e;
    }
  }, 150_000);

  it("does not start a guest whose allotment the database does not wholly give it: the monitor checks every page with core's GetMemOwner", async () => {
    // The ultravisor partition of this build creates Y with its allotment's last page left to the ultravisor.
    const def = figure1Definition();
    const config = configFrom({ ...def, run: { ...def.run, runQuanta: 320 }, partitions: def.partitions!.filter((p) => p.name !== "Z" && p.name !== "V") }, "Figure 1 without Z and V");
    // It also first calls START for each guest with −1 and with its own number: neither is the guest's descriptor.
    const c = await boot("short-allotment", config, [], undefined, { shortAllotmentFor: "Y", startProbes: true });
    const text = c.lines.join("\n");
    try {
      const started = startedPartitions(c.lines);
      expect(started.has("Y"), "Y started").toBe(false);
      const x = started.get("X")!;
      const ultra = started.get("uv-partition")!.owner;
      const uvLines = linesOf(c, "uv-partition");
      const at = uvLines.findIndex((l) => /^command 2: define Y: partition 0x[0-9a-f]+ created$/.test(l));
      expect(at, "the ultravisor partition's line for Y").toBeGreaterThan(-1);
      const created = /(0x[0-9a-f]+)/.exec(uvLines[at]!);
      expect(uvLines[at + 1]).toBe("command 2: Y not started: result -4");
      // The command partition learns it from Y's completion: START's refusal, −4; X started with the number created.
      const xCreated = /^command 1: define X: partition (0x[0-9a-f]+) created$/.exec(uvLines.find((l) => l.startsWith("command 1: define X")) ?? "");
      expect(xCreated, "X created").toBeTruthy();
      expect(linesOf(c, "command").slice(2)).toEqual([`definition X: partition ${xCreated![1]} started`, "definition Y: refused: error -4 (START)"]);
      // Allotments are consecutive in configuration order: Y's follows X's; its last page is the one left out.
      const yWindow = x.window + BigInt(x.pages) * 4096n;
      const lastPage = yWindow + BigInt(allotmentPages(config.partitions.findIndex((p) => p.name === "Y"), c.img.channels) - 1) * 4096n;
      expect(c.lines).toContain(`ultravisor: partition Y not started: page 0x${lastPage.toString(16)} is owned by 0x${ultra.toString(16)} in the database, not by ${created![1]!.replace(/^0x0*/, "0x")}`);
      for (const [k, name] of [[1, "X"], [2, "Y"]] as const) {
        expect(uvLines.filter((l) => l === `command ${k}: probe: START refused: -4`).length, `${name}: both probes refused`).toBe(2);
        for (const bad of ["0xffffffffffffffff", `0x${ultra.toString(16)}`]) {
          expect(c.lines, `${name} START with ${bad}`).toContain(`ultravisor: partition ${name} not started: ${bad} is not its descriptor in the database`);
        }
      }
      const s = summary(c);
      expect(s.get("Y")).toMatchObject({ state: "waiting", quanta: 0 });
      expect(linesOf(c, "Y")).toEqual([]);
      expect(s.get("X")?.state).toBe("ready");
      expect(linesOf(c, "X").filter((l) => TICK.test(l)).length, "X keeps printing").toBeGreaterThan(5);
      expect(c.exit).toEqual({ kind: "guest", code: config.exitCode });
    } catch (e) {
      console.error(text);
      throw e;
    }
  }, 150_000);
});
