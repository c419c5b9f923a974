// The runtime contract between AOT-compiled code and its embedder (host test runtime or bare-metal image): pinned
// registers, the VM-context block layout, trap codes. Described in prose in toolchain/aot/ABI.md; compile.ts lays
// the block out per module and host.ts / the image loader fill it in.
import { r14, r15, rbp } from "../x64/index.ts";

/** r14 holds the VM context (this block); r15 the linear-memory base; rbp the frame. */
export const VMCTX = r14;
export const MEMBASE = r15;
export const FP = rbp;

/** Fixed header of the VM context, byte offsets from r14. */
export enum Ctx {
  MemBase = 0,
  /** Current linear-memory size in bytes (a multiple of 64 KiB). */
  MemSize = 8,
  /** The page count memory.grow may reach: min(module maximum, embedder maximum). */
  MemMaxPages = 16,
  /** Lowest rsp generated code may use; function prologues trap below it (call-depth limit). */
  StackLimit = 24,
  /** Address of the trap handler: called with edi = trap code, esi = detail (hw.panic argument). */
  TrapHandler = 32,
  /** rsp saved by the host entry thunk; the host trap handler unwinds to it. */
  SavedRsp = 40,
  /** Bytes of stack the host entry thunk grants generated code below its own frame. */
  StackBudget = 48,
  /** Number of table entries. */
  TableSize = 56,
  /** First per-module field: globals (8 bytes each), then imported-function pointers (8 each), then the table. */
  Globals = 64,
}

/** Trap codes passed to the handler (and returned to JS by the host entry thunks). 0 means no trap. */
export enum Trap {
  Unreachable = 1,
  DivByZero = 2,
  IntOverflow = 3,
  MemoryOutOfBounds = 4,
  TableOutOfBounds = 5,
  NullFunction = 6,
  SignatureMismatch = 7,
  StackOverflow = 8,
  Panic = 9,
}

export const TRAP_NAMES: Record<number, string> = {
  1: "unreachable",
  2: "integer divide by zero",
  3: "integer overflow",
  4: "memory access out of bounds",
  5: "table index out of bounds",
  6: "null function",
  7: "function signature mismatch",
  8: "call stack exhausted",
  9: "panic",
};

/** Where each per-module part of the VM context sits. */
export interface CtxLayout {
  globals: number;
  imports: number;
  /** Table entries: 16 bytes each, { code address (0 = null), canonical signature id }. */
  table: number;
  size: number;
}

export function ctxLayout(numGlobals: number, numImports: number, tableSize: number): CtxLayout {
  const globals = Ctx.Globals;
  const imports = globals + 8 * numGlobals;
  const table = imports + 8 * numImports;
  return { globals, imports, table, size: table + 16 * tableSize };
}
