// Builds the AssemblyScript partition programs — the guests (partitions/assembly/guest.ts), the I/O partition (io.ts)
// and the command partition (command.ts) — into partition images: asc (through core/asc.ts, the one AssemblyScript
// build entry) → out/partitions/NAME.wasm → toolchain/aot (x86-64, System V entry thunks, linear-memory base in r15)
// merged with a few instructions of assembly: the VM context, whose memory base is the window itself (a wasm address is
// a window offset, so the info page and the channel slots are plain linear memory: docs/specs/image-layout.md,
// AssemblyScript partitions), the module's data segments as a data section linked at their wasm address, and the start
// code that enters `main` through its thunk and, when a wasm trap brings it back, enters `trapped` to print the trap
// before stopping with #UD.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Assembler, type Label, addr, ptr, rax, rdi, rdx, rsi, qword } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { compileWasm, type CompiledModule } from "../toolchain/aot/compile.ts";
import { emitImageContext } from "../toolchain/aot/image-context.ts";
import { mergeObjects } from "../toolchain/aot/merge-objects.ts";
import { ascBuild } from "../core/asc.ts";
import { CHAN, COMMAND_VIEW, WINDOW_LAYOUT, WINDOW } from "../monitor-gen/layout.ts";
import { IO_EMIT, IO_NO_INPUT, IO_RECEIVE, PROGRAM_ENTRY } from "./programs.ts";
import { packPartition, type PackedPartition, type SlotInfo } from "./pack.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ASSEMBLY = join(root, "partitions", "assembly");
/** Stack the entry thunk lets generated code use (the window's stack is 16 KiB). */
const STACK_BUDGET = 12 * 1024;
const WASM_PAGE = 65536;
/** The linear memory spans the window up to the end of the last channel slot: wasm address = window offset. */
export const AS_MEMORY_BYTES = WINDOW_LAYOUT.slot(WINDOW_LAYOUT.maxSlots);
/**
 * The command partition's linear memory reaches over its read-only view of the database (monitor-gen/layout.ts
 * COMMAND_VIEW: physical page p at window offset p), so that its line reader and resource service read the map in
 * place; between the slots and the view nothing is mapped.
 */
export const COMMAND_MEMORY_BYTES = COMMAND_VIEW.hi;
/** Linear-memory bytes of each program. */
export const memoryBytesOf = (program: AsProgram): number => (program === "command" ? COMMAND_MEMORY_BYTES : AS_MEMORY_BYTES);
/** Where asc puts the static data (`--memoryBase`); static data, buffers and heap end below the stack. */
export const AS_DATA_BASE = 0x10000;
const AS_DATA_END = WINDOW_LAYOUT.stackTop - 0x4000;

/** "io-fuzz": the hostile I/O partition of test builds (partitions/assembly/io-fuzz.ts, behaviour fault "fuzz-server"). */
export type AsProgram = "guest" | "io" | "command" | "io-fuzz";
/** Imports each program may have: hw intrinsics only, the port ones for the I/O partition alone. */
const ALLOWED: Record<AsProgram, readonly string[]> = {
  guest: ["hypercall", "mfence", "rdtsc"],
  command: ["hypercall", "mfence"],
  io: ["hypercall", "mfence", "pause", "rdtsc", "inb", "outb", "mmio_read8", "mmio_read16", "mmio_read32", "mmio_write8", "mmio_write16", "mmio_write32"],
  // The hostile I/O partition runs io.ts's serve, storage slots included: the same imports.
  "io-fuzz": ["hypercall", "mfence", "pause", "rdtsc", "inb", "outb", "mmio_read8", "mmio_read16", "mmio_read32", "mmio_write8", "mmio_write16", "mmio_write32"],
};

/** asc flags of a partition program (the AOT subset, as for core.wasm; memory = the window's span, memoryBytesOf). */
const partitionAscFlags = (program: AsProgram): string[] => [
  "--runtime", "stub", "--optimizeLevel", "3", "--shrinkLevel", "0",
  "--disable", "bulk-memory,nontrapping-f2i", "--initialMemory", String(memoryBytesOf(program) / WASM_PAGE),
  "--maximumMemory", String(memoryBytesOf(program) / WASM_PAGE), "--memoryBase", String(AS_DATA_BASE), "--use", "abort=", "--noColors",
];

/** Inputs of every partition program besides the files asc reads (recorded by core/asc.ts): this rule file. */
const SHARED_SOURCES = [
  join(ASSEMBLY, "partition.ts"), join(root, "core", "assembly", "channel.ts"), join(root, "core", "assembly", "channel-types.ts"),
  fileURLToPath(import.meta.url),
];

/** out/partitions/PROGRAM.wasm, rebuilt with asc (core/asc.ts, the one AssemblyScript build entry) when a source changed. */
export async function partitionWasm(program: AsProgram): Promise<Uint8Array> {
  const out = join(root, "out", "partitions", `${program}.wasm`);
  return (await ascBuild({ sources: [join(ASSEMBLY, `${program}.ts`)], out, flags: partitionAscFlags(program), deps: SHARED_SOURCES })).bytes;
}

export interface AotPartition {
  object: ObjectFile;
  compiled: CompiledModule;
  /** Bytes of the static-data section (`aot_data`), which must land at window offset AS_DATA_BASE and end the image. */
  dataBytes: number;
}

/** An argument of `main`: a number, or the window address of a label of the partition's assembly. */
type MainArg = bigint | string;

/** Symbols to define at offsets of the compiled code (the I/O partition's line writer). */
type CodeSymbols = (c: CompiledModule) => Array<{ name: string; offset: number }>;

/**
 * Compiles `wasm` (program `program`) and links it with the entry code. `args` are main's arguments; `rdata` adds
 * read-only data (labels the arguments may name); `codeSymbols` names offsets of the compiled code for the image.
 */
function assembleAotPartition(program: AsProgram, wasm: Uint8Array, args: MainArg[], rdata?: (a: Assembler) => void, codeSymbols?: CodeSymbols): AotPartition {
  const compiled = compileWasm(wasm, { hostThunks: true, importsAsSymbols: true, symbolPrefix: "wasm" });
  const what = `the AssemblyScript ${program} program (partitions/assembly/${program}.ts)`;
  const thunk = (name: string): number => {
    const e = compiled.exports.find((x) => x.name === name);
    if (!e || e.thunk < 0) throw new Error(`${what} must export ${name}`);
    return e.thunk;
  };
  for (const imp of compiled.imports) {
    if (imp.module !== "hw" || !ALLOWED[program].includes(imp.name)) {
      throw new Error(`${what} imports ${imp.module}.${imp.name}; it may import only ${ALLOWED[program].map((n) => `hw.${n}`).join(", ")} (docs/specs/image-layout.md)`);
    }
  }
  const memBytes = memoryBytesOf(program);
  if (!compiled.memory || compiled.memory.minPages * WASM_PAGE !== memBytes) {
    throw new Error(`${what} must define one memory of ${memBytes} bytes (asc --initialMemory ${memBytes / WASM_PAGE})`);
  }
  let end = AS_DATA_BASE;
  for (const d of compiled.datas) {
    if (d.offset < AS_DATA_BASE || d.offset + d.bytes.length > AS_DATA_END) {
      throw new Error(`${what}: data segment [0x${d.offset.toString(16)}, +${d.bytes.length}) outside [0x${AS_DATA_BASE.toString(16)}, 0x${AS_DATA_END.toString(16)}) (asc --memoryBase)`);
    }
    end = Math.max(end, d.offset + d.bytes.length);
  }
  const data = new Uint8Array(end - AS_DATA_BASE);
  for (const d of compiled.datas) data.set(d.bytes, d.offset - AS_DATA_BASE);

  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  const enter = (thunkLabel: string): void => {
    a.lea(rdi, ptr(L("aot_ctx"))).lea(rsi, ptr(L("aot_args"))).lea(rdx, ptr(L("aot_result")));
    a.call(L(thunkLabel));
  };
  a.section(".text");
  a.bind(L("p_image_start"));
  a.bind(L(PROGRAM_ENTRY));
  enter("aot_main_thunk");
  // main never returns: the thunk came back with a trap code, which becomes trapped's argument.
  a.mov(qword(L("aot_args")), rax);
  enter("aot_trapped_thunk");
  a.ud2();
  if (rdata) {
    a.section(".rdata");
    rdata(a);
  }

  a.section(".data");
  a.align(16);
  a.bind(L("aot_ctx"));
  emitImageContext(a, compiled, {
    memBase: WINDOW, memBytes, trapHandler: L("aot_host_trap"), stackBudget: STACK_BUDGET, tableFunc: (f) => L(`wasm.f${f}`),
  });
  a.bind(L("aot_args"));
  for (const v of args.length ? args : [0n]) a.dq(typeof v === "bigint" ? v : addr(L(v)));
  a.bind(L("aot_result"));
  a.dq(0n);
  // The static data at its wasm address: the section is aligned to AS_DATA_BASE and comes last in the image.
  a.section(".lmem", "data", AS_DATA_BASE);
  a.bind(L("aot_data"));
  a.db(data);

  // p_ro_end after every code and read-only section of both objects: the end of what the guests checksum.
  const tail = new Assembler();
  tail.section(".roend", "rdata", 1);
  tail.bind(tail.symbol("p_ro_end"));
  const text = compiled.object.sections.findIndex((s) => s.name === ".text");
  const withCode = mergeObjects(a.finish(), compiled.object, "wasm$", [
    { name: "aot_main_thunk", section: text, offset: thunk("main") },
    { name: "aot_trapped_thunk", section: text, offset: thunk("trapped") },
    { name: "aot_host_trap", section: text, offset: compiled.hostTrap },
    ...(codeSymbols?.(compiled) ?? []).map((x) => ({ ...x, section: text })),
  ]);
  return { object: mergeObjects(withCode, tail.finish(), "tail$"), compiled, dataBytes: data.length };
}

/**
 * A guest: a line every `period` quanta with a checksum of its code and read-only data; `outOfBounds` makes that
 * range start at the end of the linear memory, so the first load traps (code 4) in the generated bounds check and
 * the partition ends with #UD — a wasm trap is contained like any other fault.
 */
export function assembleAotGuest(wasm: Uint8Array, o: {
  period: number; outOfBounds?: boolean; probeCommand?: boolean;
  /** The storage workload (docs/specs/storage-channel.md §6), or the hostile storage client against block `first` of 0. */
  disk?: { first: number; blocks: number; passes: number; bench?: boolean }; hostileStorage?: boolean;
  /** The workload goes to a storage pair: channels in slots 1 and 2, core's in-flight table (storage-failover.md §7.3). */
  pair?: boolean;
}): AotPartition {
  const end = WINDOW + BigInt(AS_MEMORY_BYTES);
  const range: MainArg[] = o.outOfBounds ? [end, end + 64n] : ["p_image_start", "p_ro_end"];
  const disk: MainArg[] = o.hostileStorage ? [2n, BigInt(o.disk?.first ?? 0), 0n, 0n] : o.disk ? [o.disk.bench ? 3n : 1n, BigInt(o.disk.first), BigInt(o.disk.blocks), BigInt(o.disk.passes)] : [0n, 0n, 0n, 0n];
  return assembleAotPartition("guest", wasm, [BigInt(o.period), ...range, o.probeCommand ? 1n : 0n, ...disk, o.pair ? 1n : 0n]);
}

/** Definitions the command partition keeps track of (partitions/assembly/command.ts MAX_DEFINITIONS). */
export const MAX_DEFINITIONS = 64;

/**
 * The command partition: sends the payloads in order on the command channel in `slot`, in batches that queue 1 can
 * answer, submits each batch and prints each completion.
 */
export function assembleAotCommand(wasm: Uint8Array, payloads: readonly Uint8Array[], slot: number, ui = 0): AotPartition {
  if (payloads.length > MAX_DEFINITIONS) throw new RangeError(`at most ${MAX_DEFINITIONS} boot-time definitions (${payloads.length} given)`);
  payloads.forEach((p, i) => {
    if (p.length < 1 || p.length > CHAN.maxText) throw new RangeError(`boot-time definition ${i + 1}: ${p.length} bytes; a request carries 1–${CHAN.maxText} inline bytes`);
  });
  return assembleAotPartition("command", wasm, ["p_definitions", BigInt(payloads.length), BigInt(slot), BigInt(ui)], (a) => {
    a.align(8);
    a.bind(a.symbol("p_definitions"));
    for (const p of payloads) {
      a.dd(p.length);
      a.db(p);
      a.align(8);
    }
  });
}

/**
 * The I/O partition. `io_emit` … `io_emit_end` (IO_EMIT) bound the compiled line writer, the one function with port
 * instructions: the monitor holds its own log while the I/O partition's rip is in that range. With `fuzzSeed`, `wasm`
 * is the hostile io-fuzz program of test builds and the seed is its main's argument; otherwise main's first argument
 * says whether the host gives devices (bit 0: the device list is mapped only then) and whether a guest runs the storage
 * benchmark (bit 1: the I/O partition times its own reads and the channel's) and, in test builds, whether its device
 * is first told to DMA into a page it was not given (bit 2: "rogue-dma", docs/specs/storage-channel.md §9), its second is the slot of the
 * command partition's console channel that takes the lines typed on COM1 (IO_NO_INPUT: none), its third whether it
 * is a member of the storage pair (`pair`: no COM1, lines through its console channel, storage channels only;
 * docs/specs/storage-failover.md §7), its fourth the request at which the pair's primary fails (0: never).
 */
export function assembleAotIo(
  wasm: Uint8Array, fuzzSeed?: bigint,
  io: { inputSlot?: number | undefined; devices?: boolean; bench?: boolean; pair?: { failAtRequest: number } | undefined; rogueDma?: boolean } = {},
): AotPartition {
  const flags = (io.devices ? 1n : 0n) | (io.bench ? 2n : 0n) | (io.rogueDma ? 4n : 0n);
  const args = fuzzSeed === undefined
    ? [flags, io.inputSlot === undefined ? IO_NO_INPUT : BigInt(io.inputSlot), io.pair ? 1n : 0n, BigInt(io.pair?.failAtRequest ?? 0)]
    : [BigInt.asUintN(64, fuzzSeed)];
  return assembleAotPartition(fuzzSeed === undefined ? "io" : "io-fuzz", wasm, args, undefined, (c) => {
    // Each function ends where the next piece of code (function, thunk, trap stub) starts.
    const range = (names: { start: string; end: string }, what: string, required: boolean) => {
      const f = c.exports.find((e) => e.name === names.start);
      if (!f) {
        if (required) throw new Error(`the AssemblyScript io program must export ${names.start}, its ${what}`);
        return [];
      }
      const after = [...c.funcOffsets, ...c.exports.flatMap((e) => [e.thunk, e.msThunk]), c.hostTrap, c.start].filter((x) => x > f.offset);
      return [{ name: names.start, offset: f.offset }, { name: names.end, offset: Math.min(c.code.length, ...after) }];
    };
    return [...range(IO_EMIT, "line writer", true), ...range(IO_RECEIVE, "byte reader", false)];
  });
}

/**
 * Packs an AssemblyScript partition into its window and checks what the program relies on: its static data linked at
 * its wasm address (window offset AS_DATA_BASE) and nothing after it, so its buffers and heap are the window's zero
 * fill up to the stack.
 */
export function packAotPartition(p: AotPartition, info: { name: string; number: number; slots: SlotInfo[] }): PackedPartition {
  const packed = packPartition(p.object, info);
  const at = packed.symbols.get("aot_data")!;
  if (at !== WINDOW + BigInt(AS_DATA_BASE)) {
    throw new RangeError(`partition ${info.name}: code and read-only data end past window offset 0x${AS_DATA_BASE.toString(16)}, where the AssemblyScript static data must start (docs/specs/image-layout.md); the program is too large for this layout`);
  }
  if (packed.image.end !== at + BigInt(p.dataBytes)) throw new Error(`partition ${info.name}: a section was linked after the AssemblyScript static data`);
  return packed;
}
