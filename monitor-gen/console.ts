// Ring-0 console of the ultravisor (generated code): a log buffer that monitor code appends to, flushed to COM1
// either at once (during boot, before any partition runs, and at the end of a run) or drained a bounded number of
// bytes per timer tick when the I/O partition is not in the middle of writing a line (so a fault report never splits
// a guest's line). The buffer takes whole lines only: a line that does not fit is dropped and counted, never cut
// (docs/specs/hypercall-abi.md, Audit records). Every processor's monitor appends to the one buffer, a line at a time
// under g_loglock (docs/specs/smp.md §2.4). Also decimal/hex formatting helpers.
// Routines follow the System V register roles: arguments in rdi/rsi, rax rcx rdx rsi rdi r8–r11 clobbered.
import { Assembler, type Label, al, byte, cl, dil, dl, dx, eax, ecx, edi, edx, ptr, qword, r8, r8d, r9, r9d, rax, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import { COM1 } from "./layout.ts";

const LOG_BYTES = 16384;
/**
 * Bytes the timer tick may hand COM1 at most (k_drain): it writes only while the transmitter holding register is
 * empty and never waits for it, so a slow UART costs a tick a few port reads, not a busy wait with interrupts off;
 * the budget only bounds the tick when the UART takes bytes as fast as they come (an emulated one). It is large
 * enough that under QEMU a tick writes out everything the monitor logged in the quantum before, so the monitor's line
 * about a hypercall precedes what the caller prints after it (test/hw/ultravisor.test.ts reads the start lines so).
 */
export const DRAIN_BYTES = 4096;

/** A value to print: a string literal, or an instruction sequence that leaves the value in rdi plus its format. */
export type Part = string | { dec: (a: Assembler) => void } | { hex: (a: Assembler) => void } | { str: (a: Assembler) => void };

let literalId = 0;

/** Interns a NUL-terminated literal in .rdata and returns its label. */
export function literal(a: Assembler, text: string): Label {
  const l = a.label(`k_str_${literalId++}`);
  a.section(".rdata");
  a.bind(l);
  a.asciz(text);
  a.section(".text");
  return l;
}

/**
 * Emits code that appends the parts and ends the line (flushing at once while the console is direct), under the log's
 * lock: every processor's monitor appends to the one buffer (docs/specs/smp.md §2.4).
 */
export function monitorLine(a: Assembler, ...parts: Part[]): void {
  logLock(a);
  kparts(a, ...parts);
  a.call(a.symbol("k_endline"));
  logUnlock(a);
}

/** Takes g_loglock (spins with `xchg`, which is locked); every register but the flags is kept. */
export function logLock(a: Assembler): void {
  a.push(rax);
  const spin = a.here();
  const got = a.label();
  a.mov(eax, 1).xchg(rax, qword(a.symbol("g_loglock")));
  a.test(rax, rax).jz(got);
  a.pause().jmp(spin);
  a.bind(got);
  a.pop(rax);
}

/** Releases g_loglock (an aligned store; x86 keeps the buffer's stores before it). */
export function logUnlock(a: Assembler): void {
  a.mov(qword(a.symbol("g_loglock")), 0);
}

export function kparts(a: Assembler, ...parts: Part[]): void {
  for (const p of parts) {
    if (typeof p === "string") {
      a.lea(rsi, ptr(literal(a, p))).call(a.symbol("k_puts"));
    } else if ("dec" in p) {
      p.dec(a);
      a.call(a.symbol("k_putdec"));
    } else if ("hex" in p) {
      p.hex(a);
      a.call(a.symbol("k_puthex"));
    } else {
      p.str(a);
      a.mov(rsi, rdi).call(a.symbol("k_puts"));
    }
  }
}

export function emitConsole(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(16);
  // g_loglen: bytes appended (including the line being built); g_logline: end of the last whole line; g_logread:
  // bytes of the whole lines already written to COM1; g_logtrunc: the line being built did not fit; g_logdropped:
  // lines dropped for want of space (reported in the summary).
  for (const n of ["g_loglen", "g_logline", "g_logread", "g_logtrunc", "g_logdropped"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.bind(L("g_direct"));
  a.zero(8);
  a.bind(L("g_loglock"));
  a.zero(8);
  a.bind(L("g_logbuf"));
  a.zero(LOG_BYTES);
  a.section(".text");

  // k_putc(dil): appends one byte of the line being built. The last two bytes of the buffer are kept for the line's
  // CR LF; when the byte does not fit, the line is marked truncated and k_endline drops it whole.
  a.bind(L("k_putc"));
  {
    const full = a.label();
    a.mov(rax, qword(L("g_loglen")));
    a.cmp(rax, LOG_BYTES - 2).jae(full);
    a.lea(rcx, ptr(L("g_logbuf")));
    a.mov(byte({ base: rcx, index: rax, scale: 1 }), dil);
    a.inc(rax).mov(qword(L("g_loglen")), rax);
    a.ret();
    a.bind(full);
    a.mov(qword(L("g_logtrunc")), 1).ret();
  }

  // k_puts(rsi): NUL-terminated string.
  a.bind(L("k_puts"));
  {
    const next = a.here();
    const done = a.label();
    a.movzx(edx, byte(rsi));
    a.test(dl, dl).jz(done);
    a.mov(rax, qword(L("g_loglen")));
    const full = a.label();
    a.cmp(rax, LOG_BYTES - 2).jae(full);
    a.lea(rcx, ptr(L("g_logbuf")));
    a.mov(byte({ base: rcx, index: rax, scale: 1 }), dl);
    a.inc(rax).mov(qword(L("g_loglen")), rax);
    a.inc(rsi).jmp(next);
    a.bind(full);
    a.mov(qword(L("g_logtrunc")), 1);
    a.bind(done).ret();
  }

  // k_putdec(rdi): unsigned decimal.
  a.bind(L("k_putdec"));
  {
    a.mov(rax, rdi).mov(r8d, 10).xor(ecx, ecx);
    const div = a.here();
    a.xor(edx, edx).div(r8).push(rdx).inc(ecx);
    a.test(rax, rax).jnz(div);
    const emit = a.here();
    a.pop(rdi).add(rdi, 0x30);
    a.push(rcx).call(L("k_putc")).pop(rcx);
    a.dec(ecx).jnz(emit);
    a.ret();
  }

  // k_puthex(rdi): "0x" and the digits without leading zeros.
  a.bind(L("k_puthex"));
  {
    a.mov(r9, rdi);
    a.mov(edi, 0x30).call(L("k_putc"));
    a.mov(edi, 0x78).call(L("k_putc"));
    a.mov(ecx, 60);
    const skip = a.here();
    const digits = a.label();
    a.mov(rax, r9).shr(rax, cl).test(eax, 15).jnz(digits);
    a.sub(ecx, 4).jg(skip);
    a.bind(digits);
    const next = a.here();
    a.mov(rax, r9).shr(rax, cl).and(eax, 15);
    a.lea(rdx, ptr(L("k_hexdigits")));
    a.movzx(edi, byte({ base: rdx, index: rax, scale: 1 }));
    a.push(rcx).call(L("k_putc")).pop(rcx);
    a.sub(ecx, 4).jge(next);
    a.ret();
  }
  a.section(".rdata");
  a.bind(L("k_hexdigits"));
  a.ascii("0123456789abcdef");
  a.section(".text");

  // k_endline: ends the line being built: CR LF (space kept by k_putc) and the line becomes whole, or, when it did not
  // fit, it is taken back out of the buffer and counted. Flushed at once while g_direct is set (boot, summary), else
  // left for the timer tick's k_drain.
  a.bind(L("k_endline"));
  {
    const keep = a.label();
    const fits = a.label();
    a.mov(rax, qword(L("g_loglen")));
    a.cmp(qword(L("g_logtrunc")), 0).je(fits);
    a.mov(rax, qword(L("g_logline"))).mov(qword(L("g_loglen")), rax);
    a.mov(qword(L("g_logtrunc")), 0);
    a.inc(qword(L("g_logdropped")));
    a.jmp(keep);
    a.bind(fits);
    a.lea(rcx, ptr(L("g_logbuf")));
    a.mov(byte({ base: rcx, index: rax, scale: 1 }), 13);
    a.mov(byte({ base: rcx, index: rax, scale: 1, disp: 1 }), 10);
    a.add(rax, 2).mov(qword(L("g_loglen")), rax).mov(qword(L("g_logline")), rax);
    a.bind(keep);
    const drained = a.label();
    a.cmp(qword(L("g_direct")), 0).je(drained);
    a.call(L("k_flush"));
    a.bind(drained).ret();
  }

  // k_flush: writes every whole line to COM1, polling the line status register before each byte (boot, panic, end of
  // run: no partition is waiting for its quantum).
  a.bind(L("k_flush"));
  a.mov(r9d, 1).mov(r8, 0x7fff_ffff);
  a.jmp(L("k_write"));

  // k_drain: the timer tick's share, without waiting: writes bytes of whole lines while the transmitter holding
  // register is empty, up to the first line end after DRAIN_BYTES (so a line is cut between ticks only when the UART
  // itself is busy; the dispatcher then holds the I/O partition back until the line is out: monitor-gen/entry.ts).
  a.bind(L("k_drain"));
  a.xor(r9d, r9d).mov(r8d, DRAIN_BYTES);
  a.bind(L("k_write"));
  {
    // r8 = byte budget, r9 = 1: wait for the UART (k_flush), 0: stop as soon as it is busy (k_drain).
    a.lea(rsi, ptr(L("g_logbuf")));
    a.mov(rcx, qword(L("g_logread")));
    const next = a.here();
    const done = a.label();
    const go = a.label();
    a.cmp(rcx, qword(L("g_logline"))).jae(done);
    a.test(r8, r8).jg(go);
    a.cmp(byte({ base: rsi, index: rcx, scale: 1, disp: -1 }), 10).je(done); // budget spent: stop at a line end
    a.bind(go);
    a.mov(dx, COM1 + 5);
    const wait = a.here();
    const ready = a.label();
    a.in(al, dx).test(al, 0x20).jnz(ready);
    a.test(r9, r9).jnz(wait);
    a.jmp(done);
    a.bind(ready);
    a.mov(dx, COM1).mov(al, byte({ base: rsi, index: rcx, scale: 1 })).out(dx, al);
    a.inc(rcx).dec(r8).jmp(next);
    a.bind(done);
    a.mov(qword(L("g_logread")), rcx);
    // Everything written and no line being built: the buffer starts over.
    const partial = a.label();
    a.cmp(rcx, qword(L("g_loglen"))).jne(partial);
    a.xor(ecx, ecx);
    a.mov(qword(L("g_logread")), rcx).mov(qword(L("g_logline")), rcx).mov(qword(L("g_loglen")), rcx);
    a.bind(partial).ret();
  }
}
