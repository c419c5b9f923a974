// Unit tests of the Linux guest's UART model (monitor-gen/svm/pc.ts, docs/specs/linux-pc.md §4), run natively: the
// generated svm_uart the monitor links, called through koffi on a state block in host memory. The oracle is what
// Linux 6.1's 8250 autoconfig (drivers/tty/serial/8250/8250_port.c) checks — IER read-back, the loopback MSR value
// 0x90, FIFO bits 11 in IIR after FCR 0x07, no XScale UUE bit, no 16750 — and the 16550A data sheet's THRE interrupt.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Assembler } from "../../toolchain/x64/index.ts";
import { ExecRegion, HostBuffer } from "../../toolchain/x64/native.ts";
import { PIC, PIT, UART, UART_OUT, emitSvmPc, emitSvmPicPit } from "./pc.ts";

const R = { thr: 0, ier: 1, iir: 2, fcr: 2, lcr: 3, mcr: 4, lsr: 5, msr: 6, scr: 7 } as const;
let code: ExecRegion, entry: number, state: HostBuffer;
const fn: Record<string, number> = {};
beforeAll(() => {
  const a = new Assembler();
  emitSvmPc(a);
  emitSvmPicPit(a);
  const obj = a.finish();
  code = new ExecRegion(obj.sections[0]!.bytes.length).load(obj.sections[0]!.bytes);
  entry = a.labelOffset(a.symbol("svm_uart"));
  for (const n of ["svm_pic_io", "svm_pic_raise", "svm_pic_next", "svm_pit_io", "svm_pit_due"]) fn[n] = a.labelOffset(a.symbol(n));
  state = new HostBuffer(Math.max(UART.bytes, PIC.bytes, PIT.bytes));
});
afterAll(() => {
  code?.dispose();
  state?.dispose();
});
beforeEach(() => state.bytes.fill(0));

const call = (off: number, write: boolean, v = 0): number => Number(code.call(entry, state.address, off, v, write ? 1 : 0));
const inb = (off: number): number => call(off, false) & 0xff;
const outb = (off: number, v: number): number => call(off, true, v);
const irq = (r: number): boolean => (r & UART_OUT.irq) !== 0;

describe("svm_uart (the monitor's 16550A model, run natively) under Linux's 8250 autoconfig", () => {
  it("passes the IER scratch test, the loopback test and the FIFO probe, and is neither XScale nor a 16750", () => {
    // IER: write 0 → reads 0; write 0x0F → reads 0x0F.
    outb(R.ier, 0);
    expect(inb(R.ier) & 0x0f).toBe(0);
    outb(R.ier, 0x0f);
    expect(inb(R.ier) & 0x0f).toBe(0x0f);
    outb(R.ier, 0);
    // Loopback: MCR = LOOP | RTS | OUT2 → MSR high nibble 0x90; MCR restored.
    outb(R.mcr, 0x10 | 0x0a);
    expect(inb(R.msr) & 0xf0).toBe(0x90);
    outb(R.mcr, 0);
    expect(inb(R.msr)).toBe(0xb0);
    // FIFO: FCR 0x07 → IIR >> 6 = 3 (a 16550A).
    outb(R.lcr, 0);
    outb(R.fcr, 0x07);
    expect(inb(R.iir) >> 6).toBe(3);
    // Not a 16750: IIR >> 5 is 6 with LCR 0 and with DLAB set.
    outb(R.fcr, 0x07 | 0x20);
    const s1 = inb(R.iir) >> 5;
    outb(R.lcr, 0x80);
    outb(R.lcr, 0);
    expect([s1, inb(R.iir) >> 5]).toEqual([6, 6]);
    // Not XScale: IER's UUE bit (0x40) does not read back.
    outb(R.ier, 0x40);
    expect(inb(R.ier) & 0x40).toBe(0);
    // Scratch register and LSR (THRE | TEMT).
    outb(R.scr, 0xa5);
    expect(inb(R.scr)).toBe(0xa5);
    expect(inb(R.lsr)).toBe(0x60);
  });

  it("divisor latch: with DLAB set offsets 0/1 are DLL/DLM (read back) and a write there transmits nothing", () => {
    outb(R.lcr, 0x83);
    expect(outb(0, 0x01) & UART_OUT.transmit).toBe(0);
    outb(1, 0x00);
    expect([inb(0), inb(1), inb(R.lcr)]).toEqual([0x01, 0x00, 0x83]);
    outb(R.lcr, 0x03);
    expect(outb(R.thr, 0x41) & UART_OUT.transmit).toBe(UART_OUT.transmit);
    expect(inb(R.ier)).toBe(0); // DLM did not land in IER
  });

  it("THRE interrupt: raised when ETBEI is enabled and after every THR write, cleared by reading IIR or clearing ETBEI", () => {
    expect(irq(outb(R.ier, 0x01))).toBe(false); // receive interrupts only: no THRE interrupt
    expect(irq(outb(R.ier, 0x03))).toBe(true); // ETBEI 0→1: the transmitter is empty
    expect(call(R.iir, false) & 0xff).toBe(0x02);
    const after = call(R.iir, false);
    expect([after & 0xff, irq(after)]).toEqual([0x01, false]); // reading IIR took it
    const w = outb(R.thr, 0x41);
    expect([w & UART_OUT.transmit, irq(w)]).toEqual([UART_OUT.transmit, true]);
    expect(irq(outb(R.ier, 0x01))).toBe(false); // ETBEI cleared: the line drops
    expect(irq(outb(R.ier, 0x03))).toBe(true);
  });
});

describe("svm_pic_* (the monitor's 8259A pair, run natively) as Linux's init_8259A programs it", () => {
  const io = (port: 0 | 1 | 2 | 3, v: number | null): number => Number(code.call(fn.svm_pic_io!, state.address, port, v ?? 0, v === null ? 0 : 1)) & 0xff;
  const raise = (irq: number): void => void code.call(fn.svm_pic_raise!, state.address, irq);
  const next = (ack: boolean): number => Number(BigInt.asIntN(64, code.call(fn.svm_pic_next!, state.address, ack ? 1 : 0)));
  const init = (): void => {
    // init_8259A: mask all, ICW1 0x11, ICW2 vector base, ICW3 cascade, ICW4 8086 mode, then the masks.
    io(1, 0xff); io(3, 0xff);
    io(0, 0x11); io(1, 0x30); io(1, 0x04); io(1, 0x01);
    io(2, 0x11); io(3, 0x38); io(3, 0x02); io(3, 0x01);
    io(1, 0xfb); io(3, 0xff);
  };
  it("reads the IMR back (probe_8259A), delivers by priority, holds lower ones while one is in service, and EOIs", () => {
    init();
    io(1, 0x5a);
    expect(io(1, null)).toBe(0x5a);
    io(1, 0xe8); // unmask 0, 1, 2, 4
    raise(4); raise(1);
    expect(next(false)).toBe(0x31); // IRQ 1 before IRQ 4, not acknowledged
    expect(next(true)).toBe(0x31);
    expect(next(false)).toBe(-1); // IRQ 4 waits while IRQ 1 is in service
    io(0, 0x0b); // OCW3: read ISR
    expect(io(0, null)).toBe(0x02);
    io(0, 0x20); // non-specific EOI
    expect(io(0, null)).toBe(0x00);
    io(0, 0x0a); // OCW3: read IRR
    expect(io(0, null)).toBe(0x10);
    expect(next(true)).toBe(0x34);
    raise(0);
    expect(next(true)).toBe(0x30); // IRQ 0 preempts IRQ 4 in service
    io(0, 0x60); // specific EOI of IRQ 0
    io(0, 0x0b);
    expect(io(0, null)).toBe(0x10);
  });
  it("masked lines and slave lines: a slave IRQ arrives through IRQ 2 with the slave's vector", () => {
    init();
    raise(3);
    expect(next(false)).toBe(-1); // masked
    raise(9);
    expect(next(false)).toBe(-1); // slave masked
    io(3, 0xfd); // unmask IRQ 9
    expect(next(true)).toBe(0x39);
    io(0, 0x0b);
    expect(io(0, null)).toBe(0x04); // the master has IRQ 2 in service
  });
});

describe("svm_pit_* (the monitor's 8254 channel 0, run natively)", () => {
  const io = (port: 0 | 1 | 2 | 3, v: number | null, now: bigint): number => Number(code.call(fn.svm_pit_io!, state.address, port, v ?? 0, v === null ? 0 : 1, now)) & 0xff;
  const due = (now: bigint): boolean => code.call(fn.svm_pit_due!, state.address, now) === 1n;
  it("mode 2 (Linux's periodic tick): the count runs down from the reload, IRQ 0 once per elapsed period, coalesced", () => {
    io(3, 0x34, 0n); // channel 0, lobyte/hibyte, mode 2
    io(0, 1193 & 0xff, 0n); io(0, 1193 >> 8, 1000n);
    expect(due(1000n)).toBe(false);
    io(3, 0x00, 1100n); // latch
    expect(io(0, null, 9999n) | (io(0, null, 9999n) << 8)).toBe(1193 - 100);
    expect(due(1000n + 1193n)).toBe(true);
    expect(due(1000n + 1193n + 5n)).toBe(false);
    expect(due(1000n + 10n * 1193n)).toBe(true); // nine periods passed: one interrupt
    expect(due(1000n + 10n * 1193n + 1n)).toBe(false);
  });
  it("mode 0 (one-shot clock events): one interrupt when the count runs out, none after; reprogramming re-arms", () => {
    io(3, 0x30, 0n); // lobyte/hibyte, mode 0
    io(0, 100, 0n); io(0, 0, 50n);
    expect(due(149n)).toBe(false);
    expect(due(150n)).toBe(true);
    expect(due(400n)).toBe(false);
    io(0, 10, 500n); io(0, 0, 500n);
    expect(due(510n)).toBe(true);
  });
});
