// Flat-binary layout for `uvt asm`: places the sections of an ObjectFile one after another from a base address (each
// at its alignment), links them with link.ts and returns the image bytes (trailing bss is not stored).
import { link } from "./link.ts";
import type { ObjectFile } from "./object.ts";

export interface FlatImage {
  bytes: Uint8Array;
  /** Address of each section. */
  addresses: bigint[];
}

export function flatten(obj: ObjectFile, base: bigint = 0n): FlatImage {
  const addresses: bigint[] = [];
  let at = base;
  for (const s of obj.sections) {
    const al = BigInt(s.align);
    at = (at + al - 1n) / al * al;
    addresses.push(at);
    at += BigInt(s.bytes.length);
  }
  const linked = link(obj, addresses);
  let end = 0;
  obj.sections.forEach((s, i) => {
    if (s.kind !== "bss" && s.bytes.length) end = Math.max(end, Number(addresses[i]! - base) + s.bytes.length);
  });
  const bytes = new Uint8Array(end);
  obj.sections.forEach((s, i) => {
    if (s.kind !== "bss") bytes.set(linked.sections[i]!, Number(addresses[i]! - base));
  });
  return { bytes, addresses };
}
