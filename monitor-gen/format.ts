// Number formatting shared by the generated programs that build text in a byte buffer: the first image's lines
// (loader-efi/first-image.ts) and the ring-3 partition runtime's console lines (partitions/runtime.ts). The monitor's
// own log writes through k_putc instead (monitor-gen/console.ts).
import { type Assembler, al, byte, ecx, edx, r8, r8d, rax, rdi, rdx } from "../toolchain/x64/index.ts";

/**
 * Emits `name`(rax → rdi): rax as unsigned decimal at rdi, rdi advanced past it. Digits come out least significant
 * first, so they go through the stack. Clobbers rax, rcx, rdx, r8.
 */
export function emitAppendDec(a: Assembler, name: string): void {
  a.bind(a.symbol(name));
  a.mov(r8d, 10).xor(ecx, ecx);
  const divide = a.here();
  a.xor(edx, edx).div(r8).push(rdx).inc(ecx);
  a.test(rax, rax).jnz(divide);
  const emit = a.here();
  a.pop(rax).add(al, 0x30).mov(byte(rdi), al).inc(rdi);
  a.dec(ecx).jnz(emit);
  a.ret();
}
