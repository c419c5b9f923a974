// Typed TypeScript face of core.wasm's storage-channel exports (core/assembly/storage.ts, docs/specs/storage-channel.md):
// building request records (the client side, for the simulator and tests), checking one with core's stor_check and
// writing the completion with stor_complete, each through a scratch area carved once from core's linear memory. Part
// of core's TypeScript bindings (bottom layer).
import { carve, chanExports, type ChanExports } from "./channel.ts";
import { typedExports, type Core } from "./wasm.ts";

interface StorExports {
  stor_check(sig: number, signalSize: number, capacity: bigint, ranges: number, nranges: number, plan: number): number;
  stor_response(sig: number, plan: number, capacity: bigint, out: number): number;
  stor_complete(sig: number, plan: number, transferred: bigint, mediumError: number, out: number): void;
}

/** The storage channel's geometry and record sizes (storage-channel.md §1–2). */
/** On the machine a channel is one window slot, one page: 7 slots of 256 bytes per queue fit (storage-channel.md §1). */
export const STORAGE = { signalSize: 256, maxSlots: 7, queues: 2, blockSize: 512, maxMdl: 12, channelPages: 1 } as const;

/** SCSI operation codes the storage channel carries (§2). */
export const StorOp = {
  testUnitReady: 0x00, inquiry: 0x12, readCapacity10: 0x25, read10: 0x28, write10: 0x2a, synchronizeCache10: 0x35,
  read16: 0x88, write16: 0x8a, serviceActionIn16: 0x9e,
} as const;

export const StorKind = { none: 0, read: 1, write: 2, dataIn: 3 } as const;

/** A request as a client builds it: `mdl` addresses are in the client's own address space (§2). */
export interface StorRequest {
  opcode: number;
  cdb: Uint8Array;
  requestId: bigint;
  mdl: Array<{ address: bigint; length: number }>;
  /** Default: the direction the opcode implies. */
  flags?: number;
  /** Default: the sum of the MDL lengths. */
  totalBytes?: bigint;
  /** Default: cdb.length. */
  cdbLen?: number;
}

export interface StorPlan {
  kind: number;
  blocks: number;
  lba: bigint;
  bytes: number;
  sense: { key: number; asc: number; ascq: number };
  /** 0 when the request may be carried out, else the refusal reason (§4). */
  reason: number;
  mdlIndex: number;
}

export interface StorCompletion {
  opcode: number;
  flags: number;
  requestId: bigint;
  status: number;
  reason: number;
  mdlIndex: number;
  transferred: bigint;
  sense: Uint8Array;
}

const TO_SERVER = 1;
const FROM_SERVER = 2;

/** CDB of READ/WRITE (10) or (16) for `blocks` blocks at `lba`. */
export function rwCdb(op: number, lba: bigint, blocks: number): Uint8Array {
  const wide = op === StorOp.read16 || op === StorOp.write16;
  const c = new Uint8Array(wide ? 16 : 10);
  const v = new DataView(c.buffer);
  c[0] = op;
  if (wide) {
    v.setBigUint64(2, lba);
    v.setUint32(10, blocks);
  } else {
    v.setUint32(2, Number(lba));
    v.setUint16(7, blocks);
  }
  return c;
}

/** The flags a well-behaved client sets for `opcode`. */
export function directionOf(opcode: number, cdb: Uint8Array): number {
  if (opcode === StorOp.write10 || opcode === StorOp.write16) return TO_SERVER;
  if (opcode === StorOp.read10 || opcode === StorOp.read16 || opcode === StorOp.inquiry || opcode === StorOp.readCapacity10) return FROM_SERVER;
  if (opcode === StorOp.serviceActionIn16 && cdb.length > 1) return FROM_SERVER;
  return 0;
}

/** One request record of STORAGE.signalSize bytes (the channel ABI's CDB layout, channel-abi.md §4). */
export function encodeRequest(r: StorRequest): Uint8Array {
  const sig = new Uint8Array(STORAGE.signalSize);
  const v = new DataView(sig.buffer);
  v.setUint32(0, r.opcode, true);
  v.setUint32(4, r.flags ?? directionOf(r.opcode, r.cdb), true);
  v.setBigUint64(8, r.requestId, true);
  v.setUint16(22, r.mdl.length, true);
  sig[24] = r.cdbLen ?? r.cdb.length;
  sig.set(r.cdb.subarray(0, 16), 32);
  v.setBigUint64(48, r.totalBytes ?? r.mdl.reduce((s, e) => s + BigInt(e.length), 0n), true);
  r.mdl.forEach((e, i) => {
    const at = 64 + 16 * i;
    if (at + 16 > STORAGE.signalSize) return; // more than fits: the record says mdl_count, the check refuses it
    v.setBigUint64(at, e.address, true);
    v.setUint32(at + 8, e.length, true);
  });
  return sig;
}

export function decodeCompletion(sig: Uint8Array): StorCompletion {
  const v = new DataView(sig.buffer, sig.byteOffset, sig.byteLength);
  return {
    opcode: v.getUint32(0, true), flags: v.getUint32(4, true), requestId: v.getBigUint64(8, true), status: v.getUint32(16, true),
    reason: v.getInt32(24, true), mdlIndex: v.getInt32(28, true), transferred: v.getBigUint64(32, true),
    sense: sig.slice(64, 64 + v.getUint16(20, true)),
  };
}

/** core's storage checks on a scratch area of its linear memory (one request at a time). */
export class StorageCore {
  private readonly x: StorExports;
  private readonly chan: ChanExports;
  private readonly sig: number;
  private readonly plan: number;
  private readonly out: number;
  private readonly ranges: number;
  private static readonly MAX_RANGES = 256;

  constructor(private readonly core: Core) {
    this.x = typedExports<StorExports>(core, ["stor_check", "stor_response", "stor_complete"], "storage");
    this.chan = chanExports(core);
    this.sig = carve(core, STORAGE.signalSize);
    this.plan = carve(core, 32);
    this.out = carve(core, STORAGE.signalSize);
    this.ranges = carve(core, 16 * StorageCore.MAX_RANGES);
  }

  private view(): DataView {
    return new DataView(this.core.memory.buffer);
  }

  /**
   * Checks `request` (the server's copy) for a disk of `capacity` blocks and a client owning `ranges` (sorted,
   * disjoint, in its own address space). Leaves the request in core's scratch for respond/complete.
   */
  check(request: Uint8Array, capacity: bigint, ranges: ReadonlyArray<{ base: bigint; length: bigint }>): StorPlan {
    if (request.length !== STORAGE.signalSize) throw new RangeError(`a storage request is ${STORAGE.signalSize} bytes, not ${request.length}`);
    if (ranges.length > StorageCore.MAX_RANGES) throw new RangeError(`at most ${StorageCore.MAX_RANGES} memory ranges per client`);
    new Uint8Array(this.core.memory.buffer, this.sig, STORAGE.signalSize).set(request);
    const v = this.view();
    ranges.forEach((r, i) => {
      v.setBigUint64(this.ranges + 16 * i, r.base, true);
      v.setBigUint64(this.ranges + 16 * i + 8, r.length, true);
    });
    const reason = this.x.stor_check(this.sig, STORAGE.signalSize, capacity, this.ranges, ranges.length, this.plan);
    const p = this.view();
    const plan: StorPlan = {
      kind: p.getUint32(this.plan, true), blocks: p.getUint32(this.plan + 4, true), lba: p.getBigUint64(this.plan + 8, true),
      bytes: p.getUint32(this.plan + 16, true), sense: { key: p.getUint8(this.plan + 20), asc: p.getUint8(this.plan + 21), ascq: p.getUint8(this.plan + 22) },
      reason: p.getInt32(this.plan + 24, true), mdlIndex: p.getInt32(this.plan + 28, true),
    };
    if (plan.reason !== reason) throw new Error(`core's stor_check returned ${reason} but planned reason ${plan.reason}`);
    return plan;
  }

  /** The response bytes of the last checked STOR_DATA_IN request (INQUIRY, READ CAPACITY). */
  response(capacity: bigint): Uint8Array {
    const n = this.x.stor_response(this.sig, this.plan, capacity, this.out);
    return new Uint8Array(this.core.memory.buffer, this.out, n).slice();
  }

  /** The completion record of the last checked request. */
  complete(transferred: bigint, mediumError = false): Uint8Array {
    this.x.stor_complete(this.sig, this.plan, transferred, mediumError ? 1 : 0, this.out);
    return new Uint8Array(this.core.memory.buffer, this.out, STORAGE.signalSize).slice();
  }

  /** core's own MDL append, for a client building a request in core's scratch (tests compare it with encodeRequest). */
  addMdl(signal: Uint8Array, address: bigint, length: number): { count: number; signal: Uint8Array } {
    new Uint8Array(this.core.memory.buffer, this.sig, STORAGE.signalSize).set(signal);
    const count = this.chan.chan_cdb_add_mdl(this.sig, STORAGE.signalSize, address, length);
    return { count, signal: new Uint8Array(this.core.memory.buffer, this.sig, STORAGE.signalSize).slice() };
  }
}
