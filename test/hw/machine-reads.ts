// Helpers the hardware tests share for reading a boot: a partition's console lines out of the serial log (the I/O
// partition tags each with the client's name), a page of physical memory as 512 quadwords over QMP, the address bits
// of a page-table entry, and a wrapper that prints the whole serial log when a check fails (it is the only evidence of
// what the machine did).
import type { Machine } from "../../qemu/index.ts";

/** Address bits 12–51 of a page-table entry. */
export const PTE_ADDRESS = 0x000f_ffff_ffff_f000n;

/** The 512 quadwords of the 4 KiB page at physical `at`, read over QMP. */
export async function qwords(m: Machine, at: bigint): Promise<bigint[]> {
  const b = await m.readPhysical(at, 4096);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: 512 }, (_, i) => v.getBigUint64(8 * i, true));
}

/** The lines the I/O partition printed for partition `name`, without the "NAME: " tag. */
export function consoleLinesOf(lines: readonly string[], name: string): string[] {
  return lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
}

/** Runs `check`; when it throws, prints the serial log (and `extra` lines) first. */
export function withSerialLog(lines: readonly string[], check: () => void, extra: readonly string[] = []): void {
  try {
    check();
  } catch (e) {
    console.error(lines.join("\n"));
    if (extra.length) console.error(extra.join("\n"));
    throw e;
  }
}
