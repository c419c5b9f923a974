// The command channel ([0090], [0115], [0125], [0174], [0186]) as a real memory channel: core's queues between the
// command partition (client) and the ultravisor partition (server). Requests are CDBs (docs/specs/channel-abi.md
// section 4) carrying a transaction request inline (docs/specs/memory-layout.md §5.3); the ultravisor's server copies
// it to its request buffer and runs db_submit_as with the channel's client, read from core's channel table, as the
// submitter, so core itself refuses (and audits) a transaction from anyone but the command partition. The protocol is
// written down in docs/specs/command-channel.md.
import type { Channel, ChannelBus } from "./channel-bus.ts";
import { encodeRequest } from "../core/database.ts";
import type { Host } from "./host.ts";
import type { Transaction } from "../core/notation.ts";

/** CDB opcodes of the command channel (docs/specs/command-channel.md). */
export const CMD = { TRANSACTION: 1, STOP_PARTITION: 2, PARTITION_RELEASED: 0x80 } as const;
export const FLAG = { TO_SERVER: 1, FROM_SERVER: 2, COMPLETION: 4 } as const;
/** Geometry of a command channel: a whole request of up to 8128 bytes rides inline in one signal. */
export const COMMAND_SIGNAL_SIZE = 8192;
export const COMMAND_SLOTS = 4;
export const NOT_COMMAND = -21;

export class CommandChannelError extends Error {
  override name = "CommandChannelError";
}

export interface CommandSignal {
  opcode: number;
  flags: number;
  requestId: bigint;
  status: number;
  /** u32 argument in the CDB bytes (a partition number for STOP_PARTITION and PARTITION_RELEASED). */
  arg: number;
  inline: Uint8Array;
}

/** Encodes a command-channel CDB: 64-byte header, `arg` in the CDB bytes, `inline` after the header. */
export function commandSignal(s: Omit<CommandSignal, "inline"> & { inline?: Uint8Array }): Uint8Array {
  const inline = s.inline ?? new Uint8Array(0);
  if (64 + inline.length > COMMAND_SIGNAL_SIZE) {
    throw new CommandChannelError(`a request of ${inline.length} bytes does not fit one command signal (${COMMAND_SIGNAL_SIZE - 64} bytes inline); split the transaction`);
  }
  const sig = new Uint8Array(64 + Math.ceil(inline.length / 8) * 8);
  const d = new DataView(sig.buffer);
  d.setUint32(0, s.opcode, true);
  d.setUint32(4, s.flags, true);
  d.setBigUint64(8, s.requestId, true);
  d.setInt32(16, s.status, true);
  d.setUint16(20, inline.length, true);
  d.setUint8(24, 4);
  d.setUint32(32, s.arg >>> 0, true);
  sig.set(inline, 64);
  return sig;
}

/** Decodes a command-channel CDB, or returns a reason it is not one (the peer is untrusted). */
export function parseCommandSignal(sig: Uint8Array): CommandSignal | string {
  if (sig.length < 64) return "signal shorter than a CDB header";
  const d = new DataView(sig.buffer, sig.byteOffset, sig.byteLength);
  const n = d.getUint16(20, true);
  if (64 + n > sig.length) return `inline length ${n} runs past the signal`;
  if (d.getUint16(22, true) !== 0) return "command CDBs carry no MDL";
  return {
    opcode: d.getUint32(0, true), flags: d.getUint32(4, true), requestId: d.getBigUint64(8, true),
    status: d.getInt32(16, true), arg: d.getUint32(32, true), inline: sig.slice(64, 64 + n),
  };
}

/** What the ultravisor does for requests other than transactions. */
export interface UltravisorActions {
  /** STOP_PARTITION from the command partition ([0186]). Returns a status (0 = the stop has begun). */
  stop(partition: number): number;
}

/** One request as the ultravisor's server saw it (scenarios print these; tests count them). */
export interface ServedRequest {
  channel: number;
  submitter: number;
  opcode: number;
  status: number;
}

/**
 * The command channel's server in the ultravisor partition. It serves every channel whose server is the ultravisor
 * (the command channel, and the control channels a guest could abuse): a transaction request is run with
 * db_submit_as, the submitter being the client that owns the channel according to core's channel table.
 */
export class UltravisorCommandServer {
  readonly served: ServedRequest[] = [];

  constructor(
    private readonly host: Host,
    private readonly bus: ChannelBus,
    private readonly actions: UltravisorActions,
  ) {}

  /** Client partition of a channel, from core's channel table (never from the channel's own bytes). */
  clientOf(ch: Channel): number {
    const slot = this.host.db.channels().find((s) => s.base * 4096 === ch.base);
    if (!slot) throw new CommandChannelError(`channel ${ch.id} at ${ch.base} is not in the channel table`);
    return slot.client;
  }

  /** Interrupt handler: queue 0 of a channel the ultravisor serves went non-empty. */
  onRequests(ch: Channel): void {
    for (const sig of this.bus.drain(ch, 0)) this.handle(ch, sig);
  }

  private handle(ch: Channel, sig: Uint8Array): void {
    const submitter = this.clientOf(ch);
    const s = parseCommandSignal(sig);
    if (typeof s === "string") {
      this.served.push({ channel: ch.id, submitter, opcode: -1, status: -1 });
      this.reply(ch, 0n, -1, 0);
      return;
    }
    let status: number;
    if (s.opcode === CMD.TRANSACTION) {
      status = this.runTransaction(s.inline, submitter);
    } else if (s.opcode === CMD.STOP_PARTITION) {
      // Not a transaction, but changes ultravisor state: the same rule as db_submit_as (no audit record: nothing
      // reaches the log; the refusal is returned to the sender).
      status = submitter === this.host.db.commandPartition() ? this.actions.stop(s.arg) : NOT_COMMAND;
    } else {
      status = -2;
    }
    this.served.push({ channel: ch.id, submitter, opcode: s.opcode, status });
    this.reply(ch, s.requestId, status, s.opcode);
  }

  private runTransaction(request: Uint8Array, submitter: number): number {
    if (request.length < 16 || request.length > 0x8000) return -1;
    const at = this.host.db.requestBuffer();
    const place = (): void => new Uint8Array(this.host.memory.buffer, at, request.length).set(request);
    place();
    let rc = this.host.db.submitRawAs(at, submitter);
    if (rc === -16) {
      // The ultravisor owns backups ([0099]): save, empty the log, run the request again.
      this.host.backup();
      place();
      rc = this.host.db.submitRawAs(at, submitter);
    }
    return rc;
  }

  private reply(ch: Channel, requestId: bigint, status: number, opcode: number): void {
    const sig = commandSignal({ opcode, flags: FLAG.FROM_SERVER | FLAG.COMPLETION, requestId, status, arg: 0 });
    if (!this.bus.send(ch, 1, "Ultravisor", sig)) throw new CommandChannelError(`response queue of channel ${ch.id} is full`);
  }

  /** An event to the resource service ([0186]: "sends an event through the command channel"). */
  notify(ch: Channel, opcode: number, partition: number): void {
    const sig = commandSignal({ opcode, flags: FLAG.FROM_SERVER, requestId: 0n, status: 0, arg: partition });
    if (!this.bus.send(ch, 1, "Ultravisor", sig)) throw new CommandChannelError(`event queue of channel ${ch.id} is full`);
  }
}

/** The client end, in the command partition (or in a guest that tries to act like one). */
export class CommandClient {
  private nextId = 1n;
  private readonly responses = new Map<bigint, number>();

  constructor(
    private readonly bus: ChannelBus,
    readonly channel: Channel,
    readonly me: string,
    private readonly onEvent: (e: CommandSignal) => void = () => {},
  ) {}

  /** Interrupt handler: queue 1 (responses and events) went non-empty. */
  onResponses(): void {
    for (const sig of this.bus.drain(this.channel, 1)) {
      const s = parseCommandSignal(sig);
      if (typeof s === "string") throw new CommandChannelError(`bad signal from the ultravisor: ${s}`);
      if (s.flags & FLAG.COMPLETION) this.responses.set(s.requestId, s.status);
      else this.onEvent(s);
    }
  }

  private call(opcode: number, arg: number, inline?: Uint8Array): number {
    const requestId = this.nextId++;
    const sig = commandSignal({ opcode, flags: FLAG.TO_SERVER, requestId, status: 0, arg, ...(inline ? { inline } : {}) });
    if (!this.bus.send(this.channel, 0, this.me, sig)) throw new CommandChannelError(`command channel of ${this.me} is full`);
    const status = this.responses.get(requestId);
    if (status === undefined) throw new CommandChannelError(`no response to request ${requestId} on the command channel of ${this.me}`);
    this.responses.delete(requestId);
    return status;
  }

  /** Sends a transaction; returns core's status (0 or a negative error code). */
  submit(tx: Transaction): number {
    return this.call(CMD.TRANSACTION, 0, encodeRequest(tx));
  }

  /** Asks the ultravisor to stop a partition ([0186]). */
  stop(partition: number): number {
    return this.call(CMD.STOP_PARTITION, partition);
  }
}
