// Device models of the Linux guest's PC in the SVM monitor (generated ring-0 code; docs/specs/linux-pc.md): the
// 16550A UART at 0x3F8 (§4) as a leaf function over its state block in the VM page. The monitor's IOIO exit calls it
// for every COM1 access; a THR write it reports is then appended to the console line buffer. Like mmio.ts it keeps
// no state of its own and follows the System V convention, so pc.test.ts runs the same bytes natively. The 8259A
// and 8254 models of linux-pc.md §2–§3 and interrupt injection (§5) are not written yet.
import { Assembler, type Label, byte, dl, eax, ecx, edx, esi, rdi } from "../../toolchain/x64/index.ts";

/** The UART's state block (bytes, at VM.uart in the VM page). */
export const UART = { ier: 0, lcr: 1, mcr: 2, scr: 3, dll: 4, dlm: 5, fifo: 6, thri: 7, bytes: 8 } as const;
/** svm_uart's result: the byte read (bits 0–7), transmit the written byte (bit 8), IRQ 4's level after the access (bit 9). */
export const UART_OUT = { transmit: 1 << 8, irq: 1 << 9 } as const;

export function emitSvmPc(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);

  // svm_uart(rdi = state block, esi = register offset 0–7, edx = value written, ecx = 1 write / 0 read) → rax per
  // UART_OUT. Registers per linux-pc.md §4: IER/LCR/MCR/SCR/DLL/DLM read back, IIR with the FIFO bits and a THRE
  // interrupt (raised when ETBEI goes 0→1 and after every THR write, cleared by reading IIR), LSR 0x60, MSR 0xB0 or the
  // MCR outputs in loopback. Clobbers rcx, rdx, rsi.
  a.bind(L("svm_uart"));
  {
    const done = a.label(), write = a.label();
    const dlab = (): void => {
      a.test(byte(rdi, UART.lcr), 0x80);
    };
    a.and(esi, 7).and(edx, 0xff);
    a.xor(eax, eax);
    a.test(ecx, ecx).jnz(write);
    // ---- reads ----
    const cases = Array.from({ length: 8 }, () => a.label());
    for (let r = 0; r < 8; r++) a.cmp(esi, r).je(cases[r]!);
    a.jmp(done);
    a.bind(cases[0]!); // RBR (no input yet) or DLL
    dlab();
    a.jz(done);
    a.movzx(eax, byte(rdi, UART.dll)).jmp(done);
    a.bind(cases[1]!); // IER or DLM
    {
      const ier = a.label();
      dlab();
      a.jz(ier);
      a.movzx(eax, byte(rdi, UART.dlm)).jmp(done);
      a.bind(ier);
      a.movzx(eax, byte(rdi, UART.ier)).jmp(done);
    }
    a.bind(cases[2]!); // IIR: FIFO bits, THRE (0x2) or none (0x1); reading it clears the THRE interrupt
    {
      const none = a.label(), fifo = a.label();
      a.mov(eax, 1);
      a.test(byte(rdi, UART.ier), 2).jz(none);
      a.cmp(byte(rdi, UART.thri), 0).je(none);
      a.mov(eax, 2).mov(byte(rdi, UART.thri), 0);
      a.bind(none);
      a.cmp(byte(rdi, UART.fifo), 0).je(fifo);
      a.or(eax, 0xc0);
      a.bind(fifo);
      a.jmp(done);
    }
    a.bind(cases[3]!);
    a.movzx(eax, byte(rdi, UART.lcr)).jmp(done);
    a.bind(cases[4]!);
    a.movzx(eax, byte(rdi, UART.mcr)).jmp(done);
    a.bind(cases[5]!); // LSR: transmitter holding register and transmitter empty
    a.mov(eax, 0x60).jmp(done);
    a.bind(cases[6]!); // MSR: DCD DSR CTS, or in loopback DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD
    {
      const loop = a.label();
      a.movzx(ecx, byte(rdi, UART.mcr));
      a.test(ecx, 0x10).jnz(loop);
      a.mov(eax, 0xb0).jmp(done);
      a.bind(loop);
      a.mov(eax, ecx).and(eax, 1).shl(eax, 5); // DTR → DSR
      a.mov(edx, ecx).and(edx, 2).shl(edx, 3).or(eax, edx); // RTS → CTS
      a.mov(edx, ecx).and(edx, 0xc).shl(edx, 4).or(eax, edx); // OUT1 → RI, OUT2 → DCD
      a.jmp(done);
    }
    a.bind(cases[7]!);
    a.movzx(eax, byte(rdi, UART.scr)).jmp(done);
    // ---- writes ----
    a.bind(write);
    {
      const w = Array.from({ length: 8 }, () => a.label());
      for (let r = 0; r < 8; r++) a.cmp(esi, r).je(w[r]!);
      a.jmp(done);
      a.bind(w[0]!); // THR or DLL
      {
        const thr = a.label();
        dlab();
        a.jz(thr);
        a.mov(byte(rdi, UART.dll), dl);
        a.jmp(done);
        a.bind(thr);
        a.mov(byte(rdi, UART.thri), 1).mov(eax, UART_OUT.transmit).jmp(done);
      }
      a.bind(w[1]!); // IER (bits 0–3; ETBEI 0→1 raises THRE) or DLM
      {
        const ier = a.label(), same = a.label();
        dlab();
        a.jz(ier);
        a.mov(byte(rdi, UART.dlm), dl).jmp(done);
        a.bind(ier);
        a.and(edx, 0x0f);
        a.test(byte(rdi, UART.ier), 2).jnz(same);
        a.test(edx, 2).jz(same);
        a.mov(byte(rdi, UART.thri), 1);
        a.bind(same);
        a.mov(byte(rdi, UART.ier), dl).jmp(done);
      }
      a.bind(w[2]!); // FCR: bit 0 enables the FIFOs
      a.and(edx, 1).mov(byte(rdi, UART.fifo), dl).jmp(done);
      a.bind(w[3]!);
      a.mov(byte(rdi, UART.lcr), dl).jmp(done);
      a.bind(w[4]!);
      a.and(edx, 0x1f).mov(byte(rdi, UART.mcr), dl).jmp(done);
      a.bind(w[5]!); // LSR, MSR: read-only
      a.bind(w[6]!);
      a.jmp(done);
      a.bind(w[7]!);
      a.mov(byte(rdi, UART.scr), dl).jmp(done);
    }
    // IRQ 4's level: ETBEI and a pending THRE interrupt.
    a.bind(done);
    {
      const low = a.label();
      a.test(byte(rdi, UART.ier), 2).jz(low);
      a.cmp(byte(rdi, UART.thri), 0).je(low);
      a.or(eax, UART_OUT.irq);
      a.bind(low);
      a.ret();
    }
  }
}
