// The guest-physical layout of a Linux partition (toolchain/linux/, build side; docs/specs/linux-partition.md §5): a
// pure function of the partition's memory, the bzImage's header, the command line's length and the initrd's size.
// Low pages at 0x1000–0x9FFF (GDT, zero page, command line, identity page tables), the kernel at pref_address with
// init_size bytes of room, the initrd at the top of memory. The addresses are partition-relative: the partition's
// memory starts at guest-physical 0 (its nested page tables map page n to page n of its allotment).
import type { BzImage } from "./bzimage.ts";

/** The low pages, guest-physical (one 4 KiB page each; four page directories). */
export const LOW = {
  /** rsp at entry: the top of page 0 (the protocol names no stack; startup_64 sets its own before any push). */
  stackTop: 0x1000,
  gdt: 0x1000,
  zeroPage: 0x2000,
  cmdline: 0x3000,
  pml4: 0x4000,
  pdpt: 0x5000,
  pd: 0x6000,
  /** End (exclusive) of the low pages. */
  end: 0xa000,
} as const;
export const PAGE = 4096;
/** The longest command line the layout holds (its page, NUL included). */
export const MAX_CMDLINE = PAGE - 1;
/** The page tables map the first 4 GiB; a partition is at most that in this version. */
export const MAX_MEMORY = 4 * 1024 ** 3;
/** Partition memory comes in 4 MB pages (definition/check.ts). */
export const MEMORY_UNIT = 4 << 20;
/**
 * The arguments the monitor appends to the command line in the partition's low pages when the definition's command
 * line does not name tsc_early_khz (docs/specs/linux-pc.md §8): the TSC frequency the loader measured, in decimal (the
 * kernel parses it with base 0, so never with a leading zero), and tsc=reliable — the partition's TSC is the host's,
 * constant-rate and running while the partition is not scheduled, so it is the true clock, while the PIT's coalesced
 * jiffies fall behind it and would make the kernel's clocksource watchdog throw the TSC out. The build keeps
 * TSC_ARG_ROOM bytes free for them: the text, 20 digits, the NUL.
 */
export const TSC_ARG = " tsc=reliable tsc_early_khz=";
export const TSC_ARG_ROOM = TSC_ARG.length + 20 + 1;
/** Whether the monitor appends TSC_ARG to this command line (it does unless the line names tsc_early_khz itself). */
export const appendsTscArg = (cmdline: string): boolean => !/(^|\s)tsc_early_khz=/.test(cmdline);
/** The 64-bit entry is startup_64, 0x200 past the load address (boot protocol, 64-bit boot). */
export const STARTUP_64 = 0x200;

export interface LinuxLayout {
  memory: number;
  /** Where the protected-mode kernel is loaded (pref_address) and its size in the file. */
  kernelAddr: number;
  kernelSize: number;
  /** Bytes from kernelAddr the kernel needs before it runs. */
  initSize: number;
  initrdAddr: number;
  initrdSize: number;
  /** Command line length without its NUL. */
  cmdlineLength: number;
  /** The guest's first rip: kernelAddr + 0x200. */
  entry: number;
}

export type LayoutProblem = "too-small" | "cmdline-too-long" | "bad-memory";

export class LayoutError extends Error {
  override name = "LayoutError";
  constructor(readonly problem: LayoutProblem, message: string) {
    super(message);
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;
const mib = (n: number): string => `${(n / (1 << 20)).toFixed(1).replace(/\.0$/, "")} MiB`;

/** The smallest memory (a multiple of 4 MB) that holds this kernel and an initrd of `initrdSize` bytes. */
export function minimumMemory(k: Pick<BzImage, "prefAddress" | "initSize">, initrdSize: number): number {
  return alignUp(alignUp(k.prefAddress + k.initSize, PAGE) + alignUp(initrdSize, PAGE), MEMORY_UNIT);
}

/** Places kernel, initrd and command line in `memory` bytes; throws LayoutError when they do not fit. */
export function linuxLayout(memory: number, k: Pick<BzImage, "prefAddress" | "initSize" | "kernel" | "cmdlineSize" | "initrdAddrMax">, cmdlineLength: number, initrdSize: number, cmdlineRoom = 0): LinuxLayout {
  if (!Number.isInteger(memory) || memory <= 0 || memory % PAGE !== 0 || memory > MAX_MEMORY) {
    throw new LayoutError("bad-memory", `${memory} bytes of memory: a whole number of 4 KiB pages, at most 4 GiB in this version`);
  }
  const maxCmd = Math.min(k.cmdlineSize, MAX_CMDLINE);
  if (cmdlineLength + cmdlineRoom > maxCmd) {
    const room = cmdlineRoom ? ` plus the ${cmdlineRoom} the monitor keeps for${TSC_ARG}N (name tsc_early_khz= yourself to give them back)` : "";
    throw new LayoutError("cmdline-too-long", `the command line is ${cmdlineLength} bytes${room}, more than the kernel's cmdline_size allows (${maxCmd})`);
  }
  const kernelEnd = alignUp(k.prefAddress + k.initSize, PAGE);
  const top = Math.min(memory, k.initrdAddrMax + 1);
  const initrdAddr = alignDown(top - initrdSize, PAGE);
  if (k.prefAddress < LOW.end || initrdAddr < kernelEnd) {
    throw new LayoutError("too-small", `${mib(memory)} is too small: the kernel needs up to ${mib(kernelEnd)} (pref_address ${mib(k.prefAddress)} + init_size ${mib(k.initSize)}) and the initrd ${mib(alignUp(initrdSize, PAGE))} above it; give at least ${mib(minimumMemory(k, initrdSize))}`);
  }
  return {
    memory, kernelAddr: k.prefAddress, kernelSize: k.kernel.length, initSize: k.initSize, initrdAddr, initrdSize,
    cmdlineLength, entry: k.prefAddress + STARTUP_64,
  };
}
