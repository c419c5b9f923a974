// The bzImage reader (toolchain/linux/, build side of a Linux partition; docs/specs/linux-partition.md §4): checks a
// kernel file against the x86 boot protocol's setup header and returns what the layout and the zero page need. The
// file is hostile input: every field is bounds-checked, and a refusal says which check failed; nothing is repaired.
// Offsets are the protocol's (Documentation/arch/x86/boot.rst), counted from the start of the file.

/** Header fields by offset in the file (the setup header starts at 0x1F1). */
export const HDR = {
  setupSects: 0x1f1, // u8
  syssize: 0x1f4, // u32
  bootFlag: 0x1fe, // u16 = 0xAA55
  jump: 0x200, // u16; byte 0x201 is the header's length past 0x202
  header: 0x202, // u32 = "HdrS"
  version: 0x206, // u16
  typeOfLoader: 0x210, // u8
  loadflags: 0x211, // u8
  code32Start: 0x214, // u32
  ramdiskImage: 0x218, // u32
  ramdiskSize: 0x21c, // u32
  cmdLinePtr: 0x228, // u32
  initrdAddrMax: 0x22c, // u32
  kernelAlignment: 0x230, // u32
  relocatableKernel: 0x234, // u8
  xloadflags: 0x236, // u16
  cmdlineSize: 0x238, // u32
  prefAddress: 0x258, // u64
  initSize: 0x260, // u32
} as const;

export const HDRS_MAGIC = 0x53726448; // "HdrS"
export const BOOT_FLAG = 0xaa55;
/** 2.12: xloadflags exist (pref_address and init_size are 2.10). */
export const MIN_PROTOCOL = 0x020c;
export const LOADED_HIGH = 0x01;
export const XLF_KERNEL_64 = 0x01;
/** The smallest file that holds the whole header we read (init_size ends at 0x264). */
const MIN_HEADER_BYTES = 0x264;

export type BzImageProblem = "not-bzimage" | "protocol" | "not-64-bit";

/** A kernel file that cannot be booted, with the check that failed. */
export class BzImageError extends Error {
  override name = "BzImageError";
  constructor(readonly problem: BzImageProblem, message: string) {
    super(message);
  }
}

export interface BzImage {
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  version: number;
  /** Setup sectors as the file says (0 read as 4, the protocol's rule). */
  setupSects: number;
  /** Where the protected-mode kernel starts in the file: (setup_sects + 1) · 512. */
  kernelOffset: number;
  /** End (exclusive) of the setup header in the file: 0x202 + byte[0x201]. */
  headerEnd: number;
  loadflags: number;
  xloadflags: number;
  relocatable: boolean;
  kernelAlignment: number;
  prefAddress: number;
  initSize: number;
  cmdlineSize: number;
  initrdAddrMax: number;
  /** The whole file (the setup header is copied from it into the zero page). */
  file: Uint8Array;
  /** The protected-mode kernel: what is loaded at prefAddress. */
  kernel: Uint8Array;
}

export const versionText = (v: number): string => `${v >> 8}.${(v & 0xff).toString().padStart(2, "0")}`;

/** Reads and checks `file` as a bzImage; throws BzImageError naming the failed check. */
export function parseBzImage(file: Uint8Array): BzImage {
  const not = (why: string): never => {
    throw new BzImageError("not-bzimage", `not a bzImage: ${why}`);
  };
  if (file.length < MIN_HEADER_BYTES) not(`${file.length} bytes, too short for the setup header (at least ${MIN_HEADER_BYTES})`);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const u8 = (o: number): number => v.getUint8(o);
  const u16 = (o: number): number => v.getUint16(o, true);
  const u32 = (o: number): number => v.getUint32(o, true);
  if (u16(HDR.bootFlag) !== BOOT_FLAG) not(`boot flag at 0x1FE is 0x${u16(HDR.bootFlag).toString(16)}, not 0xAA55`);
  if (u32(HDR.header) !== HDRS_MAGIC) not(`no "HdrS" magic at 0x202 (found 0x${u32(HDR.header).toString(16)})`);
  const version = u16(HDR.version);
  if (version < MIN_PROTOCOL) {
    throw new BzImageError("protocol", `boot protocol ${versionText(version)} is too old (at least ${versionText(MIN_PROTOCOL)}: xloadflags, pref_address and init_size)`);
  }
  const setupSects = u8(HDR.setupSects) || 4;
  const kernelOffset = (setupSects + 1) * 512;
  if (file.length <= kernelOffset) not(`${file.length} bytes end before the protected-mode kernel at ${kernelOffset} (setup_sects ${setupSects}): truncated`);
  const headerEnd = 0x202 + u8(HDR.jump + 1);
  if (headerEnd < MIN_HEADER_BYTES || headerEnd > kernelOffset) not(`setup header length byte 0x201 = ${u8(HDR.jump + 1)} puts its end at 0x${headerEnd.toString(16)}, outside 0x264..0x${kernelOffset.toString(16)}`);
  const loadflags = u8(HDR.loadflags);
  if (!(loadflags & LOADED_HIGH)) not("loadflags lacks LOADED_HIGH: a zImage loaded at 0x10000, not a bzImage");
  const xloadflags = u16(HDR.xloadflags);
  if (!(xloadflags & XLF_KERNEL_64)) throw new BzImageError("not-64-bit", `xloadflags 0x${xloadflags.toString(16)} lacks XLF_KERNEL_64: not a 64-bit kernel (the partition enters at startup_64)`);
  const kernelAlignment = u32(HDR.kernelAlignment);
  if (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0) not(`kernel_alignment 0x${kernelAlignment.toString(16)} is not a power of two`);
  const pref = v.getBigUint64(HDR.prefAddress, true);
  if (pref < 0x100000n || pref >= 1n << 32n) not(`pref_address 0x${pref.toString(16)} is not between 1 MiB and 4 GiB`);
  const prefAddress = Number(pref);
  if (prefAddress % kernelAlignment !== 0) not(`pref_address 0x${prefAddress.toString(16)} is not a multiple of kernel_alignment 0x${kernelAlignment.toString(16)}`);
  const kernel = file.subarray(kernelOffset);
  const initSize = u32(HDR.initSize);
  if (initSize < kernel.length) not(`init_size 0x${initSize.toString(16)} is smaller than the kernel it must hold (${kernel.length} bytes)`);
  return {
    version, setupSects, kernelOffset, headerEnd, loadflags, xloadflags,
    relocatable: u8(HDR.relocatableKernel) !== 0, kernelAlignment, prefAddress, initSize,
    cmdlineSize: u32(HDR.cmdlineSize), initrdAddrMax: u32(HDR.initrdAddrMax), file, kernel,
  };
}
