// Hardware test of the storage pair's failover (docs/specs/storage-failover.md §7; issue #16 items 1, 2 and 4), through
// qemu/'s Machine under OVMF: one boot of examples/storage-pair.yaml with the same data disk named twice (as `uvt run
// --disk F --disk F`: one -blockdev node, two virtio-blk devices). sa (primary) and sb (secondary) each drive their own
// device; sa fails at its 20th request with its device request in flight. Oracles: the serial log's order (the
// ultravisor's fence line before any client's re-issue), the disk image file read from the host after the run
// (`uvt disk check`'s code, image/disk-workload.ts), QEMU's own per-device statistics (query-blockstats: nothing moves
// through sa's device between the fence line and the end) and QEMU's view of each virtio device (x-query-virtio-status:
// sa's reset, sb's driver OK).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Machine } from "../../qemu/index.ts";
import { readBlock, summaryOf, withSerialLog } from "./machine-reads.ts";
import { writeEfiImage } from "../../image/efi-image.ts";
import { buildUltravisorImage } from "../../image/ultravisor.ts";
import { checkDiskImage } from "../../image/disk-workload.ts";
import { loadConfig } from "../../partitions/config.ts";
import { LOADER_LINES } from "../../loader-efi/ultravisor.ts";
import { LOG_LEN, PD_MAGIC, REC, privateArea } from "../../core/database.ts";

const scratch = mkdtempSync(join(tmpdir(), "uv-hw-pair-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const config = loadConfig(join(import.meta.dirname, "..", "..", "examples", "storage-pair.yaml"));
const DISK = join(scratch, "pair.img");
const DONE = [/^A: disk: done; /, /^B: disk: done; /];

interface DeviceStats { device: string; wrBytes: number; rdBytes: number }
interface VirtioState { started: boolean; statuses: string[] }
let boot: { lines: string[]; stats: DeviceStats[]; atFence: DeviceStats[]; virtio: Record<string, VirtioState>; log: string; audit: AuditRecord[] };

/**
 * A record of the audit log as read over QMP: its type and, for REJECTED and EVENT, its four u32 fields; for an EVENT,
 * also the names in the descriptors its two partition numbers name (a partition number is its descriptor's page).
 */
interface AuditRecord { type: number; fields?: number[]; names?: string[] }

/** The name in the live descriptor at page `p` (memory-layout.md §4: magic, Me = p, name at +16), or why not. */
async function descriptorName(m: Machine, p: number): Promise<string> {
  const b = await m.readPhysical(p * 4096, 64);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0, true) !== PD_MAGIC || v.getUint32(4, true) !== p) return `no descriptor at page ${p}`;
  const name = b.subarray(16, 32);
  return new TextDecoder().decode(name.subarray(0, name.indexOf(0) < 0 ? 16 : name.indexOf(0)));
}

/** The audit log read from the machine's memory (memory-layout.md §5): the header, then every record to committedEnd. */
async function readAudit(m: Machine, lines: string[]): Promise<AuditRecord[]> {
  const p = lines.map((l) => LOADER_LINES.privatePage.exec(l)).find(Boolean);
  if (!p) throw new Error("no core private page line from the loader");
  const header = privateArea(Number(p[3]!)).logBase * 4096;
  const hb = await m.readPhysical(header, 64);
  const h = new DataView(hb.buffer, hb.byteOffset, hb.byteLength);
  const end = h.getUint32(12, true); // committedEnd
  const bytes = await m.readPhysical(header + 64, end);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: AuditRecord[] = [];
  for (let off = 0; off < end;) {
    const type = v.getUint8(off);
    if (type === REC.rejected || type === REC.event) {
      const fields = [8, 12, 16, 20].map((o) => v.getUint32(off + o, true));
      out.push({ type, fields, ...(type === REC.event ? { names: [await descriptorName(m, fields[1]!), await descriptorName(m, fields[2]!)] } : {}) });
      off += 24;
      continue;
    }
    if (type !== REC.begin) throw new Error(`audit log: record type ${type} at ${off} of ${end}`);
    const n = v.getUint32(off + 12, true);
    off += 16;
    for (let k = 0; k < n; k++) off += LOG_LEN[v.getUint8(off)] ?? Infinity;
    if (v.getUint8(off) !== REC.commit) throw new Error(`audit log: no COMMIT at ${off}`);
    out.push({ type: REC.begin });
    off += 16;
  }
  return out;
}

async function blockStats(m: Machine): Promise<DeviceStats[]> {
  const reply = (await m.qmp!.execute("query-blockstats")) as Array<{ device?: string; qdev?: string; "node-name"?: string; stats: { wr_bytes: number; rd_bytes: number } }>;
  return reply.map((d) => ({ device: d.qdev ?? d.device ?? d["node-name"] ?? "?", wrBytes: d.stats.wr_bytes, rdBytes: d.stats.rd_bytes }));
}

beforeAll(async () => {
  writeFileSync(DISK, new Uint8Array(1 << 20));
  const img = await buildUltravisorImage({ config });
  const out = await writeEfiImage(join(scratch, "pair"), img);
  const m = await Machine.start({ name: "hw-storage-pair", image: out.esp, disks: [DISK, DISK], mem: "256M", timeoutMs: 160_000, log: () => undefined });
  try {
    await m.waitFor(/^ultravisor: scheduler running/, 120_000);
    // The fence's line: QEMU's counters of both devices from then on (the dead device's must not move again).
    await m.waitFor(/^ultravisor: storage pair: sa failed at /, 120_000);
    await m.qmp!.execute("stop");
    const atFence = await blockStats(m);
    await m.qmp!.execute("cont");
    const t0 = Date.now();
    while (!DONE.every((re) => m.lines.some((l) => re.test(l.text)))) {
      if (Date.now() - t0 > 110_000) throw new Error(`the clients did not finish:\n${m.lines.map((l) => l.text).filter((t) => /^(A|B|sa|sb|ultravisor: storage pair|partition)/.test(t)).slice(-30).join("\n")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await m.qmp!.execute("stop");
    const stats = await blockStats(m);
    const virtio: Record<string, VirtioState> = {};
    for (const dev of ["data0-dev", "data1-dev"]) {
      const st = (await m.qmp!.execute("x-query-virtio-status", { path: `/machine/peripheral/${dev}/virtio-backend` })) as { started: boolean; status: { statuses: string[] } };
      virtio[dev] = { started: st.started, statuses: st.status.statuses };
    }
    const audit = await readAudit(m, m.lines.map((l) => l.text));
    await m.qmp!.execute("cont");
    await m.wait();
    const lines = m.lines.map((l) => l.text);
    boot = { lines, stats, atFence, virtio, log: lines.join("\n"), audit };
  } finally {
    await m.close();
  }
}, 175_000);

const withLog = (check: () => void): void => withSerialLog(boot.lines, check, boot ? [...boot.stats, ...boot.atFence].map((s) => JSON.stringify(s)).concat(JSON.stringify(boot.virtio)) : []);
const statsOf = (list: DeviceStats[], dev: string): DeviceStats => {
  const s = list.find((x) => x.device.includes(dev));
  if (!s) throw new Error(`no block statistics for ${dev} in ${JSON.stringify(list)}`);
  return s;
};

const block = (n: number): Uint8Array => readBlock(DISK, n);

const indexOf = (re: RegExp): number => boot.lines.findIndex((l) => re.test(l));

describe("the storage pair on the machine", () => {
  it("each member drives its own virtio-blk device on the one file, bus mastering on for each", () => withLog(() => {
    expect(boot.lines).toContain("ultravisor: pci 00:02.0 given to partition sa (number 3): memory and I/O decoding on, bus mastering on (no IOMMU yet)");
    expect(boot.lines).toContain("ultravisor: pci 00:03.0 given to partition sb (number 4): memory and I/O decoding on, bus mastering on (no IOMMU yet)");
    expect(boot.lines).toContain("sa: storage: virtio-blk 00:02.0 capacity 2048 sectors queue 64");
    expect(boot.lines).toContain("sb: storage: virtio-blk 00:03.0 capacity 2048 sectors queue 64");
    // The pair's epoch is for its clients: a member asking is refused (DENIED).
    for (const p of ["sa", "sb"]) expect(boot.lines).toContain(`${p}: storage: PAIR_EPOCH refused to a member: result -1`);
  }));

  it("the primary fails at its 20th request; the ultravisor fences its device and names the secondary", () => withLog(() => {
    expect(boot.lines).toContain("sa: storage: failing at request 20 (host definition failAtRequest)");
    expect(indexOf(/^partition sa: fault vector 6 /)).toBeGreaterThan(-1);
    expect(indexOf(/^ultravisor: storage pair: sa failed at quantum \d+ tsc \d+; device 00:02\.0 fenced \(bus mastering off, reset, status 0\); epoch 1: sb active at tsc \d+$/)).toBeGreaterThan(-1);
    expect(indexOf(/^ultravisor: storage pair: first completion by sb at quantum \d+ tsc \d+: failover took \d+ tsc, \d+ quanta$/)).toBeGreaterThan(-1);
    expect(summaryOf(boot.lines, "sa").state).toBe("failed");
    for (const p of ["io", "sb", "A", "B"]) expect(summaryOf(boot.lines, p).state).toBe("ready");
  }));

  it("the fence comes before the first re-issue, and the re-issued requests complete through the secondary", () => withLog(() => {
    const fence = indexOf(/^ultravisor: storage pair: sa failed at /);
    const failovers = boot.lines.map((l, i) => (/^[AB]: disk: failover to epoch 1: re-issuing \d+ request\(s\) to slot 2$/.test(l) ? i : -1)).filter((i) => i >= 0);
    const reissues = boot.lines.map((l, i) => (/^[AB]: disk: re-issued tag \d+$/.test(l) ? i : -1)).filter((i) => i >= 0);
    expect(failovers.length).toBe(2); // both clients learn the epoch
    expect(reissues.length).toBeGreaterThan(0); // at least the request sa died with
    expect(fence).toBeGreaterThan(-1);
    expect(Math.min(...failovers, ...reissues)).toBeGreaterThan(fence);
    for (const g of ["A", "B"]) expect(indexOf(new RegExp(`^${g}: disk: first completion in epoch 1 at quantum \\d+$`))).toBeGreaterThan(fence);
  }));

  it("the workload completes through the secondary and the image check from outside is clean", () => withLog(() => {
    for (const g of ["A", "B"]) {
      for (const p of [1, 2, 3]) expect(boot.lines).toContain(`${g}: disk: pass ${p} read back`);
      expect(boot.lines).toContain(`${g}: disk: done; synchronize cache status 0`);
    }
    const r = checkDiskImage(DISK, boot.log);
    expect(r.problems).toEqual([]);
    expect(r.acknowledged).toBe(24 + 20);
    expect(r.records).toBe(24 + 20);
    expect(new TextDecoder().decode(block(23).subarray(0, 16))).toBe("block 23 A gen 3");
    expect(new TextDecoder().decode(block(43).subarray(0, 16))).toBe("block 43 B gen 3");
  }));

  it("the failover is in the database's audit log: one EVENT of kind 1 whose partition numbers are the descriptors of sa and sb, read back over QMP", () => withLog(() => {
    expect(boot.lines).toContain("ultravisor: storage pair: failover recorded in the audit log (EVENT kind 1, status -0)");
    const events = boot.audit.filter((r) => r.type === REC.event);
    expect(events).toHaveLength(1);
    const [kind, , , nextSeq] = events[0]!.fields!;
    expect(kind).toBe(1);
    // The database's partition numbers are descriptor pages: the failed member's and the active one's, read back.
    expect(events[0]!.names).toEqual(["sa", "sb"]);
    // Written between transactions: as many committed before it as its nextSeq says were.
    expect(boot.audit.slice(0, boot.audit.indexOf(events[0]!)).filter((r) => r.type === REC.begin).length).toBeLessThanOrEqual(nextSeq!);
  }));

  it("QEMU sees the fence: sa's device reset and idle from the fence line on, sb's driven", () => withLog(() => {
    expect(boot.virtio["data0-dev"]).toEqual({ started: false, statuses: [] });
    expect(boot.virtio["data1-dev"]!.statuses.some((x) => x.startsWith("VIRTIO_CONFIG_S_DRIVER_OK"))).toBe(true);
    // Nothing moved through the dead member's device after the fence; the secondary's moved the rest of the workload.
    expect(statsOf(boot.stats, "data0-dev")).toEqual(statsOf(boot.atFence, "data0-dev"));
    expect(statsOf(boot.stats, "data1-dev").wrBytes).toBeGreaterThan(statsOf(boot.atFence, "data1-dev").wrBytes);
  }));

  it("both devices moved data: the primary's before its death, the secondary's after", () => withLog(() => {
    expect(statsOf(boot.atFence, "data0-dev").wrBytes).toBeGreaterThan(0);
    const moving = boot.stats.filter((s) => s.wrBytes > 0);
    expect(moving.length).toBe(2);
    // Every pass writes all 44 blocks once; only a re-issued request (at most 8 blocks) may be written a second time
    // (one the primary executed, or had in its device, before its completion was taken).
    const reissued = boot.lines.filter((l) => /^[AB]: disk: re-issued tag \d+$/.test(l)).length;
    const total = boot.stats.reduce((n, s) => n + s.wrBytes, 0);
    expect(total).toBeGreaterThanOrEqual(3 * 44 * 512);
    expect(total).toBeLessThanOrEqual(3 * 44 * 512 + reissued * 8 * 512);
  }));
});
