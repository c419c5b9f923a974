// The ring-3 partition programs written with the typed assembler — the guests that commit a fault AssemblyScript
// cannot express (containment tests), attack the isolation of processor state (test-only, issue #12: x87/SSE/AVX
// markers, jumps into data, sgdt) or measure hypercalls (bench builds), and the ultravisor partition's command-
// channel loop — plus what the AssemblyScript partitions (partitions/aot-guest.ts: guests, I/O and command
// partitions) take from here: the boot-time definitions' payload bytes and the I/O partition's line-writer symbols.
// The assembly guests print a counter and an FNV-1a checksum of their own code and constants every few quanta.
import { Assembler, type Gpr, type Label, al, byte, cr3, ds, dword, dx, eax, ebp, ebx, es, fs, gs, ecx, edx, ptr, qword, r8, r9, r12, r12d, r13, r14, r14d, r15, r15d, rax, rbx, rbp, rcx, rdi, rdx, rsi, rsp, word } from "../toolchain/x64/index.ts";
import { CMDCHAN, COM1, HYPERCALL, SEL, WINDOW_LAYOUT, WINDOW } from "../monitor-gen/layout.ts";
import { emitPciAttack, emitPciOwner } from "./pci-probes.ts";
import { COMPLETION, consoleLine, emitCommandServer, emitRuntime, hypercall, windowAddress } from "./runtime.ts";

// The fault names are the host definition's (definition/host.ts FAULT_KINDS): faults of assembly guests, and
// "wasm-oob", the AssemblyScript guest's (a checksum range past its linear memory).
export type { FaultKind } from "../definition/host.ts";
import type { FaultKind } from "../definition/host.ts";
import { KIND } from "../core/notation.ts";
/** A supervisor-only address (the identity map) a guest may not write: the write-outside fault's target. */
export const OUTSIDE_ADDRESS = 0x200000;
/** A window address with no page behind it (between the stack and the channel slots): write-unmapped's target. */
export const UNMAPPED_WINDOW_ADDRESS = WINDOW + 0x3f000n;

export const PROGRAM_ENTRY = "p_start";

// ---- guests -------------------------------------------------------------------------------------------------------
export interface GuestOptions {
  /** Quanta between two lines. */
  period: number;
  fault?: { kind: FaultKind; afterLines: number };
  /** Try the command hypercall once at start and print its (refused) result. */
  probeCommand?: boolean;
  /**
   * Measure `TIME` hypercall round trips in time-stamp counts this many times at start (keep the minimum), next to
   * the same frame around 50 nops; under QEMU -icount shift=0 both are instruction counts (bench only).
   */
  benchHypercalls?: number;
  /** Seed of the fuzz-hypercall and fuzz-channel guests' PRNG (xorshift64; test builds), printed as their first line. */
  fuzzSeed?: bigint;
}

/** Pages of the canary guest's pattern (in its .bss, inside its window). */
export const CANARY_PAGES = 1;
/**
 * The canary guest's record of its own checks, after its pattern: `checks`, the number of checks passed or failed so
 * far (its tick count), and `damage`, the address of the damaged qword its last check found (0 while intact). Symbols of the image.
 */
export const CANARY_STATUS = { pattern: "p_canary", checks: "p_canary_checks", damage: "p_canary_damage" } as const;

/** Nops in the calibration frame of the hypercall bench. */
export const BENCH_NOPS = 50;

/**
 * Bench frames (bench/ultravisor.bench.ts, bench/svm.bench.ts): `min` = the smallest time-stamp delta over `rounds`
 * runs of `body`, using `count` as the loop counter and `start` for the first reading (rax, rdx are clobbered). Under
 * QEMU -icount the delta counts executed instructions.
 */
export function emitMinTscFrame(a: Assembler, r: { min: Gpr; count: Gpr; start: Gpr }, rounds: number, body: () => void): void {
  a.mov(r.min, -1).mov(r.count, rounds);
  const again = a.here();
  a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(r.start, rax);
  body();
  a.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, r.start);
  a.cmp(rax, r.min).cmovb(r.min, rax);
  a.dec(r.count).jnz(again);
}

export function assembleGuest(opts: GuestOptions): Assembler {
  if (opts.fault?.kind === "sse-a" || opts.fault?.kind === "sse-b") return assembleSseGuest(opts.fault.kind, opts.period);
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  // p_image_start … p_ro_end: the bytes the checksum covers (.text then .rdata, laid out contiguously).
  a.section(".text");
  a.bind(L("p_image_start"));
  a.bind(L(PROGRAM_ENTRY));
  if (opts.fault?.kind === "pci-owner") emitPciOwner(a); // reads its devices once, then runs as any guest
  a.xor(r12d, r12d); // lines printed
  a.xor(r14d, r14d); // work: loop iterations
  hypercall(a, HYPERCALL.time);
  a.mov(r13, rax); // quantum of the last line
  if (opts.benchHypercalls) {
    const frame = (body: () => void): void => emitMinTscFrame(a, { min: r15, count: r13, start: rbx }, opts.benchHypercalls!, body);
    frame(() => {
      for (let i = 0; i < BENCH_NOPS; i++) a.nop();
    });
    a.mov(r14, r15);
    frame(() => hypercall(a, HYPERCALL.time));
    consoleLine(a, `bench: ${BENCH_NOPS} nops `, { dec: (x) => x.mov(rax, r14) }, " hypercall ", { dec: (x) => x.mov(rax, r15) });
    a.xor(r14d, r14d);
    hypercall(a, HYPERCALL.time);
    a.mov(r13, rax);
  }
  if (opts.probeCommand) {
    a.mov(ecx, 0);
    hypercall(a, HYPERCALL.command);
    a.mov(r15, rax).neg(r15);
    consoleLine(a, "command hypercall refused: result -", { dec: (x) => x.mov(rax, r15) });
  }
  // flood-command: every pass of the loop is a refused COMMAND hypercall, so "work" counts refusals (the audit log's
  // rate limit must hold them to a few lines while the guest keeps its quanta and the others their output).
  const flood = opts.fault?.kind === "flood-command";
  // The fuzzers (test/hw/fuzz.test.ts): every pass of the loop is one random hypercall (fuzz-hypercall) or a random
  // value written into a channel header of its window (fuzz-channel) followed by a SIGNAL of a random slot. The PRNG is xorshift64 from the build's seed, printed first.
  const fuzz = opts.fault?.kind === "fuzz-hypercall" || opts.fault?.kind === "fuzz-channel";
  const canary = opts.fault?.kind === "canary";
  const passive = flood || fuzz || canary || opts.fault?.kind === "pci-owner";
  if (fuzz) {
    a.mov(rax, BigInt.asUintN(64, opts.fuzzSeed ?? 1n) || 1n).mov(qword(L("p_fuzz_state")), rax);
    consoleLine(a, `${opts.fault!.kind} seed `, { hex: (x) => x.mov(rax, qword(L("p_fuzz_state"))) });
    if (opts.fault!.kind === "fuzz-channel") {
      // The seed line must be out before the scribbling can break the console: wait (yielding) until the I/O partition
      // has taken it — queue 0's head equals its tail (queue header at ch_space_offset 128, head +60, tail +72).
      const drained = a.here();
      hypercall(a, HYPERCALL.yield);
      a.mov(rax, windowAddress(WINDOW_LAYOUT.slot(0)));
      a.mov(ecx, dword(rax, 128 + 60)).cmp(ecx, dword(rax, 128 + 72)).jne(drained);
      hypercall(a, HYPERCALL.time);
      a.mov(r13, rax);
    }
  }
  if (canary) {
    // The pattern: each qword is its own address xor a constant, so a copy from elsewhere does not pass either.
    a.lea(rdi, ptr(L(CANARY_STATUS.pattern))).mov(ecx, (CANARY_PAGES * 4096) / 8);
    const fill = a.here();
    a.mov(rax, 0x5a5a_1234_c3c3_8765n).xor(rax, rdi).mov(qword(rdi), rax);
    a.add(rdi, 8).dec(ecx).jnz(fill);
  }
  const loop = a.here();
  a.inc(r14);
  if (flood) {
    a.xor(ecx, ecx);
    hypercall(a, HYPERCALL.command);
  }
  if (opts.fault?.kind === "fuzz-hypercall") {
    // Numbers: three passes in four a defined one (0–7, so each handler sees random arguments), else any 64 bits.
    const small = a.label();
    a.call(L("p_rand")).mov(rbx, rax);
    a.call(L("p_rand")).mov(rcx, rax);
    a.call(L("p_rand")).mov(rdx, rax);
    a.call(L("p_rand")).mov(r8, rax);
    a.mov(rax, rbx).test(eax, 0x300).jnz(small);
    a.shr(rbx, 16);
    a.bind(small);
    // YIELD ends the quantum: one draw in eight of those makes it, the others become TIME, to keep calls coming.
    const call = a.label();
    a.and(ebx, 7).jnz(call);
    a.test(eax, 0x7000).jz(call);
    a.mov(ebx, HYPERCALL.time);
    a.bind(call);
    a.mov(rax, rbx);
    a.int(0x80);
  }
  if (opts.fault?.kind === "fuzz-channel") {
    // Once its first tick line is out: a random value (every other time a small one, as plausible geometry) at a
    // random 8-byte offset of the first 512 bytes (channel header and queue headers) of a random slot the info page
    // lists — on bare metal a guest's only channel is its console, so this is the client side of a channel the I/O
    // partition serves — then a SIGNAL of a random slot 0–15.
    const skip = a.label();
    const big = a.label();
    a.cmp(r12, 1).jb(skip);
    a.call(L("p_rand")).mov(rbx, rax);
    a.mov(rcx, rbx).and(ecx, 15);
    a.mov(rax, windowAddress(WINDOW_LAYOUT.info)).cmp(rcx, qword(rax, 8)).jae(skip); // INFO.slots: slots in use
    a.mov(rax, rcx).shl(rax, 12).mov(rdx, windowAddress(WINDOW_LAYOUT.slot(0))).add(rax, rdx);
    a.mov(rdx, rbx).shr(rdx, 8).and(edx, 0x1f8).add(rax, rdx);
    a.push(rax).call(L("p_rand")).pop(rdx);
    a.test(ebx, 1 << 20).jz(big);
    a.and(eax, 0xfff);
    a.bind(big);
    a.mov(qword(rdx), rax);
    a.bind(skip);
    a.call(L("p_rand")).and(eax, 15).mov(ecx, eax);
    hypercall(a, HYPERCALL.signal);
  }
  hypercall(a, HYPERCALL.time);
  a.mov(rbx, rax).sub(rax, r13).cmp(rax, opts.period).jb(loop);
  a.mov(r13, rbx).inc(r12);
  if (canary) {
    const intact = a.label();
    a.lea(rdi, ptr(L(CANARY_STATUS.pattern))).mov(ecx, (CANARY_PAGES * 4096) / 8);
    const check = a.here();
    a.mov(rax, 0x5a5a_1234_c3c3_8765n).xor(rax, rdi).cmp(rax, qword(rdi)).jne(L("p_canary_bad"));
    a.add(rdi, 8).dec(ecx).jnz(check);
    a.jmp(intact);
    a.bind(L("p_canary_bad"));
    a.mov(rbx, rdi);
    a.mov(qword(L(CANARY_STATUS.damage)), rdi);
    consoleLine(a, "canary damaged at ", { hex: (x) => x.mov(rax, rbx) });
    a.bind(intact);
    // The checks done so far, where a test reads them over QMP: its console may be in a hostile server's hands.
    a.mov(qword(L(CANARY_STATUS.checks)), r12);
  }
  a.call(L("checksum"));
  a.mov(r15, rax);
  consoleLine(a, "tick ", { dec: (x) => x.mov(rax, r12) }, " quantum ", { dec: (x) => x.mov(rax, r13) }, " work ", { dec: (x) => x.mov(rax, r14) },
    " checksum ", { hex: (x) => x.mov(rax, r15) });
  if (opts.fault && !passive) {
    const f = opts.fault;
    a.cmp(r12, f.afterLines).jb(loop);
    consoleLine(a, `about to fault: ${f.kind}`);
    switch (f.kind) {
      case "wasm-oob":
        throw new RangeError("wasm-oob is a fault of AssemblyScript guests (lang: as)");
      case "write-outside":
        a.mov(qword({ disp: OUTSIDE_ADDRESS }), r12);
        break;
      case "write-unmapped":
        a.mov(rax, UNMAPPED_WINDOW_ADDRESS).mov(qword(rax), r12);
        break;
      case "cli":
        a.cli();
        break;
      case "hlt":
        a.hlt();
        break;
      case "out":
        a.mov(dx, COM1).mov(al, 0x21).out(dx, al);
        break;
      case "cr3":
        a.mov(rax, 0x1000).mov(cr3, rax);
        break;
      case "exec-stack":
        a.lea(rax, qword(rsp, -256)).mov(byte(rax), 0xc3).call(rax);
        break;
      case "exec-data":
        a.lea(rax, ptr(L("p_exec_data"))).mov(byte(rax), 0xc3).call(rax);
        break;
      case "sgdt":
        a.sgdt(ptr(L("p_gdtr")));
        consoleLine(a, "sgdt at CPL 3: base ", { hex: (x) => x.mov(rax, qword({ label: L("p_gdtr"), disp: 2 })) }, " limit ",
          { hex: (x) => x.movzx(eax, word(L("p_gdtr"))) });
        break;
      case "pci-bar":
      case "pci-cf8":
      case "pci-port":
        emitPciAttack(a, f.kind);
        break;
      case "pci-owner":
      case "sse-a":
      case "sse-b":
      case "flood-command":
      case "fuzz-hypercall":
      case "fuzz-channel":
      case "canary":
        break;
    }
    consoleLine(a, "still running after the fault: containment failed");
  }
  a.jmp(loop);

  // checksum → rax: FNV-1a (32-bit) over p_image_start … p_ro_end.
  a.bind(L("checksum"));
  a.lea(rsi, ptr(L("p_image_start"))).lea(rcx, ptr(L("p_ro_end")));
  a.mov(eax, 0x811c9dc5);
  const next = a.here();
  const done = a.label();
  a.cmp(rsi, rcx).jae(done);
  a.movzx(edx, byte(rsi)).xor(eax, edx).imul(eax, eax, 0x01000193);
  a.inc(rsi).jmp(next);
  a.bind(done).ret();

  if (fuzz) {
    // p_rand → rax: xorshift64 (Marsaglia 2003); rdx clobbered.
    a.bind(L("p_rand"));
    a.mov(rax, qword(L("p_fuzz_state")));
    a.mov(rdx, rax).shl(rdx, 13).xor(rax, rdx);
    a.mov(rdx, rax).shr(rdx, 7).xor(rax, rdx);
    a.mov(rdx, rax).shl(rdx, 17).xor(rax, rdx);
    a.mov(qword(L("p_fuzz_state")), rax).ret();
  }
  emitRuntime(a);
  if (fuzz) {
    a.section(".bss");
    a.align(8);
    a.bind(L("p_fuzz_state"));
    a.zero(8);
  }
  if (canary) {
    a.section(".bss");
    a.align(4096);
    a.bind(L(CANARY_STATUS.pattern));
    a.zero(CANARY_PAGES * 4096);
    a.bind(L(CANARY_STATUS.checks));
    a.zero(8);
    a.bind(L(CANARY_STATUS.damage));
    a.zero(8);
  }
  if (opts.fault?.kind === "exec-data" || opts.fault?.kind === "sgdt") {
    a.section(".bss");
    a.align(16);
    a.bind(L(opts.fault.kind === "sgdt" ? "p_gdtr" : "p_exec_data"));
    a.zero(16);
  }
  a.section(".rdata");
  a.align(1);
  a.bind(L("p_ro_end"));
  return a;
}

// ---- the I/O partition (AssemblyScript: partitions/assembly/io.ts) ---------------------------------------------------
/** Symbols bounding the I/O partition's line writer: the monitor holds its own log while that partition's rip is inside. */
export const IO_EMIT = { start: "io_emit", end: "io_emit_end" } as const;
/** Symbols bounding its byte reader, the only other function with port instructions (reads of COM1's LSR and RBR). */
export const IO_RECEIVE = { start: "io_receive", end: "io_receive_end" } as const;
/** The I/O partition's main argument when no channel takes typed lines (no command partition). */
export const IO_NO_INPUT = 0xffff_ffff_ffff_ffffn;

// ---- the ultravisor partition ---------------------------------------------------------------------------------------
/** Slot of the command channel: client side in the command partition, server side in the ultravisor partition. */
export const COMMAND_SLOT = 1;

export function assembleUltravisorPartition(): Assembler {
  const a = new Assembler();
  a.section(".text");
  a.bind(a.symbol(PROGRAM_ENTRY));
  emitUltravisorLoop(a);
  return a;
}

/**
 * The ultravisor partition's command-channel service loop, shared by both builds of that partition: announce, then
 * whenever the channel is signalled drain queue 0, calling `handle` for each request (r15 = the request, r12 = its
 * number) with the completion begun (cmd_begin: opcode and request_id echoed, status 0) for it to fill in
 * (`complete`), and answer each request with that completion on queue 1, signalling the client only when the insert
 * found queue 1 empty ([0120]); run `idle` (if given) before yielding. The program calls emitCommandServer once.
 */
export function emitCommandServeLoop(a: Assembler, handle: (a: Assembler) => void, idle?: (a: Assembler) => void): void {
  const L = (n: string): Label => a.symbol(n);
  const chan = windowAddress(WINDOW_LAYOUT.slot(COMMAND_SLOT));
  a.xor(r12d, r12d);
  consoleLine(a, "resource manager at CPL 3, serving the command channel");
  const loop = a.here();
  const wait = a.label();
  hypercall(a, HYPERCALL.poll);
  a.test(eax, 1 << COMMAND_SLOT).jz(wait);
  const drain = a.here();
  a.mov(rdi, chan).mov(edx, CMDCHAN.requests).call(L("chan_peek"));
  a.test(rax, rax).jle(wait);
  a.mov(r15, rax).inc(r12);
  a.call(L("cmd_begin"));
  handle(a);
  a.mov(rdi, chan).mov(edx, CMDCHAN.requests).call(L("chan_pop"));
  const quiet = a.label();
  a.mov(rdi, chan).lea(rsi, ptr(L(COMPLETION))).mov(edx, CMDCHAN.completions).call(L("chan_post"));
  a.cmp(rax, 1).jne(quiet);
  a.mov(ecx, COMMAND_SLOT);
  hypercall(a, HYPERCALL.signal);
  a.bind(quiet);
  a.jmp(drain);
  a.bind(wait);
  idle?.(a);
  hypercall(a, HYPERCALL.yield);
  a.jmp(loop);
}

/**
 * Fills in the completion cmd_begin started: `source` (CMDCHAN.source), the status (a constant, or code that leaves
 * it in eax) and, for an applied definition, the new partition's number (code that leaves it in eax).
 */
export function complete(a: Assembler, source: number, status: number | ((a: Assembler) => void), number?: (a: Assembler) => void): void {
  const at = (disp: number): ReturnType<typeof dword> => dword({ label: a.symbol(COMPLETION), disp });
  a.mov(at(32), source);
  if (typeof status === "number") a.mov(at(16), status);
  else {
    status(a);
    a.mov(at(16), eax);
  }
  if (number) {
    number(a);
    a.mov(at(64), eax);
  }
}

/** Without the core database, the ultravisor partition only logs each definition it receives and refuses it. */
export function emitUltravisorLoop(a: Assembler): void {
  emitCommandServeLoop(a, (x) => {
    consoleLine(x, "command ", { dec: (y) => y.mov(rax, r12) }, ": define ", { str: (y) => y.lea(rsi, qword(r15, 64)) });
    complete(x, CMDCHAN.source.ultravisor, CMDCHAN.refusal.noDatabase);
  });
  emitRuntime(a);
  emitCommandServer(a);
}

// ---- the command partition ------------------------------------------------------------------------------------------
/** Descriptor kinds of docs/specs/memory-layout.md §4, by partition role. */
const KIND_OF = { ultravisor: KIND.Ultravisor, command: KIND.Command, io: KIND.IO, guest: KIND.Guest } as const;
/** Bytes of a definition request's payload: name (16, NUL-padded), principal (16), u32 descriptor kind. */
export const DEFINITION_BYTES = 40;

/** A boot-time partition definition as the command partition sends it and the ultravisor partition applies it. */
export interface Definition {
  name: string;
  principal: string;
  kind: number;
  /** The partition's number in the image (its schedule number): the ultravisor partition finds its allotment by it. */
  number: number;
}

/** The definition of a configured partition: guests belong to "User<name>" ([0223]), service partitions to "System". */
export function definitionOf(spec: { name: string; kind: string }, number: number): Definition {
  const kind = KIND_OF[spec.kind as keyof typeof KIND_OF];
  if (kind === undefined) throw new RangeError(`partition ${spec.name}: kind ${spec.kind} has no descriptor (idle is a pseudo partition)`);
  return { name: spec.name, principal: spec.kind === "guest" ? `User${spec.name}`.slice(0, 16) : "System", kind, number };
}

/** The 40-byte payload (docs/specs/image-layout.md, Boot-time definitions): name, principal, kind, number. */
export function definitionBytes(d: Definition): Uint8Array {
  const b = new Uint8Array(DEFINITION_BYTES);
  if (d.name.length > 15 || d.principal.length > 16) throw new RangeError(`definition ${d.name}: name ≤ 15 and principal ≤ 16 characters`);
  b.set(Buffer.from(d.name, "ascii"), 0);
  b.set(Buffer.from(d.principal, "ascii"), 16);
  new DataView(b.buffer).setUint32(32, d.kind, true);
  new DataView(b.buffer).setUint32(36, d.number, true);
  return b;
}

// ---- test-only: extended-state isolation (issue #12) ------------------------------------------------------------------
export type SseProbeKind = "sse-a" | "sse-b";

/** What a guest of the isolation test puts in its x87/SSE state (its selector marker: fs for sse-a, gs for sse-b): control word, MXCSR and a seed for st0 and xmm0–15. */
interface SseMarker { fcw: number; mxcsr: number; seed: number }
export const SSE_MARKERS: Record<SseProbeKind, SseMarker> = {
  "sse-a": { fcw: 0x0c7f, mxcsr: 0x7f80, seed: 0xa },
  "sse-b": { fcw: 0x087f, mxcsr: 0x5f80, seed: 0xb },
};

/** Bytes of a guest's save image: the legacy 512, the XSAVE header (64), the AVX upper halves (256) at 576. */
const XS_BYTES = 832;
/** Offset of the AVX component (ymm0–15 bits 128–255) in the standard XSAVE format. */
const XS_AVX = 576;

/**
 * An 832-byte save image in XSAVE's standard format (its first 512 bytes are FXSAVE's): the control word, the status
 * word (TOP = 0), the abridged tag word, MXCSR, st0, xmm0–15, the header's XSTATE_BV and ymm0–15's upper halves.
 * With a marker, st0 (physical register 0, tagged valid) holds a normal extended real whose mantissa carries the
 * seed, xmm i holds (0x5A5A…seed…i, its complement) and ymm i's upper half (0x7E7E…seed…i, its complement), and
 * XSTATE_BV is 7 (x87, SSE, AVX); without one it is the initial state the monitor defines
 * (docs/specs/partition-state.md): FNINIT's control word 0x37F, every register empty and zero, MXCSR 0x1F80.
 */
export function fxImage(m: SseMarker | null): Uint8Array {
  const b = new Uint8Array(XS_BYTES);
  const v = new DataView(b.buffer);
  v.setUint16(0, m ? m.fcw : 0x037f, true);
  v.setUint8(4, m ? 1 : 0);
  v.setUint32(24, m ? m.mxcsr : 0x1f80, true);
  if (m) {
    v.setBigUint64(32, 0x8000_0000_0000_0000n | (BigInt(m.seed) << 8n), true);
    v.setUint16(40, 0x4000 + m.seed, true);
    for (let i = 0; i < 16; i++) {
      for (const [at, tag] of [[160, 0x5a5an], [XS_AVX, 0x7e7en]] as const) {
        const lo = (tag << 48n) | (BigInt(m.seed) << 16n) | BigInt(i);
        v.setBigUint64(at + 16 * i, lo, true);
        v.setBigUint64(at + 8 + 16 * i, ~lo & 0xffff_ffff_ffff_ffffn, true);
      }
    }
    v.setBigUint64(512, 7n, true);
  }
  return b;
}

/** Byte ranges of a save image a guest compares: control, status and tag words; MXCSR; st0–st7 (10 bytes each); xmm0–15. */
const FX_COMPARED: Array<[number, number]> = [[0, 5], [24, 4], ...Array.from({ length: 8 }, (_, i): [number, number] => [32 + 16 * i, 10]), [160, 256]];
/** Ranges that alone would show the other guest's marker: MXCSR, st0, each xmm register. */
const FX_FOREIGN: Array<[number, number]> = [[24, 4], [32, 10], ...Array.from({ length: 16 }, (_, i): [number, number] => [160 + 16 * i, 16])];
/** With AVX: the upper halves, compared whole, and one by one for the other guest's. */
const AVX_COMPARED: Array<[number, number]> = [[XS_AVX, 256]];
const AVX_FOREIGN: Array<[number, number]> = Array.from({ length: 16 }, (_, i): [number, number] => [XS_AVX + 16 * i, 16]);

/**
 * The isolation test's guests: find out whether the OS (the monitor) enabled AVX (CPUID.1:ECX.OSXSAVE, then XCR0
 * bit 2 through xgetbv) and say so; check that the x87/SSE(/AVX) state and the data-segment selectors found at start
 * are the defined initial ones; load the own marker (XRSTOR, or FXRSTOR without AVX, from an image), then in every
 * loop iteration — each one a TIME hypercall, and preempted by the timer at any instruction — read the state back
 * (XSAVE or FXSAVE) and count iterations whose state is not the own marker ("lost": the marker is loaded again) and
 * those that hold any piece of the other guest's marker ("foreign"). A line every `period` quanta.
 */
function assembleSseGuest(kind: SseProbeKind, period: number): Assembler {
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  const other: SseProbeKind = kind === "sse-a" ? "sse-b" : "sse-a";
  const withAvx = (yes: () => void, no: () => void): void => {
    const fx = a.label();
    const done = a.label();
    a.cmp(qword(L("p_avx")), 0).je(fx);
    yes();
    a.jmp(done);
    a.bind(fx);
    no();
    a.bind(done);
  };
  // Reads the state into p_fx; loads it from `image`. Clobber rax, rcx, rdx, rdi. The AVX part is cleared first: a
  // processor may skip writing a component that is in its initial state, which must not leave the last value there.
  const save = (): void => withAvx(() => {
    a.lea(rdi, qword({ label: L("p_fx"), disp: XS_AVX })).mov(ecx, 256).xor(eax, eax);
    a.rep().stosb();
    a.mov(eax, 7).xor(edx, edx).xsave64(ptr(L("p_fx")));
  }, () => a.fxsave64(ptr(L("p_fx"))));
  const load = (image: string): void => withAvx(() => a.mov(eax, 7).xor(edx, edx).xrstor64(ptr(L(image))), () => a.fxrstor64(ptr(L(image))));
  a.section(".text");
  a.bind(L("p_image_start"));
  a.bind(L(PROGRAM_ENTRY));
  {
    const noAvx = a.label();
    const said = a.label();
    a.mov(eax, 1).cpuid().bt(ecx, 27).jnc(noAvx); // OSXSAVE: XGETBV works
    a.xor(ecx, ecx).xgetbv().and(eax, 6).cmp(eax, 6).jne(noAvx); // XCR0: SSE and AVX
    a.mov(qword(L("p_avx")), 1);
    consoleLine(a, "sse state read with XSAVE: x87, SSE, AVX");
    a.jmp(said);
    a.bind(noAvx);
    consoleLine(a, "sse state read with FXSAVE: x87, SSE (AVX not enabled)");
    a.bind(said);
  }
  save();
  a.lea(rsi, ptr(L("p_fx"))).lea(rdi, ptr(L("p_fx_init"))).call(L("state_differs"));
  const dirty = a.label();
  const clean = a.label();
  a.test(eax, eax).jnz(dirty);
  // The data-segment selectors start null too.
  a.mov(eax, ds);
  for (const r of [es, fs, gs]) a.mov(ecx, r).or(eax, ecx);
  a.test(eax, eax).jnz(dirty);
  consoleLine(a, "sse initial state: clean");
  a.jmp(clean);
  a.bind(dirty);
  consoleLine(a, "sse initial state: not the defined one");
  a.bind(clean);
  load("p_fx_own");
  // A selector marker too: sse-a holds the user data selector in fs, sse-b in gs (and null in the other).
  const [mine, theirs] = kind === "sse-a" ? [fs, gs] : [gs, fs];
  a.mov(eax, SEL.udata).mov(mine, eax);
  a.xor(r12d, r12d); // lines printed
  a.xor(r14d, r14d); // checks
  a.xor(r15d, r15d); // checks that found the own marker changed
  a.xor(ebp, ebp); // checks that found a piece of the other guest's marker
  hypercall(a, HYPERCALL.time);
  a.mov(r13, rax);
  const loop = a.here();
  hypercall(a, HYPERCALL.time);
  a.mov(rbx, rax);
  save();
  a.inc(r14);
  a.lea(rsi, ptr(L("p_fx"))).lea(rdi, ptr(L("p_fx_own"))).call(L("state_differs"));
  a.add(r15, rax);
  // Lost: load the own marker again, so that each guest keeps offering its marker to a leak (both directions show).
  const kept = a.label();
  a.test(eax, eax).jz(kept);
  load("p_fx_own");
  a.bind(kept);
  a.lea(rsi, ptr(L("p_fx"))).lea(rdi, ptr(L("p_fx_other"))).call(L("state_shares"));
  a.add(rbp, rax);
  const selOk = a.label();
  const selForeign = a.label();
  const selDone = a.label();
  a.mov(eax, mine).cmp(eax, SEL.udata).je(selOk);
  a.inc(r15);
  a.mov(eax, SEL.udata).mov(mine, eax);
  a.bind(selOk);
  a.mov(eax, theirs).cmp(eax, SEL.udata).je(selForeign);
  a.jmp(selDone);
  a.bind(selForeign);
  a.inc(rbp);
  a.xor(eax, eax).mov(theirs, eax);
  a.bind(selDone);
  a.mov(rax, rbx).sub(rax, r13).cmp(rax, period).jb(loop);
  a.mov(r13, rbx).inc(r12);
  consoleLine(a, "sse tick ", { dec: (x) => x.mov(rax, r12) }, " checks ", { dec: (x) => x.mov(rax, r14) }, " lost ", { dec: (x) => x.mov(rax, r15) },
    " foreign ", { dec: (x) => x.mov(rax, rbp) });
  a.jmp(loop);

  // x_differs(rsi, rdi: images) → rax: 1 if any compared range differs, else 0; x_shares → 1 if any range is equal.
  // state_*: the legacy ranges, then (with AVX) the upper halves. Clobber rcx, rsi, rdi, r8, r9.
  const ranges = [["fx_differs", FX_COMPARED, false], ["fx_shares", FX_FOREIGN, true], ["avx_differs", AVX_COMPARED, false], ["avx_shares", AVX_FOREIGN, true]] as const;
  for (const [name, list, onEqual] of ranges) {
    a.bind(L(name));
    a.mov(r8, rsi).mov(r9, rdi);
    const hit = a.label();
    for (const [off, len] of list) {
      a.lea(rsi, qword(r8, off)).lea(rdi, qword(r9, off)).mov(ecx, len);
      a.repe().cmpsb();
      if (onEqual) a.je(hit);
      else a.jne(hit);
    }
    a.xor(eax, eax).ret();
    a.bind(hit);
    a.mov(eax, 1).ret();
  }
  for (const what of ["differs", "shares"]) {
    const done = a.label();
    a.bind(L(`state_${what}`));
    a.call(L(`fx_${what}`));
    a.test(eax, eax).jnz(done);
    a.cmp(qword(L("p_avx")), 0).je(done);
    a.mov(rsi, r8).mov(rdi, r9).jmp(L(`avx_${what}`));
    a.bind(done);
    a.ret();
  }

  emitRuntime(a);
  a.section(".rdata");
  a.align(64); // XRSTOR's alignment
  for (const [label, image] of [["p_fx_init", fxImage(null)], ["p_fx_own", fxImage(SSE_MARKERS[kind])], ["p_fx_other", fxImage(SSE_MARKERS[other])]] as const) {
    a.bind(L(label));
    a.db(image);
    a.align(64);
  }
  a.bind(L("p_ro_end"));
  a.section(".bss");
  a.align(64); // XSAVE's alignment
  a.bind(L("p_fx"));
  a.zero(XS_BYTES);
  a.bind(L("p_avx"));
  a.zero(8);
  return a;
}
