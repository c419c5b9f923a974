// The `hw.*` intrinsic table: each import of module "hw" that core/ and partitions/ may use, its wasm signature and
// its inline lowering (through the macro-assembler, so toolchain/x64 still writes the bytes). docs/specs/intrinsics.md
// is the prose version of this table and names what the simulator does instead; keep the two in step.
import { CRS, byte, cr3, dword, ptr, rsp, word } from "../x64/index.ts";
import { Ctx, MEMBASE, Trap } from "./abi.ts";
import type { Context } from "./context.ts";
import { type MacroAssembler, R11, RAX, RCX, RDX, reg } from "./masm.ts";

const I = 0x7f;
const L = 0x7e;

export interface Intrinsic {
  name: string;
  params: number[];
  results: number[];
  /** Runs unprivileged, so host tests can execute it (the rest are checked by golden disassembly only). */
  hostSafe: boolean;
  lower(m: MacroAssembler, cx: Context): void;
}

/** Pops n arguments into scratch registers (first argument into regs[0]). */
function args(m: MacroAssembler, cx: Context, regs: number[], sizes: (4 | 8)[]): void {
  for (let i = regs.length - 1; i >= 0; i--) {
    const o = cx.pop();
    m.load(sizes[i]!, regs[i]!, o);
    cx.done(o);
  }
}

function result(m: MacroAssembler, cx: Context, size: 4 | 8): void {
  const r = cx.alloc();
  m.a.mov(reg(r, size), reg(RAX, size));
  cx.pushReg(size, r);
}

/** edx:eax → rax as one 64-bit value. */
function joinEdxEax(m: MacroAssembler): void {
  m.a.shl(reg(RDX, 8), 32);
  m.a.mov(reg(RAX, 4), reg(RAX, 4));
  m.a.or(reg(RAX, 8), reg(RDX, 8));
}

const portIn = (name: string, size: 1 | 2 | 4): Intrinsic => ({
  name, params: [I], results: [I], hostSafe: false,
  lower(m, cx) {
    args(m, cx, [RDX], [4]);
    m.a.in(reg(RAX, size), reg(RDX, 2));
    if (size === 1) m.a.movzx(reg(RAX, 4), reg(RAX, 1));
    else if (size === 2) m.a.movzx(reg(RAX, 4), reg(RAX, 2));
    result(m, cx, 4);
  },
});

const portOut = (name: string, size: 1 | 2 | 4): Intrinsic => ({
  name, params: [I, I], results: [], hostSafe: false,
  lower(m, cx) {
    args(m, cx, [RDX, RAX], [4, 4]);
    m.a.out(reg(RDX, 2), reg(RAX, size));
  },
});

/**
 * Device registers at an absolute virtual address (not linear memory: no bounds check, no memory base): the I/O
 * partition's virtio BARs at DEVWIN + physical address and the device list at DEVLIST (docs/specs/pci-devices.md).
 * What the address reaches is the page tables' business: at CPL 3 only the owner has its BARs mapped, so a wrong
 * address is a page fault that stops the partition alone. One access of exactly the register's width, as device
 * registers require (virtio 1.x §4.1.3.1); x86 keeps uncached accesses in program order.
 */
const MMIO_MEM = { 1: byte, 2: word, 4: dword } as const;
const mmioRead = (name: string, size: 1 | 2 | 4): Intrinsic => ({
  name, params: [L], results: [I], hostSafe: false,
  lower(m, cx) {
    args(m, cx, [RCX], [8]);
    if (size === 4) m.a.mov(reg(RAX, 4), dword(reg(RCX, 8)));
    else m.a.movzx(reg(RAX, 4), MMIO_MEM[size](reg(RCX, 8)));
    result(m, cx, 4);
  },
});
const mmioWrite = (name: string, size: 1 | 2 | 4): Intrinsic => ({
  name, params: [L, I], results: [], hostSafe: false,
  lower(m, cx) {
    args(m, cx, [RCX, RAX], [8, 4]);
    m.a.mov(MMIO_MEM[size](reg(RCX, 8)), reg(RAX, size));
  },
});

const readCr = (n: 0 | 2 | 3 | 4): Intrinsic => ({
  name: `read_cr${n}`, params: [], results: [L], hostSafe: false,
  lower(m, cx) {
    m.a.mov(reg(RAX, 8), CRS[n]!);
    result(m, cx, 8);
  },
});

const bare = (name: string, mnemonic: "pause" | "hlt" | "cli" | "sti" | "wbinvd" | "mfence", hostSafe: boolean): Intrinsic => ({
  name, params: [], results: [], hostSafe,
  lower(m) {
    m.a[mnemonic]();
  },
});

const LIST: Intrinsic[] = [
  {
    // Writes back the cache lines of linear memory [addr, addr+len); bounds-checked like a memory access.
    name: "flush", params: [I, I], results: [], hostSafe: true,
    lower(m, cx) {
      const a = m.a;
      args(m, cx, [RAX, RDX], [4, 4]);
      a.lea(reg(R11, 8), ptr({ base: reg(RAX, 8), index: reg(RDX, 8) }));
      a.cmp(reg(R11, 8), m.ctx(Ctx.MemSize));
      a.ja(m.trap(Trap.MemoryOutOfBounds));
      const base = m.memBase === null ? MEMBASE : m.memBase;
      if (base !== 0) {
        a.add(reg(RAX, 8), base);
        a.add(reg(R11, 8), base);
      }
      a.and(reg(RAX, 8), -64);
      const loop = a.label();
      const done = a.label();
      a.bind(loop);
      a.cmp(reg(RAX, 8), reg(R11, 8));
      a.jae(done);
      a.clflush(byte(reg(RAX, 8)));
      a.add(reg(RAX, 8), 64);
      a.jmp(loop);
      a.bind(done);
    },
  },
  {
    // AssemblyScript's abort(msg, file, line, col): reported through the trap handler with code Panic.
    name: "panic", params: [I, I, I, I], results: [], hostSafe: true,
    lower(m, cx) {
      args(m, cx, [6, 2, 1, 8], [4, 4, 4, 4]);
      m.a.mov(reg(7, 4), Trap.Panic);
      m.a.call(m.ctx(Ctx.TrapHandler));
    },
  },
  {
    name: "rdtsc", params: [], results: [L], hostSafe: true,
    lower(m, cx) {
      m.a.rdtsc();
      joinEdxEax(m);
      result(m, cx, 8);
    },
  },
  bare("pause", "pause", true),
  {
    // The channel barrier: a full barrier (StoreLoad included) for write-back memory shared between CPUs. A locked
    // read-modify-write is one (Intel SDM vol. 3A 8.2.2: loads and stores are not reordered with locked instructions;
    // 8.2.3.8-9) at a fraction of MFENCE's cost. [rsp] is always mapped, writable and this thread's own; OR-ing 0
    // leaves it unchanged. It clobbers the flags, which are never live across a call. ADR 0003.
    name: "mfence", params: [], results: [], hostSafe: true,
    lower(m) {
      m.a.lock().or(dword(rsp), 0);
    },
  },
  // The real MFENCE, for code that must also order non-temporal stores or loads from weakly ordered (WC) memory,
  // which a locked instruction does not guarantee (SDM vol. 3A 8.1.2). Nothing uses it today; see ADR 0003.
  bare("mfence_strict", "mfence", true),
  bare("hlt", "hlt", false),
  bare("cli", "cli", false),
  bare("sti", "sti", false),
  bare("wbinvd", "wbinvd", false),
  portIn("inb", 1), portIn("inw", 2), portIn("ind", 4),
  portOut("outb", 1), portOut("outw", 2), portOut("outd", 4),
  mmioRead("mmio_read8", 1), mmioRead("mmio_read16", 2), mmioRead("mmio_read32", 4),
  mmioWrite("mmio_write8", 1), mmioWrite("mmio_write16", 2), mmioWrite("mmio_write32", 4),
  {
    name: "rdmsr", params: [I], results: [L], hostSafe: false,
    lower(m, cx) {
      args(m, cx, [RCX], [4]);
      m.a.rdmsr();
      joinEdxEax(m);
      result(m, cx, 8);
    },
  },
  {
    name: "wrmsr", params: [I, L], results: [], hostSafe: false,
    lower(m, cx) {
      args(m, cx, [RCX, RAX], [4, 8]);
      m.a.mov(reg(RDX, 8), reg(RAX, 8));
      m.a.shr(reg(RDX, 8), 32);
      m.a.wrmsr();
    },
  },
  readCr(0), readCr(2), readCr(3), readCr(4),
  {
    name: "write_cr3", params: [L], results: [], hostSafe: false,
    lower(m, cx) {
      args(m, cx, [RAX], [8]);
      m.a.mov(cr3, reg(RAX, 8));
    },
  },
  {
    // Invalidates the TLB entry of a (physical = virtual, identity-mapped) address.
    name: "invlpg", params: [L], results: [], hostSafe: false,
    lower(m, cx) {
      args(m, cx, [RAX], [8]);
      m.a.invlpg(ptr(reg(RAX, 8)));
    },
  },
  {
    // The partition → monitor hypercall of docs/specs/hypercall-abi.md: rax = number, rcx/rdx = arguments a/b,
    // `int 0x80` (a gate of DPL 3, so it works at CPL 3 where `vmcall` raises #UD); result in rax. The monitor
    // preserves every other register, so nothing allocated needs saving. Argument c (r8) is not passed: no hypercall
    // number uses it, and r8 holds wasm values here.
    name: "hypercall", params: [L, L, L], results: [L], hostSafe: false,
    lower(m, cx) {
      args(m, cx, [RAX, RCX, RDX], [8, 8, 8]);
      m.a.int(0x80);
      result(m, cx, 8);
    },
  },
];

export const INTRINSICS: ReadonlyMap<string, Intrinsic> = new Map(LIST.map((i) => [i.name, i]));
