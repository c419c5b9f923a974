// Unit tests of the Linux guest's UART model (monitor-gen/svm/pc.ts, docs/specs/linux-pc.md §4), run natively: the
// generated svm_uart the monitor links, called through koffi on a state block in host memory. The oracle is what
// Linux 6.1's 8250 autoconfig (drivers/tty/serial/8250/8250_port.c) checks — IER read-back, the loopback MSR value
// 0x90, FIFO bits 11 in IIR after FCR 0x07, no XScale UUE bit, no 16750 — and the 16550A data sheet's THRE interrupt.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Assembler } from "../../toolchain/x64/index.ts";
import { ExecRegion, HostBuffer } from "../../toolchain/x64/native.ts";
import { UART, UART_OUT, emitSvmPc } from "./pc.ts";

const R = { thr: 0, ier: 1, iir: 2, fcr: 2, lcr: 3, mcr: 4, lsr: 5, msr: 6, scr: 7 } as const;
let code: ExecRegion, entry: number, state: HostBuffer;
beforeAll(() => {
  const a = new Assembler();
  emitSvmPc(a);
  const obj = a.finish();
  code = new ExecRegion(obj.sections[0]!.bytes.length).load(obj.sections[0]!.bytes);
  entry = a.labelOffset(a.symbol("svm_uart"));
  state = new HostBuffer(UART.bytes);
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
