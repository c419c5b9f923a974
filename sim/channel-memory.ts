// Channel memory on the simulated host's resource database: the ChannelMemory of sim/channel-bus.ts implemented with
// real transactions. Channel pages become the client's through a ChangeOwner from Available ([0114], [0132]), the
// server "maps" only pages the database says the client owns (the monitors' page tables are modelled as a table
// here), and the client's memory goes back to Available only when no server maps any of it ([0182], [0186]).
import type { Host } from "./host.ts";
import { span } from "../core/mapview.ts";
import { pn, type Op } from "../core/notation.ts";
import { CHANNEL_SLOTS, PAGE } from "../core/database.ts";
import type { ChannelMemory } from "./channel-bus.ts";

export class ChannelMemoryError extends Error {
  override name = "ChannelMemoryError";
}

export class HostChannelMemory implements ChannelMemory {
  /** page number -> servers whose monitors map it */
  private readonly mappings = new Map<number, Set<string>>();
  /** Transactions this class ran, in order, with what they were for (scenarios print them). */
  readonly journal: string[] = [];

  /**
   * `partitions` maps the names the channel bus uses to partition numbers [G,M,K] live in the host's database.
   * `evictProcessors` takes a partition's VCPUs out of the schedule (sched_evict on the tables in effect).
   */
  /**
   * When set, reclaimClient hands the client over to this callback instead of reclaiming its memory itself: the
   * platform's ultravisor then sends the resource service the event of [0186], and the resource service reclaims.
   */
  onRelease: ((client: string) => void) | undefined;

  constructor(
    private readonly host: Host,
    private readonly partitions: ReadonlyMap<string, number>,
    private readonly evictProcessors: (partition: number) => void = () => {},
  ) {}

  /** Slot of the channel table that holds the channel at `base`. */
  private slotAt(base: number): { slot: number; client: number; server: number } {
    const s = this.host.db.channels().find((c) => c.base * PAGE === base);
    if (!s) throw new ChannelMemoryError(`no channel at page ${pn(base / PAGE)} in the channel table`);
    return s;
  }

  partitionNumber(name: string): number {
    return this.number(name);
  }

  private number(name: string): number {
    const p = this.partitions.get(name);
    if (p === undefined) throw new ChannelMemoryError(`no partition named "${name}" on this host`);
    return p;
  }

  allocateForClient(client: string, bytes: number, type = 0): number {
    const to = this.number(client);
    const pages = Math.ceil(bytes / PAGE);
    if (pages > 1024) throw new ChannelMemoryError(`a channel of ${bytes} bytes exceeds one 4 MiB map page`);
    const ui = this.host.db.indexPage();
    let run = this.findRun(pages, ui.avail);
    if (!run) {
      this.splitAvailable(ui.avail, ui.ultra);
      run = this.findRun(pages, ui.avail);
    }
    if (!run) throw new ChannelMemoryError(`no ${pages} contiguous Available pages for a channel of ${client}`);
    const first = run.firstPage;
    this.host.ensurePage(first + pages - 1);
    const used = new Set(this.host.db.channels().map((c) => c.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    if (slot >= CHANNEL_SLOTS) throw new ChannelMemoryError(`the channel table is full (${CHANNEL_SLOTS} channels)`);
    this.host.submit(
      { ops: [
        { op: "changeOwner", map: run.map, first: run.index, last: run.index + pages - 1, from: ui.avail, to },
        { op: "defineChannel", slot, client: to, base: first, pages, type },
      ] },
      `channel memory for ${client}`,
    );
    this.journal.push(`assign ${pages} page(s) at ${pn(first)} to ${client} ${pn(to)}`);
    return first * PAGE;
  }

  /** First run of `n` entries owned by `owner` in a 4 KiB map (PKM) of the first 4 GiB. */
  private findRun(n: number, owner: number): { map: number; index: number; firstPage: number } | undefined {
    const mem = this.host.db.i32();
    for (const m of this.host.view.maps()) {
      if (m.scale !== 1 || m.base >= 1n << 32n) continue;
      const at = (m.page * PAGE) / 4;
      const basePage = Number(m.base / 4096n);
      for (let i = 0, len = 0; i < 1024; i++) {
        // a descriptor page owns itself, so an Available descriptor page is not free memory
        len = mem[at + i] === owner && basePage + i !== owner ? len + 1 : 0;
        if (len === n) return { map: m.page, index: i - n + 1, firstPage: basePage + i - n + 1 };
      }
    }
    return undefined;
  }

  /** Splits the first Available 4 MiB entry below 4 GiB into a PKM so that 4 KiB runs exist. */
  private splitAvailable(avail: number, ultra: number): void {
    for (const m of this.host.view.maps()) {
      if (m.scale !== 2 || m.base >= 1n << 32n) continue;
      for (let i = 0; i < 1024; i++) {
        if (this.host.view.entry(m.page, i) !== avail) continue;
        const into = this.host.freeDbPage();
        const ops: Op[] = [...this.host.takeForUltravisor(into), { op: "split", map: m.page, index: i, into, owner: avail }];
        this.host.submit({ ops }, "split Available memory for channels");
        this.journal.push(`split ${pn(m.page)} entry ${i} into ${pn(into)} (ultravisor ${pn(ultra)})`);
        return;
      }
    }
  }

  mapIntoServer(server: string, base: number, bytes: number): void {
    this.number(server);
    let byNumber: Map<number, string> | undefined; // built once per call, when the first page is checked
    for (let a = base; a < base + bytes; a += PAGE) {
      const owner = this.host.db.owner(BigInt(a));
      if (!byNumber) {
        byNumber = new Map();
        for (const [name, p] of this.partitions) if (!byNumber.has(p)) byNumber.set(p, name);
      }
      const client = byNumber.get(owner);
      if (client === undefined || client === server) {
        throw new ChannelMemoryError(`${server} may not map page ${pn(a / PAGE)}: it is not a client's channel memory (owner ${owner})`);
      }
    }
    // Transaction 2 of [0132], sent by the client's monitor: core records the server in the channel table.
    const slot = this.slotAt(base);
    const srv = this.number(server);
    this.host.submitInternal({ ops: [{ op: "assignServer", slot: slot.slot, client: slot.client, server: srv, from: slot.server }] }, `assign server ${server}`);
    for (let a = base; a < base + bytes; a += PAGE) {
      const p = a / PAGE;
      const set = this.mappings.get(p) ?? new Set<string>();
      set.add(server);
      this.mappings.set(p, set);
    }
    this.journal.push(`map ${bytes / PAGE} page(s) at ${pn(base / PAGE)} into ${server}`);
  }

  unmapFromServer(server: string, base: number, bytes: number): void {
    const slot = this.slotAt(base);
    if (slot.server !== 0) {
      this.host.submitInternal({ ops: [{ op: "assignServer", slot: slot.slot, client: slot.client, server: 0, from: slot.server }] }, `disconnect ${server}`);
    }
    for (let a = base; a < base + bytes; a += PAGE) this.mappings.get(a / PAGE)?.delete(server);
    this.journal.push(`unmap ${pn(base / PAGE)} from ${server}`);
  }

  /** Servers that still map some page of `client`'s memory. */
  serversMapping(client: string): string[] {
    const p = this.number(client);
    const out = new Set<string>();
    for (const [page, servers] of this.mappings) {
      if (servers.size && this.host.db.owner(BigInt(page) * 4096n) === p) for (const s of servers) out.add(s);
    }
    return [...out];
  }

  reclaimClient(client: string): void {
    const p = this.number(client);
    const still = this.serversMapping(client);
    if (still.length) throw new ChannelMemoryError(`memory of ${client} is still mapped by ${still.join(", ")}: disconnect them first ([0182])`);
    if (this.onRelease) {
      this.onRelease(client);
      return;
    }
    const ui = this.host.db.indexPage();
    const ops: Op[] = this.removeChannelOps(p);
    for (const r of this.host.view.runsOwnedBy(p)) {
      // the descriptor page stays with the partition until it is destroyed
      const leafOfDescriptor = this.host.view.leaf(BigInt(p) * 4096n);
      if (r.map === leafOfDescriptor.map && r.first <= leafOfDescriptor.index && leafOfDescriptor.index <= r.last) {
        if (r.first < leafOfDescriptor.index) ops.push({ op: "changeOwner", map: r.map, first: r.first, last: leafOfDescriptor.index - 1, from: p, to: ui.avail });
        if (leafOfDescriptor.index < r.last) ops.push({ op: "changeOwner", map: r.map, first: leafOfDescriptor.index + 1, last: r.last, from: p, to: ui.avail });
      } else {
        ops.push({ op: "changeOwner", map: r.map, first: r.first, last: r.last, from: p, to: ui.avail });
      }
    }
    if (ops.length) this.host.submit({ ops }, `reclaim memory of ${client}`);
    this.journal.push(`reclaim ${client} (${ops.length} run(s))`);
  }

  /** RemoveChannel for every channel of partition p in core's table (their servers have disconnected). */
  removeChannelOps(p: number): Op[] {
    return this.host.db.channels().filter((c) => c.client === p).map((c): Op => ({ op: "removeChannel", slot: c.slot, client: p }));
  }

  /**
   * The client's owned memory as sorted `[base, length]` byte ranges, for MDL validation (claims 18, 20, 21): every
   * map entry the database gives the partition, except its descriptor page, which is database, not I/O buffer.
   */
  ownedRanges(client: string): Array<[bigint, bigint]> {
    const p = this.number(client);
    const maps = new Map(this.host.view.maps().map((m) => [m.page, m]));
    const out: Array<[bigint, bigint]> = [];
    const descriptor = BigInt(p) * 4096n;
    for (const r of this.host.view.runsOwnedBy(p)) {
      const m = maps.get(r.map)!;
      const sp = span(m.scale);
      const lo = m.base + BigInt(r.first) * sp;
      const hi = m.base + BigInt(r.last + 1) * sp;
      if (descriptor >= lo && descriptor < hi) {
        if (descriptor > lo) out.push([lo, descriptor - lo]);
        if (descriptor + 4096n < hi) out.push([descriptor + 4096n, hi - descriptor - 4096n]);
      } else out.push([lo, hi - lo]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  reclaimProcessors(client: string): void {
    this.evictProcessors(this.number(client));
    this.journal.push(`evict processors of ${client}`);
  }
}
