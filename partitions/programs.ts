// The ring-3 partition programs of the Figure 1 host written with the typed assembler (guest Z is AssemblyScript
// through toolchain/aot instead: partitions/aot-guest.ts): the I/O partition (owns COM1, serves every console channel, tags each line with
// the client's name), the ultravisor partition (the deprivileged resource manager's end of the command channel), the
// command partition (submits the boot-time definitions through the command channel) and the demo guests, which print
// a counter and an FNV-1a checksum of their own code and constants every few quanta. A guest can be built to commit
// one fault after a number of lines, for the containment tests.
import { Assembler, type Label, al, byte, cr3, dx, eax, ecx, edx, ptr, qword, r8, r9, r11d, r12, r12d, r13, r14, r14d, r15, rax, rbx, rcx, rdi, rdx, rsi, word } from "../toolchain/x64/index.ts";
import { CHAN, COM1, HC, INFO, WIN, WINDOW } from "../monitor-gen/layout.ts";
import { consoleLine, emitRuntime, hypercall, infoAddress, windowAddress } from "./runtime.ts";

export type FaultKind = "write-outside" | "write-unmapped" | "cli" | "hlt" | "out" | "cr3" | "wasm-oob";
/** Faults of assembly guests; "wasm-oob" is the AssemblyScript guest's (a checksum range past its linear memory). */
export const FAULT_KINDS: readonly FaultKind[] = ["write-outside", "write-unmapped", "cli", "hlt", "out", "cr3", "wasm-oob"];
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

// ---- the I/O partition ----------------------------------------------------------------------------------------------
/** Symbols bounding the line writer: the monitor holds its own log while the I/O partition's rip is inside. */
export const IO_EMIT = { start: "io_emit", end: "io_emit_end" } as const;
const ROLE = { client: 0, server: 1, closed: 2 } as const;
export const SLOT_ROLE = ROLE;

export function assembleIo(): Assembler {
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  const text = (name: string, value: string): void => {
    a.section(".rdata");
    a.bind(L(name));
    a.asciz(value);
    a.section(".text");
  };
  text("s_hello", "serving console channels; COM1 granted by the TSS I/O bitmap");
  text("s_closed", "<channel failed the server's checks: closed>");
  a.section(".text");
  a.bind(L(PROGRAM_ENTRY));
  a.mov(rsi, infoAddress(INFO.name)).lea(rdi, ptr(L("s_hello"))).mov(ecx, 60);
  a.call(L(IO_EMIT.start));
  const loop = a.here();
  a.xor(r14d, r14d); // requests served in this round
  a.xor(r12d, r12d); // slot k
  const slotLoop = a.here();
  const slotsDone = a.label();
  const nextSlot = a.label();
  const drain = a.label();
  const bad = a.label();
  a.mov(rax, infoAddress(INFO.slots)).cmp(r12, qword(rax)).jae(slotsDone);
  a.mov(rbx, r12).shl(rbx, 5).mov(rax, infoAddress(INFO.slot(0))).add(rbx, rax);
  a.cmp(byte(rbx, 8), ROLE.server).jne(nextSlot);
  a.cmp(qword(rbx), 0).je(nextSlot); // not live yet: the monitor lists the slot when the client starts
  a.bind(drain);
  a.mov(rdi, qword(rbx)).call(L("chan_peek"));
  a.test(rax, rax).jz(nextSlot).js(bad);
  a.mov(r15, rax);
  a.lea(rsi, qword(rbx, 16)).lea(rdi, qword(r15, 64)).movzx(ecx, word(r15, 20));
  const short = a.label();
  a.cmp(ecx, CHAN.maxText).jbe(short);
  a.mov(ecx, CHAN.maxText);
  a.bind(short);
  a.call(L(IO_EMIT.start));
  a.mov(rdi, qword(rbx)).call(L("chan_pop"));
  a.mov(r14d, 1).jmp(drain);
  a.bind(bad);
  a.mov(byte(rbx, 8), ROLE.closed);
  a.lea(rsi, qword(rbx, 16)).lea(rdi, ptr(L("s_closed"))).mov(ecx, 44).call(L(IO_EMIT.start));
  a.bind(nextSlot);
  a.inc(r12).jmp(slotLoop);
  a.bind(slotsDone);
  hypercall(a, HC.poll);
  a.test(r14d, r14d).jnz(loop);
  hypercall(a, HC.yield);
  a.jmp(loop);

  // io_emit(rsi = name, rdi = text, rcx = length): "name: text\r\n" on COM1; unprintable bytes become '.'.
  a.bind(L(IO_EMIT.start));
  {
    a.mov(r8, rdi).mov(r9, rcx);
    const name = a.here();
    const nameDone = a.label();
    a.mov(al, byte(rsi)).test(al, al).jz(nameDone);
    a.call(L("io_putc")).inc(rsi).jmp(name);
    a.bind(nameDone);
    a.mov(al, 0x3a).call(L("io_putc")).mov(al, 0x20).call(L("io_putc"));
    const chars = a.here();
    const charsDone = a.label();
    const printable = a.label();
    a.test(r9, r9).jz(charsDone);
    a.mov(al, byte(r8));
    const dot = a.label();
    a.cmp(al, 0x20).jb(dot);
    a.cmp(al, 0x7e).jbe(printable);
    a.bind(dot);
    a.mov(al, 0x2e);
    a.bind(printable);
    a.call(L("io_putc")).inc(r8).dec(r9).jmp(chars);
    a.bind(charsDone);
    a.mov(al, 13).call(L("io_putc")).mov(al, 10).call(L("io_putc"));
    a.ret();
    // io_putc(al): polls the line status register (port 0x3FD, allowed by the bitmap like 0x3F8).
    a.bind(L("io_putc"));
    a.mov(r11d, eax);
    a.mov(dx, COM1 + 5);
    const wait = a.here();
    a.in(al, dx).test(al, 0x20).jz(wait);
    a.mov(eax, r11d).mov(dx, COM1).out(dx, al);
    a.ret();
  }
  a.bind(L(IO_EMIT.end));
  a.nop();
  emitRuntime(a);
  return a;
}

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
 * whenever the channel is signalled drain it, calling `handle` for each request (r15 = the request, r12 = its
 * number), and run `idle` (if given) before yielding.
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
  a.mov(rdi, chan).call(L("chan_peek"));
  a.test(rax, rax).jle(wait);
  a.mov(r15, rax).inc(r12);
  handle(a);
  a.mov(rdi, chan).call(L("chan_pop"));
  a.jmp(drain);
  a.bind(wait);
  idle?.(a);
  hypercall(a, HC.yield);
  a.jmp(loop);
}

/** Without the core database, the ultravisor partition only logs each definition it receives. */
export function emitUltravisorLoop(a: Assembler): void {
  emitCommandServeLoop(a, (x) =>
    consoleLine(x, "command ", { dec: (y) => y.mov(rax, r12) }, ": define ", { str: (y) => y.lea(rsi, qword(r15, 64)) }),
  );
  emitRuntime(a);
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

export function assembleCommand(definitions: readonly Definition[]): Assembler {
  if (definitions.length > CHAN.maxSlots - 1) throw new RangeError(`at most ${CHAN.maxSlots - 1} boot-time definitions fit the command queue`);
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  a.section(".text");
  a.bind(L(PROGRAM_ENTRY));
  consoleLine(a, `applying ${definitions.length} boot-time partition definitions`);
  definitions.forEach((d, i) => {
    const l = L(`s_def_${i}`);
    a.section(".rdata");
    a.bind(l);
    a.db(definitionBytes(d));
    a.section(".text");
    a.mov(rdi, windowAddress(WIN.slot(COMMAND_SLOT))).lea(rsi, ptr(l)).mov(ecx, DEFINITION_BYTES).mov(edx, CHAN.opDefine);
    a.call(L("chan_insert"));
  });
  a.mov(ecx, COMMAND_SLOT);
  hypercall(a, HC.command);
  a.mov(r12, rax);
  consoleLine(a, "command channel submitted, hypercall result ", { dec: (x) => x.mov(rax, r12) });
  const idle = a.here();
  hypercall(a, HC.yield);
  a.jmp(idle);
  emitRuntime(a);
  return a;
}
