// Ring-0 console of the ultravisor (generated code): a log buffer that monitor code appends to, flushed to COM1
// either at once (during boot, before any partition runs) or at a timer tick when the I/O partition is not in the
// middle of writing a line (so a fault report never splits a guest's line). Also decimal/hex formatting helpers.
// Routines follow the System V register roles: arguments in rdi/rsi, rax rcx rdx rsi rdi r8–r11 clobbered.
import { Assembler, type Label, al, byte, cl, dil, dl, dx, eax, ecx, edi, edx, ptr, qword, r8, r8d, r9, rax, rcx, rdi, rdx, rsi } from "../toolchain/x64/index.ts";
import { COM1 } from "./layout.ts";

const LOG_BYTES = 16384;

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

/** Emits code that appends the parts and ends the line (flushing at once while the console is direct). */
export function kline(a: Assembler, ...parts: Part[]): void {
  kparts(a, ...parts);
  a.call(a.symbol("k_endline"));
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
  a.bind(L("g_loglen"));
  a.zero(8);
  a.bind(L("g_direct"));
  a.zero(8);
  a.bind(L("g_logbuf"));
  a.zero(LOG_BYTES);
  a.section(".text");

  // k_putc(dil): appends one byte; a full buffer drops bytes rather than overwrite (the tail of a flood is lost).
  a.bind(L("k_putc"));
  {
    const full = a.label();
    a.mov(rax, qword(L("g_loglen")));
    a.cmp(rax, LOG_BYTES).jae(full);
    a.lea(rcx, ptr(L("g_logbuf")));
    a.mov(byte({ base: rcx, index: rax, scale: 1 }), dil);
    a.inc(rax).mov(qword(L("g_loglen")), rax);
    a.bind(full).ret();
  }

  // k_puts(rsi): NUL-terminated string.
  a.bind(L("k_puts"));
  {
    const next = a.here();
    const done = a.label();
    a.movzx(edx, byte(rsi));
    a.test(dl, dl).jz(done);
    a.mov(rax, qword(L("g_loglen")));
    a.cmp(rax, LOG_BYTES).jae(done);
    a.lea(rcx, ptr(L("g_logbuf")));
    a.mov(byte({ base: rcx, index: rax, scale: 1 }), dl);
    a.inc(rax).mov(qword(L("g_loglen")), rax);
    a.inc(rsi).jmp(next);
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

  // k_endline: CR LF; flushed at once while g_direct is set (boot, summary), else left for the timer tick.
  a.bind(L("k_endline"));
  {
    a.mov(edi, 13).call(L("k_putc"));
    a.mov(edi, 10).call(L("k_putc"));
    const keep = a.label();
    a.cmp(qword(L("g_direct")), 0).je(keep);
    a.call(L("k_flush"));
    a.bind(keep).ret();
  }

  // k_flush: writes the buffer to COM1, polling the line status register before each byte.
  a.bind(L("k_flush"));
  {
    a.lea(rsi, ptr(L("g_logbuf")));
    a.mov(rcx, qword(L("g_loglen")));
    const next = a.here();
    const done = a.label();
    a.test(rcx, rcx).jz(done);
    a.mov(dx, COM1 + 5);
    const wait = a.here();
    a.in(al, dx).test(al, 0x20).jz(wait);
    a.mov(dx, COM1).mov(al, byte(rsi)).out(dx, al);
    a.inc(rsi).dec(rcx).jmp(next);
    a.bind(done);
    a.mov(qword(L("g_loglen")), 0);
    a.ret();
  }
}

