// Typed access to the resource database inside core.wasm (docs/specs/memory-layout.md): encodes transactions into
// the binary request format, calls db_submit, decodes the audit log back into transactions, and reads the map.
// Logic stays in core; this file only moves bytes between TypeScript objects and linear memory. Part of core's
// TypeScript bindings (bottom layer): the simulator, the generators (PD_MAGIC, privateArea) and the tests use it.
import type { Core } from "./wasm.ts";
import type { WasmMemory } from "./webassembly.ts";
import { type Descriptor, type Op, type Transaction, pn } from "./notation.ts";

export const PAGE = 4096;
export const REQUEST_MAX = 0x8000;

/**
 * The ultravisor's private 4 MiB page [0,M,*] (memory-layout.md §5): M is chosen at bootstrap and recorded in the
 * index page; the simulator's default is 2 (8–12 MiB), the loader picks one from the firmware's map.
 */
export const DEFAULT_PRIVATE = 2;
export interface PrivateArea {
  /** M of [0,M,*]. */
  private: number;
  /** Physical (= wasm) address of the page. */
  base: number;
  /** Core's commit scratch, the host's request buffer, the map directory (addresses). */
  scratch: number;
  requestBuffer: number;
  directory: number;
  /** The default audit-log region: page number and pages. */
  logBase: number;
  logPages: number;
  /** Address just past the 4 MiB page. */
  end: number;
}
/** Bytes of a 4 MiB page (a map entry of scale 2: a PKM's span). */
export const FOUR_MIB = 1 << 22;
/**
 * The private page's offsets and its pages that are core's (memory-layout.md §5); core/assembly/lib/layout.ts holds
 * the same numbers for core.wasm (PRIV_*, PRIVATE_PAGES), and core/layout.test.ts fails when the two differ.
 */
export const PRIVATE = { scratch: 0x4000, requestBuffer: 0x8000, directory: 0x1_0000, corePages: 528 } as const;
export function privateArea(m: number): PrivateArea {
  const base = m * FOUR_MIB;
  const logBase = m * 1024 + PRIVATE.corePages;
  return {
    private: m, base, scratch: base + PRIVATE.scratch, requestBuffer: base + PRIVATE.requestBuffer, directory: base + PRIVATE.directory,
    logBase, logPages: (m + 1) * 1024 - logBase, end: base + FOUR_MIB,
  };
}
/** The default private area's request buffer (tests and benches that place raw requests). */
export const REQUEST_BUFFER = privateArea(DEFAULT_PRIVATE).requestBuffer;
export const REF_BIT = 0x80000000;
export const PN_MASK = 0x3fffffff;
/** A partition descriptor's magic, "UVPD" (memory-layout.md §4). */
export const PD_MAGIC = 0x44505655;
/** A request's magic, "UVTR" (memory-layout.md §5.3). */
export const REQ_MAGIC = 0x52545655;

/** Record types of requests and audit-log records (memory-layout.md §5.2, §5.3). */
export const REC = {
  begin: 1, changeOwner: 2, initialize: 3, destroy: 4, split: 5, merge: 6, defineChannel: 7, assignServer: 8,
  removeChannel: 9, setCommand: 10, rejected: 11, commit: 15,
} as const;
export const LOG_LEN: Record<number, number> = { 2: 32, 3: 144, 4: 80, 5: 4120, 6: 32, 7: 24, 8: 24, 9: 24, 10: 16 };
/** Index page offsets of memory-layout.md §3 and §11.2. */
export const UI_COMMAND = 52;
export const UI_CHANNELS = 1024;
export const CHANNEL_SLOTS = 192;

export const ERRORS: Record<number, { name: string; text: string }> = {
  [-1]: { name: "MALFORMED", text: "malformed request or record" },
  [-2]: { name: "UNKNOWN_OP", text: "unknown operation type" },
  [-3]: { name: "INDEX_RANGE", text: "index outside 0..1023 or first > last" },
  [-4]: { name: "ADDRESS", text: "page or address outside memory or outside the map's order" },
  [-5]: { name: "NOT_MAP_PAGE", text: "the page named as a map is not a live map page" },
  [-6]: { name: "BAD_PARTITION", text: "not a valid partition number" },
  [-7]: { name: "NO_SUCH_PARTITION", text: "no live descriptor for that partition number" },
  [-8]: { name: "OWNER_MISMATCH", text: "precondition failed: the entry does not hold the stated before-image" },
  [-9]: { name: "NOT_UNIFORM", text: "merge: the 1024 entries do not all have the stated owner" },
  [-10]: { name: "NOT_ULTRAVISOR_PAGE", text: "the page is not a 4 KiB page owned by the ultravisor" },
  [-11]: { name: "PAGE_IN_USE", text: "the page holds a live map, index, log, private page or descriptor" },
  [-12]: { name: "PARTITION_EXISTS", text: "the partition is already initialized" },
  [-13]: { name: "PROTECTED", text: "a partition named by the Ultravisor Index cannot be destroyed" },
  [-14]: { name: "SCALE", text: "a 4 KiB entry cannot be split" },
  [-15]: { name: "DESCRIPTOR_OWNER", text: "a live descriptor page must own itself (and only a live one may)" },
  [-16]: { name: "LOG_FULL", text: "the audit log is full: take a backup" },
  [-17]: { name: "NOT_ATTACHED", text: "no valid Ultravisor Index attached" },
  [-18]: { name: "LOG_CORRUPT", text: "the audit log is malformed" },
  [-19]: { name: "TOO_LARGE", text: "request too large" },
  [-20]: { name: "CORRUPT", text: "the map is inconsistent" },
  [-21]: { name: "NOT_COMMAND", text: "after boot only the command partition may submit transactions" },
  [-22]: { name: "WRONG_KIND", text: "the partition is not of the kind the operation needs" },
  [-23]: { name: "CHANNEL_IN_USE", text: "a server is still connected to the channel, or the partition still has channels" },
  [-24]: { name: "NO_SUCH_CHANNEL", text: "no channel of that client in that slot" },
  [-25]: { name: "CHANNEL_EXISTS", text: "the channel slot is in use" },
};

export function errorName(code: number): string {
  return ERRORS[code]?.name ?? `ERROR(${code})`;
}

/** A transaction core rejected: the code, its name and which operation failed. */
export class DbError extends Error {
  override name = "DbError";
  constructor(readonly code: number, readonly opIndex: number, context: string) {
    const e = ERRORS[code];
    super(`${context}: ${e ? `${e.name}: ${e.text}` : `error ${code}`}${opIndex >= 0 ? ` (operation ${opIndex + 1})` : ""}`);
  }
}

export interface LogHeader {
  capacity: number;
  head: number;
  committedEnd: number;
  txCount: number;
  nextSeq: number;
  baseSeq: number;
  inFlight: boolean;
  /** Submissions refused by db_submit_as, ever (memory-layout.md §11.1). */
  rejected: number;
}

/** An audited refusal (REJECTED record) found in the log. */
export interface Rejection {
  submitter: number;
  code: number;
  /** The sequence number the next transaction got: where in the history the refusal happened. */
  nextSeq: number;
}

/** One slot of the channel table (memory-layout.md §11.2). */
export interface ChannelSlot {
  slot: number;
  client: number;
  server: number;
  base: number;
  pages: number;
  type: number;
}

export interface IndexPage {
  mapHigh: number;
  top: number;
  order: number;
  index: number;
  ultra: number;
  avail: number;
  missing: number;
  idle: number;
  boot: number;
  logBase: number;
  logPages: number;
  hostBytes: bigint;
  /** M of the ultravisor's private 4 MiB page [0,M,*]. */
  private: number;
}

type Fn = (...a: number[]) => number;

export class Database {
  private readonly fn: Record<string, Fn>;

  constructor(readonly core: Core) {
    this.fn = core.exports as Record<string, Fn>;
  }

  get memory(): WasmMemory {
    return this.core.memory;
  }

  private dv: DataView | undefined;
  private words: Int32Array | undefined;

  /** A DataView over all of linear memory, made again only when the memory has grown (its buffer changed). */
  private view(): DataView {
    const b = this.core.memory.buffer;
    if (this.dv?.buffer !== b) this.dv = new DataView(b);
    return this.dv;
  }

  /** Map entries as Int32 over all of linear memory (the same array until the memory grows). */
  i32(): Int32Array {
    const b = this.core.memory.buffer;
    if (this.words?.buffer !== b) this.words = new Int32Array(b);
    return this.words;
  }

  attach(ui: number): void {
    const rc = this.fn.db_attach!(ui);
    if (rc < 0) throw new DbError(rc, -1, `attach Ultravisor Index ${pn(ui)}`);
  }

  /** The request buffer of the attached database's private area (the default area's before attach). */
  requestBuffer(): number {
    const a = this.fn.db_private_address!() >>> 0;
    return a === 0 ? REQUEST_BUFFER : a + PRIVATE.requestBuffer;
  }

  /** Encodes the transaction as a request (memory-layout.md §5.3) into the request buffer; returns its length. */
  encode(tx: Transaction, at = this.requestBuffer()): number {
    const bytes = encodeRequest(tx);
    new Uint8Array(this.core.memory.buffer, at, bytes.length).set(bytes);
    return bytes.length;
  }

  /** Runs the transaction; returns 0 or the negative error code (see ERRORS, failedOp()). */
  trySubmit(tx: Transaction): number {
    const at = this.requestBuffer();
    this.encode(tx, at);
    return this.fn.db_submit!(at);
  }

  /** The command channel's path (memory-layout.md §11.1): refused and audited unless `submitter` is the command partition. */
  trySubmitAs(tx: Transaction, submitter: number): number {
    const at = this.requestBuffer();
    this.encode(tx, at);
    return this.fn.db_submit_as!(at, submitter >>> 0);
  }

  /** db_submit_as on a request already placed at `at` (the command channel's server copies requests there). */
  submitRawAs(at: number, submitter: number): number {
    return this.fn.db_submit_as!(at, submitter >>> 0);
  }

  /** The designated command partition, 0 while the host boots. */
  commandPartition(): number {
    const rc = this.fn.db_command!();
    if (rc < 0) throw new DbError(rc, -1, "read the command partition");
    return rc >>> 0;
  }

  /** The channel table's used slots. */
  channels(): ChannelSlot[] {
    const a = this.fn.db_ui_address!() >>> 0;
    if (a === 0) throw new DbError(-17, -1, "read the channel table");
    const v = this.view();
    const out: ChannelSlot[] = [];
    for (let s = 0; s < CHANNEL_SLOTS; s++) {
      const e = a + UI_CHANNELS + s * 16;
      const client = v.getUint32(e, true);
      if (client === 0) continue;
      out.push({ slot: s, client, server: v.getUint32(e + 4, true), base: v.getUint32(e + 8, true), pages: v.getUint16(e + 12, true), type: v.getUint8(e + 14) });
    }
    return out;
  }

  /** Submits a request already placed at `at` (raw bytes, for malformed-input tests and benches). */
  submitRaw(at: number): number {
    return this.fn.db_submit!(at);
  }

  failedOp(): number {
    return this.fn.db_failed_op!();
  }

  recover(): number {
    const rc = this.fn.db_recover!();
    if (rc < 0) throw new DbError(rc, -1, "recover");
    return rc;
  }

  truncateLog(): void {
    const rc = this.fn.db_log_truncate!();
    if (rc < 0) throw new DbError(rc, -1, "truncate log");
  }

  /** Re-applies the log's committed transactions with sequence ≥ fromSeq; returns how many. */
  replay(fromSeq = 0): number {
    const rc = this.fn.db_replay!(fromSeq);
    if (rc < 0) throw new DbError(rc, this.failedOp(), "replay");
    return rc;
  }

  /** GetMemOwner ([0210]) of a byte address; negative = error code. */
  owner(addr: bigint): number {
    return this.fn.db_get_owner!(Number(addr & 0xffffffffn) | 0, Number(addr >> 32n) | 0);
  }

  ownerBatch(addrs: number, n: number, out: number): number {
    return this.fn.db_get_owner_batch!(addrs, n, out);
  }

  bootstrap(paramsAddr: number): number {
    return this.fn.db_bootstrap!(paramsAddr);
  }

  indexPage(): IndexPage {
    const a = this.fn.db_ui_address!() >>> 0;
    if (a === 0) throw new DbError(-17, -1, "read index page");
    // Read as u32 words directly (no closure: this runs on every placement, several times).
    const w = new Uint32Array(this.core.memory.buffer, a, 17);
    return {
      mapHigh: w[2]!, top: w[3]!, order: w[4]!, index: w[5]!, ultra: w[6]!, avail: w[7]!, missing: w[8]!, idle: w[9]!,
      boot: w[10]!, logBase: w[11]!, logPages: w[12]!, hostBytes: BigInt(w[14]!) | (BigInt(w[15]!) << 32n), private: w[16]!,
    };
  }

  logAddress(): number {
    return this.fn.db_log_address!() >>> 0;
  }

  logHeader(): LogHeader {
    const a = this.logAddress();
    const v = this.view();
    const u = (o: number): number => v.getUint32(a + o, true);
    return {
      capacity: u(4), head: u(8), committedEnd: u(12), txCount: u(16), nextSeq: u(20), baseSeq: u(24), inFlight: u(28) !== 0,
      rejected: u(32),
    };
  }

  /** The committed transactions in the audit log (since the last backup), decoded. */
  readLog(): Transaction[] {
    return this.readAudit().transactions;
  }

  /** The audit log since the last backup: committed transactions and audited refusals, each in log order. */
  readAudit(): { transactions: Transaction[]; rejections: Rejection[] } {
    return this.readAuditFrom(0);
  }

  /**
   * The audit log's records from byte `from` of the record area (0, or an `end` this returned earlier for the same
   * log: same baseSeq, committedEnd not below it) to the committed end, and where they end. A reader that follows
   * the log with this decodes each record once, so following N commits costs O(N), not O(N^2).
   */
  readAuditFrom(from: number): { transactions: Transaction[]; rejections: Rejection[]; end: number } {
    const h = this.logHeader();
    const v = this.view();
    const base = this.logAddress() + 64;
    const txs: Transaction[] = [];
    const rejections: Rejection[] = [];
    if (from > h.committedEnd) throw new RangeError(`audit log: offset ${from} is past the committed end ${h.committedEnd}`);
    let off = from;
    while (off < h.committedEnd) {
      if (v.getUint8(base + off) === REC.rejected) {
        rejections.push({ submitter: v.getUint32(base + off + 8, true), code: v.getInt32(base + off + 12, true), nextSeq: v.getUint32(base + off + 16, true) });
        off += 24;
        continue;
      }
      if (v.getUint8(base + off) !== REC.begin) throw new Error(`audit log: expected BEGIN at offset ${off}`);
      const seq = v.getUint32(base + off + 8, true);
      const n = v.getUint32(base + off + 12, true);
      off += 16;
      const ops: Op[] = [];
      for (let k = 0; k < n; k++) {
        const r = base + off;
        ops.push(decodeOp(v, r));
        off += LOG_LEN[v.getUint8(r)] ?? 0;
      }
      if (v.getUint8(base + off) !== REC.commit) throw new Error(`audit log: expected COMMIT at offset ${off}`);
      off += 16;
      txs.push({ ops, seq });
    }
    return { transactions: txs, rejections, end: off };
  }

  readDescriptor(p: number): (Descriptor & { me: number }) | undefined {
    const a = p * PAGE;
    if (a + 64 > this.core.memory.buffer.byteLength) return undefined;
    const v = this.view();
    if (v.getUint32(a, true) !== PD_MAGIC || v.getUint32(a + 4, true) !== p) return undefined;
    return { me: p, kind: v.getUint32(a + 8, true), name: readAscii(v, a + 16), principal: readAscii(v, a + 32) };
  }
}

/** A transaction as the bytes of a request (memory-layout.md §5.3): what travels on the command channel. */
export function encodeRequest(tx: Transaction): Uint8Array {
  let off = 16;
  const need = 16 + tx.ops.reduce((n, op) => n + requestLength(op), 0);
  if (need > REQUEST_MAX) throw new RangeError(`request of ${need} bytes exceeds ${REQUEST_MAX}`);
  const out = new Uint8Array(need);
  const v = new DataView(out.buffer);
  for (const op of tx.ops) {
    const r = off;
    const len = requestLength(op);
    v.setUint8(r, REC[op.op]);
    v.setUint32(r + 4, len, true);
    switch (op.op) {
      case "changeOwner":
        v.setUint32(r + 8, op.map, true);
        v.setUint32(r + 12, op.first, true);
        v.setUint32(r + 16, op.last, true);
        v.setUint32(r + 20, op.from >>> 0, true);
        v.setUint32(r + 24, op.to >>> 0, true);
        break;
      case "initialize":
        v.setUint32(r + 8, op.partition >>> 0, true);
        writeDescriptor(v, r + 16, op.partition, op.descriptor);
        break;
      case "destroy":
        v.setUint32(r + 8, op.partition >>> 0, true);
        break;
      case "split":
        v.setUint32(r + 8, op.map, true);
        v.setUint32(r + 12, op.index, true);
        v.setUint32(r + 16, op.into, true);
        v.setUint32(r + 20, op.owner >>> 0, true);
        break;
      case "merge":
        v.setUint32(r + 8, op.map, true);
        v.setUint32(r + 12, op.index, true);
        v.setUint32(r + 16, op.from, true);
        v.setUint32(r + 20, op.owner >>> 0, true);
        break;
      case "defineChannel":
        v.setUint32(r + 8, op.slot, true);
        v.setUint32(r + 12, op.client >>> 0, true);
        v.setUint32(r + 16, op.base >>> 0, true);
        v.setUint16(r + 20, op.pages, true);
        v.setUint8(r + 22, op.type);
        break;
      case "assignServer":
        v.setUint32(r + 8, op.slot, true);
        v.setUint32(r + 12, op.client >>> 0, true);
        v.setUint32(r + 16, op.server >>> 0, true);
        v.setUint32(r + 20, op.from >>> 0, true);
        break;
      case "removeChannel":
        v.setUint32(r + 8, op.slot, true);
        v.setUint32(r + 12, op.client >>> 0, true);
        break;
      case "setCommand":
        v.setUint32(r + 8, op.to >>> 0, true);
        v.setUint32(r + 12, op.from >>> 0, true);
        break;
    }
    off += len;
  }
  v.setUint32(0, REQ_MAGIC, true);
  v.setUint32(4, need, true);
  v.setUint32(8, tx.ops.length, true);
  return out;
}

/**
 * The transaction a request (memory-layout.md §5.3) at `at` of `mem` holds: what a builder of the resource service
 * (core/boot/assembly/resource-service.ts) wrote, read back so that it travels by whatever path the caller uses. The
 * request is checked as core checks it (magic, length within REQUEST_MAX, each record's length its type's, the
 * records ending where the header says); a malformed one throws.
 */
export function decodeRequest(mem: ArrayBufferLike, at: number): Transaction {
  const v = new DataView(mem);
  if (at < 0 || at + 16 > v.byteLength || v.getUint32(at, true) !== REQ_MAGIC) throw new RangeError(`no request at ${at}: bad magic`);
  const bytes = v.getUint32(at + 4, true);
  const count = v.getUint32(at + 8, true);
  if (bytes < 16 || bytes > REQUEST_MAX || at + bytes > v.byteLength) throw new RangeError(`request at ${at}: length ${bytes} out of range`);
  const ops: Op[] = [];
  let r = at + 16;
  for (let k = 0; k < count; k++) {
    if (r + 8 > at + bytes) throw new RangeError(`request at ${at}: record ${k} past its end`);
    const op = decodeOp(v, r);
    const len = v.getUint32(r + 4, true);
    if (len !== requestLength(op) || r + len > at + bytes) throw new RangeError(`request at ${at}: record ${k} (${op.op}) has length ${len}`);
    ops.push(op);
    r += len;
  }
  if (r !== at + bytes) throw new RangeError(`request at ${at}: ${at + bytes - r} bytes after its ${count} records`);
  return { ops };
}

export function requestLength(op: Op): number {
  switch (op.op) {
    case "changeOwner": return 32;
    case "initialize": return 80;
    case "destroy": return 16;
    case "split": return 24;
    case "merge": return 24;
    case "defineChannel": return 24;
    case "assignServer": return 24;
    case "removeChannel": return 24;
    case "setCommand": return 16;
  }
}

function writeAscii(v: DataView, at: number, s: string, what: string): void {
  if (s.length > 16 || !/^[\x20-\x7e]*$/.test(s)) throw new RangeError(`${what} "${s}" must be at most 16 printable ASCII characters`);
  for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
}

function readAscii(v: DataView, at: number): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    const c = v.getUint8(at + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

function writeDescriptor(v: DataView, at: number, p: number, d: Descriptor): void {
  v.setUint32(at, PD_MAGIC, true);
  v.setUint32(at + 4, p >>> 0, true);
  v.setUint32(at + 8, d.kind, true);
  writeAscii(v, at + 16, d.name, "partition name");
  writeAscii(v, at + 32, d.principal, "principal");
}

function decodeOp(v: DataView, r: number): Op {
  const u = (o: number): number => v.getUint32(r + o, true);
  switch (v.getUint8(r)) {
    case REC.changeOwner:
      return { op: "changeOwner", map: u(8), first: u(12), last: u(16), from: u(20), to: u(24) };
    case REC.initialize:
      return {
        op: "initialize", partition: u(8),
        descriptor: { kind: u(24), name: readAscii(v, r + 32), principal: readAscii(v, r + 48) },
      };
    case REC.destroy:
      return { op: "destroy", partition: u(8) };
    case REC.split:
      return { op: "split", map: u(8), index: u(12), into: u(16), owner: u(20) };
    case REC.merge:
      return { op: "merge", map: u(8), index: u(12), from: u(16), owner: u(20) };
    case REC.defineChannel:
      return { op: "defineChannel", slot: u(8), client: u(12), base: u(16), pages: v.getUint16(r + 20, true), type: v.getUint8(r + 22) };
    case REC.assignServer:
      return { op: "assignServer", slot: u(8), client: u(12), server: u(16), from: u(20) };
    case REC.removeChannel:
      return { op: "removeChannel", slot: u(8), client: u(12) };
    case REC.setCommand:
      return { op: "setCommand", to: u(8), from: u(12) };
    default:
      throw new Error(`audit log: unknown record type ${v.getUint8(r)} at ${r}`);
  }
}
