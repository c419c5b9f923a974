// ELF64 symbol file writer (x86-64, ET_EXEC): the image's sections at their link-time addresses with their bytes, and
// a .symtab/.strtab naming every symbol, so gdb (add-symbol-file), nm, objdump and readelf can read an image that
// only exists as a PE32+ file. The owner of ELF output in the toolchain (docs/architecture.md): it imports nothing of
// ours; image/ turns a linked object into its input. Format: System V gABI, ELF-64 Object File Format 1.5.
//
// Why an executable with contents rather than a relocatable or a NOBITS-only debug file: gdb and binutils then place
// every symbol at an absolute address (add-symbol-file -o shifts them all by the load offset, one number), nm and
// objdump classify symbols by their section's flags (T/R/D/B) as they would for a native program, and objdump -d can
// disassemble the monitor offline. The bytes cost the image's size again, a few hundred KiB.

export type ElfSectionKind = "text" | "rdata" | "data" | "bss";

export interface ElfSectionInput {
  name: string;
  kind: ElfSectionKind;
  /** Address of the section's first byte. */
  address: bigint;
  /** Contents (ignored for bss, which is SHT_NOBITS). */
  bytes: Uint8Array;
  /** Size in memory (for bss, the zero-fill size; otherwise bytes.length). */
  size: number;
  align: number;
}

export interface ElfSymbolInput {
  name: string;
  /** Index into the sections given. */
  section: number;
  /** Absolute address. */
  address: bigint;
  global: boolean;
}

export interface ElfSymbolFileInput {
  sections: readonly ElfSectionInput[];
  symbols: readonly ElfSymbolInput[];
  entry?: bigint;
}

const EHDR = 64;
const SHDR = 64;
const SYM = 24;
const SHT = { progbits: 1, symtab: 2, strtab: 3, nobits: 8 } as const;
const SHF = { write: 1, alloc: 2, exec: 4 } as const;
const STB = { local: 0, global: 1 } as const;
const STT = { object: 1, func: 2 } as const;
const EM_X86_64 = 62;
const ET_EXEC = 2;

class StringTable {
  private parts: Uint8Array[] = [new Uint8Array(1)];
  private length = 1;
  private seen = new Map<string, number>();
  add(s: string): number {
    const known = this.seen.get(s);
    if (known !== undefined) return known;
    const bytes = new TextEncoder().encode(`${s}\0`);
    const at = this.length;
    this.parts.push(bytes);
    this.length += bytes.length;
    this.seen.set(s, at);
    return at;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** The ELF file. Symbol sizes run to the next symbol of the same section (or its end): gdb's `info symbol` uses them. */
export function writeElfSymbolFile(input: ElfSymbolFileInput): Uint8Array {
  const { sections } = input;
  input.symbols.forEach((s) => {
    if (!sections[s.section]) throw new Error(`symbol ${s.name} names section ${s.section}, which does not exist`);
  });
  const shstr = new StringTable();
  const str = new StringTable();
  // Section indices: 0 null, 1..n the image's, then .symtab, .strtab, .shstrtab.
  const n = sections.length;
  const symtabIndex = n + 1;
  const strtabIndex = n + 2;
  const shstrtabIndex = n + 3;

  // Locals first: sh_info of .symtab is the index of the first global (gABI).
  const ordered = [...input.symbols].sort((a, b) => Number(a.global) - Number(b.global));
  const sizeOf = (s: ElfSymbolInput): bigint => {
    const sec = sections[s.section]!;
    let end = sec.address + BigInt(sec.size);
    for (const o of input.symbols) if (o.section === s.section && o.address > s.address && o.address < end) end = o.address;
    return end > s.address ? end - s.address : 0n;
  };
  const symtab = new Uint8Array(SYM * (ordered.length + 1));
  const sv = new DataView(symtab.buffer);
  ordered.forEach((s, i) => {
    const o = SYM * (i + 1);
    const type = sections[s.section]!.kind === "text" ? STT.func : STT.object;
    sv.setUint32(o, str.add(s.name), true);
    symtab[o + 4] = ((s.global ? STB.global : STB.local) << 4) | type;
    symtab[o + 5] = 0; // STV_DEFAULT
    sv.setUint16(o + 6, s.section + 1, true);
    sv.setBigUint64(o + 8, s.address, true);
    sv.setBigUint64(o + 16, sizeOf(s), true);
  });
  const firstGlobal = 1 + ordered.findIndex((s) => s.global);
  const strtab = str.bytes();

  // File layout: header, section contents (each at its alignment), .symtab, .strtab, .shstrtab, section headers.
  let off = EHDR;
  const placed = sections.map((s) => {
    const align = Math.max(1, s.align);
    if (s.kind === "bss") return { offset: alignUp(off, align), fileSize: 0 };
    off = alignUp(off, align);
    const at = { offset: off, fileSize: s.bytes.length };
    off += s.bytes.length;
    return at;
  });
  const names = sections.map((s) => shstr.add(s.name));
  const symtabName = shstr.add(".symtab");
  const strtabName = shstr.add(".strtab");
  const shstrtabName = shstr.add(".shstrtab");
  const shstrtab = shstr.bytes();
  const symtabOff = alignUp(off, 8);
  const strtabOff = symtabOff + symtab.length;
  const shstrtabOff = strtabOff + strtab.length;
  const shoff = alignUp(shstrtabOff + shstrtab.length, 8);
  const shnum = n + 4;
  const file = new Uint8Array(shoff + SHDR * shnum);
  const v = new DataView(file.buffer);

  file.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* ELFDATA2LSB */, 1 /* EV_CURRENT */, 0 /* ELFOSABI_NONE */]);
  v.setUint16(16, ET_EXEC, true);
  v.setUint16(18, EM_X86_64, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, input.entry ?? 0n, true);
  v.setBigUint64(32, 0n, true); // no program headers: a symbol file is never loaded
  v.setBigUint64(40, BigInt(shoff), true);
  v.setUint16(52, EHDR, true);
  v.setUint16(54, 0, true);
  v.setUint16(56, 0, true);
  v.setUint16(58, SHDR, true);
  v.setUint16(60, shnum, true);
  v.setUint16(62, shstrtabIndex, true);

  sections.forEach((s, i) => {
    if (s.kind !== "bss") file.set(s.bytes, placed[i]!.offset);
  });
  file.set(symtab, symtabOff);
  file.set(strtab, strtabOff);
  file.set(shstrtab, shstrtabOff);

  const header = (index: number, h: { name: number; type: number; flags: number; addr: bigint; offset: number; size: number; link: number; info: number; align: number; entsize: number }): void => {
    const o = shoff + SHDR * index;
    v.setUint32(o, h.name, true);
    v.setUint32(o + 4, h.type, true);
    v.setBigUint64(o + 8, BigInt(h.flags), true);
    v.setBigUint64(o + 16, h.addr, true);
    v.setBigUint64(o + 24, BigInt(h.offset), true);
    v.setBigUint64(o + 32, BigInt(h.size), true);
    v.setUint32(o + 40, h.link, true);
    v.setUint32(o + 44, h.info, true);
    v.setBigUint64(o + 48, BigInt(h.align), true);
    v.setBigUint64(o + 56, BigInt(h.entsize), true);
  };
  const flags = { text: SHF.alloc | SHF.exec, rdata: SHF.alloc, data: SHF.alloc | SHF.write, bss: SHF.alloc | SHF.write } as const;
  sections.forEach((s, i) => {
    header(i + 1, {
      name: names[i]!, type: s.kind === "bss" ? SHT.nobits : SHT.progbits, flags: flags[s.kind], addr: s.address, offset: placed[i]!.offset,
      size: s.kind === "bss" ? s.size : s.bytes.length, link: 0, info: 0, align: Math.max(1, s.align), entsize: 0,
    });
  });
  header(symtabIndex, { name: symtabName, type: SHT.symtab, flags: 0, addr: 0n, offset: symtabOff, size: symtab.length, link: strtabIndex, info: firstGlobal > 0 ? firstGlobal : ordered.length + 1, align: 8, entsize: SYM });
  header(strtabIndex, { name: strtabName, type: SHT.strtab, flags: 0, addr: 0n, offset: strtabOff, size: strtab.length, link: 0, info: 0, align: 1, entsize: 0 });
  header(shstrtabIndex, { name: shstrtabName, type: SHT.strtab, flags: 0, addr: 0n, offset: shstrtabOff, size: shstrtab.length, link: 0, info: 0, align: 1, entsize: 0 });
  return file;
}
