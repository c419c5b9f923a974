// Step one of turning an assembler ObjectFile into an EFI application: decide where every section lands in the image
// (its RVA), before any byte is patched. The flow is
//   layoutPe(obj) → RVAs → x64/link.ts applies relocations at imageBase + RVA and reports the abs64 sites →
//   writePe(peInputFromObject(...)) → PE32+ bytes.
// Image order is by section kind (code, read-only data, data, zero-fill), keeping the object's order within a kind;
// the first section starts at the first 4 KiB boundary after the headers and each later one at the next boundary
// after its predecessor. The .reloc section, if any, follows the last section (writePe places it).
import type { ObjectFile, SectionKind } from "../x64/object.ts";
import {
  alignUp,
  DEFAULT_IMAGE_BASE,
  encodeSectionName,
  headersSize,
  IMAGE_BASE_ALIGNMENT,
  KIND_ORDER,
  SECTION_ALIGNMENT,
} from "./format.ts";
import type { PeSectionInput, PeWriteInput } from "./write.ts";

export interface LayoutOptions {
  /** Preferred load address (a 64 KiB multiple); the firmware relocates from here. Default 0x140000000. */
  imageBase?: bigint;
}

export interface SectionPlacement {
  /** Index in ObjectFile.sections. */
  index: number;
  name: string;
  kind: SectionKind;
  rva: number;
  /** Bytes the section occupies in memory (its contents' length; for bss the zero-fill size). */
  size: number;
  /** imageBase + rva: the address the linker patches into absolute references. */
  address: bigint;
}

export interface PeLayout {
  imageBase: bigint;
  /** One placement per object section, indexed like ObjectFile.sections. */
  sections: SectionPlacement[];
  /** Object section indices in image (ascending RVA) order. */
  order: number[];
  /** Where the .reloc section goes if the image has base relocations. */
  relocRva: number;
  /** SizeOfImage without a .reloc section. */
  endRva: number;
}

export function checkImageBase(imageBase: bigint): void {
  if (imageBase < 0n || imageBase >= 1n << 64n || imageBase % BigInt(IMAGE_BASE_ALIGNMENT) !== 0n)
    throw new Error(
      `image base 0x${imageBase.toString(16)} must be a 64 KiB multiple below 2^64 (for example 0x140000000)`,
    );
}

export function layoutPe(obj: ObjectFile, options: LayoutOptions = {}): PeLayout {
  const imageBase = options.imageBase ?? DEFAULT_IMAGE_BASE;
  checkImageBase(imageBase);
  obj.sections.forEach((s, i) => {
    encodeSectionName(s.name);
    if (!Number.isInteger(s.align) || s.align < 1 || (s.align & (s.align - 1)) !== 0)
      throw new Error(`section ${i} (${s.name}) has alignment ${s.align}: give a power of two`);
    if (s.align > SECTION_ALIGNMENT)
      throw new Error(
        `section ${i} (${s.name}) asks for ${s.align}-byte alignment; an EFI loader only guarantees ` +
          `${SECTION_ALIGNMENT} (allocate larger-aligned memory at run time instead)`,
      );
  });
  const order = obj.sections.map((_, i) => i).sort((a, b) => {
    const d = KIND_ORDER[obj.sections[a]!.kind] - KIND_ORDER[obj.sections[b]!.kind];
    return d !== 0 ? d : a - b;
  });
  // One extra header slot for .reloc: the first RVA must not depend on whether the linker finds abs64 sites.
  let rva = alignUp(headersSize(obj.sections.length + 1), SECTION_ALIGNMENT);
  const sections: SectionPlacement[] = new Array(obj.sections.length);
  for (const i of order) {
    const s = obj.sections[i]!;
    sections[i] = { index: i, name: s.name, kind: s.kind, rva, size: s.bytes.length, address: imageBase + BigInt(rva) };
    // An empty section takes no room; writePe leaves it out of the image.
    rva = alignUp(rva + s.bytes.length, SECTION_ALIGNMENT);
  }
  return { imageBase, sections, order, relocRva: rva, endRva: rva };
}

/** The RVA of `offset` bytes into object section `section`. */
export function rvaOf(layout: PeLayout, section: number, offset: number): number {
  const p = layout.sections[section];
  if (!p) throw new Error(`no section ${section} in the layout (it has ${layout.sections.length})`);
  if (!Number.isInteger(offset) || offset < 0 || offset > p.size)
    throw new Error(`offset ${offset} is outside section ${section} (${p.name}, ${p.size} bytes)`);
  return p.rva + offset;
}

/** The RVA of a symbol the object defines (for example the entry point). */
export function symbolRva(obj: ObjectFile, layout: PeLayout, name: string): number {
  const sym = obj.symbols.find((s) => s.name === name);
  if (!sym) throw new Error(`symbol "${name}" is not defined in the object file`);
  return rvaOf(layout, sym.section, sym.offset);
}

export interface LinkedContents {
  /** Section contents after relocation, indexed like ObjectFile.sections (defaults to the object's bytes). */
  sections?: readonly Uint8Array[];
  /** Absolute 64-bit fixups that need a base relocation, as (section, offset) of the 8-byte field. */
  abs64: readonly { section: number; offset: number }[];
}

/** Assembles writePe's input from an object file, its layout and the linker's result. */
export function peInputFromObject(
  obj: ObjectFile,
  layout: PeLayout,
  linked: LinkedContents,
  entry: string,
): PeWriteInput {
  const sections: PeSectionInput[] = layout.order.map((i) => {
    const s = obj.sections[i]!;
    const bytes = linked.sections?.[i] ?? s.bytes;
    if (bytes.length !== s.bytes.length)
      throw new Error(`linked section ${i} (${s.name}) is ${bytes.length} bytes but the object's is ${s.bytes.length}`);
    return { name: s.name, kind: s.kind, rva: layout.sections[i]!.rva, bytes };
  });
  return {
    imageBase: layout.imageBase,
    sections,
    entryRva: symbolRva(obj, layout, entry),
    abs64Rvas: linked.abs64.map((r) => rvaOf(layout, r.section, r.offset)),
  };
}
