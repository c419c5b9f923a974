// The command partition's resource service for one simulated host ([0090]–[0092], [0174]–[0177], [0204]): turns
// requests such as "create partition X of 4 GB" into the transactions of [0222]–[0224] and sends them to the
// ultravisor (core.wasm). It chooses memory; core checks and applies. Placement policy, documented in
// docs/spec-notes.md: database pages lowest-first in the first 4 GiB, partition memory highest-first, largest pages
// first, and the first 4 GiB last (it is where core can place descriptors). The database page, the grow, create and
// destroy transactions are built by the machine's own code — core/boot/assembly/resource-service.ts, run here by V8
// through Host.builders() (docs/specs/command-channel.md, "One resource service"; ADR 0017) — and only sent from here.
import { DbError, PN_MASK, REQUEST_MAX, decodeRequest, encodeRequest } from "../core/database.ts";
import { BOOT_ERRORS, CREATE_PAYLOAD, RUN_BYTES } from "../core/boot-module.ts";
import type { Host } from "./host.ts";
import { formatBytes, span } from "../core/mapview.ts";
import { KIND, type Op, pn } from "../core/notation.ts";

export interface Run {
  map: number;
  first: number;
  last: number;
}

export interface CreateRequest {
  name: string;
  principal?: string;
  kind?: number;
  /** Bytes; a multiple of 4 MiB unless `at` places the memory explicitly. */
  size?: bigint;
  /** Explicit placement: these entries (all owned by `from`) become the partition's. */
  at?: Run[];
  /** Owner the `at` entries come from (default Available; the ultravisor when it set them aside, as on bare metal). */
  from?: number;
}

const FOUR_GB = 1n << 32n;
const FOUR_MB = 1n << 22n;

export class ResourceService {
  private readonly byName = new Map<string, number>();
  private highHint = new Map<number, number>();
  /** No 4 KiB page below this one is Available (the builders' scan hint); 0 after anything was freed. */
  private dbHint = 0;

  constructor(readonly host: Host) {
    const mem = host.db.i32();
    for (const m of host.view.maps()) {
      if (m.scale !== 1) continue;
      const first = Number(m.base / 4096n);
      const at = (m.page * 4096) / 4;
      for (let i = 0; i < 1024; i++) {
        const p = first + i;
        if (mem[at + i] === p) {
          const d = host.db.readDescriptor(p);
          if (d && d.name) this.byName.set(d.name, p);
        }
      }
    }
  }

  private get ui() {
    return this.host.db.indexPage();
  }

  /** Partition number of a name or of "[G,M,K]". */
  resolve(who: string | number): number {
    if (typeof who === "number") return who;
    const p = this.byName.get(who);
    if (p !== undefined) return p;
    const m = /^\[(\d+),(\d+),(\d+)\]$/.exec(who.replace(/\s+/g, ""));
    if (m) return (Number(m[1]) * 1024 + Number(m[2])) * 1024 + Number(m[3]);
    throw new Error(`no partition named "${who}" (known: ${[...this.byName.keys()].join(", ") || "none"})`);
  }

  names(): ReadonlyMap<string, number> {
    return this.byName;
  }

  // ------------------------------------------------------------------------------------------ database pages

  /**
   * Where the builders write their request (core's request buffer) and read their inputs: its upper half, which a
   * request of at most `cap` bytes never reaches (the command channel carries at most 8128 bytes anyway).
   */
  private scratch(): { req: number; cap: number; runs: number; payload: number } {
    const req = this.host.db.requestBuffer();
    return { req, cap: REQUEST_MAX / 2, runs: req + REQUEST_MAX / 2, payload: req + CREATE_PAYLOAD.offset };
  }

  /**
   * A free 4 KiB page for a descriptor or map page (the builders' rs_alloc_db_page: the lowest Available one below
   * 4 GiB). Keeps one spare: when only one is left the builders' grow transaction makes it a new PKM that divides the
   * lowest Available 4 MiB page of the first 4 GiB ([0202]: large pages are divided into small pages for ultravisor
   * data structures).
   */
  allocDbPage(): { page: number; map: number; index: number } {
    this.growIfNeeded();
    const page = this.host.builders().allocDbPage(this.ui.index, this.dbHint);
    if (page === 0) throw new Error("no Available 4 KiB page left for database structures");
    this.dbHint = page;
    this.host.ensurePage(page);
    const leaf = this.host.view.leaf(BigInt(page) * 4096n);
    return { page, map: leaf.map, index: leaf.index };
  }

  /** The builders' grow transaction, sent when only the spare 4 KiB page is left (rs_build_grow). */
  private growIfNeeded(): void {
    const rs = this.host.builders();
    const ui = this.ui.index;
    const { req } = this.scratch();
    const n = rs.buildGrow(ui, req, this.dbHint);
    if (n < 0) {
      throw new Error(`no Available 4 KiB page left for database structures, and no Available 4 MiB page in the first 4 GiB to divide into more (${BOOT_ERRORS[n] ?? n})`);
    }
    if (n > 0) {
      const tx = decodeRequest(this.host.memory.buffer, req);
      const split = tx.ops[1];
      if (split?.op !== "split") throw new Error("the grow transaction's second record is not a Split");
      this.host.ensurePage(split.into);
      this.host.ensurePage((split.index + 1) * 1024 - 1);
      this.host.submit(tx, `grow database pages into ${pn(split.map)} entry ${split.index}`);
    }
  }

  // ------------------------------------------------------------------------------------------ partition memory

  /** Highest Available entry of scale s whose range starts at or above minBase, not in `taken`. */
  private highestAvail(s: number, minBase: bigint, taken: Set<number>): { map: number; index: number } | undefined {
    const avail = this.ui.avail;
    const mem = this.host.db.i32();
    const maps = this.host.view.mapsOfScaleDesc(s);
    const sp = span(s);
    for (const m of maps) {
      const hint = this.highHint.get(m.page) ?? 1023;
      if (hint < 0 || m.base + sp * 1024n <= minBase) continue;
      const lowest = m.base >= minBase ? 0 : Number((minBase - m.base + sp - 1n) / sp);
      const at = m.page * 1024;
      for (let i = hint; i >= lowest; i--) {
        if (mem[at + i] === avail && !taken.has(at + i)) {
          this.highHint.set(m.page, i);
          return { map: m.page, index: i };
        }
      }
      // Nothing Available from here down: remember it, unless the scan stopped early at minBase.
      if (lowest === 0) this.highHint.set(m.page, -1);
    }
    return undefined;
  }

  /** Splits the smallest-scale, highest Available entry above minBase whose pages are larger than 4 MiB. */
  private splitOne(minBase: bigint, taken: Set<number>): boolean {
    for (let s = 3; s <= this.host.order; s++) {
      const e = this.highestAvail(s, minBase, taken);
      if (!e) continue;
      const into = this.allocDbPage();
      this.host.submit({ ops: [
        ...this.host.takeForUltravisor(into.page),
        { op: "split", map: e.map, index: e.index, into: into.page, owner: this.ui.avail },
      ] }, `split ${pn(e.map)} entry ${e.index} for partition memory`);
      this.highHint.clear();
      return true;
    }
    return false;
  }

  /** Chooses Available entries covering `bytes`: largest pages first, highest addresses first, first 4 GiB last. */
  allocMemory(bytes: bigint): Run[] {
    checkPartitionSize(bytes);
    const taken = new Set<number>();
    const picks: Array<{ map: number; index: number }> = [];
    let remaining = bytes;
    for (const minBase of [FOUR_GB, 0n]) {
      while (remaining > 0n) {
        for (let s = this.host.order; s >= 2 && remaining > 0n; s--) {
          const sp = span(s);
          while (remaining >= sp) {
            const e = this.highestAvail(s, minBase, taken);
            if (!e) break;
            taken.add(e.map * 1024 + e.index);
            picks.push(e);
            remaining -= sp;
          }
        }
        if (remaining === 0n || !this.splitOne(minBase, taken)) break;
      }
    }
    if (remaining > 0n) {
      this.highHint.clear();
      throw new Error(`not enough Available memory: ${formatBytes(remaining)} of the ${formatBytes(bytes)} requested could not be placed (free memory by destroying a partition, or ask for less)`);
    }
    return toRuns(picks);
  }

  // ------------------------------------------------------------------------------------------ requests

  /** "create partition X of N bytes": the transaction of [0223], built by rs_build_create. Returns the new partition number. */
  create(req: CreateRequest): number {
    if (this.byName.has(req.name)) throw new Error(`a partition named "${req.name}" exists already (${pn(this.byName.get(req.name)!)})`);
    const principal = req.principal ?? `User${req.name}`;
    for (const [what, text] of [["partition name", req.name], ["principal", principal]] as const) {
      if (text.length > 16 || !/^[\x20-\x7e]*$/.test(text)) throw new RangeError(`${what} "${text}" must be at most 16 printable ASCII characters`);
    }
    const runs = req.at ?? this.allocMemory(req.size ?? 0n);
    this.growIfNeeded();
    const ui = this.ui;
    const at = this.scratch();
    const bytes = new Uint8Array(this.host.memory.buffer);
    const v = new DataView(this.host.memory.buffer);
    bytes.fill(0, at.payload, at.payload + CREATE_PAYLOAD.bytes);
    bytes.set(Buffer.from(req.name, "ascii"), at.payload + CREATE_PAYLOAD.name);
    bytes.set(Buffer.from(principal, "ascii"), at.payload + CREATE_PAYLOAD.principal);
    v.setUint32(at.payload + CREATE_PAYLOAD.kind, req.kind ?? KIND.Guest, true);
    if (at.runs + runs.length * RUN_BYTES > at.payload) throw new RangeError(`${runs.length} runs are more than one request holds`);
    runs.forEach((r, k) => {
      v.setUint32(at.runs + k * RUN_BYTES, r.map, true);
      v.setUint32(at.runs + k * RUN_BYTES + 4, r.first, true);
      v.setUint32(at.runs + k * RUN_BYTES + 8, r.last, true);
    });
    const from = req.at ? (req.from ?? ui.avail) : ui.avail;
    const rs = this.host.builders();
    const n = rs.buildCreate(ui.index, at.req, at.cap, at.payload, at.runs, runs.length, from, this.dbHint);
    if (n < 0) throw new DbError(n, -1, `create ${req.name} (${BOOT_ERRORS[n] ?? "refused"})`);
    const d = rs.created();
    this.dbHint = d;
    this.host.ensurePage(d);
    this.submitOrReset(decodeRequest(this.host.memory.buffer, at.req).ops, `create ${req.name}`);
    this.byName.set(req.name, d);
    return d;
  }

  /**
   * The transaction of [0224], built by rs_build_destroy: give back the memory, then retire the descriptor. `first`
   * are operations to run at the start of the same transaction (RemoveChannel of the partition's channels, [0186]).
   */
  destroy(who: string | number, first: Op[] = []): void {
    const p = this.resolve(who);
    const desc = this.host.view.leaf(BigInt(p) * 4096n);
    if (desc.owner !== p || desc.scale !== 1) throw new Error(`${pn(p)} is not a live partition`);
    const at = this.scratch();
    const prefix = encodeRequest({ ops: first }).subarray(16);
    new Uint8Array(this.host.memory.buffer).set(prefix, at.req + 16);
    const n = this.host.builders().buildDestroy(this.ui.index, at.req, REQUEST_MAX, p, prefix.length, first.length);
    if (n < 0) throw new DbError(n, -1, `destroy ${pn(p)} (${BOOT_ERRORS[n] ?? "refused"})`);
    this.submitOrReset(decodeRequest(this.host.memory.buffer, at.req).ops, `destroy ${pn(p)}`);
    for (const [n2, q] of this.byName) if (q === p) this.byName.delete(n2);
  }

  /** Merge of [0222]: one owner for all 1024 entries below `index` becomes the entry's owner; the map page is freed. */
  merge(map: number, index: number): void {
    const v = this.host.view.entry(map, index);
    if (v >= 0) throw new Error(`Map${pn(map)} Index(${index}) is not subdivided (it holds ${pn(v)})`);
    const from = v & PN_MASK;
    const owner = this.host.view.entry(from, 0);
    const page = this.host.view.leaf(BigInt(from) * 4096n);
    this.submitOrReset([
      { op: "merge", map, index, from, owner },
      { op: "changeOwner", map: page.map, first: page.index, last: page.index, from: this.ui.ultra, to: this.ui.avail },
    ], `merge Map${pn(map)} Index(${index})`);
  }

  /** Split of [0222]: a fresh map page divides the entry into 1024 entries of the same owner. */
  split(map: number, index: number, into?: number): number {
    const owner = this.host.view.entry(map, index);
    if (owner < 0) throw new Error(`Map${pn(map)} Index(${index}) is already subdivided`);
    const page = into ?? this.allocDbPage().page;
    this.host.ensurePage(page);
    this.submitOrReset([...this.host.takeForUltravisor(page), { op: "split", map, index, into: page, owner }], `split Map${pn(map)} Index(${index})`);
    return page;
  }

  private submitOrReset(ops: Op[], what: string): void {
    try {
      this.host.submit({ ops }, what);
    } catch (e) {
      if (e instanceof DbError) {
        this.highHint.clear();
        this.dbHint = 0;
      }
      throw e;
    } finally {
      // Frees move the lowest free page down; any transaction may have freed something.
      if (ops.some((o) => o.op === "changeOwner" && o.to === this.ui.avail)) {
        this.highHint.clear();
        this.dbHint = 0;
      }
    }
  }
}

function toRuns(picks: Array<{ map: number; index: number }>): Run[] {
  const byMap = new Map<number, number[]>();
  for (const p of picks) byMap.set(p.map, [...(byMap.get(p.map) ?? []), p.index]);
  const runs: Run[] = [];
  for (const [map, idx] of byMap) {
    idx.sort((a, b) => a - b);
    for (let i = 0; i < idx.length; i++) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1] === idx[j]! + 1) j++;
      runs.push({ map, first: idx[i]!, last: idx[j]! });
      i = j;
    }
  }
  return runs;
}

/** Partition memory comes in 4 MiB pages at least (4 KiB pages are the database's, docs/spec-notes.md). */
export function checkPartitionSize(bytes: bigint): void {
  if (bytes <= 0n || bytes % FOUR_MB !== 0n) {
    throw new RangeError(`partition size ${formatBytes(bytes)} is not a positive multiple of 4 MB (the smallest page a partition gets): round it up`);
  }
}
