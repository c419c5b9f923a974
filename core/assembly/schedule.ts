// Processor schedule of core.wasm (docs/specs/schedule.md): computes the per-PCPU table of quanta -> VCPUs from
// duty cycles at 1/16 granularity (overlapped ACPI throttling, Figure 5), swaps schedules only at a cycle boundary
// ([0147]) and evicts partitions in favour of the idle partition's VCPUs ([0153]). The lead monitor reads it on
// every quantum timer interrupt; the resource service computes it.

@external("hw", "mfence")
declare function hw_mfence(): void;

const SCHED_MAGIC: u32 = 0x48435355; // "USCH"
const SCHED_QUANTA: u32 = 16;
const SCHED_HEADER: u32 = 64;
const SCHED_ROW: u32 = 144;
const SCHED_MAX_PCPUS: u32 = 4096;
const SCHED_NONE: u32 = 0xffff_ffff;

const ROW_DEDICATED: u32 = 1;
const ROW_IDLE: u32 = 2;
const REQ_DEDICATED: u8 = 1;

const SCHED_OK: i32 = 0;
const SCHED_TABLE_SMALL: i32 = -1;
const SCHED_BAD_ARGUMENT: i32 = -2;
const SCHED_NO_DEDICATED_CPU: i32 = -3;
const SCHED_NO_ROOM: i32 = -4;

// header fields
const H_MAGIC: u32 = 0;
const H_VERSION: u32 = 4;
const H_HEADER_SIZE: u32 = 6;
const H_PCPUS: u32 = 8;
const H_QUANTA: u32 = 12;
const H_ROW_SIZE: u32 = 16;
const H_IDLE_PART: u32 = 20;
const H_IDLE_BASE: u32 = 24;
const H_SCHEDULED: u32 = 28;
const H_GENERATION: u32 = 32;
const H_ERROR_INDEX: u32 = 36;
// row fields
const R_FLAGS: u32 = 0;
const R_BUSY: u32 = 4;
const R_VCPUS: u32 = 8;
const R_ENTRIES: u32 = 16;
// request record
const Q_VCPU: u32 = 0;
const Q_PARTITION: u32 = 4;
const Q_DUTY: u32 = 8;
const Q_CSTATE: u32 = 9;
const Q_FLAGS: u32 = 10;
const Q_AFFINITY: u32 = 12;
const REQ_SIZE: u32 = 16;
const PLACE_SIZE: u32 = 8;
// control block
const C_ACTIVE: u32 = 0;
const C_PENDING: u32 = 4;
const C_SWITCH_AT: u32 = 8;
const C_GENERATION: u32 = 16;
const C_SWAPS: u32 = 20;

export function sched_table_bytes(pcpus: u32): u32 {
  return SCHED_HEADER + pcpus * SCHED_ROW;
}

@inline function row(table: usize, p: u32): usize {
  return table + SCHED_HEADER + p * SCHED_ROW;
}

@inline function entryAt(table: usize, p: u32, k: u32): usize {
  return table + SCHED_HEADER + p * SCHED_ROW + R_ENTRIES + (k << 3);
}

@inline function setEntry(table: usize, p: u32, k: u32, partition: u32, vcpu: u32): void {
  // One 8-byte store, so a monitor reading the entry on another processor never sees half of it.
  store<u64>(entryAt(table, p, k), (<u64>vcpu << 32) | <u64>partition);
}

function fail(table: usize, index: u32, code: i32): i32 {
  store<u32>(table + H_ERROR_INDEX, index);
  return code;
}

/**
 * Computes a schedule for `pcpus` physical CPUs from `n` request records at `requests` into the table at `table`
 * (`capacity` bytes) and one placement record per request at `placements`. Returns SCHED_OK or a negative code with
 * the offending request index in the header's error_index.
 */
export function sched_compute(
  table: usize,
  capacity: u32,
  pcpus: u32,
  requests: usize,
  n: u32,
  idlePartition: u32,
  idleVcpuBase: u32,
  placements: usize,
): i32 {
  if (capacity < SCHED_HEADER) return SCHED_TABLE_SMALL;
  store<u32>(table + H_ERROR_INDEX, SCHED_NONE);
  if (pcpus == 0 || pcpus > SCHED_MAX_PCPUS) return SCHED_BAD_ARGUMENT;
  if (sched_table_bytes(pcpus) > capacity) return SCHED_TABLE_SMALL;
  for (let i: u32 = 0; i < n; i++) {
    const r = requests + i * REQ_SIZE;
    const ded = (load<u8>(r + Q_FLAGS) & REQ_DEDICATED) != 0;
    const duty = <u32>load<u8>(r + Q_DUTY);
    if ((!ded && (duty == 0 || duty > SCHED_QUANTA)) || load<u8>(r + Q_CSTATE) > 3) {
      return fail(table, i, SCHED_BAD_ARGUMENT);
    }
  }
  store<u32>(table + H_MAGIC, SCHED_MAGIC);
  store<u16>(table + H_VERSION, 1);
  store<u16>(table + H_HEADER_SIZE, <u16>SCHED_HEADER);
  store<u32>(table + H_PCPUS, pcpus);
  store<u32>(table + H_QUANTA, SCHED_QUANTA);
  store<u32>(table + H_ROW_SIZE, SCHED_ROW);
  store<u32>(table + H_IDLE_PART, idlePartition);
  store<u32>(table + H_IDLE_BASE, idleVcpuBase);
  store<u32>(table + H_SCHEDULED, 0);
  store<u32>(table + H_GENERATION, 0);
  for (let o: u32 = 40; o < SCHED_HEADER; o += 4) store<u32>(table + o, 0);
  for (let p: u32 = 0; p < pcpus; p++) {
    const rw = row(table, p);
    store<u32>(rw + R_FLAGS, 0);
    store<u32>(rw + R_BUSY, 0);
    store<u32>(rw + R_VCPUS, 0);
    store<u32>(rw + 12, 0);
    for (let k: u32 = 0; k < SCHED_QUANTA; k++) setEntry(table, p, k, idlePartition, idleVcpuBase + p);
  }
  for (let i: u32 = 0; i < n; i++) {
    store<u32>(placements + i * PLACE_SIZE, SCHED_NONE);
    store<u32>(placements + i * PLACE_SIZE + 4, 0);
  }

  // Dedicated VCPUs first (I/O partitions, [0148]): a whole PCPU each.
  for (let i: u32 = 0; i < n; i++) {
    const r = requests + i * REQ_SIZE;
    if ((load<u8>(r + Q_FLAGS) & REQ_DEDICATED) == 0 || load<u8>(r + Q_CSTATE) != 0) continue;
    let p = load<u32>(r + Q_AFFINITY);
    if (p >= pcpus || load<u32>(row(table, p) + R_BUSY) != 0) {
      p = SCHED_NONE;
      for (let c: u32 = 0; c < pcpus; c++) {
        if (load<u32>(row(table, c) + R_BUSY) == 0) {
          p = c;
          break;
        }
      }
      if (p == SCHED_NONE) return fail(table, i, SCHED_NO_DEDICATED_CPU);
    }
    place(table, p, r, SCHED_QUANTA, placements + i * PLACE_SIZE);
    store<u32>(row(table, p) + R_FLAGS, ROW_DEDICATED);
  }

  // Shared VCPUs, first-fit decreasing by duty; iterating the duties from 16 down keeps ties in request order.
  // VCPUs with an affinity go first (pass 0) so that larger VCPUs without one cannot take their processor.
  for (let pass: u32 = 0; pass < 2; pass++) {
    for (let d: u32 = SCHED_QUANTA; d >= 1; d--) {
      for (let i: u32 = 0; i < n; i++) {
        const r = requests + i * REQ_SIZE;
        if ((load<u8>(r + Q_FLAGS) & REQ_DEDICATED) != 0 || load<u8>(r + Q_CSTATE) != 0) continue;
        if (<u32>load<u8>(r + Q_DUTY) != d) continue;
        if ((load<u32>(r + Q_AFFINITY) < pcpus) != (pass == 0)) continue;
        const p = choose(table, pcpus, r, d);
        if (p == SCHED_NONE) return fail(table, i, SCHED_NO_ROOM);
        place(table, p, r, d, placements + i * PLACE_SIZE);
      }
    }
  }

  for (let p: u32 = 0; p < pcpus; p++) {
    const rw = row(table, p);
    if (load<u32>(rw + R_VCPUS) == 0) store<u32>(rw + R_FLAGS, ROW_IDLE);
  }
  return SCHED_OK;
}

function fits(table: usize, p: u32, d: u32): bool {
  const rw = row(table, p);
  return (load<u32>(rw + R_FLAGS) & ROW_DEDICATED) == 0 && load<u32>(rw + R_BUSY) + d <= SCHED_QUANTA;
}

function holdsPartition(table: usize, p: u32, partition: u32): bool {
  const busy = load<u32>(row(table, p) + R_BUSY);
  for (let k: u32 = 0; k < busy; k++) if (load<u32>(entryAt(table, p, k)) == partition) return true;
  return false;
}

function choose(table: usize, pcpus: u32, r: usize, d: u32): u32 {
  const aff = load<u32>(r + Q_AFFINITY);
  if (aff < pcpus && fits(table, aff, d)) return aff;
  const partition = load<u32>(r + Q_PARTITION);
  let fallback = SCHED_NONE;
  for (let p: u32 = 0; p < pcpus; p++) {
    if (!fits(table, p, d)) continue;
    if (!holdsPartition(table, p, partition)) return p;
    if (fallback == SCHED_NONE) fallback = p;
  }
  return fallback;
}

function place(table: usize, p: u32, r: usize, d: u32, out: usize): void {
  const rw = row(table, p);
  const off = load<u32>(rw + R_BUSY);
  const partition = load<u32>(r + Q_PARTITION);
  const vcpu = load<u32>(r + Q_VCPU);
  for (let k = off; k < off + d; k++) setEntry(table, p, k, partition, vcpu);
  store<u32>(rw + R_BUSY, off + d);
  store<u32>(rw + R_VCPUS, load<u32>(rw + R_VCPUS) + 1);
  store<u32>(table + H_SCHEDULED, load<u32>(table + H_SCHEDULED) + 1);
  store<u32>(out, p);
  store<u8>(out + 4, <u8>off);
  store<u8>(out + 5, <u8>d);
  store<u16>(out + 6, 0);
}

/** Partition number in entry (pcpu, quantum) of a table; SCHED_NONE when out of range. */
export function sched_entry_partition(table: usize, pcpu: u32, quantum: u32): u32 {
  if (pcpu >= load<u32>(table + H_PCPUS) || quantum >= SCHED_QUANTA) return SCHED_NONE;
  return load<u32>(entryAt(table, pcpu, quantum));
}

/** VCPU in entry (pcpu, quantum) of a table; SCHED_NONE when out of range. */
export function sched_entry_vcpu(table: usize, pcpu: u32, quantum: u32): u32 {
  if (pcpu >= load<u32>(table + H_PCPUS) || quantum >= SCHED_QUANTA) return SCHED_NONE;
  return load<u32>(entryAt(table, pcpu, quantum) + 4);
}

/**
 * Replaces every entry of `partition` by the idle VCPU of its PCPU ([0153]) and refreshes the row statistics.
 * Returns the number of entries replaced (0 for the idle partition itself).
 */
export function sched_evict(table: usize, partition: u32): u32 {
  if (load<u32>(table + H_MAGIC) != SCHED_MAGIC) return 0;
  const idle = load<u32>(table + H_IDLE_PART);
  if (partition == idle) return 0;
  const base = load<u32>(table + H_IDLE_BASE);
  const pcpus = load<u32>(table + H_PCPUS);
  let replaced: u32 = 0;
  let scheduled: u32 = 0;
  for (let p: u32 = 0; p < pcpus; p++) {
    let busy: u32 = 0;
    let vcpus: u32 = 0;
    let prev: u64 = 0xffff_ffff_ffff_ffff;
    for (let k: u32 = 0; k < SCHED_QUANTA; k++) {
      if (load<u32>(entryAt(table, p, k)) == partition) {
        setEntry(table, p, k, idle, base + p);
        replaced++;
      }
      const e = load<u64>(entryAt(table, p, k));
      if (<u32>e != idle) {
        busy++;
        if (e != prev) vcpus++;
      }
      prev = e;
    }
    const rw = row(table, p);
    store<u32>(rw + R_BUSY, busy);
    store<u32>(rw + R_VCPUS, vcpus);
    if (vcpus == 0) store<u32>(rw + R_FLAGS, ROW_IDLE);
    scheduled += vcpus;
  }
  store<u32>(table + H_SCHEDULED, scheduled);
  return replaced;
}

// ---- the control block: which table is in effect, and the swap at a cycle boundary ([0147]) ----

export function sched_ctl_init(ctl: usize): void {
  for (let o: u32 = 0; o < 32; o += 8) store<u64>(ctl + o, 0);
}

/**
 * Installs a computed table at quantum `now`. The first table takes effect at once; a later one becomes pending
 * and takes effect at the first quantum of the next cycle. Returns the generation given to the table, or 0 when
 * `table` is not a schedule table.
 */
export function sched_install(ctl: usize, table: usize, now: u64): u32 {
  if (load<u32>(table + H_MAGIC) != SCHED_MAGIC) return 0;
  const gen = load<u32>(ctl + C_GENERATION) + 1;
  store<u32>(ctl + C_GENERATION, gen);
  store<u32>(table + H_GENERATION, gen);
  if (load<u32>(ctl + C_ACTIVE) == 0) {
    hw_mfence();
    store<u32>(ctl + C_ACTIVE, <u32>table);
    return gen;
  }
  if (load<u32>(ctl + C_PENDING) == 0) {
    const q = <u64>SCHED_QUANTA;
    store<u64>(ctl + C_SWITCH_AT, (now / q + 1) * q);
  }
  hw_mfence(); // the table and switch_at are visible before the pending pointer
  store<u32>(ctl + C_PENDING, <u32>table);
  return gen;
}

/** The table in effect at quantum `now` (0 when none was installed); promotes the pending table once its time came. */
export function sched_table_at(ctl: usize, now: u64): usize {
  const pending = load<u32>(ctl + C_PENDING);
  if (pending != 0 && now >= load<u64>(ctl + C_SWITCH_AT)) {
    store<u32>(ctl + C_ACTIVE, pending);
    store<u32>(ctl + C_PENDING, 0);
    store<u32>(ctl + C_SWAPS, load<u32>(ctl + C_SWAPS) + 1);
    return pending;
  }
  return load<u32>(ctl + C_ACTIVE);
}

/** The VCPU PCPU `pcpu` runs in quantum `now`, or SCHED_NONE without a schedule or for an unknown PCPU. */
export function sched_lookup(ctl: usize, pcpu: u32, now: u64): u32 {
  const t = sched_table_at(ctl, now);
  if (t == 0) return SCHED_NONE;
  return sched_entry_vcpu(t, pcpu, <u32>(now % <u64>SCHED_QUANTA));
}
