// The simulator's model of the ultravisor's channel table ([0114], [0132], [0182], [0186]): channels are created in
// client-owned memory, mapped into their server, carry signals through core.wasm's queues with interrupts only on
// queue transitions ([0120]), and are torn down in the spec's order: a client's memory is reclaimed only after every
// server has disconnected; a stopping server closes its channels first. Memory ownership and mapping go through the
// ChannelMemory interface, which the simulated host implements with resource-database transactions.
import type { Core } from "../core/wasm.ts";
import { carve, ChannelType, Q, readQueueHeader, type ChanExports, type ChannelTypeName } from "../core/channel.ts";

/** What the channel table needs from the host's resource database and monitors. */
export interface ChannelMemory {
  /**
   * Transaction 1 ([0132]): `bytes` of memory become the client's and the channel (of type code `type`) is defined;
   * returns its (host physical) address.
   */
  allocateForClient(client: string, bytes: number, type?: number): number;
  /** Transaction 2: the server's monitor maps the client's channel pages. */
  mapIntoServer(server: string, base: number, bytes: number): void;
  unmapFromServer(server: string, base: number, bytes: number): void;
  /** The client's memory (its channels included) goes back to Available ([0182], [0186]). */
  reclaimClient(client: string): void;
  /** The client's processors leave the schedule ([0186]: "processor resources can be reclaimed immediately"). */
  reclaimProcessors(client: string): void;
  /** Partition number [G,M,K] of a partition, written into the channel header's partition_handle. */
  partitionNumber?(name: string): number;
  /** The client's owned memory as sorted, disjoint `[base, length]` ranges (for MDL validation). */
  ownedRanges?(client: string): Array<[bigint, bigint]>;
}

/** Outcome of validating a request's MDL against its client's memory (docs/specs/channel-abi.md section 4). */
export interface RequestCheck {
  ok: boolean;
  code: number;
  name: string;
  /** MDL entry that failed, when the failure is an entry's. */
  entry: number | null;
}

const CDB_NAMES: Record<number, string> = {
  0: "CDB_OK", [-1]: "CDB_MALFORMED", [-2]: "CDB_ZERO_LENGTH", [-3]: "CDB_WRAPS", [-4]: "CDB_OUTSIDE_CLIENT",
  [-5]: "CDB_TOTAL_MISMATCH", [-6]: "CDB_BAD_RANGES",
};

/** A side of a channel that takes interrupts: called once per empty -> non-empty transition of queue `q`. */
export type InterruptHandler = (channel: Channel, q: number) => void;

export interface ChannelSpec {
  client: string;
  server: string;
  type: ChannelTypeName;
  /** Queues: 0 requests (client -> server), 1 responses (server -> client), 2 errors. */
  queues?: number;
  signalSize?: number;
  slots?: number;
}

export class Channel {
  server: string | null = null;
  closed = false;
  constructor(
    readonly id: number,
    readonly spec: Required<ChannelSpec>,
    readonly base: number,
    readonly bytes: number,
  ) {}
  get client(): string {
    return this.spec.client;
  }
}

export class ChannelError extends Error {
  override name = "ChannelError";
}

/** Queues whose inserting side is the client; the others are inserted by the server. */
const CLIENT_INSERTS = new Set([0]);

export class ChannelBus {
  private readonly channels = new Map<number, Channel>();
  private readonly handlers = new Map<string, InterruptHandler>();
  private readonly stoppingClients = new Set<string>();
  private nextId = 1;
  /** Interrupts delivered, per receiving partition: the counters [0120] predicts. */
  readonly interrupts = new Map<string, number>();
  /** Ordered log of the life-cycle steps, for scenarios and tests of the teardown order. */
  readonly events: string[] = [];

  constructor(
    private readonly core: Core,
    private readonly chan: ChanExports,
    private readonly memory: ChannelMemory,
  ) {}

  /** Registers the interrupt handler of a partition (its virtual channel interrupt, [0120]). */
  onInterrupt(partition: string, handler: InterruptHandler): void {
    this.handlers.set(partition, handler);
  }

  /** Creates a channel in client memory (transaction 1) and maps it into its server (transaction 2). */
  create(spec: ChannelSpec): Channel {
    if (this.stoppingClients.has(spec.client)) throw new ChannelError(`client ${spec.client} is stopping; no new channels`);
    const full: Required<ChannelSpec> = { queues: 2, signalSize: 256, slots: 32, ...spec };
    const type = ChannelType[full.type];
    if (type === undefined) throw new ChannelError(`unknown channel type ${String(full.type)}`);
    const bytes = Math.ceil(this.chan.chan_format_bytes(full.queues, full.signalSize, full.slots) / 4096) * 4096;
    if (bytes === 0) throw new ChannelError(`channel geometry ${full.queues}x${full.slots}x${full.signalSize} is too large`);
    const base = this.memory.allocateForClient(full.client, bytes, type);
    const r = this.chan.chan_format(base, bytes, full.queues, full.signalSize, full.slots, type);
    if (r !== Q.OK) throw new ChannelError(`chan_format failed (${r}) for ${full.type} channel of ${full.client}`);
    const ch = new Channel(this.nextId++, full, base, bytes);
    const owner = this.memory.partitionNumber?.(full.client) ?? 0;
    this.chan.chan_set_identity(base, bytes, BigInt(owner), BigInt(base), ch.id, 0);
    this.chan.chan_set_features(base, bytes, 1n); // ENABLE_INTS: both sides take transition interrupts
    this.channels.set(ch.id, ch);
    this.events.push(`create ${ch.id} ${full.type} client=${full.client}`);
    this.connect(ch);
    return ch;
  }

  private connect(ch: Channel): void {
    const server = ch.spec.server;
    this.memory.mapIntoServer(server, ch.base, ch.bytes);
    ch.server = server;
    this.check(this.chan.chan_server_state_set(ch.base, ch.bytes, 1), "server READY");
    this.check(this.chan.chan_client_state_set(ch.base, ch.bytes, 1, 3), "client ATTACHED");
    this.events.push(`connect ${ch.id} server=${server}`);
  }

  private check(r: number, what: string): void {
    if (r < 0) throw new ChannelError(`${what} failed with status ${r}`);
  }

  /**
   * Inserts one signal (at most signal_size bytes, zero-padded) into queue q from `from`. The receiver's interrupt
   * fires only when the queue was empty. Returns false when the queue is full (the overflow is counted).
   */
  send(ch: Channel, q: number, from: string, payload: Uint8Array): boolean {
    if (ch.closed || ch.server === null) throw new ChannelError(`channel ${ch.id} is not connected`);
    const inserter = CLIENT_INSERTS.has(q) ? ch.client : ch.server;
    if (from !== inserter) throw new ChannelError(`${from} may not insert into queue ${q} of channel ${ch.id}`);
    if (payload.length > ch.spec.signalSize) throw new ChannelError(`signal of ${payload.length} bytes exceeds ${ch.spec.signalSize}`);
    const scratch = this.scratch(ch.spec.signalSize);
    const buf = new Uint8Array(this.core.memory.buffer, scratch, ch.spec.signalSize);
    buf.fill(0);
    buf.set(payload);
    const r = this.chan.chan_insert(ch.base, ch.bytes, q, scratch);
    if (r === Q.FULL_OR_EMPTY) return false;
    this.check(r, `insert into channel ${ch.id}`);
    if (r === Q.TRANSITION) {
      const receiver = inserter === ch.client ? ch.server : ch.client;
      this.interrupt(ch, q, receiver);
    }
    return true;
  }

  private interrupt(ch: Channel, q: number, receiver: string): void {
    this.interrupts.set(receiver, (this.interrupts.get(receiver) ?? 0) + 1);
    this.chan.chan_irq_received(ch.base, ch.bytes, q);
    this.handlers.get(receiver)?.(ch, q);
  }

  /** Removes every waiting signal of queue q (the receiver's interrupt handler calls this). */
  drain(ch: Channel, q: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const scratch = this.scratch(ch.spec.signalSize);
    for (;;) {
      const r = this.chan.chan_remove(ch.base, ch.bytes, q, scratch);
      if (r === Q.FULL_OR_EMPTY) break;
      this.check(r, `remove from channel ${ch.id}`);
      out.push(new Uint8Array(this.core.memory.buffer, scratch, ch.spec.signalSize).slice());
      if (r === Q.TRANSITION) break;
    }
    return out;
  }

  /**
   * The server's check of a request received on `ch` ([0228], claims 18, 20, 21): every MDL address must lie in
   * memory the client owns according to the resource database, or the request is rejected.
   */
  validateRequest(ch: Channel, sig: Uint8Array): RequestCheck {
    if (!this.memory.ownedRanges) throw new ChannelError("this host's ChannelMemory cannot list a client's memory");
    const ranges = this.memory.ownedRanges(ch.client);
    const need = ch.spec.signalSize + ranges.length * 16 + 8;
    const at = this.scratch(need);
    const bytes = new Uint8Array(this.core.memory.buffer, at, need);
    bytes.fill(0);
    bytes.set(sig.subarray(0, ch.spec.signalSize));
    const d = new DataView(this.core.memory.buffer);
    const r0 = at + ch.spec.signalSize;
    ranges.forEach(([b, l], i) => {
      d.setBigUint64(r0 + i * 16, b, true);
      d.setBigUint64(r0 + i * 16 + 8, l, true);
    });
    const out = r0 + ranges.length * 16;
    const code = this.chan.chan_cdb_validate(at, ch.spec.signalSize, r0, ranges.length, out);
    const idx = d.getUint32(out, true);
    return { ok: code === 0, code, name: CDB_NAMES[code] ?? String(code), entry: idx === 0xffffffff ? null : idx };
  }

  counters(ch: Channel, q: number): ReturnType<typeof readQueueHeader> {
    return readQueueHeader(this.core.memory.buffer, ch.base, q);
  }

  private scratchAt = 0;
  private scratchSize = 0;
  private scratch(bytes: number): number {
    if (bytes > this.scratchSize) {
      const pages = Math.ceil(bytes / 65536);
      this.scratchAt = carve(this.core, pages * 65536);
      this.scratchSize = pages * 65536;
    }
    return this.scratchAt;
  }

  /** The server disconnects from one channel: unmaps it; the last disconnect of a stopping client frees its memory. */
  disconnect(ch: Channel): void {
    if (ch.server === null) return;
    const server = ch.server;
    this.check(this.chan.chan_server_state_set(ch.base, ch.bytes, 0), "server UNINITIALIZED");
    this.memory.unmapFromServer(server, ch.base, ch.bytes);
    ch.server = null;
    ch.closed = true;
    this.events.push(`disconnect ${ch.id} server=${server}`);
    this.maybeReclaim(ch.client);
  }

  /** Drops the channels of a client whose servers have all disconnected (its definition was abandoned). */
  forget(client: string): void {
    for (const [id, c] of this.channels) {
      if (c.client !== client) continue;
      if (c.server !== null) throw new ChannelError(`channel ${id} of ${client} is still connected to ${c.server}`);
      this.channels.delete(id);
    }
  }

  channelsOf(partition: string): Channel[] {
    return [...this.channels.values()].filter((c) => c.client === partition || c.server === partition);
  }

  /**
   * Stops a client ([0186]): processors are reclaimed at once; each server is asked to disconnect (through
   * `askServer`, which may disconnect now or later, e.g. after in-flight I/O); memory is reclaimed after the last.
   */
  stopClient(client: string, askServer: (ch: Channel) => void = (ch) => this.disconnect(ch)): void {
    this.stoppingClients.add(client);
    this.memory.reclaimProcessors(client);
    this.events.push(`processors reclaimed ${client}`);
    const mine = [...this.channels.values()].filter((c) => c.client === client && c.server !== null);
    for (const ch of mine) askServer(ch);
    this.maybeReclaim(client);
  }

  /** Stops a server ([0182]): every channel it serves is closed and disconnected first. */
  stopServer(server: string): void {
    for (const ch of [...this.channels.values()].filter((c) => c.server === server)) this.disconnect(ch);
    this.events.push(`server stopped ${server}`);
  }

  private maybeReclaim(client: string): void {
    if (!this.stoppingClients.has(client)) return;
    const connected = [...this.channels.values()].some((c) => c.client === client && c.server !== null);
    if (connected) return;
    for (const [id, c] of this.channels) if (c.client === client) this.channels.delete(id);
    this.stoppingClients.delete(client);
    this.memory.reclaimClient(client);
    this.events.push(`memory reclaimed ${client}`);
  }
}

/** Console opcode of a CDB (docs/specs/channel-abi.md section 4): inline text. */
export const CONSOLE_TEXT = 1;

/** Encodes console text as CDB requests (64-byte header, text inline), splitting it to fit the signal. */
export function consoleRequests(text: string, signalSize: number, firstId = 1n): Uint8Array[] {
  const bytes = Buffer.from(text, "utf8");
  const room = signalSize - 64;
  if (room <= 0) throw new ChannelError(`signal size ${signalSize} leaves no room for console text`);
  const out: Uint8Array[] = [];
  for (let off = 0, id = firstId; off < bytes.length; off += room, id++) {
    const chunk = bytes.subarray(off, off + room);
    const sig = new Uint8Array(64 + chunk.length);
    const d = new DataView(sig.buffer);
    d.setUint32(0, CONSOLE_TEXT, true);
    d.setUint32(4, 1, true); // TO_SERVER
    d.setBigUint64(8, id, true);
    d.setUint16(20, chunk.length, true);
    sig.set(chunk, 64);
    out.push(sig);
  }
  return out;
}

/** The inline text of a console CDB, or null when the signal is not console text. */
export function consoleText(sig: Uint8Array): string | null {
  const d = new DataView(sig.buffer, sig.byteOffset, sig.byteLength);
  if (d.getUint32(0, true) !== CONSOLE_TEXT) return null;
  const n = d.getUint16(20, true);
  if (64 + n > sig.length) return null;
  return Buffer.from(sig.subarray(64, 64 + n)).toString("utf8");
}

/** Encodes a request (section 4): CDB header, inline data padded to 8, then the MDL entries. */
export function cdbRequest(
  r: { opcode: number; flags?: number; requestId: bigint; cdb?: number[]; inline?: Uint8Array; mdl?: Array<[bigint, number]> },
  signalSize: number,
): Uint8Array {
  const inline = r.inline ?? new Uint8Array(0);
  const mdl = r.mdl ?? [];
  const start = 64 + Math.ceil(inline.length / 8) * 8;
  const need = start + 16 * mdl.length;
  if (need > signalSize) throw new ChannelError(`request needs ${need} bytes; the channel's signals hold ${signalSize}`);
  if ((r.cdb ?? []).length > 16) throw new ChannelError("a CDB holds at most 16 bytes");
  const sig = new Uint8Array(signalSize);
  const d = new DataView(sig.buffer);
  d.setUint32(0, r.opcode, true);
  d.setUint32(4, r.flags ?? 0, true);
  d.setBigUint64(8, r.requestId, true);
  d.setUint16(20, inline.length, true);
  d.setUint16(22, mdl.length, true);
  d.setUint8(24, (r.cdb ?? []).length);
  sig.set(r.cdb ?? [], 32);
  sig.set(inline, 64);
  let total = 0n;
  mdl.forEach(([addr, len], i) => {
    d.setBigUint64(start + i * 16, addr, true);
    d.setUint32(start + i * 16 + 8, len, true);
    total += BigInt(len);
  });
  d.setBigUint64(48, total, true);
  return sig;
}
