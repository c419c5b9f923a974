// Device models of the Linux guest's PC in the SVM monitor (generated ring-0 code; docs/specs/linux-pc.md): the
// 16550A UART at 0x3F8 (§4) as a leaf function over its state block in the VM page. The monitor's IOIO exit calls it
// for every COM1 access; a THR write it reports is then appended to the console line buffer. Like mmio.ts it keeps
// no state of its own and follows the System V convention, so pc.test.ts runs the same bytes natively. The 8259A
// and 8254 models of linux-pc.md §2–§3 and interrupt injection (§5) are not written yet.
import { Assembler, type Label, al, ax, byte, cl, dl, eax, ecx, edx, esi, qword, r8, r8d, r9, r9d, r10b, r10d, rax, rdi, rsi, word } from "../../toolchain/x64/index.ts";

/**
 * The RTC's CMOS as the guest reads it through ports 0x70/0x71 (docs/specs/linux-pc.md §7): a clock stopped at
 * 2026-01-01 00:00:00 (BCD, 24-hour: register B = 0x02), never updating (register A's UIP bit 7 clear: Linux's
 * mc146818 read does not wait), valid (register D = 0x80), no interrupt flags (C = 0); every other byte 0. There is
 * no wall clock in this version; without the model the kernel's reads of all ones cost it seconds of retries.
 */
export const CMOS_BYTES: Uint8Array = (() => {
  const b = new Uint8Array(128);
  const set: Array<[number, number]> = [[0x00, 0x00], [0x02, 0x00], [0x04, 0x00], [0x06, 0x05], [0x07, 0x01], [0x08, 0x01], [0x09, 0x26],
    [0x0a, 0x26], [0x0b, 0x02], [0x0c, 0x00], [0x0d, 0x80], [0x32, 0x20]];
  for (const [i, v] of set) b[i] = v;
  return b;
})();

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

/** One 8259A's state (bytes; the master at PIC.master, the slave at PIC.slave of the block at VM.pic). */
export const PIC_CHIP = { irr: 0, isr: 1, imr: 2, step: 3, base: 4, readIsr: 5, icw1: 6, aeoi: 7 } as const;
export const PIC = { master: 0, slave: 8, bytes: 16 } as const;
/** The 8254 channel 0's state (at VM.pit): reload 0 means 65536. */
export const PIT = { mode: 0, access: 1, writeHi: 2, readHi: 3, latched: 4, armed: 5, reload: 8, latch: 12, start: 16, periods: 24, bytes: 32 } as const;

export function emitSvmPicPit(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);

  // svm_pic_io(rdi = PIC block, esi = 0 0x20, 1 0x21, 2 0xA0, 3 0xA1, edx = value, ecx = 1 write) → rax = byte read
  // (linux-pc.md §2: ICW1–ICW4, IMR read-back, OCW2 EOIs, OCW3 IRR/ISR select). Clobbers rcx, rdx, rsi, r8.
  a.bind(L("svm_pic_io"));
  {
    const done = a.label(), write = a.label(), data = a.label();
    a.mov(r8d, esi).and(r8d, 2).shl(r8d, 2).add(r8, rdi); // r8 = the chip
    a.and(edx, 0xff).xor(eax, eax);
    a.test(ecx, ecx).jnz(write);
    {
      const irr = a.label();
      a.test(esi, 1).jz(irr);
      a.movzx(eax, byte(r8, PIC_CHIP.imr)).jmp(done);
      a.bind(irr);
      a.movzx(eax, byte(r8, PIC_CHIP.irr));
      a.cmp(byte(r8, PIC_CHIP.readIsr), 0).je(done);
      a.movzx(eax, byte(r8, PIC_CHIP.isr)).jmp(done);
    }
    a.bind(write);
    a.test(esi, 1).jnz(data);
    {
      const notIcw1 = a.label(), ocw2 = a.label(), nonSpecific = a.label();
      a.test(edx, 0x10).jz(notIcw1);
      // ICW1: initialisation starts; IMR, ISR, IRR cleared, IRR selected for reads.
      a.mov(byte(r8, PIC_CHIP.icw1), dl).mov(byte(r8, PIC_CHIP.step), 1);
      a.mov(byte(r8, PIC_CHIP.imr), 0).mov(byte(r8, PIC_CHIP.isr), 0).mov(byte(r8, PIC_CHIP.irr), 0).mov(byte(r8, PIC_CHIP.readIsr), 0).mov(byte(r8, PIC_CHIP.aeoi), 0);
      a.jmp(done);
      a.bind(notIcw1);
      a.test(edx, 0x08).jz(ocw2);
      // OCW3: RR (bit 1) with RIS (bit 0) selects IRR or ISR.
      a.test(edx, 2).jz(done);
      a.and(edx, 1).mov(byte(r8, PIC_CHIP.readIsr), dl).jmp(done);
      a.bind(ocw2);
      a.test(edx, 0x20).jz(done); // not an EOI (rotation, priority commands): ignored
      a.test(edx, 0x40).jz(nonSpecific);
      a.mov(ecx, edx).and(ecx, 7).movzx(eax, byte(r8, PIC_CHIP.isr)).btr(eax, ecx).mov(byte(r8, PIC_CHIP.isr), al);
      a.xor(eax, eax).jmp(done);
      a.bind(nonSpecific);
      // The highest-priority (lowest-numbered) bit in service.
      a.movzx(eax, byte(r8, PIC_CHIP.isr)).lea(ecx, qword(rax, -1)).and(eax, ecx).mov(byte(r8, PIC_CHIP.isr), al);
      a.xor(eax, eax).jmp(done);
    }
    a.bind(data);
    {
      const icw2 = a.label(), icw3 = a.label(), icw4 = a.label(), toIcw4 = a.label();
      a.movzx(ecx, byte(r8, PIC_CHIP.step));
      a.cmp(ecx, 1).je(icw2);
      a.cmp(ecx, 2).je(icw3);
      a.cmp(ecx, 3).je(icw4);
      a.mov(byte(r8, PIC_CHIP.imr), dl).jmp(done); // OCW1
      a.bind(icw2);
      a.and(edx, 0xf8).mov(byte(r8, PIC_CHIP.base), dl);
      a.mov(byte(r8, PIC_CHIP.step), 2);
      a.test(byte(r8, PIC_CHIP.icw1), 2).jz(done); // cascade: ICW3 next
      a.bind(toIcw4);
      a.mov(byte(r8, PIC_CHIP.step), 3);
      a.test(byte(r8, PIC_CHIP.icw1), 1).jnz(done); // ICW4 needed
      a.mov(byte(r8, PIC_CHIP.step), 0).jmp(done);
      a.bind(icw3);
      a.jmp(toIcw4);
      a.bind(icw4);
      a.and(edx, 2).mov(byte(r8, PIC_CHIP.aeoi), dl).mov(byte(r8, PIC_CHIP.step), 0);
    }
    a.bind(done);
    a.ret();
  }

  // svm_pic_raise(rdi = PIC block, esi = IRQ 0–15): an edge on that line sets its IRR bit. Clobbers rax, rcx.
  a.bind(L("svm_pic_raise"));
  {
    a.mov(ecx, esi).and(ecx, 15).mov(eax, ecx).shr(eax, 3).shl(eax, 3); // chip offset 0 or 8
    a.and(ecx, 7);
    a.movzx(edx, byte({ base: rdi, index: rax, disp: PIC_CHIP.irr })).bts(edx, ecx).mov(byte({ base: rdi, index: rax, disp: PIC_CHIP.irr }), dl);
    a.ret();
  }

  // svm_pic_next(rdi = PIC block, esi = 1 to acknowledge) → rax = the vector of the highest-priority pending IRQ, or
  // −1. An IRQ is pending when requested, unmasked and above every IRQ in service; the slave's lines take IRQ 2's
  // place on the master. Acknowledging moves IRR → ISR (not with AEOI), on both chips for a slave IRQ. Clobbers rcx,
  // rdx, r8–r11.
  a.bind(L("svm_pic_next"));
  {
    const none = a.label(), master = a.label(), fromSlave = a.label(), out = a.label();
    // One chip: r8 = chip → r9 = its best line or −1.
    const best = (chip: number, extra: (() => void) | null): void => {
      const no = a.label(), ok = a.label();
      a.movzx(eax, byte(rdi, chip + PIC_CHIP.irr));
      if (extra) extra();
      a.movzx(ecx, byte(rdi, chip + PIC_CHIP.imr)).not(ecx).and(eax, ecx);
      a.jz(no);
      a.bsf(r9d, eax); // the lowest-numbered request
      a.mov(ecx, r9d).inc(ecx).mov(edx, 1).shl(edx, cl).dec(edx); // bits 0..n
      a.movzx(eax, byte(rdi, chip + PIC_CHIP.isr)).test(eax, edx).jz(ok);
      a.bind(no);
      a.mov(r9d, -1);
      a.bind(ok);
    };
    best(PIC.slave, null);
    a.mov(r10d, r9d); // r10 = the slave's line or −1
    best(PIC.master, () => {
      const quiet = a.label();
      a.test(r10d, r10d).js(quiet);
      a.or(eax, 4);
      a.bind(quiet);
    });
    a.test(r9d, r9d).js(none);
    a.cmp(r9d, 2).jne(master);
    a.test(r10d, r10d).jns(fromSlave);
    a.bind(master);
    a.movzx(eax, byte(rdi, PIC.master + PIC_CHIP.base)).add(eax, r9d);
    a.test(esi, esi).jz(out);
    const ack = (chip: number, line: typeof r9d): void => {
      const auto = a.label();
      a.movzx(ecx, byte(rdi, chip + PIC_CHIP.irr)).btr(ecx, line).mov(byte(rdi, chip + PIC_CHIP.irr), cl);
      a.cmp(byte(rdi, chip + PIC_CHIP.aeoi), 0).jne(auto);
      a.movzx(ecx, byte(rdi, chip + PIC_CHIP.isr)).bts(ecx, line).mov(byte(rdi, chip + PIC_CHIP.isr), cl);
      a.bind(auto);
    };
    ack(PIC.master, r9d);
    a.jmp(out);
    a.bind(fromSlave);
    a.movzx(eax, byte(rdi, PIC.slave + PIC_CHIP.base)).add(eax, r10d);
    a.test(esi, esi).jz(out);
    ack(PIC.slave, r10d);
    {
      const auto = a.label();
      a.cmp(byte(rdi, PIC.master + PIC_CHIP.aeoi), 0).jne(auto);
      a.or(byte(rdi, PIC.master + PIC_CHIP.isr), 4);
      a.bind(auto);
    }
    a.jmp(out);
    a.bind(none);
    a.mov(rax, -1);
    a.bind(out);
    a.ret();
  }

  // The channel's current count at r8 = now → eax (16 bits; 0 stands for 65536 as the chip reads it). Clobbers rax,
  // rdx, r9.
  const pitCount = (): void => {
    const wide = a.label(), unarmed = a.label(), periodic = a.label(), done = a.label();
    a.movzx(r9d, word(rdi, PIT.reload)).test(r9d, r9d).jnz(wide);
    a.mov(r9d, 0x1_0000);
    a.bind(wide);
    a.cmp(byte(rdi, PIT.armed), 0).je(unarmed);
    a.mov(rax, r8).sub(rax, qword(rdi, PIT.start));
    a.cmp(byte(rdi, PIT.mode), 0).jne(periodic);
    {
      const left = a.label();
      a.cmp(rax, r9).jb(left);
      a.xor(eax, eax).jmp(done);
      a.bind(left);
      a.neg(rax).add(rax, r9).jmp(done);
    }
    a.bind(periodic);
    a.xor(edx, edx).div(r9).mov(eax, r9d).sub(eax, edx).jmp(done);
    a.bind(unarmed);
    a.mov(eax, r9d);
    a.bind(done);
    a.and(eax, 0xffff);
  };

  // svm_pit_io(rdi = PIT block, esi = 0–3 for ports 0x40–0x43, edx = value, ecx = 1 write, r8 = now in PIT ticks) →
  // rax = byte read (linux-pc.md §3: channel 0 in modes 0, 2, 3; lobyte/hibyte/both; the counter latch; channels 1–2
  // ignored, reading 0). Clobbers rcx, rdx, rsi, r9, r10.
  a.bind(L("svm_pit_io"));
  {
    const done = a.label(), control = a.label(), write0 = a.label();
    a.and(edx, 0xff).mov(r10d, edx).xor(eax, eax);
    a.cmp(esi, 3).je(control);
    a.test(esi, esi).jnz(done);
    a.test(ecx, ecx).jnz(write0);
    {
      const fromLatch = a.label(), emit = a.label(), hi = a.label(), lo = a.label(), loFirst = a.label();
      a.cmp(byte(rdi, PIT.latched), 0).jne(fromLatch);
      pitCount();
      a.jmp(emit);
      a.bind(fromLatch);
      a.movzx(eax, word(rdi, PIT.latch));
      a.bind(emit);
      a.movzx(ecx, byte(rdi, PIT.access));
      a.cmp(ecx, 2).je(hi);
      a.cmp(ecx, 3).jne(lo);
      a.cmp(byte(rdi, PIT.readHi), 0).je(loFirst);
      a.mov(byte(rdi, PIT.readHi), 0);
      a.bind(hi);
      a.mov(byte(rdi, PIT.latched), 0).shr(eax, 8).and(eax, 0xff).jmp(done);
      a.bind(loFirst);
      a.mov(byte(rdi, PIT.readHi), 1).and(eax, 0xff).jmp(done);
      a.bind(lo);
      a.mov(byte(rdi, PIT.latched), 0).and(eax, 0xff).jmp(done);
    }
    a.bind(write0);
    {
      const whi = a.label(), whi2 = a.label(), wlo = a.label(), start = a.label();
      a.movzx(ecx, byte(rdi, PIT.access));
      a.cmp(ecx, 2).je(whi);
      a.cmp(ecx, 3).jne(wlo);
      a.cmp(byte(rdi, PIT.writeHi), 0).jne(whi2);
      a.mov(byte(rdi, PIT.reload), r10b).mov(byte(rdi, PIT.reload + 1), 0).mov(byte(rdi, PIT.writeHi), 1).mov(byte(rdi, PIT.armed), 0).jmp(done);
      a.bind(whi2);
      a.mov(byte(rdi, PIT.reload + 1), r10b).mov(byte(rdi, PIT.writeHi), 0).jmp(start);
      a.bind(whi);
      a.mov(byte(rdi, PIT.reload), 0).mov(byte(rdi, PIT.reload + 1), r10b).jmp(start);
      a.bind(wlo);
      a.mov(byte(rdi, PIT.reload), r10b).mov(byte(rdi, PIT.reload + 1), 0);
      a.bind(start);
      a.mov(qword(rdi, PIT.start), r8).mov(byte(rdi, PIT.armed), 1).mov(qword(rdi, PIT.periods), 0).jmp(done);
    }
    a.bind(control);
    {
      const setMode = a.label(), m = a.label();
      a.test(ecx, ecx).jz(done);
      a.mov(ecx, r10d).shr(ecx, 6).jnz(done); // channels 1, 2 and read-back: ignored
      a.mov(ecx, r10d).shr(ecx, 4).and(ecx, 3).jnz(setMode);
      a.cmp(byte(rdi, PIT.latched), 0).jne(done); // counter latch (a second one before the read is ignored)
      pitCount();
      a.mov(word(rdi, PIT.latch), ax).mov(byte(rdi, PIT.latched), 1).mov(byte(rdi, PIT.readHi), 0);
      a.xor(eax, eax).jmp(done);
      a.bind(setMode);
      a.mov(byte(rdi, PIT.access), cl);
      a.mov(ecx, r10d).shr(ecx, 1).and(ecx, 7).cmp(ecx, 6).jb(m);
      a.and(ecx, 3);
      a.bind(m);
      a.mov(byte(rdi, PIT.mode), cl);
      for (const f of [PIT.armed, PIT.writeHi, PIT.readHi, PIT.latched]) a.mov(byte(rdi, f), 0);
    }
    a.bind(done);
    a.ret();
  }

  // svm_pit_due(rdi = PIT block, rsi = now in PIT ticks) → rax = 1 when IRQ 0 is to be raised now: a one-shot count
  // (mode 0) that ran out (once), or a periodic one (2, 3) that completed a period since the last call (periods that
  // passed while the partition did not run count once). Clobbers rdx, r9.
  a.bind(L("svm_pit_due"));
  {
    const no = a.label(), periodic = a.label(), wide = a.label();
    a.cmp(byte(rdi, PIT.armed), 0).je(no);
    a.movzx(r9d, word(rdi, PIT.reload)).test(r9d, r9d).jnz(wide);
    a.mov(r9d, 0x1_0000);
    a.bind(wide);
    a.mov(rax, rsi).sub(rax, qword(rdi, PIT.start));
    a.cmp(byte(rdi, PIT.mode), 2).jae(periodic);
    a.cmp(rax, r9).jb(no);
    a.mov(byte(rdi, PIT.armed), 0).mov(eax, 1).ret();
    a.bind(periodic);
    a.xor(edx, edx).div(r9);
    a.cmp(rax, qword(rdi, PIT.periods)).jbe(no);
    a.mov(qword(rdi, PIT.periods), rax).mov(eax, 1).ret();
    a.bind(no);
    a.xor(eax, eax).ret();
  }
}
