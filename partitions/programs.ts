// The ring-3 partition programs written with the typed assembler — the guests that commit a fault AssemblyScript
// cannot express (containment tests) or measure hypercalls (bench builds), and the ultravisor partition's command-
// channel loop — plus what the AssemblyScript partitions (partitions/aot-guest.ts: guests, I/O and command
// partitions) take from here: the boot-time definitions' payload bytes and the I/O partition's line-writer symbols.
// The assembly guests print a counter and an FNV-1a checksum of their own code and constants every few quanta.
import { Assembler, type Label, al, byte, cr3, dword, dx, eax, ecx, edx, ptr, qword, r12, r12d, r13, r14, r14d, r15, rax, rbx, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import { CMDCHAN, COM1, HC, WIN, WINDOW } from "../monitor-gen/layout.ts";
import { COMPLETION, consoleLine, emitCommandServer, emitRuntime, hypercall, windowAddress } from "./runtime.ts";

// The fault names are the host definition's (definition/host.ts FAULT_KINDS): faults of assembly guests, and
// "wasm-oob", the AssemblyScript guest's (a checksum range past its linear memory).
export type { FaultKind } from "../definition/host.ts";
import type { FaultKind } from "../definition/host.ts";
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
}

/** Nops in the calibration frame of the hypercall bench. */
export const BENCH_NOPS = 50;

export function assembleGuest(opts: GuestOptions): Assembler {
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  // p_image_start … p_ro_end: the bytes the checksum covers (.text then .rdata, laid out contiguously).
  a.section(".text");
  a.bind(L("p_image_start"));
  a.bind(L(PROGRAM_ENTRY));
  a.xor(r12d, r12d); // lines printed
  a.xor(r14d, r14d); // work: loop iterations
  hypercall(a, HC.time);
  a.mov(r13, rax); // quantum of the last line
  if (opts.benchHypercalls) {
    const frame = (body: () => void): void => {
      a.mov(r15, -1).mov(r13, opts.benchHypercalls!);
      const again = a.here();
      a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(rbx, rax);
      body();
      a.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, rbx);
      a.cmp(rax, r15).cmovb(r15, rax);
      a.dec(r13).jnz(again);
    };
    frame(() => {
      for (let i = 0; i < BENCH_NOPS; i++) a.nop();
    });
    a.mov(r14, r15);
    frame(() => hypercall(a, HC.time));
    consoleLine(a, `bench: ${BENCH_NOPS} nops `, { dec: (x) => x.mov(rax, r14) }, " hypercall ", { dec: (x) => x.mov(rax, r15) });
    a.xor(r14d, r14d);
    hypercall(a, HC.time);
    a.mov(r13, rax);
  }
  if (opts.probeCommand) {
    a.mov(ecx, 0);
    hypercall(a, HC.command);
    a.mov(r15, rax).neg(r15);
    consoleLine(a, "command hypercall refused: result -", { dec: (x) => x.mov(rax, r15) });
  }
  const loop = a.here();
  a.inc(r14);
  hypercall(a, HC.time);
  a.mov(rbx, rax).sub(rax, r13).cmp(rax, opts.period).jb(loop);
  a.mov(r13, rbx).inc(r12);
  a.call(L("checksum"));
  a.mov(r15, rax);
  consoleLine(a, "tick ", { dec: (x) => x.mov(rax, r12) }, " quantum ", { dec: (x) => x.mov(rax, r13) }, " work ", { dec: (x) => x.mov(rax, r14) },
    " checksum ", { hex: (x) => x.mov(rax, r15) });
  if (opts.fault) {
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

  emitRuntime(a);
  a.section(".rdata");
  a.align(1);
  a.bind(L("p_ro_end"));
  return a;
}

// ---- the I/O partition (AssemblyScript: partitions/assembly/io.ts) ---------------------------------------------------
/** Symbols bounding the I/O partition's line writer: the monitor holds its own log while that partition's rip is inside. */
export const IO_EMIT = { start: "io_emit", end: "io_emit_end" } as const;

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
  const chan = windowAddress(WIN.slot(COMMAND_SLOT));
  a.xor(r12d, r12d);
  consoleLine(a, "resource manager at CPL 3, serving the command channel");
  const loop = a.here();
  const wait = a.label();
  hypercall(a, HC.poll);
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
  hypercall(a, HC.signal);
  a.bind(quiet);
  a.jmp(drain);
  a.bind(wait);
  idle?.(a);
  hypercall(a, HC.yield);
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
const KIND_OF = { ultravisor: 5, command: 6, io: 7, guest: 16 } as const;
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
