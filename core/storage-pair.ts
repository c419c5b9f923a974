// Typed TypeScript face of core.wasm's redundant-I/O exports (core/assembly/storage-pair.ts,
// docs/specs/storage-failover.md §3–§4): a client's in-flight table and the pair's control block, each in a scratch
// area carved from core's linear memory. The layouts are core's; PAIR_LAYOUT repeats the offsets the spec's tables
// give so tests can damage a field on purpose (core/storage-pair.test.ts checks each against core's behaviour).
// Part of core (bottom layer).
import { carve } from "./channel.ts";
import { typedExports, type Core } from "./wasm.ts";

export const PAIR_LAYOUT = {
  table: { magic: 0, entries: 4, epoch: 8, count: 12, header: 32, entry: 32, slots: 16 },
  entry: { id: 0, lba: 8, blocks: 16, epoch: 20, state: 24, write: 28 },
  ctl: { magic: 0, state: 4, epoch: 8, active: 12, fencedAt: 16, bytes: 32 },
} as const;

export const PairState = { active: 1, fencing: 2, fenced: 3 } as const;
/** pair_issue's refusals (storage-failover.md §3). */
export const PairRefusal = { badTable: -1, inFlight: -2, full: -3, overlap: -4, overflow: -5 } as const;

interface PairExports {
  pair_table_init(t: number): void;
  pair_issue(t: number, id: bigint, lba: bigint, blocks: number, write: number): number;
  pair_complete(t: number, id: bigint, epoch: number): number;
  pair_failover(t: number, epoch: number): number;
  pair_next_reissue(t: number): number;
  pair_reissued(t: number, slot: number): number;
  pair_entry_id(t: number, slot: number): bigint;
  pair_ctl_init(c: number): void;
  pair_ctl_step(c: number, to: number, now: bigint): number;
  pair_ctl_epoch(c: number): bigint;
}

const NAMES = [
  "pair_table_init", "pair_issue", "pair_complete", "pair_failover", "pair_next_reissue", "pair_reissued", "pair_entry_id",
  "pair_ctl_init", "pair_ctl_step", "pair_ctl_epoch",
] as const;

function pairExports(core: Core): PairExports {
  return typedExports<PairExports>(core, NAMES, "storage-pair");
}

const TABLE_BYTES = PAIR_LAYOUT.table.header + PAIR_LAYOUT.table.slots * PAIR_LAYOUT.table.entry;

/** A client's in-flight table in core's memory (on the machine it lives in the client's own pages). */
export class InFlightTable {
  private readonly x: PairExports;
  readonly at: number;

  constructor(private readonly core: Core) {
    this.x = pairExports(core);
    this.at = carve(core, TABLE_BYTES);
    this.x.pair_table_init(this.at);
  }

  /** Empties the table (the same memory: a simulation reuses tables from run to run rather than carve more). */
  reset(): void {
    this.x.pair_table_init(this.at);
  }

  /** The slot, or a negative PairRefusal. */
  issue(id: bigint, lba: bigint, blocks: number, write: boolean): number {
    return this.x.pair_issue(this.at, id, lba, blocks, write ? 1 : 0);
  }

  /** 1 accepted, 0 ignored, −1 bad table. */
  complete(id: bigint, epoch: number): number {
    return this.x.pair_complete(this.at, id, epoch);
  }

  failover(epoch: number): number {
    return this.x.pair_failover(this.at, epoch);
  }

  /** The tags wanting re-issue in tag order; each is stamped with the table's epoch as it is taken. */
  takeReissues(): bigint[] {
    const out: bigint[] = [];
    for (let slot = this.x.pair_next_reissue(this.at); slot >= 0; slot = this.x.pair_next_reissue(this.at)) {
      out.push(this.x.pair_entry_id(this.at, slot));
      if (this.x.pair_reissued(this.at, slot) !== 0) throw new Error(`core refused to mark slot ${slot} re-issued`);
    }
    return out;
  }

  /** The table's bytes as a DataView (tests damage fields through it). */
  view(): DataView {
    return new DataView(this.core.memory.buffer, this.at, TABLE_BYTES);
  }
}

/** The pair's control block (on the machine, in the ultravisor's memory). */
export class PairControl {
  private readonly x: PairExports;
  readonly at: number;

  constructor(private readonly core: Core) {
    this.x = pairExports(core);
    this.at = carve(core, PAIR_LAYOUT.ctl.bytes);
    this.x.pair_ctl_init(this.at);
  }

  reset(): void {
    this.x.pair_ctl_init(this.at);
  }

  /** 0, −1 bad block, −3 a transition the spec's table does not allow. */
  step(to: number, now: bigint): number {
    return this.x.pair_ctl_step(this.at, to, now);
  }

  /** The epoch clients may be told, or a negative code (−3 while a failover is in progress). */
  epoch(): number {
    return Number(this.x.pair_ctl_epoch(this.at));
  }

  view(): DataView {
    return new DataView(this.core.memory.buffer, this.at, PAIR_LAYOUT.ctl.bytes);
  }
}
