// Redundant I/O partitions in the simulator (docs/specs/storage-failover.md §6): clients write the disk workload
// through a primary and a secondary storage server whose devices share one disk; the primary dies after a chosen step;
// the ultravisor fences its device and names the secondary through the pair's control block; each client re-issues
// what its in-flight table says. core decides everything both sides of the machine will decide too: each request's
// check (stor_check), which completion a client accepts and what it re-issues (the in-flight table), and the order of
// the failover (the control block). Deterministic: one action per step, actors in a fixed round.
import { STORAGE, StorageCore, StorKind, StorOp, encodeRequest, decodeCompletion, rwCdb } from "../core/storage.ts";
import { InFlightTable, PairControl, PairState } from "../core/storage-pair.ts";
import type { Core } from "../core/wasm.ts";
import { blockRecord, parseBlock } from "../image/disk-workload.ts";

const BLOCK = STORAGE.blockSize;
/** A storage channel holds at most 15 requests (storage-channel.md §1). */
const CHANNEL_SLOTS = STORAGE.maxSlots - 1;

export interface PairClientSpec {
  name: string;
  /** First block of the client's range and its length in blocks. */
  first: number;
  blocks: number;
  passes: number;
  /** Requests in flight at most (≤ 15) and blocks per request. */
  inFlight: number;
  perRequest: number;
}

export interface PairScenario {
  clients: PairClientSpec[];
  diskBlocks: number;
  /** The primary dies after this step (undefined: never). */
  failAfter?: number;
  /** Steps from the primary's death until the ultravisor notices (a heartbeat timeout). */
  detectAfter: number;
  /** Fence the dead primary's device before naming the secondary (the spec's rule; false shows why). */
  fence: boolean;
  /** A dead primary's device that is not fenced goes on only after this many steps (so its late writes land late). */
  lateDevice: number;
  maxSteps: number;
  /** Servers write every completion twice (a buggy or hostile server): each request must still be acked once. */
  echo?: boolean;
}

export interface PairEvent {
  step: number;
  what: string;
}

export interface PairRun {
  steps: number;
  finished: boolean;
  events: PairEvent[];
  /** Per client, block → latest acknowledged generation. */
  acked: Map<string, Map<number, number>>;
  /** Requests acknowledged more than once (must be none). */
  doubleAcks: string[];
  /** Findings of the disk check: acknowledged blocks not holding their latest generation, misplaced records. */
  diskProblems: string[];
  /** Step of the primary's death, of the secondary's first GOOD completion after it, and acks per step before/after. */
  failover?: { died: number; fenced?: number; firstSecondaryCompletion?: number };
  disk: Uint8Array;
}

interface DeviceOp {
  client: Client;
  id: bigint;
  lba: number;
  blocks: number;
  /** Client-space address of each block's buffer: read when the block is written, as DMA does. */
  buffer: bigint;
  done: number;
  /** The server's own copy of the request record (checked again for its completion). */
  request: Uint8Array;
}

class Device {
  readonly queue: DeviceOp[] = [];
  constructor(readonly name: string, readonly disk: Uint8Array) {}
  /** Writes one block of the oldest operation; returns the finished operation when its last block is written. */
  step(): DeviceOp | undefined {
    const op = this.queue[0];
    if (!op) return undefined;
    const at = (op.lba + op.done) * BLOCK;
    this.disk.set(op.client.read(op.buffer + BigInt(op.done * BLOCK), BLOCK), at);
    op.done++;
    if (op.done < op.blocks) return undefined;
    this.queue.shift();
    return op;
  }
  reset(): number {
    const n = this.queue.length;
    this.queue.length = 0;
    return n;
  }
}

class Server {
  alive = true;
  readonly completions: Array<{ client: Client; sig: Uint8Array }> = [];
  constructor(readonly name: string, readonly index: number, readonly device: Device, private readonly stor: StorageCore, private readonly capacity: bigint, private readonly echo: boolean) {}

  /** Takes one request from a client's channel to this server, checks it with core and hands it to the device. */
  take(client: Client, request: Uint8Array): void {
    const copy = request.slice();
    const plan = this.stor.check(copy, this.capacity, client.ranges);
    if (plan.reason !== 0 || plan.kind !== StorKind.write) {
      this.completions.push({ client, sig: this.stor.complete(0n) });
      return;
    }
    // core validated the MDL: one entry (this workload's clients send one buffer per request) inside the client.
    const v = new DataView(copy.buffer);
    this.device.queue.push({ client, id: v.getBigUint64(8, true), lba: Number(plan.lba), blocks: plan.blocks, buffer: v.getBigUint64(64, true), done: 0, request: copy });
  }

  /** The GOOD completion of a finished device operation (core writes the record from the server's copy). */
  finished(op: DeviceOp): void {
    const plan = this.stor.check(op.request, this.capacity, op.client.ranges);
    if (plan.reason !== 0) throw new Error(`core refused at completion a request it accepted: ${plan.reason}`);
    const sig = this.stor.complete(BigInt(op.blocks * BLOCK));
    this.completions.push({ client: op.client, sig });
    if (this.echo) this.completions.push({ client: op.client, sig: sig.slice() });
  }
}

/** Where a client's buffers live in its own address space (the MDL's addresses). */
const CLIENT_BASE = 0x10000n;

class Client {
  readonly memory: Uint8Array;
  readonly ranges: Array<{ base: bigint; length: bigint }>;
  /** Requests sent to each server's channel, not yet taken (index = server). */
  readonly channels: Uint8Array[][] = [[], []];
  /** Saved request records by tag, for re-issue. */
  private readonly saved = new Map<bigint, { sig: Uint8Array; slot: number; lba: number; blocks: number; gen: number }>();
  private readonly freeSlots: number[];
  readonly acked = new Map<number, number>();
  readonly ackCount = new Map<bigint, number>();
  epoch = 0;
  private pass = 0;
  private next = 0;
  private nextId = 1n;
  private reissue: bigint[] = [];

  constructor(readonly table: InFlightTable, readonly spec: PairClientSpec) {
    table.reset();
    this.memory = new Uint8Array(spec.inFlight * spec.perRequest * BLOCK);
    this.ranges = [{ base: CLIENT_BASE, length: BigInt(this.memory.length) }];
    this.freeSlots = Array.from({ length: spec.inFlight }, (_, i) => i);
  }

  read(address: bigint, length: number): Uint8Array {
    const at = Number(address - CLIENT_BASE);
    return this.memory.slice(at, at + length);
  }

  get finished(): boolean {
    return this.pass >= this.spec.passes && this.saved.size === 0;
  }

  /** One action: learn a new epoch, re-issue, consume a completion, or issue the next request. False: nothing to do. */
  act(ctl: PairControl, servers: Server[], log: (what: string) => void): boolean {
    const epoch = ctl.epoch();
    if (epoch > this.epoch) {
      const n = this.table.failover(epoch);
      this.epoch = epoch;
      this.reissue = this.table.takeReissues();
      log(`${this.spec.name} learns epoch ${epoch}: ${n} request(s) to re-issue`);
      return true;
    }
    // The server this client sends to: the one its own epoch names (it keeps sending there during a failover it
    // has not been told of yet; those requests wait in the dead server's channel and are re-issued).
    const active = this.epoch % 2;
    if (this.reissue.length) {
      const id = this.reissue.shift()!;
      this.channels[active]!.push(this.saved.get(id)!.sig);
      log(`${this.spec.name} re-issues ${id} to ${servers[active]!.name}`);
      return true;
    }
    for (const s of servers) {
      const k = s.completions.findIndex((c) => c.client === this);
      if (k < 0) continue;
      const { sig } = s.completions.splice(k, 1)[0]!;
      const c = decodeCompletion(sig);
      // The epoch this server's completions belong to: the current one when it is the active server, else the last
      // one in which it was (a late completion of the old server).
      const of = s.index === active ? this.epoch : this.epoch - 1; // -1: the secondary before any failover (hostile)
      const r = this.table.complete(c.requestId, of < 0 ? 0xffff_ffff : of);
      if (r !== 1) {
        log(`${this.spec.name} ignores ${s.name}'s completion of ${c.requestId}`);
        return true;
      }
      const req = this.saved.get(c.requestId)!;
      if (c.status !== 0) throw new Error(`${this.spec.name}: request ${c.requestId} refused (reason ${c.reason})`);
      this.ackCount.set(c.requestId, (this.ackCount.get(c.requestId) ?? 0) + 1);
      for (let b = 0; b < req.blocks; b++) this.acked.set(req.lba + b, req.gen);
      this.saved.delete(c.requestId);
      this.freeSlots.push(req.slot);
      log(`${this.spec.name} acked ${c.requestId} from ${s.name}`);
      return true;
    }
    if (this.pass >= this.spec.passes || !this.freeSlots.length || this.channels[active]!.length >= CHANNEL_SLOTS) return false;
    const lba = this.spec.first + this.next;
    const blocks = Math.min(this.spec.perRequest, this.spec.blocks - this.next);
    const gen = this.pass + 1;
    const id = this.nextId;
    const rc = this.table.issue(id, BigInt(lba), blocks, true);
    if (rc < 0) return false; // an overlapping write still in flight (the next pass caught up): wait for its ack
    const slot = this.freeSlots.shift()!;
    const buffer = slot * this.spec.perRequest * BLOCK;
    for (let b = 0; b < blocks; b++) this.memory.set(blockRecord(lba + b, this.spec.name, gen), buffer + b * BLOCK);
    const sig = encodeRequest({ opcode: StorOp.write10, cdb: rwCdb(StorOp.write10, BigInt(lba), blocks), requestId: id, mdl: [{ address: CLIENT_BASE + BigInt(buffer), length: blocks * BLOCK }] });
    this.saved.set(id, { sig, slot, lba, blocks, gen });
    this.channels[active]!.push(sig);
    this.nextId++;
    this.next += blocks;
    if (this.next >= this.spec.blocks) {
      this.next = 0;
      this.pass++;
    }
    return true;
  }
}

/** core's scratch for runs: carved once per core instance and reset per run (carving grows core's memory). */
const kits = new WeakMap<Core, { stor: StorageCore; ctl: PairControl; tables: InFlightTable[] }>();
function kitFor(core: Core, clients: number): { stor: StorageCore; ctl: PairControl; tables: InFlightTable[] } {
  let k = kits.get(core);
  if (!k) kits.set(core, (k = { stor: new StorageCore(core), ctl: new PairControl(core), tables: [] }));
  while (k.tables.length < clients) k.tables.push(new InFlightTable(core));
  return k;
}

/** Runs one scenario to its end (every client finished) or to maxSteps. */
export function runPair(core: Core, s: PairScenario): PairRun {
  const disk = new Uint8Array(s.diskBlocks * BLOCK);
  const kit = kitFor(core, s.clients.length);
  const stor = kit.stor;
  const capacity = BigInt(s.diskBlocks);
  const devices = [new Device("P-dev", disk), new Device("S-dev", disk)];
  const servers = [new Server("P", 0, devices[0]!, stor, capacity, s.echo ?? false), new Server("S", 1, devices[1]!, stor, capacity, s.echo ?? false)];
  const clients = s.clients.map((c, i) => new Client(kit.tables[i]!, c));
  const ctl = kit.ctl;
  ctl.reset();
  const events: PairEvent[] = [];
  let step = 0;
  const log = (what: string): void => {
    events.push({ step, what });
  };
  let died: number | undefined;
  let fenced: number | undefined;
  let firstSecondary: number | undefined;
  let failoverPhase = 0; // 0 none, 1 noticed, 2 fenced, 3 named

  const ultravisor = (): boolean => {
    if (died === undefined || failoverPhase >= 3 || step < died + s.detectAfter) return false;
    if (failoverPhase === 0) {
      if (ctl.step(PairState.fencing, BigInt(step)) !== 0) throw new Error("core refused FENCING");
      log("ultravisor: P is dead; fencing its device");
      failoverPhase = 1;
      return true;
    }
    if (failoverPhase === 1) {
      if (s.fence) log(`ultravisor: P-dev reset (${devices[0]!.reset()} operation(s) dropped)`);
      else log("ultravisor: P-dev NOT fenced");
      if (ctl.step(PairState.fenced, BigInt(step)) !== 0) throw new Error("core refused FENCED");
      fenced = step;
      failoverPhase = 2;
      return true;
    }
    if (ctl.step(PairState.active, BigInt(step)) !== 0) throw new Error("core refused ACTIVE");
    log(`ultravisor: S is the active server, epoch ${ctl.epoch()}`);
    failoverPhase = 3;
    return true;
  };

  const serverAct = (sv: Server): boolean => {
    if (!sv.alive) return false;
    for (const c of clients) {
      const q = c.channels[sv.index]!;
      if (!q.length) continue;
      sv.take(c, q.shift()!);
      return true;
    }
    return false;
  };

  const deviceAct = (d: Device, sv: Server): boolean => {
    if (!sv.alive && died !== undefined && step < died + s.lateDevice) return false;
    const had = d.queue.length > 0;
    const op = d.step();
    if (op && sv.alive) {
      sv.finished(op);
      if (sv.index === 1 && died !== undefined && firstSecondary === undefined) firstSecondary = step;
    } else if (op) log(`${d.name} (dead server) finished ${op.client.spec.name} ${op.id}: a late write`);
    return had;
  };

  const actors: Array<() => boolean> = [
    ...clients.map((c) => () => c.act(ctl, servers, log)),
    () => serverAct(servers[0]!), () => serverAct(servers[1]!),
    () => deviceAct(devices[0]!, servers[0]!), () => deviceAct(devices[1]!, servers[1]!),
    ultravisor,
  ];
  let turn = 0;
  while (step < s.maxSteps && !clients.every((c) => c.finished)) {
    let acted = false;
    for (let k = 0; k < actors.length && !acted; k++) {
      acted = actors[(turn + k) % actors.length]!();
      if (acted) turn = (turn + k + 1) % actors.length;
    }
    if (!acted) {
      // Nobody can act: only time passes (a detection or a late device waits for its step).
      if (died === undefined || (failoverPhase >= 3 && devices[0]!.queue.length === 0)) break;
    }
    step++;
    if (s.failAfter !== undefined && step === s.failAfter && died === undefined) {
      servers[0]!.alive = false;
      died = step;
      log("P dies");
    }
  }
  // A dead device that was never fenced finishes its queue, however late.
  while (devices[0]!.queue.length && !servers[0]!.alive) {
    deviceAct(devices[0]!, servers[0]!);
    step++;
  }

  const acked = new Map(clients.map((c) => [c.spec.name, c.acked] as const));
  const doubleAcks = clients.flatMap((c) => [...c.ackCount].filter(([, n]) => n !== 1).map(([id, n]) => `${c.spec.name} ${id} acked ${n} times`));
  return {
    steps: step, finished: clients.every((c) => c.finished), events, acked, doubleAcks, diskProblems: checkDisk(disk, acked), disk,
    failover: died === undefined ? undefined : { died, fenced, firstSecondaryCompletion: firstSecondary },
  };
}

/** The disk check of `uvt disk check` on the simulated disk: acknowledged blocks hold their latest generation. */
export function checkDisk(disk: Uint8Array, acked: Map<string, Map<number, number>>): string[] {
  const problems: string[] = [];
  for (const [name, blocks] of acked) {
    for (const [n, gen] of blocks) {
      const r = parseBlock(disk.subarray(n * BLOCK, (n + 1) * BLOCK));
      if (!r || "bad" in r) problems.push(`block ${n}: ${name} gen ${gen} acknowledged, the block holds ${r ? r.bad : "nothing"}`);
      else if (r.n !== n || r.partition !== name || r.gen !== gen) problems.push(`block ${n}: ${name} gen ${gen} acknowledged, the block holds block ${r.n} ${r.partition} gen ${r.gen}`);
    }
  }
  return problems;
}
