// Typed TypeScript face of core.wasm's processor schedule (the sched_* exports, docs/specs/schedule.md): encodes
// VCPU requests into linear memory, runs sched_compute, decodes the table, and drives the swap control block. Part of
// core's TypeScript bindings (bottom layer); used by the simulator's resource service, the image builder, the tests
// and the benches.
import { typedExports, type Core } from "./wasm.ts";
import { carve } from "./channel.ts";

export interface SchedExports {
  sched_table_bytes(pcpus: number): number;
  sched_compute(table: number, capacity: number, pcpus: number, requests: number, n: number, idlePartition: number,
    idleVcpuBase: number, placements: number): number;
  sched_entry_partition(table: number, pcpu: number, quantum: number): number;
  sched_entry_vcpu(table: number, pcpu: number, quantum: number): number;
  sched_evict(table: number, partition: number): number;
  sched_ctl_init(ctl: number): void;
  sched_install(ctl: number, table: number, now: bigint): number;
  sched_table_at(ctl: number, now: bigint): number;
  sched_lookup(ctl: number, pcpu: number, now: bigint): number;
}

const SCHED_EXPORTS = [
  "sched_table_bytes", "sched_compute", "sched_entry_partition", "sched_entry_vcpu", "sched_evict", "sched_ctl_init",
  "sched_install", "sched_table_at", "sched_lookup",
] as const;

export const QUANTA = 16;
export const NONE = 0xffffffff;
export const ROW_DEDICATED = 1;
export const ROW_IDLE = 2;
export const SchedError = { TABLE_SMALL: -1, BAD_ARGUMENT: -2, NO_DEDICATED_CPU: -3, NO_ROOM: -4 } as const;

export function schedExports(core: Core): SchedExports {
  return typedExports<SchedExports>(core, SCHED_EXPORTS, "schedule");
}

export interface VcpuRequest {
  vcpu: number;
  partition: number;
  /** Sixteenths of a PCPU, 1-16. */
  duty: number;
  /** ACPI C-state: 0 = C0 (scheduled); 1-3 left out. */
  cstate?: number;
  dedicated?: boolean;
  affinity?: number;
}

export interface Placement {
  pcpu: number | null;
  offset: number;
  width: number;
}

export interface Row {
  flags: number;
  busy: number;
  vcpus: number;
  entries: { partition: number; vcpu: number }[];
}

export interface ScheduleTable {
  pcpus: number;
  idlePartition: number;
  idleVcpuBase: number;
  scheduled: number;
  generation: number;
  rows: Row[];
}

export class ScheduleError extends Error {
  override name = "ScheduleError";
  constructor(readonly code: number, readonly index: number | null, message: string) {
    super(message);
  }
}

const MESSAGES: Record<number, string> = {
  [-1]: "the schedule table does not fit its buffer",
  [-2]: "bad argument (PCPU count 1-4096, duty 1-16, C-state 0-3)",
  [-3]: "no physical CPU left for a dedicated VCPU",
  [-4]: "not enough processor time for every C0 VCPU",
};

/** A schedule workspace in core memory: request, placement and table buffers sized for `maxVcpus` and `maxPcpus`. */
export class Scheduler {
  readonly sched: SchedExports;
  private readonly req: number;
  private readonly place: number;
  private readonly capacity: number;
  private readonly tables: number[];
  private next = 0;

  constructor(private readonly core: Core, readonly maxPcpus: number, readonly maxVcpus: number, buffers = 3) {
    this.sched = schedExports(core);
    this.capacity = this.sched.sched_table_bytes(maxPcpus);
    const tableSpace = Math.ceil(this.capacity / 64) * 64;
    const total = maxVcpus * 16 + maxVcpus * 8 + tableSpace * buffers + 64;
    const base = carve(core, total);
    this.req = base;
    this.place = base + maxVcpus * 16;
    const t0 = Math.ceil((this.place + maxVcpus * 8) / 64) * 64;
    this.tables = Array.from({ length: buffers }, (_, i) => t0 + i * tableSpace);
  }

  /** Writes the request records. Split from compute so a bench can time the core computation alone. */
  encode(vcpus: VcpuRequest[]): void {
    if (vcpus.length > this.maxVcpus) throw new RangeError(`${vcpus.length} VCPUs exceed this scheduler's ${this.maxVcpus}`);
    const d = new DataView(this.core.memory.buffer);
    vcpus.forEach((v, i) => {
      const r = this.req + i * 16;
      d.setUint32(r, v.vcpu, true);
      d.setUint32(r + 4, v.partition, true);
      d.setUint8(r + 8, v.duty);
      d.setUint8(r + 9, v.cstate ?? 0);
      d.setUint8(r + 10, v.dedicated ? 1 : 0);
      d.setUint8(r + 11, 0);
      d.setUint32(r + 12, v.affinity ?? NONE, true);
    });
  }

  /**
   * Runs sched_compute over the last `encode`d requests into the next free table buffer; returns its address.
   * Buffers in `inUse` (the active and pending tables of a ScheduleControl) are never overwritten: monitors may be
   * reading them.
   */
  computeEncoded(n: number, pcpus: number, idlePartition: number, idleVcpuBase: number, inUse: number[] = []): number {
    if (pcpus > this.maxPcpus) throw new RangeError(`${pcpus} PCPUs exceed this scheduler's ${this.maxPcpus}`);
    let table = -1;
    for (let k = 0; k < this.tables.length && table < 0; k++) {
      const cand = this.tables[this.next]!;
      this.next = (this.next + 1) % this.tables.length;
      if (!inUse.includes(cand)) table = cand;
    }
    if (table < 0) throw new RangeError(`all ${this.tables.length} schedule buffers are in use; create the Scheduler with more`);
    const r = this.sched.sched_compute(table, this.capacity, pcpus, this.req, n, idlePartition, idleVcpuBase, this.place);
    if (r !== 0) {
      const idx = new DataView(this.core.memory.buffer).getUint32(table + 36, true);
      const index = idx === NONE ? null : idx;
      throw new ScheduleError(r, index, `${MESSAGES[r] ?? `error ${r}`}${index === null ? "" : ` (request ${index})`}`);
    }
    return table;
  }

  compute(
    vcpus: VcpuRequest[],
    pcpus: number,
    idle: { partition: number; vcpuBase: number },
    ctl?: ScheduleControl,
  ): { table: number; placements: Placement[] } {
    this.encode(vcpus);
    const table = this.computeEncoded(vcpus.length, pcpus, idle.partition, idle.vcpuBase, ctl?.inUse() ?? []);
    const d = new DataView(this.core.memory.buffer);
    const placements = vcpus.map((_, i) => {
      const p = this.place + i * 8;
      const pcpu = d.getUint32(p, true);
      return { pcpu: pcpu === NONE ? null : pcpu, offset: d.getUint8(p + 4), width: d.getUint8(p + 5) };
    });
    return { table, placements };
  }
}

/** Decodes a schedule table (docs/specs/schedule.md). */
export function readSchedule(buf: ArrayBuffer, table: number): ScheduleTable {
  const d = new DataView(buf);
  if (d.getUint32(table, true) !== 0x48435355) throw new Error(`no schedule table at ${table} (magic "USCH" missing)`);
  const pcpus = d.getUint32(table + 8, true);
  const rowSize = d.getUint32(table + 16, true);
  const rows: Row[] = [];
  for (let p = 0; p < pcpus; p++) {
    const r = table + 64 + p * rowSize;
    const entries = Array.from({ length: QUANTA }, (_, k) => ({
      partition: d.getUint32(r + 16 + k * 8, true),
      vcpu: d.getUint32(r + 16 + k * 8 + 4, true),
    }));
    rows.push({ flags: d.getUint32(r, true), busy: d.getUint32(r + 4, true), vcpus: d.getUint32(r + 8, true), entries });
  }
  return {
    pcpus,
    idlePartition: d.getUint32(table + 20, true),
    idleVcpuBase: d.getUint32(table + 24, true),
    scheduled: d.getUint32(table + 28, true),
    generation: d.getUint32(table + 32, true),
    rows,
  };
}

/** The control block through which monitors find the schedule in effect ([0147]). */
export class ScheduleControl {
  readonly ctl: number;
  private readonly mem: Core["memory"];
  constructor(private readonly sched: SchedExports, core: Core) {
    this.mem = core.memory;
    this.ctl = carve(core, 32);
    sched.sched_ctl_init(this.ctl);
  }
  install(table: number, now: bigint): number {
    return this.sched.sched_install(this.ctl, table, now);
  }
  tableAt(now: bigint): number {
    return this.sched.sched_table_at(this.ctl, now) >>> 0;
  }
  lookup(pcpu: number, now: bigint): number {
    return this.sched.sched_lookup(this.ctl, pcpu, now) >>> 0;
  }
  /** Tables monitors may be reading: the active one and the pending one (0 entries left out). */
  inUse(): number[] {
    const d = new DataView(this.mem.buffer);
    return [d.getUint32(this.ctl, true), d.getUint32(this.ctl + 4, true)].filter((t) => t !== 0);
  }
}
