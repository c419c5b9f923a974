// The boot partition's module (core/boot/assembly/boot.ts, AssemblyScript over core's database layout) for both of
// its users: the one asc build (out/partitions/boot.wasm, which loader-efi/uv-boot-db.ts and partitions/uv-core.ts
// AOT-compile into the image) and its instantiation in V8, where the simulator (sim/host.ts) runs the very same
// wasm for the boot transactions instead of a TypeScript copy of the algorithm. Also the UEFI facts of its input
// (which memory types are usable, how a firmware map reads as the simulator's FirmwareRegions). Part of core's
// TypeScript bindings (bottom layer): it imports nothing of ours outside core/ (docs/architecture.md, Layers).
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ascBuild } from "./asc.ts";
import type { FirmwareRegion } from "./db-layout.ts";
import { WA, type WasmMemory, type WasmModule } from "./webassembly.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const BOOT_MODULE_SOURCE = join(root, "core", "boot", "assembly", "boot.ts");
const OUT = join(root, "out", "partitions", "boot.wasm");

const BOOT_ASC_FLAGS = [
  "--runtime", "stub", "--optimizeLevel", "3", "--shrinkLevel", "0",
  "--disable", "bulk-memory,nontrapping-f2i", "--initialMemory", "1", "--use", "abort=", "--noColors",
];

/** out/partitions/boot.wasm, rebuilt with asc (core/asc.ts) when core/boot/assembly/boot.ts changed. */
export async function bootModuleWasm(): Promise<Uint8Array> {
  return (await ascBuild({ sources: [BOOT_MODULE_SOURCE], out: OUT, flags: BOOT_ASC_FLAGS })).bytes;
}

/** The module's only imports (env.*): each is a call into core.wasm on the same memory. */
export const BOOT_MODULE_IMPORTS = ["db_submit", "db_log_truncate"] as const;
/** What the module exports besides its memory. */
export const BOOT_MODULE_EXPORTS = [
  "main", "create", "free_db_page", "rs_alloc_db_page", "rs_build_grow", "rs_build_create", "rs_created", "rs_build_destroy",
  "cl_parse", "cl_check",
] as const;

/** Errors of the module itself (core's own codes are ERRORS in core/database.ts). */
export const BOOT_ERRORS: Record<number, string> = {
  [-1000]: "no free 4 KiB page for a map page",
  [-1001]: "a page is not mapped at 4 KiB granularity",
  [-1002]: "too many runs for one request",
  [-1003]: "no free page for a descriptor in the database's own 4 MiB page (or no spare)",
  [-1004]: "not a live partition",
};

/** Bytes of the scratch buffer `main` gathers one map page's ChangeOwner records in (request header + 1000 records). */
export const BOOT_OPS_BYTES = 32 * 1024;

/**
 * The definition payload `create` reads: name (16 bytes, NUL-padded), principal (16), u32 descriptor kind; the
 * command channel's definitions carry it as their first 40 bytes (partitions/programs.ts definitionBytes). The
 * ultravisor partition copies it to `offset` in core's request buffer, and the simulator writes it there too.
 */
export const CREATE_PAYLOAD = { name: 0, principal: 16, kind: 32, bytes: 40, offset: 0x7f00 } as const;

/** UEFI memory types the boot partition gives to Available (loader, boot services, conventional: RAM free after ExitBootServices). */
export const USABLE_UEFI_TYPES = [1, 2, 3, 4, 7] as const;
/** EFI_MEMORY_DESCRIPTOR as the module reads it: type at +0, physical start at +8, pages at +24. */
export const UEFI_DESCRIPTOR = { type: 0, base: 8, pages: 24, bytes: 40 } as const;
/** The types the simulator writes for its FirmwareRegions: EfiConventionalMemory and EfiReservedMemoryType. */
const UEFI_CONVENTIONAL = 7;
const UEFI_RESERVED = 0;

export interface UefiDescriptor {
  type: number;
  base: bigint;
  pages: bigint;
}

export function isUsableUefiType(t: number): boolean {
  return (USABLE_UEFI_TYPES as readonly number[]).includes(t);
}

/**
 * The firmware map as sim/host.ts's HostConfig.firmware: one region per UEFI descriptor in map order, usable for
 * USABLE_UEFI_TYPES and reserved (→ Boot) for everything else; ranges are clipped to what the map's order covers
 * (`covers` bytes) and empty ones dropped — what the boot module does with the same map.
 */
export function firmwareRegions(descs: UefiDescriptor[], covers = 1n << 32n): FirmwareRegion[] {
  const out: FirmwareRegion[] = [];
  for (const d of descs) {
    let end = d.base + d.pages * 4096n;
    if (d.base >= covers || end <= d.base) continue;
    if (end > covers) end = covers;
    out.push({ base: d.base, length: end - d.base, type: isUsableUefiType(d.type) ? "usable" : "reserved" });
  }
  return out;
}

/** The reverse, for the simulator: each region as one UEFI descriptor (conventional or reserved memory). */
export function uefiDescriptors(regions: readonly FirmwareRegion[]): UefiDescriptor[] {
  return regions.map((r) => {
    if (r.base % 4096n !== 0n || r.length % 4096n !== 0n) {
      throw new RangeError(`firmware region at 0x${r.base.toString(16)} of ${r.length} bytes is not in whole 4 KiB pages`);
    }
    return { type: r.type === "usable" ? UEFI_CONVENTIONAL : UEFI_RESERVED, base: r.base, pages: r.length / 4096n };
  });
}

/**
 * The firmware map's ranges that are not RAM the host may hand out (every type but USABLE_UEFI_TYPES) and overlap
 * [lo, hi): what the database must never give to the ultravisor (test/hw/ultravisor.test.ts checks it).
 */
export function nonRamOverlaps(descs: UefiDescriptor[], lo: bigint, hi: bigint): Array<{ type: number; lo: bigint; hi: bigint }> {
  const out: Array<{ type: number; lo: bigint; hi: bigint }> = [];
  for (const d of descs) {
    if (isUsableUefiType(d.type)) continue;
    const end = d.base + d.pages * 4096n;
    const a = d.base > lo ? d.base : lo;
    const b = end < hi ? end : hi;
    if (a < b) out.push({ type: d.type, lo: a, hi: b });
  }
  return out;
}

/** Arguments of `main` in order (addresses are physical = linear-memory addresses; pages are 4 KiB page numbers). */
export interface BootMainArgs {
  ui: number;
  map: number;
  mapBytes: number;
  descSize: number;
  region: number;
  req: number;
  ops: number;
  uvPage: number;
  uvPages: number;
  allotPage: number;
  allotPages: number;
}

export interface BootModule {
  /** The module's own linear memory: the host's physical memory (core.wasm is instantiated over it). */
  memory: WasmMemory;
  /** The boot transactions: committed transactions or a negative error (core's or BOOT_ERRORS). */
  main(a: BootMainArgs): number;
  /** Create-with-memory (see boot.ts `create`): the new partition's number or a negative error. */
  create(ui: number, req: number, payload: number, first: number, pages: number, from: number): number;
  /** The page the boot's split would take for a map page now, 0 if none (`ui`: the index page). */
  freeDbPage(ui: number): number;
  /** The resource service's builders (core/boot/assembly/resource-service.ts; docs/specs/command-channel.md). */
  rs: ResourceBuilders;
  /** The command partition's line reader (core/boot/assembly/command-line.ts). */
  cl: CommandLineReader;
}

/**
 * The resource service's transaction builders: each writes one request at `req` (at most `cap` bytes) and returns its
 * length, 0 (grow: none needed) or a negative error (BOOT_ERRORS); they submit nothing. `hint`: a page below which
 * the caller knows no 4 KiB page is Available (0 always works; it only shortens the scan).
 */
export interface ResourceBuilders {
  /** The descriptor or map page the next build takes; 0 when fewer than two Available 4 KiB pages are left. */
  allocDbPage(ui: number, hint: number): number;
  buildGrow(ui: number, req: number, hint: number): number;
  buildCreate(ui: number, req: number, cap: number, payload: number, runs: number, nruns: number, from: number, hint: number): number;
  /** The partition number of the last successful buildCreate. */
  created(): number;
  buildDestroy(ui: number, req: number, cap: number, p: number, prefix: number, nprefix: number): number;
}

/** A run as the builders read it: u32 map page, u32 first index, u32 last index. */
export const RUN_BYTES = 12;

/**
 * The record cl_parse writes (core/boot/assembly/command-line.ts): u32 verb, u32 channel count, u64 memory bytes,
 * name (16 bytes, NUL-padded), then per channel u32 type code and the server's name (16 bytes).
 */
export const COMMAND_LINE = { verb: 0, channels: 4, memory: 8, name: 16, channel: 32, channelBytes: 20, maxChannels: 8, maxText: 63 } as const;
/** cl_parse's verbs. */
export const COMMAND_VERBS: Record<number, "create" | "stop" | "destroy" | "restart"> = { 1: "create", 2: "stop", 3: "destroy", 4: "restart" };
/** The command partition's statuses for a refused line (docs/specs/command-channel.md): name and reason. */
export const COMMAND_LINE_ERRORS: Record<number, { name: string; text: string }> = {
  [-2001]: { name: "MALFORMED_LINE", text: "malformed line" },
  [-2002]: { name: "TOO_MUCH_MEMORY", text: "more memory than the host has Available (or not a multiple of the smallest page)" },
  [-2003]: { name: "UNKNOWN_CHANNEL_TYPE", text: "unknown channel type" },
  [-2004]: { name: "NAME", text: "the name is in use (create) or names no running partition" },
  [-2005]: { name: "NO_SERVER", text: "a channel's server is not a running partition" },
};

/** The line reader's two calls: cl_parse (the line's form) and cl_check (against a read-only view of the database). */
export interface CommandLineReader {
  parse(text: number, len: number, out: number): number;
  check(ui: number, out: number, granule: number): number;
}

let compiled: WasmModule | undefined;

/** Compiles boot.wasm for V8 once per process (building it first if its source changed). */
export async function bootModule(): Promise<WasmModule> {
  if (!compiled) compiled = new WA.Module(await bootModuleWasm());
  return compiled;
}

/**
 * Instantiates the module in V8. Its imports are the host's: each must call core.wasm (instantiated afterwards over
 * `memory`) and return core's result. The module declares its own memory (on the machine it is physical memory from
 * address 0), so here that memory becomes the host's and core imports it.
 */
export function instantiateBootModule(module: WasmModule, env: { db_submit: (req: number) => number; db_log_truncate: () => number }): BootModule {
  const wanted = WA.Module.imports(module).filter((i) => !(i.module === "env" && (BOOT_MODULE_IMPORTS as readonly string[]).includes(i.name)));
  if (wanted.length) throw new Error(`boot.wasm imports ${wanted.map((i) => `${i.module}.${i.name}`).join(", ")}; core/boot-module.ts supplies env.db_submit and env.db_log_truncate only`);
  const instance = new WA.Instance(module, { env });
  const x = instance.exports as Record<string, unknown>;
  for (const n of [...BOOT_MODULE_EXPORTS, "memory"]) if (!(n in x)) throw new Error(`boot.wasm lacks the export ${n}`);
  const main = x.main as (...a: number[]) => number;
  const create = x.create as (...a: number[]) => number;
  const free = x.free_db_page as (ui: number) => number;
  const fn = (n: string): ((...a: number[]) => number) => x[n] as (...a: number[]) => number;
  const rs: ResourceBuilders = {
    allocDbPage: (ui, hint) => fn("rs_alloc_db_page")(ui, hint) >>> 0,
    buildGrow: (ui, req, hint) => fn("rs_build_grow")(ui, req, hint),
    buildCreate: (ui, req, cap, payload, runs, nruns, from, hint) => fn("rs_build_create")(ui, req, cap, payload, runs, nruns, from, hint),
    created: () => fn("rs_created")() >>> 0,
    buildDestroy: (ui, req, cap, p, prefix, nprefix) => fn("rs_build_destroy")(ui, req, cap, p, prefix, nprefix),
  };
  const cl: CommandLineReader = {
    parse: (text, len, out) => fn("cl_parse")(text, len, out),
    check: (ui, out, granule) => fn("cl_check")(ui, out, granule),
  };
  return {
    rs,
    cl,
    memory: x.memory as WasmMemory,
    main: (a) => main(a.ui, a.map, a.mapBytes, a.descSize, a.region, a.req, a.ops, a.uvPage, a.uvPages, a.allotPage, a.allotPages),
    create: (ui, req, payload, first, pages, from) => create(ui, req, payload, first, pages, from),
    freeDbPage: (ui) => free(ui) >>> 0,
  };
}
