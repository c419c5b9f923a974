// The simulated host: host physical memory, core.wasm instantiated over it, and the boot partition's part in building
// the resource database from a firmware-style memory map ([0102]–[0109], Fig. 8) — run by the boot partition's own
// module (core/boot/assembly/boot.ts, the wasm the image AOT-compiles) in V8, whose memory is the host's. Also
// backups, fault injection at hw.flush (a processor failure mid-transaction) and replay checks. The database's
// starting layout (defaultLayout, orderFor, FirmwareRegion) is core's, in core/db-layout.ts.
import { type Core, InjectedFault, instantiateCore, coreModule } from "../core/wasm.ts";
import { WA, type WasmMemory } from "../core/webassembly.ts";
import { Database, DbError, PAGE, REC, privateArea } from "../core/database.ts";
import { defaultLayout, layoutAt, orderFor, type FirmwareRegion, type Layout } from "../core/db-layout.ts";
import { MapView, span } from "../core/mapview.ts";
import { formatTransaction, type Op, type Transaction, pn } from "../core/notation.ts";
import type { HostArena } from "./arena.ts";
import { BOOT_ERRORS, BOOT_OPS_BYTES, CREATE_PAYLOAD, UEFI_DESCRIPTOR, bootModule, instantiateBootModule, uefiDescriptors, type BootModule } from "../core/boot-module.ts";

export interface HostConfig {
  /** Installed memory in bytes (the firmware map's usable total when `firmware` is absent). */
  memory: bigint;
  firmware?: FirmwareRegion[];
  /** Map order 2–5; default: the smallest that covers `memory`. */
  order?: number;
  layout?: Partial<Layout>;
  /**
   * An inclusive page-number range in the database's 4 MiB page reserved for the ultravisor ([0217]): given to it after
   * the boot's backup point, as the machine gives its ultravisor region (at most one range).
   */
  reserve?: Array<[number, number]>;
  /**
   * The machine's ultravisor region [lo, hi) and, inside it, the partitions' allotments [lo, hi) (marked at 4 KiB
   * granularity): given to the ultravisor after the backup point exactly as the boot module does on the machine
   * (test/hw/ultravisor.test.ts). The transactions stay in the log, as on the machine.
   */
  ultravisorRegion?: { region: [bigint, bigint]; allotments?: [bigint, bigint] };
  /** Entries split at boot ([0219] entry 15 of the example). */
  presplit?: Array<{ map: number; index: number; into: number }>;
  /** Keep a copy of the database at each backup (for replay checks). Default true; large hosts may turn it off. */
  keepBackup?: boolean;
  /**
   * Boot in the next slot of this arena (sim/arena.ts) instead of a memory of the host's own: the database and its
   * private page move to the slot's 4 MiB pages (any `layout` given is refused), and the host may touch no other page.
   */
  arena?: HostArena;
}

const WASM_PAGE = 65536;
const MAX_WASM_PAGES = 65536;

export type TxListener = (tx: Transaction) => void;

export class Host {
  readonly db: Database;
  readonly view: MapView;
  readonly memory: WasmMemory;
  readonly order: number;
  readonly installed: bigint;
  /** Called with every committed transaction, read back from the audit log (the scenario runner prints them). */
  listeners: TxListener[] = [];
  /** When set, hw.flush throws InjectedFault on the flush with this number (1-based); then it resets. */
  faultAtFlush: number | undefined;
  flushCount = 0;
  private backupBytes: Uint8Array | undefined;
  private keepBackup = true;
  /** Where committed() last stopped reading the audit log (the log is emptied at a backup: baseSeq tells). */
  private logCursor = { baseSeq: -1, end: 0 };
  /** Sequence number of the first transaction not in the backup. */
  private backupSeq = 0;

  /** Pages [lo, hi) this host's core may address: its arena slot's two 4 MiB pages; everything for a host of its own. */
  private slotPages: [number, number] = [0, Infinity];

  private constructor(readonly core: Core, private readonly bootModule: BootModule, private readonly bootRoute: { current?: Host | undefined }, order: number, installed: bigint) {
    this.db = new Database(core);
    this.view = new MapView(this.db);
    this.memory = core.memory;
    this.order = order;
    this.installed = installed;
  }

  /** Creates a host, bootstraps the database and runs the boot partition's transactions; the log then is empty. */
  static async create(cfg: HostConfig): Promise<Host> {
    const module = await coreModule();
    const order = cfg.order ?? orderFor(cfg.memory);
    if (order < 2 || order > 5) throw new RangeError(`map order ${order} is not in 2..5`);
    if (span(order) * 1024n < cfg.memory) throw new RangeError(`an order-${order} map covers less than ${cfg.memory} bytes`);
    if (cfg.arena && cfg.layout) throw new RangeError("a host in an arena has its slot's layout; leave layout unset");
    const slot = cfg.arena?.take();
    const layout = slot ? layoutAt(order, slot.region, slot.private) : { ...defaultLayout(order), ...cfg.layout };
    const firmware = cfg.firmware ?? [{ base: 0n, length: cfg.memory, type: "usable" as const }];
    const usableEnd = firmware.filter((r) => r.type === "usable").reduce((e, r) => (r.base + r.length > e ? r.base + r.length : e), 0n);
    const need = (Math.max(layout.private, layout.region) + 1) * 1024;
    if (BigInt(need) * 4096n > usableEnd) {
      throw new RangeError(`host memory must reach at least ${need * 4} KiB (the database's pages); got ${usableEnd} bytes`);
    }
    const hostRef: { current?: Host } = {};
    // The boot module's memory is the host's physical memory (as on the machine, where its linear memory is physical
    // memory): core is instantiated over it, and the module's two imports call that core. An arena's hosts share its
    // module and memory; the arena routes the imports to the host booting.
    const boot = cfg.arena?.boot ?? instantiateBootModule(await bootModule(), {
      db_submit: (req) => hostRef.current!.bootSubmit(req),
      db_log_truncate: () => hostRef.current!.bootBackup(),
    });
    const memory = boot.memory;
    const grow = (need * PAGE) / WASM_PAGE - memory.buffer.byteLength / WASM_PAGE;
    if (grow > 0) memory.grow(grow);
    const core = cfg.arena ? await cfg.arena.coreFor({ get h() { return hostRef.current; } }) : instantiateCore(module, {
      memory,
      hw: {
        flush: (): void => {
          hostRef.current?.onFlush();
        },
      },
    });
    // Firmware-reserved memory is installed too (it belongs to Boot); only what no region lists is Missing.
    const host = new Host(core, boot, cfg.arena ?? hostRef, order, firmware.reduce((n, r) => n + r.length, 0n));
    hostRef.current = host;
    if (slot) host.slotPages = [slot.region * 1024, (slot.private + 1) * 1024];
    host.keepBackup = cfg.keepBackup ?? true;
    host.bootstrap(order, layout, cfg.memory);
    host.boot(cfg, firmware, layout);
    return host;
  }

  /**
   * The resource service's transaction builders (core/boot/assembly/resource-service.ts, in the boot module): the
   * code the machine runs, run by V8 over this host's memory.
   */
  builders(): BootModule["rs"] {
    return this.booting().rs;
  }

  /** The command partition's line reader (core/boot/assembly/command-line.ts), run by V8 over this host's memory. */
  lineReader(): BootModule["cl"] {
    return this.booting().cl;
  }

  /** The boot partition's module, its imports routed to this host (an arena's module serves one host at a time). */
  private booting(): BootModule {
    this.bootRoute.current = this;
    return this.bootModule;
  }

  /** core's hw.flush on this host's database (an arena's core calls it for the host it has attached). */
  onFlush(): void {
    this.flushCount++;
    if (this.faultAtFlush !== undefined && this.flushCount === this.faultAtFlush) {
      this.faultAtFlush = undefined;
      throw new InjectedFault(`processor failure injected at flush ${this.flushCount}`);
    }
  }

  private bootstrap(order: number, l: Layout, hostBytes: bigint): void {
    if (l.chain.length !== order - 1) throw new RangeError(`layout.chain needs ${order - 1} map pages for order ${order}`);
    const v = new DataView(this.memory.buffer);
    const pa = privateArea(l.private);
    const at = pa.requestBuffer;
    const words = [order, l.ui, l.missing, l.avail, l.idle, l.boot, pa.logBase, pa.logPages, l.region, l.top, ...l.chain];
    for (let i = 0; i < 17; i++) v.setUint32(at + 4 * i, 0, true);
    words.forEach((w, i) => v.setUint32(at + 4 * i, w, true));
    v.setBigUint64(at + 56, hostBytes, true);
    v.setUint32(at + 64, l.private, true);
    const rc = this.db.bootstrap(at);
    if (rc < 0) throw new DbError(rc, -1, "bootstrap the resource database");
  }

  /** Grows linear memory so that page p exists (database pages must be addressable by core). */
  ensurePage(p: number): void {
    if (p < this.slotPages[0] || p >= this.slotPages[1]) {
      throw new RangeError(`page ${pn(p)} lies outside this host's slot of its arena (pages ${pn(this.slotPages[0])}–${pn(this.slotPages[1] - 1)})`);
    }
    const needBytes = (p + 1) * PAGE;
    const have = this.memory.buffer.byteLength;
    if (needBytes <= have) return;
    const pages = Math.ceil((needBytes - have) / WASM_PAGE);
    if (have / WASM_PAGE + pages > MAX_WASM_PAGES) throw new RangeError(`page ${pn(p)} is beyond the 4 GiB that core can address`);
    this.memory.grow(pages);
  }

  /**
   * How the command partition's requests reach core. Unset: db_submit (the boot partition's and tests' direct path).
   * The platform sets it to the command channel after boot (sim/command-channel.ts), so every request of the
   * resource service travels through core's queues and db_submit_as.
   */
  transport: ((tx: Transaction) => number) | undefined;

  /** Runs a transaction from the command partition (or, before a transport is set, the boot partition). */
  submit(tx: Transaction, what = "transaction"): void {
    this.run(tx, what, this.transport ?? ((t) => this.db.trySubmit(t)));
  }

  /** Runs a transaction on the ultravisor's own path (a monitor's, [0132]): db_submit, never the command channel. */
  submitInternal(tx: Transaction, what = "transaction"): void {
    this.run(tx, what, (t) => this.db.trySubmit(t));
  }

  /** Runs a transaction; on a full log takes a backup and retries. Throws DbError when core rejects it. */
  private run(tx: Transaction, what: string, send: (tx: Transaction) => number): void {
    let rc = send(tx);
    if (rc === -16) {
      this.backup();
      rc = send(tx);
    }
    if (rc < 0) throw new DbError(rc, this.db.failedOp(), what);
    this.committed(tx);
  }

  /** Bookkeeping after a transaction committed by any path: map cache, listeners. */
  committed(tx: Transaction): void {
    if (tx.ops.some((o) => o.op === "split" || o.op === "merge")) this.view.invalidate();
    if (this.listeners.length) {
      // Listeners get the transaction as core's audit log holds it (decoded from the binary records), not the
      // request as it was sent: what `uvt sim` prints is the log. Only the records since the last look are decoded,
      // so a long run costs the same per commit at its end as at its start.
      const h = this.db.logHeader();
      if (h.baseSeq !== this.logCursor.baseSeq || h.committedEnd < this.logCursor.end) this.logCursor = { baseSeq: h.baseSeq, end: 0 };
      const fresh = this.db.readAuditFrom(this.logCursor.end);
      this.logCursor.end = fresh.end;
      const logged = fresh.transactions.at(-1);
      if (!logged) throw new Error("committed transaction missing from the audit log");
      for (const l of this.listeners) l(logged);
    }
  }

  /** Saves the database (all of linear memory) as the backup and empties the audit log ([0099]). */
  backup(): void {
    // Copy first, then empty the log: an interruption in between leaves a log whose transactions the backup
    // already holds, and replay skips them by sequence number.
    if (this.keepBackup) {
      const src = new Uint8Array(this.memory.buffer);
      if (!this.backupBytes || this.backupBytes.length !== src.length) this.backupBytes = new Uint8Array(src.length);
      this.backupBytes.set(src);
      this.backupSeq = this.db.logHeader().nextSeq;
    }
    this.db.truncateLog();
  }

  /** Restores the last backup into a fresh host memory, replays the live log there and returns those bytes. */
  async replayFromBackup(): Promise<Uint8Array> {
    if (!this.backupBytes) throw new Error("no backup kept (HostConfig.keepBackup is false)");
    const live = new Uint8Array(this.memory.buffer);
    const mem = new WA.Memory({ initial: live.length / WASM_PAGE, maximum: MAX_WASM_PAGES });
    const bytes = new Uint8Array(mem.buffer);
    bytes.set(this.backupBytes);
    const ui = this.db.indexPage();
    const logStart = ui.logBase * PAGE;
    bytes.set(live.subarray(logStart, logStart + ui.logPages * PAGE), logStart);
    const other = new Database(instantiateCore(await coreModule(), { memory: mem }));
    other.attach(ui.index);
    other.replay(this.backupSeq);
    return new Uint8Array(mem.buffer);
  }

  /**
   * First difference between two memory images as a database: everything except core's working area (the first
   * 64 KiB of its private 4 MiB page: scratch, request buffer) and the log bytes past the committed end. undefined if
   * equal.
   */
  diffDatabase(a: Uint8Array, b: Uint8Array): string | undefined {
    const ui = this.db.indexPage();
    const logRecords = ui.logBase * PAGE + 64;
    const committed = new DataView(a.buffer, a.byteOffset).getUint32(ui.logBase * PAGE + 12, true);
    const pa = privateArea(ui.private);
    const skip: Array<[number, number]> = [
      [pa.base, pa.directory],
      [logRecords + committed, (ui.logBase + ui.logPages) * PAGE],
    ];
    const n = Math.max(a.length, b.length);
    let i = 0;
    for (const [from, to] of [...skip, [n, n] as [number, number]]) {
      const end = Math.min(from, n);
      if (i < end) {
        const x = a.subarray(i, end);
        const y = b.subarray(i, end);
        if (x.length !== y.length || Buffer.compare(x, y) !== 0) {
          let k = 0;
          while (k < x.length && x[k] === y[k]) k++;
          const at = i + k;
          return `byte ${at.toString(16)} (page ${pn(Math.floor(at / PAGE))} offset ${at % PAGE}): ${x[k]} vs ${y[k]}`;
        }
      }
      i = Math.max(i, to);
    }
    return undefined;
  }

  /** The audit log since the last backup, in patent notation. */
  formatLog(): string[] {
    return this.db.readLog().flatMap(formatTransaction);
  }

  /** Live database bytes (a copy). */
  snapshot(): Uint8Array {
    return new Uint8Array(this.memory.buffer).slice();
  }

  // ------------------------------------------------------------------------------------------ boot partition

  /** The ChangeOwner that hands a free 4 KiB page to the ultravisor (first line of [0222]'s split). */
  takeForUltravisor(p: number): Op[] {
    const ui = this.db.indexPage();
    const leaf = this.view.leaf(BigInt(p) * 4096n);
    if (leaf.scale !== 1) throw new Error(`page ${pn(p)} is not mapped at 4 KiB granularity`);
    return [{ op: "changeOwner", map: leaf.map, first: leaf.index, last: leaf.index, from: leaf.owner, to: ui.ultra }];
  }

  /**
   * The boot partition's transactions: the boot module's `main` over the firmware map written as UEFI descriptors
   * (its backup point is a backup here), then the simulator's extras — the entries a host definition divides at boot
   * ([0219]) — and, unless the host mirrors the machine's ultravisor region, one more backup so that no boot
   * transaction shows in the audit log.
   */
  private boot(cfg: HostConfig, firmware: FirmwareRegion[], l: Layout): void {
    const ui = this.db.indexPage();
    if ((cfg.reserve?.length ?? 0) > 1) throw new RangeError("at most one reserved range");
    if (cfg.reserve?.length && cfg.ultravisorRegion) throw new RangeError("a host has either a reserved range or the machine's ultravisor region");
    let uv: [bigint, bigint] | undefined;
    let allot: [bigint, bigint] | undefined;
    for (const r of cfg.reserve ?? []) {
      const leafA = this.view.leaf(BigInt(r[0]) * 4096n);
      const leafB = this.view.leaf(BigInt(r[1]) * 4096n);
      if (leafA.map !== leafB.map || leafA.scale !== 1 || r[0] > r[1]) throw new RangeError(`reserve ${pn(r[0])}-${pn(r[1])} must lie in one 4 MiB page of the database`);
      uv = [BigInt(r[0]) * 4096n, BigInt(r[1] + 1) * 4096n];
    }
    if (cfg.ultravisorRegion) {
      uv = cfg.ultravisorRegion.region;
      allot = cfg.ultravisorRegion.allotments;
    }
    // The module's inputs live in the first 4 MiB, the boot partition's own memory (the machine's loader keeps them in
    // its image): the UEFI map and the 32 KiB where it gathers one map page's records. Zeroed afterwards.
    if (l.region === 0 || l.private === 0) throw new RangeError("the database's pages must not lie in the first 4 MiB (the boot partition's)");
    const descs = uefiDescriptors(firmware);
    const scratch: [number, number] = [BOOT_SCRATCH, BOOT_SCRATCH + BOOT_OPS_BYTES + descs.length * UEFI_DESCRIPTOR.bytes];
    if (scratch[1] > 4 << 20) throw new RangeError(`a firmware map of ${descs.length} regions does not fit the boot partition's scratch`);
    this.bootScratch = scratch;
    const mapAt = BOOT_SCRATCH + BOOT_OPS_BYTES;
    const v = new DataView(this.memory.buffer);
    descs.forEach((d, i) => {
      const at = mapAt + i * UEFI_DESCRIPTOR.bytes;
      v.setUint32(at + UEFI_DESCRIPTOR.type, d.type, true);
      v.setBigUint64(at + UEFI_DESCRIPTOR.base, d.base, true);
      v.setBigUint64(at + UEFI_DESCRIPTOR.pages, d.pages, true);
    });
    const page = (b: bigint): number => Number(b / 4096n);
    const rc = this.booting().main({
      ui: ui.index, map: mapAt, mapBytes: descs.length * UEFI_DESCRIPTOR.bytes, descSize: UEFI_DESCRIPTOR.bytes, region: l.region,
      req: this.db.requestBuffer(), ops: BOOT_SCRATCH,
      uvPage: uv ? page(uv[0]) : 0, uvPages: uv ? page(uv[1] - uv[0]) : 0,
      allotPage: allot ? page(allot[0]) : 0, allotPages: allot ? page(allot[1] - allot[0]) : 0,
    });
    new Uint8Array(this.memory.buffer).fill(0, scratch[0], scratch[1]);
    this.bootScratch = undefined;
    this.view.invalidate();
    if (rc < 0) throw new DbError(rc, this.db.failedOp(), `boot (${BOOT_ERRORS[rc] ?? "core refused a boot transaction"})`);
    for (const s of cfg.presplit ?? []) {
      const owner = this.view.entry(s.map, s.index);
      const take = this.view.leaf(BigInt(s.into) * 4096n).owner === ui.ultra ? [] : this.takeForUltravisor(s.into);
      this.submit({ ops: [...take, { op: "split", map: s.map, index: s.index, into: s.into, owner }] }, `boot: split ${pn(s.map)} entry ${s.index}`);
    }
    if (!cfg.ultravisorRegion) this.backup();
  }

  /**
   * Create-with-memory by the boot module's own `create` — what the machine runs for the partitions the boot partition
   * creates and, in the ultravisor partition, for each definition: a partition that owns the 4 KiB pages [first,
   * first + pages), each taken from `from`, with a descriptor page the module chooses. The payload is written where
   * the ultravisor partition copies it (CREATE_PAYLOAD.offset in core's request buffer). Returns the new partition's
   * number; throws DbError on a refusal (core's code or the module's, BOOT_ERRORS).
   */
  createFromPages(d: { name: string; principal: string; kind: number }, first: number, pages: number, from: number): number {
    const ui = this.db.indexPage();
    const req = this.db.requestBuffer();
    const at = req + CREATE_PAYLOAD.offset;
    const payload = new Uint8Array(this.memory.buffer, at, CREATE_PAYLOAD.bytes);
    if (d.name.length > 16 || d.principal.length > 16 || !/^[\x20-\x7e]*$/.test(d.name + d.principal)) {
      throw new RangeError(`partition name "${d.name}" and principal "${d.principal}" must be at most 16 printable ASCII characters`);
    }
    payload.fill(0);
    payload.set(Buffer.from(d.name, "ascii"), CREATE_PAYLOAD.name);
    payload.set(Buffer.from(d.principal, "ascii"), CREATE_PAYLOAD.principal);
    new DataView(this.memory.buffer).setUint32(at + CREATE_PAYLOAD.kind, d.kind, true);
    const rc = this.booting().create(ui.index, req, at, first, pages, from);
    if (rc < 0) throw new DbError(rc, this.db.failedOp(), `create ${d.name} (${BOOT_ERRORS[rc] ?? "refused by core"})`);
    this.committed({ ops: [] }); // the listeners get the transaction from the audit log
    return rc;
  }

  /** Where the boot module's inputs lie while it runs (the boot partition's first 4 MiB). */
  private bootScratch: [number, number] | undefined;

  /**
   * The boot module's env.db_submit: core's db_submit on its request, after making the pages it turns into database
   * pages addressable; a full log is backed up and the request retried, as Host.submit does.
   */
  bootSubmit(req: number): number {
    const v = new DataView(this.memory.buffer);
    const end = req + v.getUint32(req + 4, true);
    for (let r = req + 16; r + 8 <= end && r + 8 <= v.byteLength; r += Math.max(8, v.getUint32(r + 4, true))) {
      const kind = v.getUint8(r);
      const p = kind === REC.split ? v.getUint32(r + 16, true) : kind === REC.initialize ? v.getUint32(r + 8, true) : -1;
      if (p < 0) continue;
      if (this.bootScratch && p * PAGE < this.bootScratch[1] && (p + 1) * PAGE > this.bootScratch[0]) {
        throw new Error(`the boot module chose page ${pn(p)}, which holds its own inputs (the boot partition's scratch)`);
      }
      this.ensurePage(p);
    }
    let rc = this.db.submitRaw(req);
    if (rc === -16) {
      this.backup();
      rc = this.db.submitRaw(req);
    }
    return rc;
  }

  /** The boot module's env.db_log_truncate: its backup point is a backup of the simulated host. */
  bootBackup(): number {
    this.backup();
    return 0;
  }

  /**
   * Lowest Available 4 KiB page for a map page, by the boot module's own rule (core/boot/assembly/boot.ts
   * freeDbPage): in the database's own 4 MiB page (the one holding the index page) first, then in the other PKMs of
   * the first 4 GiB in address order; never page 0.
   */
  freeDbPage(): number {
    const p = this.booting().freeDbPage(this.db.indexPage().index);
    if (p === 0) throw new Error("no free 4 KiB page for a map page");
    this.ensurePage(p);
    return p;
  }
}

/** Start of the boot module's scratch in the boot partition's first 4 MiB (above the real-mode area, below 1 MiB). */
const BOOT_SCRATCH = 0x10000;
