// The smallest useful EFI application: writes one marker line to COM1 and leaves QEMU through isa-debug-exit at
// once. It measures the floor of a boot (QEMU start → OVMF running any EFI application) for bench/boot.bench.ts,
// against which the first image's time to banner is compared.
import { Assembler, al, dx, eax, type Label } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";

export const MINIMAL_ENTRY = "efi_main";
export const MINIMAL_MARKER = "uv-minimal";
export const MINIMAL_EXIT_CODE = 5;

export function assembleMinimalImage(): ObjectFile {
  const a = new Assembler();
  const main: Label = a.label(MINIMAL_ENTRY);
  a.global(main).bind(main);
  // No UART polling: QEMU's 16550 accepts bytes as fast as they come, and polling is not what is being measured.
  for (const ch of `${MINIMAL_MARKER}\r\n`) a.mov(dx, 0x3f8).mov(al, ch.charCodeAt(0)).out(dx, al);
  a.mov(eax, MINIMAL_EXIT_CODE).mov(dx, 0xf4).out(dx, eax);
  a.xor(eax, eax).ret();
  return a.finish();
}
