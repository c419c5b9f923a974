// Many simulated hosts in one linear memory (layer: sim/, below the data center's shards). A WebAssembly.Memory per
// host does not scale: V8 counts each memory's bytes as external memory and starts a full garbage collection for
// about every 64 MB of new external memory, so booting N hosts in one process costs O(N²) marking (and Node 20
// refuses more than about 13,000 live memories). An arena is one memory whose 4 MiB pages are dealt out as slots:
// slot k holds one host's database in [0,2k+1,*] and its private page in [0,2k+2,*] (core/db-layout.ts layoutAt),
// so every host still has its own database (index page, map directory, audit log) and its own channels and schedule
// tables, and no host's database ever reaches another's pages (Host.ensurePage refuses a page outside the host's
// slot). One core.wasm instance serves the arena: it attaches a host's database before serving that host. The 4 MiB page [0,0,*] is every host's boot partition's scratch, used
// by one boot at a time. Scratch the platforms carve (schedule tables, channel arguments) comes from a reserve past
// the slots, so the memory never grows after creation (a grow would make V8 account all of it again).
//
// Why small arenas: core keeps a map directory of 2 bytes per 4 KiB page of its linear memory and reads all of it
// at every attach (it writes only the words that are not zero, so a host keeps only a page or two of it resident);
// 16 slots make it 70 KB. 8 slots cost more in arenas made, 48 more in directory read per switch (datacenter.md §6.2).
import type { Host } from "./host.ts";
import { bootModule, instantiateBootModule, type BootModule } from "../core/boot-module.ts";
import { coreModule, instantiateCore, type Core } from "../core/wasm.ts";
import type { WasmMemory } from "../core/webassembly.ts";

const FOUR_MIB = 4 << 20;
const WASM_PAGE = 65536;
/** Default slots of one arena. */
export const ARENA_SLOTS = 16;
/** At most: every address, scratch included, stays below 2 GiB (core's imports and results carry addresses as i32). */
const MAX_SLOTS = 200;
/** Scratch reserved per slot: the scheduler's request and three tables (~160 KiB), the channel buses' arguments. */
const SCRATCH_PER_SLOT = 512 << 10;

export class HostArena {
  /** The host whose boot partition's module runs now (its imports call that host's core). */
  current: Host | undefined;
  private next = 0;
  /**
   * One core.wasm instance serves the arena's hosts (an instance costs ~0.2 ms and ~19 KB each): its state is the
   * database it has attached, so every db_ call of a host first attaches that host's index page if another's is
   * attached (db_attach rebuilds the map directory from the host's own map: ~10–40 µs, once per switch).
   */
  private core: Core | undefined;
  private attached: Host | undefined;
  private readonly indexOf = new WeakMap<Host, number>();
  private scratchAt: number;
  private readonly scratchEnd: number;

  private constructor(readonly memory: WasmMemory, readonly boot: BootModule, readonly slots: number) {
    this.scratchAt = (2 * slots + 1) * FOUR_MIB;
    this.scratchEnd = this.scratchAt + slots * SCRATCH_PER_SLOT;
  }

  static async create(slots = ARENA_SLOTS): Promise<HostArena> {
    if (!Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) throw new RangeError(`an arena holds 1..${MAX_SLOTS} hosts, not ${slots}`);
    const ref: { a?: HostArena } = {};
    const boot = instantiateBootModule(await bootModule(), {
      db_submit: (req) => ref.a!.active("db_submit").bootSubmit(req),
      db_log_truncate: () => ref.a!.active("db_log_truncate").bootBackup(),
    });
    const arena = new HostArena(boot.memory, boot, slots);
    ref.a = arena;
    boot.memory.grow(arena.scratchEnd / WASM_PAGE - boot.memory.buffer.byteLength / WASM_PAGE);
    return arena;
  }

  private active(what: string): Host {
    if (!this.current) throw new Error(`the boot module called ${what} with no host booting in its arena`);
    return this.current;
  }

  /** Free slots left. */
  get free(): number {
    return this.slots - this.next;
  }

  /** Takes the next slot: the database's 4 MiB page and the private page. */
  take(): { region: number; private: number } {
    if (this.next >= this.slots) throw new RangeError(`the arena's ${this.slots} slots are taken`);
    const k = this.next++;
    return { region: 2 * k + 1, private: 2 * k + 2 };
  }

  /**
   * The arena's core as `who` sees it (who.h is set once the host exists): channel and schedule exports as they are
   * (they keep no database state), db_ exports behind the attach of who's database.
   */
  async coreFor(who: { h?: Host }): Promise<Core> {
    if (!this.core) {
      this.core = instantiateCore(await coreModule(), {
        memory: this.memory,
        carve: (bytes) => this.carve(bytes),
        hw: { flush: (): void => this.attached?.onFlush() },
      });
    }
    const shared = this.core;
    const raw = shared.exports as Record<string, (...a: number[]) => number>;
    const uiAddress = raw.db_ui_address!;
    const exports: Record<string, unknown> = {};
    for (const [name, f] of Object.entries(shared.exports)) {
      if (typeof f !== "function" || !name.startsWith("db_")) {
        exports[name] = f;
      } else if (name === "db_bootstrap" || name === "db_attach") {
        // These attach a database themselves: afterwards core holds who's (or none, when refused).
        const fn = f as (a: number) => number;
        exports[name] = (a: number): number => {
          this.attached = undefined;
          const rc = fn(a);
          if (rc >= 0) {
            this.attached = who.h;
            this.indexOf.set(who.h!, (uiAddress() >>> 0) / 4096);
          }
          return rc;
        };
      } else {
        const fn = f as (...a: number[]) => number;
        exports[name] = (...a: number[]): number => {
          this.activate(who.h!);
          return fn(...a);
        };
      }
    }
    return { instance: shared.instance, memory: this.memory, exports, carve: shared.carve! };
  }

  private activate(h: Host): void {
    if (this.attached === h) return;
    const ui = this.indexOf.get(h);
    if (ui === undefined) throw new Error("arena: this host's database is not bootstrapped yet; core has nothing of it to attach");
    const rc = (this.core!.exports.db_attach as (ui: number) => number)(ui);
    if (rc < 0) {
      this.attached = undefined;
      throw new Error(`arena: core refused to attach index page ${ui} again (code ${rc}): the host's database is damaged`);
    }
    this.attached = h;
  }

  /** Zeroed scratch past the slots (Core.carve for the arena's hosts); never given back, like a grow. */
  carve(bytes: number): number {
    const n = Math.ceil(bytes / WASM_PAGE) * WASM_PAGE;
    if (this.scratchAt + n > this.scratchEnd) throw new RangeError(`the arena's scratch reserve (${this.slots * SCRATCH_PER_SLOT} bytes) is used up; ${n} more wanted`);
    const at = this.scratchAt;
    this.scratchAt += n;
    return at;
  }
}
