// The simulated host: a WebAssembly.Memory standing for host physical memory, core.wasm instantiated over it, and
// the boot partition's part in building the resource database from a firmware-style memory map ([0102]–[0109],
// Fig. 8). Also backups, fault injection at hw.flush (a processor failure mid-transaction) and replay checks. The
// database's starting layout (defaultLayout, orderFor, FirmwareRegion) is core's, in core/db-layout.ts.
import { type Core, InjectedFault, instantiateCore, coreModule } from "../core/wasm.ts";
import { WA, type WasmMemory } from "../core/webassembly.ts";
import {
  Database, DbError, PAGE, PN_MASK, privateArea,
} from "../core/database.ts";
import { defaultLayout, orderFor, type FirmwareRegion, type Layout } from "../core/db-layout.ts";
import { MapView, span } from "../core/mapview.ts";
import { formatTransaction, type Op, type Transaction, pn } from "../core/notation.ts";

export interface HostConfig {
  /** Installed memory in bytes (the firmware map's usable total when `firmware` is absent). */
  memory: bigint;
  firmware?: FirmwareRegion[];
  /** Map order 2–5; default: the smallest that covers `memory`. */
  order?: number;
  /** Bytes at address 0 given to the Boot partition (default 4 MiB, Fig. 8 PMM entry 0). */
  bootBytes?: bigint;
  layout?: Partial<Layout>;
  /** Inclusive page-number ranges in the database's 4 MiB page reserved for the ultravisor ([0217]). */
  reserve?: Array<[number, number]>;
  /** Entries split at boot ([0219] entry 15 of the example). */
  presplit?: Array<{ map: number; index: number; into: number }>;
  /** Keep a copy of the database at each backup (for replay checks). Default true; large hosts may turn it off. */
  keepBackup?: boolean;
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

  private constructor(readonly core: Core, order: number, installed: bigint) {
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
    const layout = { ...defaultLayout(order), ...cfg.layout };
    const firmware = cfg.firmware ?? [{ base: 0n, length: cfg.memory, type: "usable" as const }];
    const usableEnd = firmware.filter((r) => r.type === "usable").reduce((e, r) => (r.base + r.length > e ? r.base + r.length : e), 0n);
    const need = (Math.max(layout.private, layout.region) + 1) * 1024;
    if (BigInt(need) * 4096n > usableEnd) {
      throw new RangeError(`host memory must reach at least ${need * 4} KiB (the database's pages); got ${usableEnd} bytes`);
    }
    const memory = new WA.Memory({ initial: (need * PAGE) / WASM_PAGE, maximum: MAX_WASM_PAGES });
    const hostRef: { h?: Host } = {};
    const core = instantiateCore(module, {
      memory,
      hw: {
        flush: (): void => {
          hostRef.h?.onFlush();
        },
      },
    });
    // Firmware-reserved memory is installed too (it belongs to Boot); only what no region lists is Missing.
    const host = new Host(core, order, firmware.reduce((n, r) => n + r.length, 0n));
    hostRef.h = host;
    host.keepBackup = cfg.keepBackup ?? true;
    host.bootstrap(order, layout, cfg.memory);
    host.boot(cfg, firmware, layout);
    host.backup();
    return host;
  }

  private onFlush(): void {
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

  /**
   * Changes every `from`-owned entry inside [start, end) to `to`, splitting partial entries (boot only). `fine`
   * splits whole entries of larger pages too, so the range ends up at 4 KiB granularity (the bare-metal boot marks the
   * partitions' allotments so, to give each to its partition later: loader-efi/assembly/boot.ts does the same).
   */
  markRange(start: bigint, end: bigint, from: number, to: number, alloc: () => number, fine = false): void {
    const ui = this.db.indexPage();
    const visit = (page: number, scale: number, base: bigint): void => {
      const sp = span(scale);
      const ops: Op[] = [];
      let run: { first: number; last: number } | undefined;
      const flush = (): void => {
        if (run) ops.push({ op: "changeOwner", map: page, first: run.first, last: run.last, from, to });
        run = undefined;
      };
      const deeper: Array<[number, bigint]> = [];
      for (let i = 0; i < 1024; i++) {
        const eb = base + BigInt(i) * sp;
        const ee = eb + sp;
        if (ee <= start || eb >= end) {
          flush();
          continue;
        }
        let v = this.view.entry(page, i);
        // A descriptor page owns itself; Missing's and Available's own pages are not Missing/Available memory.
        if (scale === 1 && v === Number(eb / 4096n)) v = 0;
        if (v < 0) {
          flush();
          deeper.push([v & PN_MASK, eb]);
        } else if (eb >= start && ee <= end && (scale === 1 || !fine)) {
          if (v === from) {
            if (run && run.last === i - 1) run.last = i;
            else {
              flush();
              run = { first: i, last: i };
            }
          } else flush();
        } else {
          flush();
          if (v === from) {
            if (scale === 1) throw new Error("unreachable: a 4 KiB entry is never partial");
            const into = alloc();
            this.submit({ ops: [...this.takeForUltravisor(into), { op: "split", map: page, index: i, into, owner: from }] }, `boot: split ${pn(page)} entry ${i}`);
            deeper.push([into, eb]);
          }
        }
      }
      flush();
      if (ops.length) this.submit({ ops }, `boot: mark memory at ${pn(page)}`);
      for (const [p, b] of deeper) visit(p, scale - 1, b);
    };
    visit(ui.top, ui.order, 0n);
  }

  /** The ChangeOwner that hands a free 4 KiB page to the ultravisor (first line of [0222]'s split). */
  takeForUltravisor(p: number): Op[] {
    const ui = this.db.indexPage();
    const leaf = this.view.leaf(BigInt(p) * 4096n);
    if (leaf.scale !== 1) throw new Error(`page ${pn(p)} is not mapped at 4 KiB granularity`);
    return [{ op: "changeOwner", map: leaf.map, first: leaf.index, last: leaf.index, from: leaf.owner, to: ui.ultra }];
  }

  private boot(cfg: HostConfig, firmware: FirmwareRegion[], l: Layout): void {
    const ui = this.db.indexPage();
    // The database's own 4 MiB page first, so that later splits find free 4 KiB pages in it.
    const regionStart = BigInt(l.region) * 4n * 1024n * 1024n;
    this.markRange(regionStart, regionStart + 4194304n, ui.missing, ui.avail, () => {
      throw new Error("no split needed inside the database page");
    });
    for (const r of cfg.reserve ?? []) {
      const leafA = this.view.leaf(BigInt(r[0]) * 4096n);
      const leafB = this.view.leaf(BigInt(r[1]) * 4096n);
      if (leafA.map !== leafB.map || leafA.scale !== 1) throw new RangeError(`reserve ${pn(r[0])}-${pn(r[1])} must lie in one 4 MiB page of the database`);
      this.submit({ ops: [{ op: "changeOwner", map: leafA.map, first: leafA.index, last: leafB.index, from: ui.avail, to: ui.ultra }] }, "boot: reserve pages");
    }
    const alloc = (): number => this.freeDbPage();
    for (const r of firmware) {
      const to = r.type === "usable" ? ui.avail : ui.boot;
      this.markRange(r.base, r.base + r.length, ui.missing, to, alloc);
    }
    const bootBytes = cfg.bootBytes ?? 4194304n;
    if (bootBytes > 0n) this.markRange(0n, bootBytes, ui.avail, ui.boot, alloc);
    for (const s of cfg.presplit ?? []) {
      const owner = this.view.entry(s.map, s.index);
      const take = this.view.leaf(BigInt(s.into) * 4096n).owner === ui.ultra ? [] : this.takeForUltravisor(s.into);
      this.submit({ ops: [...take, { op: "split", map: s.map, index: s.index, into: s.into, owner }] }, `boot: split ${pn(s.map)} entry ${s.index}`);
    }
  }

  /**
   * Lowest Available 4 KiB page for a map page (boot's simple allocator; see ResourceService): in the database's own
   * 4 MiB page (the one holding the index page) first, then in the other PKMs of the first 4 GiB in address order.
   * Page 0 is never taken: core refuses it as a database page (a real firmware map makes low memory usable, and a
   * split of a partial low entry would otherwise pick it).
   */
  freeDbPage(): number {
    const ui = this.db.indexPage();
    const home = BigInt(Math.floor(ui.index / 1024)) * 4194304n;
    const pkms = this.view.maps().filter((m) => m.scale === 1 && m.base < 1n << 32n);
    for (const m of [...pkms.filter((x) => x.base === home), ...pkms.filter((x) => x.base !== home)]) {
      for (let i = 0; i < 1024; i++) {
        const p = Number(m.base / 4096n) + i;
        if (this.view.entry(m.page, i) === ui.avail && p !== ui.avail && p !== 0) {
          this.ensurePage(p);
          return p;
        }
      }
    }
    throw new Error("no free 4 KiB page for a map page");
  }
}
