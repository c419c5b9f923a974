// Assembler listings for `uvt asm --listing`: one row per source line that produced bytes: address, bytes (hex, wrapped
// at 8 per row) and the source text. Addresses are final (after branch relaxation and section placement).
import type { LineSpan } from "./parse.ts";
import type { Assembler } from "./assembler.ts";
import type { FlatImage } from "./flat.ts";

const PER_ROW = 8;
const MAX_ROWS = 4;

export function listing(asm: Assembler, spans: readonly LineSpan[], image: FlatImage, base: bigint): string {
  const out: string[] = [];
  const width = Math.max(8, (image.addresses.reduce((m, a) => (a > m ? a : m), base) + BigInt(image.bytes.length)).toString(16).length);
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  for (const sp of spans) {
    const start = asm.offsetOf(sp.start);
    const end = sp.end.section === sp.start.section ? asm.offsetOf(sp.end) : start;
    const secAddr = image.addresses[sp.start.section]!;
    const addr = secAddr + BigInt(start);
    const off = Number(addr - base);
    const inImage = off + (end - start) <= image.bytes.length;
    const bytes = inImage ? Array.from(image.bytes.subarray(off, off + end - start), hex) : [];
    const all = Math.max(1, Math.ceil(bytes.length / PER_ROW));
    // Long fills are elided after a few rows: the listing is for reading code.
    const rows = all > MAX_ROWS ? MAX_ROWS - 1 : all;
    if (all > MAX_ROWS) bytes.length = rows * PER_ROW;
    for (let r = 0; r < rows; r++) {
      const chunk = inImage ? bytes.slice(r * PER_ROW, (r + 1) * PER_ROW).join(" ") : `(${end - start} bytes reserved)`;
      const a = (addr + BigInt(r * PER_ROW)).toString(16).padStart(width, "0");
      out.push(`${a}  ${chunk.padEnd(PER_ROW * 3 - 1)}  ${r === 0 ? `${String(sp.line).padStart(5)}  ${sp.text.trim()}` : ""}`.trimEnd());
    }
    if (all > MAX_ROWS) out.push(`${" ".repeat(width)}  ... (${end - start} bytes in all)`);
  }
  return out.join("\n") + "\n";
}
