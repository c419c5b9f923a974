// Runs generated x86-64 code on the host CPU (Linux x86-64) through koffi: maps pages with libc mmap, copies the bytes,
// flips them to read+execute with mprotect, and calls them as System V functions of up to 6 integer arguments. Used by
// the assembler's native tests and by the AOT compiler's; production images never go through here.
import koffi from "koffi";

const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
const MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 0xffffffffffffffffn;
const PAGE = 4096;

interface Libc {
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  mprotect: (addr: unknown, len: number, prot: number) => number;
  munmap: (addr: unknown, len: number) => number;
  strerror: (errnum: number) => string;
}

let libc: Libc | null = null;
let proto: ReturnType<typeof koffi.proto> | null = null;

function lib(): Libc {
  if (libc) return libc;
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`native execution needs Linux on x86-64 (this is ${process.platform}/${process.arch})`);
  }
  const l = koffi.load("libc.so.6");
  libc = {
    mmap: l.func("void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)"),
    mprotect: l.func("int mprotect(void *addr, size_t len, int prot)"),
    munmap: l.func("int munmap(void *addr, size_t length)"),
    strerror: l.func("const char *strerror(int errnum)"),
  };
  proto = koffi.proto("uint64_t uvt_native_fn(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t)");
  return libc;
}

const roundUp = (n: number) => Math.max(PAGE, Math.ceil(n / PAGE) * PAGE);

function map(size: number, prot: number): { ptr: unknown; address: bigint; length: number } {
  const c = lib();
  const length = roundUp(size);
  const ptr = c.mmap(null, length, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const address = ptr === null ? 0n : koffi.address(ptr);
  if (address === 0n || address === MAP_FAILED) throw new Error(`mmap of ${length} bytes failed: ${c.strerror(koffi.errno())}`);
  return { ptr, address, length };
}

export type Arg = bigint | number;

/** Host memory the generated code may read and write; `bytes` views it without copying. */
export class HostBuffer {
  readonly address: bigint;
  readonly bytes: Uint8Array;
  private readonly ptr: unknown;
  private readonly length: number;
  private live = true;
  constructor(size: number) {
    const m = map(size, PROT_READ | PROT_WRITE);
    this.ptr = m.ptr;
    this.address = m.address;
    this.length = m.length;
    this.bytes = new Uint8Array(koffi.view(m.ptr, size));
  }
  get view(): DataView {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }
  dispose(): void {
    if (this.live) lib().munmap(this.ptr, this.length);
    this.live = false;
  }
}

/**
 * A region of executable memory. Reserve it first when the code must be linked for its final address
 * (`new ExecRegion(size)`, link against `address`, then `load(bytes)`); `load` makes it read+execute.
 */
export class ExecRegion {
  readonly address: bigint;
  private readonly ptr: unknown;
  private readonly length: number;
  private sealed = false;
  private live = true;
  constructor(readonly size: number) {
    const m = map(size, PROT_READ | PROT_WRITE);
    this.ptr = m.ptr;
    this.address = m.address;
    this.length = m.length;
  }
  /** Copies the code in and flips the pages to read+execute (W^X: never writable and executable at once). */
  load(code: Uint8Array): this {
    if (this.sealed) throw new Error("ExecRegion.load: the region is already loaded and sealed");
    if (code.length > this.size) throw new Error(`ExecRegion.load: ${code.length} bytes do not fit in ${this.size}`);
    new Uint8Array(koffi.view(this.ptr, code.length)).set(code);
    if (lib().mprotect(this.ptr, this.length, PROT_READ | PROT_EXEC) !== 0) {
      throw new Error(`mprotect failed: ${lib().strerror(koffi.errno())}`);
    }
    this.sealed = true;
    return this;
  }
  /** Calls the code at `offset` as `uint64_t f(uint64_t a0..a5)` (System V: rdi, rsi, rdx, rcx, r8, r9 → rax). */
  call(offset: number, ...args: Arg[]): bigint {
    if (!this.sealed || !this.live) throw new Error("ExecRegion.call: load() the code first (and do not call after dispose())");
    if (args.length > 6) throw new Error(`ExecRegion.call: at most 6 integer arguments, got ${args.length}`);
    const a = [0n, 0n, 0n, 0n, 0n, 0n];
    args.forEach((v, i) => (a[i] = BigInt.asUintN(64, BigInt(v))));
    const r: unknown = koffi.call(offset === 0 ? this.ptr : this.address + BigInt(offset), proto!, ...a);
    return BigInt.asUintN(64, BigInt(r as number | bigint));
  }
  dispose(): void {
    if (this.live) lib().munmap(this.ptr, this.length);
    this.live = false;
  }
}

/** Runs position-independent code once: map, call at offset 0 with `args`, unmap. */
export function runNative(code: Uint8Array, ...args: Arg[]): bigint {
  const r = new ExecRegion(code.length).load(code);
  try {
    return r.call(0, ...args);
  } finally {
    r.dispose();
  }
}
