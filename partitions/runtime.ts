// Code every typed-assembler partition program carries (the assembly guests and the ultravisor partition; the
// AssemblyScript partitions use core's channel code instead: partitions/assembly/partition.ts), linked into the
// partition's window: hypercalls, the client half of the channel queue algorithm of docs/specs/channel-abi.md (insert
// with the barrier before publishing head), console lines through the console channel in slot 0, and text
// formatting; and, for the ultravisor partition alone (emitCommandServer), the server half on the command channel's
// two queues (peek/pop of requests, insert of completions, each after the untrusted-peer checks). Register roles:
// arguments in rdi, rsi, rcx, rdx; rax rcx rdx rsi rdi r8–r11 clobbered; rbx rbp r12–r15 preserved.
import { Assembler, type Label, al, bl, byte, cx, dl, dword, eax, ebx, ecx, edx, ptr, qword, r8, r8d, r9, r9d, r10d, r11, r11d, r15, rax, rbx, rcx, rdi, rdx, rsi, rsp, word } from "../toolchain/x64/index.ts";
import { CHAN, CMDCHAN, HYPERCALL, HYPERCALL_VECTOR, WINDOW_LAYOUT, WINDOW } from "../monitor-gen/layout.ts";
import { emitAppendDec } from "../monitor-gen/format.ts";
import { CHANNEL_HEADER as CH, CHANNEL_HEADER_BYTES, CHANNEL_SIGNATURE as SIGNATURE, QUEUE_HEADER as QH, QUEUE_HEADER_BYTES, SIGNAL } from "../core/channel-layout.ts";

export const LINE_MAX = CHAN.maxText;
const Q0 = CHANNEL_HEADER_BYTES; // queue 0's header: right after the channel header
/** sig_base_offset of a console channel's only queue as chan_format lays it out: slot 0 right after its header. */
const CONSOLE_SIG_BASE = QUEUE_HEADER_BYTES;

/** `int 0x80` with rax = nr (rcx, rdx as set by the caller). */
export function hypercall(a: Assembler, nr: number): void {
  a.mov(eax, nr).int(HYPERCALL_VECTOR);
}

export function windowAddress(offset: number): bigint {
  return WINDOW + BigInt(offset);
}

/** A piece of a console line: literal text, a number in rax (decimal or hex), or a NUL-terminated string at rsi. */
export type LinePart = string | { dec: (a: Assembler) => void } | { hex: (a: Assembler) => void } | { str: (a: Assembler) => void };

let lit = 0;
/** Emits code that formats the parts into the line buffer and writes the line through the console channel. */
export function consoleLine(a: Assembler, ...parts: LinePart[]): void {
  a.lea(rdi, ptr(a.symbol("p_line")));
  for (const p of parts) {
    if (typeof p === "string") {
      const l = a.label(`p_str_${lit++}`);
      a.section(".rdata");
      a.bind(l);
      a.asciz(p);
      a.section(".text");
      a.lea(rsi, ptr(l)).call(a.symbol("fmt_str"));
    } else if ("dec" in p) {
      p.dec(a);
      a.call(a.symbol("fmt_dec"));
    } else if ("hex" in p) {
      p.hex(a);
      a.call(a.symbol("fmt_hex"));
    } else {
      p.str(a);
      a.call(a.symbol("fmt_str"));
    }
  }
  a.mov(rcx, rdi).lea(rsi, ptr(a.symbol("p_line"))).sub(rcx, rsi);
  a.call(a.symbol("con_line"));
}

export function emitRuntime(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(16);
  a.bind(L("p_line"));
  a.zero(224);
  a.bind(L("p_line_end")); // fmt_str stops here; numbers after it still fit the 256 bytes
  a.zero(32);
  a.bind(L("p_reqid"));
  a.zero(8);
  a.section(".text");

  // fmt_str(rsi → rdi): copies a NUL-terminated string (without the NUL), at most to the end of the line buffer.
  a.bind(L("fmt_str"));
  {
    const next = a.here();
    const done = a.label();
    a.mov(al, byte(rsi)).test(al, al).jz(done);
    a.lea(rcx, ptr(L("p_line_end"))).cmp(rdi, rcx).jae(done); // a string without its NUL stops at the buffer's end
    a.mov(byte(rdi), al).inc(rdi).inc(rsi).jmp(next);
    a.bind(done).ret();
  }
  emitAppendDec(a, "fmt_dec");
  // fmt_hex(rax → rdi): "0x" and eight digits (checksums are 32-bit).
  a.bind(L("fmt_hex"));
  {
    a.mov(word(rdi), 0x7830).add(rdi, 2); // "0x"
    a.mov(ecx, 8);
    a.shl(rax, 32);
    const d = a.here();
    a.rol(rax, 4).mov(edx, eax).and(edx, 15);
    a.lea(r8, ptr(L("p_hexdigits")));
    a.mov(dl, byte({ base: r8, index: rdx, scale: 1 }));
    a.mov(byte(rdi), dl).inc(rdi);
    a.dec(ecx).jnz(d);
    a.ret();
  }
  a.section(".rdata");
  a.bind(L("p_hexdigits"));
  a.ascii("0123456789abcdef");
  a.section(".text");

  // chan_insert(rdi = channel, rsi = data, rcx = length ≤ 64, edx = opcode) → rax: 1 inserted into an empty
  // queue (signal the server), 0 inserted, −1 full (num_overflows counted), −2 the page fails the checks (nothing
  // written). Queue 0, client side, of a console channel. The server can rewrite any header byte at any time, so
  // (docs/specs/channel-abi.md, "Fixed geometry") every geometry field must equal the console template's, head and
  // tail are each read once and must be below max_slots, and the slot address comes from the checked head and the
  // template's constants, never from a field read again.
  a.bind(L("chan_insert"));
  {
    const room = a.label();
    const wrapped = a.label();
    const bad = a.label();
    a.push(rbx);
    a.lea(r8, qword(rdi, Q0));
    a.cmp(qword(rdi, CH.signature), SIGNATURE).jne(bad);
    a.cmp(dword(rdi, CH.header_size), CHANNEL_HEADER_BYTES).jne(bad);
    a.cmp(qword(rdi, CH.ch_space_offset), Q0).jne(bad);
    a.cmp(qword(r8, QH.size), CHAN.maxSlots * CHAN.signalSize).jne(bad);
    a.cmp(qword(r8, QH.sig_base_offset), CONSOLE_SIG_BASE).jne(bad);
    a.cmp(dword(r8, QH.signal_size), CHAN.signalSize).jne(bad);
    a.cmp(dword(r8, QH.max_slots), CHAN.maxSlots).jne(bad);
    a.cmp(dword(r8, QH.max_signals), CHAN.maxSlots - 1).jne(bad);
    a.mov(eax, dword(r8, QH.head)); // head, read once
    a.cmp(eax, CHAN.maxSlots).jae(bad);
    a.mov(r10d, dword(r8, QH.tail)); // tail, read once
    a.cmp(r10d, CHAN.maxSlots).jae(bad);
    a.lea(r9d, dword({ base: rax, disp: 1 }));
    a.cmp(r9d, CHAN.maxSlots).jb(wrapped);
    a.xor(r9d, r9d);
    a.bind(wrapped);
    a.cmp(r9d, r10d).jne(room);
    a.inc(qword(r8, QH.num_overflows));
    a.mov(rax, -1).pop(rbx).ret();
    a.bind(bad);
    a.mov(rax, -2).pop(rbx).ret();
    a.bind(room);
    a.xor(ebx, ebx);
    a.cmp(eax, r10d).sete(bl); // was empty
    // slot = queue header + sig_base_offset + h'·signal_size, from the template's constants
    a.imul(eax, r9d, CHAN.signalSize);
    a.lea(r11, qword({ base: r8, index: rax, scale: 1, disp: CONSOLE_SIG_BASE }));
    a.xor(eax, eax);
    for (let o = 0; o < SIGNAL.inline + LINE_MAX; o += 8) a.mov(qword(r11, o), rax);
    a.mov(dword(r11, SIGNAL.opcode), edx);
    a.mov(dword(r11, SIGNAL.flags), 1); // TO_SERVER
    a.inc(qword(L("p_reqid"))).mov(rax, qword(L("p_reqid"))).mov(qword(r11, SIGNAL.request_id), rax);
    const short = a.label();
    a.cmp(rcx, LINE_MAX).jbe(short);
    a.mov(ecx, LINE_MAX);
    a.bind(short);
    a.mov(word(r11, SIGNAL.inline_len), cx);
    a.lea(rdi, qword(r11, SIGNAL.inline));
    a.rep().movsb();
    a.lock().or(dword(rsp), 0); // the channel barrier (ADR 0003): the slot is visible before the new head
    a.inc(qword(r8, QH.num_sent));
    a.mov(dword(r8, QH.head), r9d);
    a.mov(eax, ebx).pop(rbx).ret();
  }

  // con_line(rsi = text, rcx = length): one console request through slot 0; SIGNAL only on the empty → non-empty
  // transition ([0120]). A full queue drops the line (the I/O partition is behind); the overflow is counted.
  a.bind(L("con_line"));
  {
    const done = a.label();
    a.mov(rdi, windowAddress(WINDOW_LAYOUT.slot(0)));
    a.mov(edx, CHAN.opText);
    a.call(L("chan_insert"));
    a.cmp(rax, 1).jne(done);
    a.xor(ecx, ecx);
    hypercall(a, HYPERCALL.signal);
    a.bind(done).ret();
  }
}

/** The completion the command server is building (docs/specs/image-layout.md, "… and its completions"): 128 bytes. */
export const COMPLETION = "p_completion";

/**
 * The server half of the command channel (the ultravisor partition only), specialised on its geometry (CMDCHAN). The
 * client can rewrite its page at any time, so every call first checks the channel and the queue header against that
 * geometry (cmd_queue) and computes slot addresses from the checked indices. Routines, queue q in edx (0 or 1):
 *   chan_peek(rdi = channel) → rax: the oldest signal's address, 0 when empty (num_empty counted), −1 when the
 *     channel fails the checks;
 *   chan_pop(rdi = channel): hands the oldest slot back after the barrier (call only after chan_peek found one);
 *   chan_post(rdi = channel, rsi = 128-byte signal) → rax: 1 inserted into an empty queue (signal the client, [0120]),
 *     0 inserted, −1 full (dropped, num_overflows counted), −2 the channel fails the checks;
 *   cmd_begin(r15 = request): p_completion := a completion echoing its opcode and request_id, status 0, source 0,
 *     number 0 (the handler fills those in).
 */
export function emitCommandServer(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  const S = CMDCHAN.maxSlots;
  const Z = CMDCHAN.signalSize;
  a.section(".bss");
  a.align(16);
  a.bind(L(COMPLETION));
  a.zero(Z);
  a.section(".text");

  // cmd_queue(rdi = channel, edx = q) → rax 0 and r8 = queue header, r9 = its slot 0; rax −1 when a check fails.
  a.bind(L("cmd_queue"));
  {
    const bad = a.label();
    // Every field of the template (channel-abi.md, "Fixed geometry"): the whole signature, header_size, and each
    // queue's size, signal_size, max_slots and max_signals (partitions/channel-differential.test.ts found the last
    // three and the signature's upper half unchecked here while core refuses them).
    a.cmp(qword(rdi, CH.signature), SIGNATURE).jne(bad);
    a.cmp(dword(rdi, CH.header_size), CHANNEL_HEADER_BYTES).jne(bad);
    a.cmp(qword(rdi, CH.ch_space_offset), Q0).jne(bad);
    a.cmp(edx, CMDCHAN.queues - 1).ja(bad);
    a.mov(r8d, edx).shl(r8, Math.log2(QUEUE_HEADER_BYTES)).lea(r8, qword({ base: rdi, index: r8, scale: 1, disp: Q0 }));
    a.cmp(qword(r8, QH.size), S * Z).jne(bad);
    a.cmp(dword(r8, QH.signal_size), Z).jne(bad);
    a.cmp(dword(r8, QH.max_slots), S).jne(bad);
    a.cmp(dword(r8, QH.max_signals), S - 1).jne(bad);
    // sig_base_offset as chan_format lays queue q out: (queues − q)·128 + q·S·Z
    a.imul(r9d, edx, S * Z - QUEUE_HEADER_BYTES).add(r9, CMDCHAN.queues * QUEUE_HEADER_BYTES);
    a.cmp(qword(r8, QH.sig_base_offset), r9).jne(bad);
    a.add(r9, r8);
    a.cmp(dword(r8, QH.head), S).jae(bad);
    a.cmp(dword(r8, QH.tail), S).jae(bad);
    a.xor(eax, eax).ret();
    a.bind(bad);
    a.mov(rax, -1).ret();
  }

  a.bind(L("chan_peek"));
  {
    const some = a.label();
    const wrapped = a.label();
    a.call(L("cmd_queue"));
    a.test(rax, rax).jz(some);
    a.ret();
    a.bind(some);
    a.mov(eax, dword(r8, QH.head)).mov(ecx, dword(r8, QH.tail));
    const full = a.label();
    a.cmp(eax, ecx).jne(full);
    a.inc(qword(r8, QH.num_empty));
    a.xor(eax, eax).ret();
    a.bind(full);
    a.inc(ecx).cmp(ecx, S).jb(wrapped);
    a.xor(ecx, ecx);
    a.bind(wrapped);
    a.imul(ecx, ecx, Z);
    a.lea(rax, qword({ base: r9, index: rcx, scale: 1 }));
    a.ret();
  }

  a.bind(L("chan_pop"));
  {
    const ok = a.label();
    const wrapped = a.label();
    a.call(L("cmd_queue"));
    a.test(rax, rax).jz(ok);
    a.ret();
    a.bind(ok);
    a.lock().or(dword(rsp), 0); // the channel barrier (ADR 0003): the slot has been read before it is handed back
    a.inc(qword(r8, QH.num_received));
    a.mov(ecx, dword(r8, QH.tail)).inc(ecx).cmp(ecx, S).jb(wrapped);
    a.xor(ecx, ecx);
    a.bind(wrapped);
    a.mov(dword(r8, QH.tail), ecx);
    a.ret();
  }

  a.bind(L("chan_post"));
  {
    const ok = a.label();
    const wrapped = a.label();
    const room = a.label();
    const notEmpty = a.label();
    a.call(L("cmd_queue"));
    a.test(rax, rax).jz(ok);
    a.mov(rax, -2).ret();
    a.bind(ok);
    a.mov(eax, dword(r8, QH.head)).lea(r10d, dword({ base: rax, disp: 1 }));
    a.cmp(r10d, S).jb(wrapped);
    a.xor(r10d, r10d);
    a.bind(wrapped);
    a.cmp(r10d, dword(r8, QH.tail)).jne(room);
    a.inc(qword(r8, QH.num_overflows));
    a.mov(rax, -1).ret();
    a.bind(room);
    a.xor(r11d, r11d);
    a.cmp(eax, dword(r8, QH.tail)).jne(notEmpty);
    a.mov(r11d, 1);
    a.bind(notEmpty);
    a.imul(eax, r10d, Z);
    a.lea(rdi, qword({ base: r9, index: rax, scale: 1 })).mov(ecx, Z);
    a.rep().movsb();
    a.lock().or(dword(rsp), 0); // the channel barrier (ADR 0003): the slot is visible before the new head
    a.inc(qword(r8, QH.num_sent));
    a.mov(dword(r8, QH.head), r10d);
    a.mov(eax, r11d).ret();
  }

  a.bind(L("cmd_begin"));
  {
    a.lea(rdi, ptr(L(COMPLETION))).xor(eax, eax);
    for (let o = 0; o < Z; o += 8) a.mov(qword(rdi, o), rax);
    a.mov(eax, dword(r15, SIGNAL.opcode)).mov(dword(rdi, SIGNAL.opcode), eax);
    a.mov(dword(rdi, SIGNAL.flags), CMDCHAN.completionFlags);
    a.mov(rax, qword(r15, SIGNAL.request_id)).mov(qword(rdi, SIGNAL.request_id), rax);
    a.mov(word(rdi, SIGNAL.inline_len), 4); // the partition number
    a.mov(byte(rdi, SIGNAL.cdb_len), 4); // the source
    a.ret();
  }
}
