// The simulator's storage server (docs/specs/storage-channel.md §5): serves one storage request record against a
// simulated disk with core's own checks (core/storage.ts → core.wasm stor_check, the code the I/O partition runs on
// the machine), moving data only after the check passed and only through the MDL entries core validated against the
// client's memory ranges. Simulator layer.
import { STORAGE, StorageCore, StorKind, type StorPlan } from "../core/storage.ts";
import type { Core } from "../core/wasm.ts";

/** A client's memory as the server reaches it: its own address space, with the ranges the database gives it. */
export interface ClientMemory {
  /** Sorted, disjoint ranges the client owns, in its own address space (the MDL's). */
  ranges: ReadonlyArray<{ base: bigint; length: bigint }>;
  read(address: bigint, length: number): Uint8Array;
  write(address: bigint, bytes: Uint8Array): void;
}

export interface Served {
  completion: Uint8Array;
  plan: StorPlan;
}

/** A disk of whole 512-byte blocks, served through core's checks. */
export class StorageServer {
  private readonly stor: StorageCore;
  readonly capacity: bigint;

  constructor(core: Core, readonly disk: Uint8Array, private readonly failing: () => boolean = () => false) {
    if (disk.length % STORAGE.blockSize !== 0) throw new RangeError(`a disk is whole ${STORAGE.blockSize}-byte blocks; ${disk.length} bytes is not`);
    this.stor = new StorageCore(core);
    this.capacity = BigInt(disk.length / STORAGE.blockSize);
  }

  /** Serves `request` (copied first: the client's slot may change under the server) for `client`. */
  serve(request: Uint8Array, client: ClientMemory): Served {
    const copy = request.slice();
    const plan = this.stor.check(copy, this.capacity, client.ranges);
    if (plan.reason !== 0) return { completion: this.stor.complete(0n), plan };
    if (this.failing()) return { completion: this.stor.complete(0n, true), plan };
    const mdl = mdlOf(copy);
    let moved = 0n;
    if (plan.kind === StorKind.read || plan.kind === StorKind.write) {
      let at = Number(plan.lba) * STORAGE.blockSize;
      for (const e of mdl) {
        if (plan.kind === StorKind.read) client.write(e.address, this.disk.subarray(at, at + e.length));
        else this.disk.set(client.read(e.address, e.length), at);
        at += e.length;
        moved += BigInt(e.length);
      }
    } else if (plan.kind === StorKind.dataIn) {
      const data = this.stor.response(this.capacity);
      let off = 0;
      for (const e of mdl) {
        if (off >= data.length) break;
        const n = Math.min(e.length, data.length - off);
        client.write(e.address, data.subarray(off, off + n));
        off += n;
      }
      moved = BigInt(off);
    }
    return { completion: this.stor.complete(moved), plan };
  }
}

/** The MDL entries of a request record core has validated (so mdl_count and every entry are in bounds). */
function mdlOf(sig: Uint8Array): Array<{ address: bigint; length: number }> {
  const v = new DataView(sig.buffer, sig.byteOffset, sig.byteLength);
  const start = 64 + ((v.getUint16(20, true) + 7) & ~7);
  const out = [];
  for (let i = 0; i < v.getUint16(22, true); i++) out.push({ address: v.getBigUint64(start + 16 * i, true), length: v.getUint32(start + 16 * i + 8, true) });
  return out;
}
