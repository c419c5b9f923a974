// Typed TypeScript face of core.wasm's memory channels (the chan_* exports, docs/specs/channel-abi.md): loading core,
// typed exports, decoding queue headers from linear memory and small helpers to carve channel memory out of it.
// Part of core's TypeScript bindings (bottom layer, imports nothing of ours outside core/); used by the simulator,
// the image builder (channel type numbers), tests and benches.
import { loadCore, typedExports, type Core, type LoadOptions } from "./wasm.ts";
import { CHANNEL_HEADER, CHANNEL_HEADER_BYTES, QUEUE_HEADER, QUEUE_HEADER_BYTES } from "./channel-layout.ts";

/** The chan_* exports, typed. Addresses are linear-memory (= host physical) byte addresses. */
export interface ChanExports {
  chan_format_bytes(nqueues: number, signalSize: number, maxSlots: number): number;
  chan_format(base: number, size: number, nqueues: number, signalSize: number, maxSlots: number, type: number): number;
  chan_queue_init(base: number, len: number, q: number, sigBase: bigint, signalSize: number, maxSlots: number, role: number): number;
  chan_check(base: number, len: number): number;
  chan_insert(base: number, len: number, q: number, src: number): number;
  chan_remove(base: number, len: number, q: number, dst: number): number;
  chan_pending(base: number, len: number, q: number): number;
  chan_irq_received(base: number, len: number, q: number): number;
  chan_pump(base: number, len: number, q: number, src: number, dst: number, n: number): number;
  chan_set_identity(base: number, len: number, partition: bigint, handle: bigint, partitionIndex: number, zone: number): number;
  chan_set_features(base: number, len: number, features: bigint): number;
  chan_set_misc(base: number, len: number, cliStr: number, characteristic: number, cmdCli: number, cmdSrv: number): number;
  chan_set_errors(base: number, len: number, errBoot: number, errOs: number, recover: number): number;
  chan_server_state_set(base: number, len: number, state: number): number;
  chan_client_transition_ok(o: number, n: number): number;
  chan_client_state_set(base: number, len: number, which: number, state: number): number;
  chan_type_known(type: number): number;
  chan_type_guid(type: number, dst: number): number;
  chan_type_rule(type: number, role: number): number;
  chan_type_zone(type: number): number;
  chan_cardinality_check(role: number, types: number, n: number): number;
  chan_effective(role: number, types: number, n: number, out: number): number;
  chan_cdb_add_mdl(sig: number, signalSize: number, address: bigint, length: number): number;
  chan_cdb_validate(sig: number, signalSize: number, ranges: number, nranges: number, outIndex: number): number;
}

const CHAN_EXPORTS = [
  "chan_format_bytes", "chan_format", "chan_queue_init", "chan_check", "chan_insert", "chan_remove", "chan_pending",
  "chan_irq_received", "chan_pump", "chan_set_identity", "chan_set_features", "chan_set_misc", "chan_set_errors",
  "chan_server_state_set", "chan_client_transition_ok", "chan_client_state_set", "chan_type_known", "chan_type_guid",
  "chan_type_rule", "chan_type_zone", "chan_cardinality_check", "chan_effective", "chan_cdb_add_mdl",
  "chan_cdb_validate",
] as const;

/** Status codes of the queue exports (section 3). */
export const Q = { TRANSITION: 1, OK: 0, FULL_OR_EMPTY: -1, BAD_CHANNEL: -2, BAD_QUEUE: -3, BAD_ARGUMENT: -4 } as const;

/** Server states of a channel header's srv_state (section 1). */
export const ServerState = { uninitialized: 0, ready: 1 } as const;

/** Channel type codes (section 5). */
export const ChannelType = {
  control: 0, command: 1, boot: 2, console: 3, storage: 4, network: 5, power: 6, memory: 7, processor: 8,
} as const;
export type ChannelTypeName = keyof typeof ChannelType;

export function chanExports(core: Core): ChanExports {
  return typedExports<ChanExports>(core, CHAN_EXPORTS, "channel");
}

/** core.wasm and its channel exports; `hw` entries override core/wasm.ts's defaults (a test may spy on mfence). */
export async function loadChannelCore(opts: LoadOptions = {}): Promise<{ core: Core; chan: ChanExports }> {
  const core = await loadCore(opts);
  return { core, chan: chanExports(core) };
}

/**
 * Fresh zeroed linear memory of at least `bytes` (whole 64 KiB pages), from the memory's owner (Core.carve) or taken
 * by growing the memory: never overlaps core's own data.
 */
export function carve(core: Core, bytes: number): number {
  if (core.carve) return core.carve(Math.max(1, Math.ceil(bytes / 65536)) * 65536);
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  const old = core.memory.grow(pages);
  return old * 65536;
}

export interface QueueHeader {
  version: number; chtype: number; size: bigint; sigBaseOffset: bigint; features: bigint; numSent: bigint;
  numOverflows: bigint; signalSize: number; maxSlots: number; maxSignals: number; head: number;
  numReceived: bigint; tail: number; numIrqReceived: bigint; numEmpty: bigint; errorflags: number;
}

/** Channel offset of queue q's header. */
export function queueOffset(buf: ArrayBuffer, base: number, q: number): number {
  return Number(new DataView(buf, base, CHANNEL_HEADER_BYTES).getBigUint64(CHANNEL_HEADER.ch_space_offset, true)) + q * QUEUE_HEADER_BYTES;
}

/** Decodes queue q's header (offsets of section 2). */
export function readQueueHeader(buf: ArrayBuffer, base: number, q: number): QueueHeader {
  const v = new DataView(buf, base + queueOffset(buf, base, q), QUEUE_HEADER_BYTES);
  const u32 = (o: number): number => v.getUint32(o, true);
  const u64 = (o: number): bigint => v.getBigUint64(o, true);
  const H = QUEUE_HEADER;
  return {
    version: u32(H.version), chtype: u32(H.chtype), size: u64(H.size), sigBaseOffset: u64(H.sig_base_offset),
    features: u64(H.features), numSent: u64(H.num_sent), numOverflows: u64(H.num_overflows), signalSize: u32(H.signal_size),
    maxSlots: u32(H.max_slots), maxSignals: u32(H.max_signals), head: u32(H.head), numReceived: u64(H.num_received),
    tail: u32(H.tail), numIrqReceived: u64(H.num_irq_received), numEmpty: u64(H.num_empty), errorflags: u32(H.errorflags),
  };
}

const RULE_NAMES = ["all of zero or more", "all of one or more", "exactly one", "zero or one",
  "highest rank of zero or more", "highest rank of one or more"];

/**
 * Enforces the cardinality rules of docs/specs/channel-abi.md section 5 on a partition definition's channel list
 * (in channel-number order) through core's chan_cardinality_check; throws a ChannelDefinitionError naming the type,
 * the rule and what is wrong.
 */
export function checkCardinality(core: Core, chan: ChanExports, role: "guest" | "host", types: ChannelTypeName[]): void {
  const codes = types.map((t) => {
    const c = ChannelType[t];
    if (c === undefined) throw new ChannelDefinitionError(`unknown channel type "${String(t)}"; known: ${Object.keys(ChannelType).join(", ")}`);
    return c;
  });
  const at = carveScratch(core, Math.max(1, codes.length));
  new Uint8Array(core.memory.buffer).set(codes, at);
  const r = chan.chan_cardinality_check(role === "guest" ? 0 : 1, at, codes.length);
  if (r === 0) return;
  const kind = r & 0xff;
  const type = (r >> 8) & 0xff;
  const name = Object.keys(ChannelType)[type] ?? String(type);
  const rule = RULE_NAMES[chan.chan_type_rule(type, role === "guest" ? 0 : 1)] ?? "?";
  const count = codes.filter((c) => c === type).length;
  if (kind === 1) throw new ChannelDefinitionError(`a ${role} needs ${rule} ${name} channel, and the definition has ${count}`);
  if (kind === 2) throw new ChannelDefinitionError(`a ${role} may have ${rule} ${name} channel, and the definition has ${count}`);
  throw new ChannelDefinitionError(`core rejected the channel list (code ${r})`);
}

export class ChannelDefinitionError extends Error {
  override name = "ChannelDefinitionError";
}

const scratchByCore = new WeakMap<Core, { at: number; size: number }>();

/** A reusable scratch buffer in core memory for short-lived arguments. */
function carveScratch(core: Core, bytes: number): number {
  const s = scratchByCore.get(core);
  if (s && s.size >= bytes) return s.at;
  const at = carve(core, bytes);
  scratchByCore.set(core, { at, size: Math.ceil(bytes / 65536) * 65536 });
  return at;
}
