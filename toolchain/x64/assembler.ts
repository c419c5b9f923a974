// The typed x86-64 Assembler: one method per mnemonic over typed operands, labels with forward references and
// automatic short/near branch selection, alignment, data directives, sections and symbols. `finish()` lays out each
// section (iterating branch sizes until they settle), resolves what it can and returns an ObjectFile (object.ts) whose
// relocations link.ts applies once section addresses are known. Instruction bytes come from encoder.ts only.
import {
  assemble as assembleImport, describe, encodeBranch, encodeCallRel32, EncodeError, LOCK, type Operand, pending as pendingImport, REP, REPNE,
  Sink, writeI32, writeNops,
} from "./encoder.ts";
import { type Condition, CONDITIONS, type Form, FORMS, LOCKABLE, REPEATABLE } from "./forms.ts";
import type { ObjectFile, Relocation, SectionKind, SymbolDef } from "./object.ts";
import { type Imm, Label, type Mem, SymRef } from "./operands.ts";
import type { CtrlReg, DbgReg, Gpr, SegReg } from "./registers.ts";

/** Operand tag of memory operands (registers.ts K.Mem), local so the hot path avoids a cross-module lookup. */
const KMEM = 2;
/** Operand tag of labels (registers.ts K.Label). */
const KLABEL = 64;
// Module-local references for the per-instruction path (imported bindings may be getters after transpilation).
const assemble = assembleImport;
const pending = pendingImport;

export type Reg = Gpr;
export type RM = Gpr | Mem;
export type Src = Gpr | Mem | Imm;

/**
 * The relaxable items of a section, as parallel arrays (a 1M-instruction program has ~100k of them, so no object per
 * item): branches to a label (2 or 5/6 bytes) and alignment gaps. Items occupy no bytes in the raw buffer.
 */
class Items {
  count = 0;
  pos = new Int32Array(64);
  /** 0: jmp, 1: jcc, 2: align. */
  kind = new Uint8Array(64);
  cc = new Uint8Array(64);
  size = new Int32Array(64);
  /** Branch: the near form is chosen (other section, unbound, or out of short range). */
  near = new Uint8Array(64);
  align = new Int32Array(64);
  /** Align fill byte, or -1 for NOPs. */
  fill = new Int16Array(64);
  label: (Label | null)[] = [];

  push(pos: number, kind: 0 | 1 | 2, cc: number, label: Label | null, size: number, align: number, fill: number): void {
    const i = this.count;
    if (i === this.pos.length) this.grow();
    this.pos[i] = pos;
    this.kind[i] = kind;
    this.cc[i] = cc;
    this.size[i] = size;
    this.near[i] = 0;
    this.align[i] = align;
    this.fill[i] = fill;
    this.label.push(label);
    this.count = i + 1;
  }

  private grow(): void {
    const n = this.pos.length * 2;
    const g = <T extends Int32Array | Uint8Array | Int16Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.pos = g(this.pos, (k) => new Int32Array(k));
    this.kind = g(this.kind, (k) => new Uint8Array(k));
    this.cc = g(this.cc, (k) => new Uint8Array(k));
    this.size = g(this.size, (k) => new Int32Array(k));
    this.near = g(this.near, (k) => new Uint8Array(k));
    this.align = g(this.align, (k) => new Int32Array(k));
    this.fill = g(this.fill, (k) => new Int16Array(k));
  }
}

interface Fixup {
  pos: number;
  item: number;
  kind: "rel32" | "abs32" | "abs64";
  label: Label;
  addend: number;
  tail: number;
}

class SectionState {
  readonly sink = new Sink();
  readonly items = new Items();
  readonly fixups: Fixup[] = [];
  /** Prefix sums of item sizes after layout: final offset = raw pos + shift[items before]. */
  shift: Int32Array = new Int32Array(1);
  /**
   * After layout, per branch item: its target's section, raw position and item index, copied from the Label once so
   * that finish() reads arrays instead of one scattered Label object per branch.
   */
  targetSection: Int32Array = new Int32Array(0);
  targetPos: Int32Array = new Int32Array(0);
  targetItem: Int32Array = new Int32Array(0);
  bssSize = 0;
  constructor(
    readonly name: string,
    readonly kind: SectionKind,
    public align: number,
  ) {}
}

/** Where the assembler was at some moment; `Assembler.offsetOf(mark)` turns it into a final offset after finish(). */
export interface Mark {
  section: number;
  pos: number;
  item: number;
}

const KIND_BY_NAME: Record<string, SectionKind> = { ".text": "text", ".data": "data", ".rdata": "rdata", ".bss": "bss" };

// The typed per-mnemonic methods are declared in the merged interface Assembler at the end of this file.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Assembler {
  private readonly sections: SectionState[] = [];
  private cur!: SectionState;
  private curIndex = 0;
  private readonly labels = new Map<string, Label>();
  /** Named labels in creation (id) order; anonymous ones become symbols only when referenced across sections. */
  private readonly namedLabels: Label[] = [];
  private nextId = 0;
  private prefixes = 0;
  private finished = false;

  constructor() {
    this.section(".text");
  }

  // ---- sections, labels, symbols -------------------------------------------------------------------------------

  /** Switches to (creating if needed) a section. The kind defaults from the name (.text*, .bss*, .rdata; else data). */
  section(name: string, kind?: SectionKind, align = 16): this {
    if (name.length === 0 || name.length > 8) throw new Error(`section name '${name}' must be 1 to 8 bytes (a PE limit)`);
    let i = this.sections.findIndex((s) => s.name === name);
    if (i < 0) {
      const k = kind ?? KIND_BY_NAME[name] ?? (name.startsWith(".text") ? "text" : name.startsWith(".bss") ? "bss" : "data");
      this.sections.push(new SectionState(name, k, align));
      i = this.sections.length - 1;
    } else if (kind && this.sections[i]!.kind !== kind) {
      throw new Error(`section ${name} was created as ${this.sections[i]!.kind}, not ${kind}`);
    }
    this.curIndex = i;
    this.cur = this.sections[i]!;
    return this;
  }

  /** A new label, unbound. Named labels are symbols in the object file (and must be unique). */
  label(name?: string): Label {
    if (name !== undefined) {
      if (this.labels.has(name)) throw new Error(`label '${name}' is already defined`);
    }
    const l = new Label(name ?? null, this.nextId++);
    if (name !== undefined) this.labels.set(name, l);
    if (name !== undefined) this.namedLabels.push(l);
    return l;
  }

  /** The label called `name`, created unbound if it does not exist yet (forward references, external symbols). */
  symbol(name: string): Label {
    return this.labels.get(name) ?? this.label(name);
  }

  /** Binds a label to the current position. */
  bind(l: Label): this {
    if (l.bound) throw new Error(`label '${l}' is bound twice`);
    l.section = this.curIndex;
    l.pos = this.cur.sink.pos + this.cur.bssSize;
    l.item = this.cur.items.count;
    return this;
  }

  /** Creates a label and binds it here. */
  here(name?: string): Label {
    const l = this.label(name);
    this.bind(l);
    return l;
  }

  /** Marks a label as a global symbol. */
  global(l: Label): this {
    if (!l.name) throw new Error("only named labels can be global");
    l.global = true;
    return this;
  }

  mark(): Mark {
    return { section: this.curIndex, pos: this.cur.sink.pos + this.cur.bssSize, item: this.cur.items.count };
  }

  /** Final offset of a mark within its section; valid after finish(). */
  offsetOf(m: Mark): number {
    return m.pos + this.sections[m.section]!.shift[m.item]!;
  }

  /** Final offset of a bound label within its section; valid after finish(). */
  labelOffset(l: Label): number {
    if (!l.bound) throw new Error(`label '${l}' is not bound`);
    return l.pos + this.sections[l.section]!.shift[l.item]!;
  }

  // ---- prefixes -------------------------------------------------------------------------------------------------

  /** The next instruction gets a lock prefix (checked: lockable instruction with a memory destination). */
  lock(): this {
    this.prefixes |= LOCK;
    return this;
  }
  /** The next (string) instruction gets rep (F3). */
  rep(): this {
    this.prefixes |= REP;
    return this;
  }
  repe(): this {
    return this.rep();
  }
  repz(): this {
    return this.rep();
  }
  /** The next (string) instruction gets repne (F2). */
  repne(): this {
    this.prefixes |= REPNE;
    return this;
  }
  repnz(): this {
    return this.repne();
  }

  // ---- the generic entry ------------------------------------------------------------------------------------------

  /** Assembles one instruction by mnemonic (what the text front end calls); the typed methods below route here. */
  emit(mnemonic: string, ...ops: Operand[]): this {
    const t = ops[0];
    if (ops.length === 1 && t instanceof Label) {
      // Branches to labels are not table forms: route them to the relaxing methods.
      if (mnemonic === "jmp") return this.jmp(t);
      if (mnemonic === "call") return this.call(t);
      const cc = mnemonic.startsWith("j") ? mnemonic.slice(1) : "";
      if (CONDITIONS.has(cc)) return this.jcc(cc as Condition, t);
    }
    return this.ins(FORMS.get(mnemonic), mnemonic, ops);
  }

  /** Like emit, with the operands as an array (which is not kept). */
  emitOps(mnemonic: string, ops: Operand[]): this {
    return this.ins(FORMS.get(mnemonic), mnemonic, ops);
  }

  /** The typed methods pass a reused operand array (no allocation per instruction); ins must not keep it. */
  private ins(forms: readonly Form[] | undefined, mnemonic: string, ops: Operand[]): this {
    const sec = this.cur;
    if (sec.kind === "bss" || this.finished) {
      throw new Error(`${describe(mnemonic, ops)}: ${this.finished ? "the assembler is finished" : `instructions cannot go in bss section ${sec.name}`}`);
    }
    const pfx = this.prefixes;
    if (pfx) {
      this.prefixes = 0;
      const first = ops[0];
      if (pfx & LOCK && !(LOCKABLE.has(mnemonic) && typeof first === "object" && first.k === KMEM)) {
        throw new EncodeError(`lock ${describe(mnemonic, ops)}: lock needs one of ${[...LOCKABLE].join("/")} with a memory destination`);
      }
      if (pfx & (REP | REPNE) && !REPEATABLE.has(mnemonic)) {
        throw new EncodeError(`rep ${describe(mnemonic, ops)}: rep/repne only precede string instructions (movs/stos/lods/scas/cmps)`);
      }
    }
    const s = sec.sink;
    assemble(s, forms, mnemonic, ops, pfx);
    if (pending.ripAt >= 0) {
      sec.fixups.push({ pos: pending.ripAt, item: sec.items.count, kind: "rel32", label: pending.ripLabel!, addend: pending.ripAddend, tail: pending.ripTail });
    }
    if (pending.symAt >= 0) {
      const r = pending.symRef!;
      sec.fixups.push({ pos: pending.symAt, item: sec.items.count, kind: pending.symSize === 8 ? "abs64" : "abs32", label: r.label, addend: r.addend, tail: 0 });
    }
    return this;
  }

  private branch(kind: 0 | 1, cc: number, target: Label, what: string): this {
    if (this.prefixes) throw new EncodeError(`${what} ${target}: prefixes cannot precede a branch`);
    // A tag check, not instanceof: this runs for every branch.
    if ((target as { k?: number } | null)?.k !== KLABEL) throw new EncodeError(`${what} ${String(target)}: a conditional jump takes a label (jmp also takes a register or memory)`);
    if (this.cur.kind === "bss") throw new Error(`${what}: instructions cannot go in bss section ${this.cur.name}`);
    this.cur.items.push(this.cur.sink.pos, kind, cc, target, 2, 0, 0);
    return this;
  }

  // ---- control flow -------------------------------------------------------------------------------------------------

  /** jmp label (short or near, chosen at finish), jmp reg64, jmp qword ptr [..]. */
  jmp(target: Label | Gpr | Mem): this {
    return target instanceof Label ? this.branch(0, 0, target, "jmp") : this.emit("jmp", target);
  }
  /** jcc by condition name: jcc("ne", loop). */
  jcc(cc: Condition, target: Label): this {
    const n = CONDITIONS.get(cc);
    if (n === undefined) throw new EncodeError(`j${cc}: unknown condition '${cc}'`);
    return this.branch(1, n, target, `j${cc}`);
  }
  /** call label (rel32; a relocation if the label is in another section or external), call reg64, call qword ptr [..]. */
  call(target: Label | Gpr | Mem): this {
    if (!(target instanceof Label)) return this.emit("call", target);
    if (this.prefixes) throw new EncodeError(`call ${target}: prefixes cannot precede a branch`);
    const field = encodeCallRel32(this.cur.sink);
    this.cur.fixups.push({ pos: field, item: this.cur.items.count, kind: "rel32", label: target, addend: 0, tail: 0 });
    return this;
  }
  /** Far jump through a memory far pointer: fword (m16:32) or tbyte (m16:64, REX.W), for mode switches. */
  jmpFar(m: Mem): this {
    return this.emit("jmpfar", m);
  }
  callFar(m: Mem): this {
    return this.emit("callfar", m);
  }
  ret(imm16?: number): this {
    return imm16 === undefined ? this.emit("ret") : this.emit("ret", imm16);
  }
  setcc(cc: Condition, dst: RM): this {
    return this.emit(`set${cc}`, dst);
  }
  cmovcc(cc: Condition, dst: Gpr, src: RM): this {
    return this.emit(`cmov${cc}`, dst, src);
  }

  // ---- data ---------------------------------------------------------------------------------------------------------

  private data(bytes: ArrayLike<number>): this {
    if (this.cur.kind === "bss") throw new Error(`section ${this.cur.name} is bss: use zero() to reserve space`);
    const s = this.cur.sink;
    s.ensure(bytes.length);
    s.buf.set(bytes, s.pos);
    s.pos += bytes.length;
    return this;
  }

  private ints(width: number, values: readonly (Imm | SymRef)[], what: string): this {
    if (this.cur.kind === "bss") throw new Error(`section ${this.cur.name} is bss: use zero() to reserve space`);
    const s = this.cur.sink;
    s.ensure(values.length * width);
    for (const v of values) {
      if (v instanceof SymRef) {
        if (width < 4) throw new Error(`${what} ${v}: a symbol address needs dd (abs32) or dq (abs64)`);
        this.cur.fixups.push({ pos: s.pos, item: this.cur.items.count, kind: width === 8 ? "abs64" : "abs32", label: v.label, addend: v.addend, tail: 0 });
        s.buf.fill(0, s.pos, s.pos + width);
        s.pos += width;
        continue;
      }
      let u = BigInt(v);
      const bits = BigInt(width * 8);
      if (u < -(1n << (bits - 1n)) || u >= 1n << bits) throw new Error(`${what} ${v}: value does not fit in ${width} byte(s)`);
      u = BigInt.asUintN(width * 8, u);
      for (let i = 0; i < width; i++) {
        s.buf[s.pos++] = Number(u & 0xffn);
        u >>= 8n;
      }
    }
    return this;
  }

  /** Bytes: numbers (-128..255), strings (UTF-8) or byte arrays. */
  db(...values: (number | string | Uint8Array)[]): this {
    for (const v of values) {
      if (typeof v === "string") this.data(new TextEncoder().encode(v));
      else if (typeof v === "number") this.ints(1, [v], "db");
      else if (v instanceof Uint8Array) this.data(v);
      else throw new Error(`db ${String(v)}: only numbers, strings and byte arrays (a symbol address needs dd or dq)`);
    }
    return this;
  }
  dw(...values: Imm[]): this {
    return this.ints(2, values, "dw");
  }
  dd(...values: (Imm | SymRef)[]): this {
    return this.ints(4, values, "dd");
  }
  dq(...values: (Imm | SymRef)[]): this {
    return this.ints(8, values, "dq");
  }
  /** A string without terminator. */
  ascii(text: string): this {
    return this.data(new TextEncoder().encode(text));
  }
  /** A NUL-terminated string. */
  asciz(text: string): this {
    return this.data(new TextEncoder().encode(`${text}\0`));
  }
  /** n zero bytes (in bss: reserves n bytes). */
  zero(n: number): this {
    if (!Number.isInteger(n) || n < 0) throw new Error(`zero(${n}): the count must be a non-negative integer`);
    if (this.cur.kind === "bss") {
      this.cur.bssSize += n;
      return this;
    }
    return this.data(new Uint8Array(n));
  }
  /**
   * Pads to a multiple of `n` (a power of two). In text sections the padding is multi-byte NOPs unless `fill` is given.
   * The section's own alignment is raised to n so the padding stays meaningful after linking.
   */
  align(n: number, fill?: number): this {
    if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0) throw new Error(`align ${n}: not a power of two`);
    if (fill !== undefined && (!Number.isInteger(fill) || fill < 0 || fill > 255)) throw new Error(`align ${n}, ${fill}: the fill must be a byte`);
    if (n > this.cur.align) this.cur.align = n;
    if (this.cur.kind === "bss") {
      this.cur.bssSize = (this.cur.bssSize + n - 1) & -n;
      return this;
    }
    this.cur.items.push(this.cur.sink.pos, 2, 0, null, 0, n, fill ?? (this.cur.kind === "text" ? -1 : 0));
    return this;
  }
  /** n bytes of recommended multi-byte NOPs. */
  nops(n: number): this {
    if (!Number.isInteger(n) || n < 0) throw new Error(`nops(${n}): the count must be a non-negative integer`);
    const b = new Uint8Array(n);
    writeNops(b, 0, n);
    return this.data(b);
  }

  // ---- layout -------------------------------------------------------------------------------------------------------

  private layout(sec: SectionState, index: number): void {
    const it = sec.items;
    const n = it.count;
    const { pos, kind, size, near, align, label } = it;
    const shift = new Int32Array(n + 1);
    // The branches that may stay short (target in this section), with their target's raw position and item index
    // copied out of the Label objects once: each pass below reads only these arrays.
    const short = new Int32Array(n);
    const tpos = new Int32Array(n);
    const titem = new Int32Array(n);
    const tsecAll = (sec.targetSection = new Int32Array(n));
    const tposAll = (sec.targetPos = new Int32Array(n));
    const titemAll = (sec.targetItem = new Int32Array(n));
    let nshort = 0;
    for (let i = 0; i < n; i++) {
      if (kind[i] === 2) continue;
      const l = label[i]!;
      tsecAll[i] = l.section;
      tposAll[i] = l.pos;
      titemAll[i] = l.item;
      if (l.section !== index) {
        near[i] = 1;
        size[i] = kind[i] === 0 ? 5 : 6;
      } else if (!near[i]) {
        short[nshort] = i;
        tpos[nshort] = l.pos;
        titem[nshort] = l.item;
        nshort++;
      }
    }
    // Least fixed point: lay out with the current sizes (alignment gaps exact for that layout), then grow every short
    // branch whose target is out of rel8 range; repeat until nothing grows. Branches never shrink, so this ends.
    for (let pass = 0; ; pass++) {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        shift[i] = acc;
        if (kind[i] === 2) {
          const at = pos[i]! + acc;
          const al = align[i]!;
          size[i] = (al - (at % al)) % al;
        }
        acc += size[i]!;
      }
      shift[n] = acc;
      let grew = false;
      let kept = 0;
      for (let k = 0; k < nshort; k++) {
        const i = short[k]!;
        const rel = tpos[k]! + shift[titem[k]!]! - (pos[i]! + shift[i]! + 2);
        if (rel < -128 || rel > 127) {
          near[i] = 1;
          size[i] = kind[i] === 0 ? 5 : 6;
          grew = true;
        } else {
          // Still short: keep it for the next pass (compacting in place).
          short[kept] = i;
          tpos[kept] = tpos[k]!;
          titem[kept] = titem[k]!;
          kept++;
        }
      }
      nshort = kept;
      if (!grew) break;
      if (pass > 100000) throw new Error(`section ${sec.name}: branch layout did not settle`);
    }
    sec.shift = shift;
  }

  /** Lays out all sections and returns the object file. The assembler cannot be used afterwards. */
  finish(): ObjectFile {
    if (this.finished) throw new Error("finish() was already called");
    if (this.prefixes) throw new Error("a lock/rep prefix is not followed by an instruction");
    this.finished = true;
    this.sections.forEach((s, i) => this.layout(s, i));
    const relocations: Relocation[] = [];
    const referenced = new Set<Label>();
    const nameOf = (l: Label): string => {
      if (!l.bound && !l.name) throw new Error(`label ${l} is used but never bound`);
      referenced.add(l);
      return String(l);
    };
    const sections = this.sections.map((sec, index) => {
      const raw = sec.sink.bytes();
      const total = sec.kind === "bss" ? sec.bssSize : raw.length + sec.shift[sec.items.count]!;
      const out = new Uint8Array(total);
      if (sec.kind !== "bss") {
        let from = 0;
        let at = 0;
        const it = sec.items;
        const { targetSection, targetPos, targetItem, shift } = sec;
        for (let i = 0; i < it.count; i++) {
          const p = it.pos[i]!;
          const size = it.size[i]!;
          // Runs between branches are short (a few instructions): a byte loop, not a subarray view per item.
          for (let j = from; j < p; j++) out[at++] = raw[j]!;
          from = p;
          if (it.kind[i] === 2) {
            const fill = it.fill[i]!;
            if (fill < 0) writeNops(out, at, size);
            else out.fill(fill, at, at + size);
          } else {
            const end = at + size;
            const local = targetSection[i] === index;
            // A local target's final offset, as labelOffset computes it, from the arrays layout() filled.
            encodeBranch(out, at, it.kind[i] === 0 ? -1 : it.cc[i]!, it.near[i] === 1, local ? targetPos[i]! + shift[targetItem[i]!]! - end : 0);
            if (!local) relocations.push({ section: index, offset: end - 4, kind: "rel32", target: nameOf(it.label[i]!), addend: 0 });
          }
          at += size;
        }
        out.set(raw.subarray(from), at);
      }
      // Indexed loops here: finish() runs once per assembly, often before V8 optimises it, and an unoptimised for-of
      // allocates an iterator result per element.
      const fixups = sec.fixups;
      for (let fi = 0; fi < fixups.length; fi++) {
        const f = fixups[fi]!;
        const pos = f.pos + sec.shift[f.item]!;
        if (f.kind === "rel32" && f.label.section === index) {
          const v = this.labelOffset(f.label) + f.addend - (pos + 4 + f.tail);
          writeI32(out, pos, v);
        } else {
          const r: Relocation = { section: index, offset: pos, kind: f.kind, target: nameOf(f.label), addend: f.addend };
          if (f.tail) r.tail = f.tail;
          relocations.push(r);
        }
      }
      return { name: sec.name, kind: sec.kind, align: sec.align, bytes: out };
    });
    // Symbols in label creation order: the named labels, merged by id with the anonymous ones a relocation names.
    const symbols: SymbolDef[] = [];
    const named = this.namedLabels;
    const anon = [...referenced].filter((l) => !l.name).sort((x, y) => x.id - y.id);
    for (let i = 0, j = 0; i < named.length || j < anon.length; ) {
      const l = j >= anon.length || (i < named.length && named[i]!.id < anon[j]!.id) ? named[i++]! : anon[j++]!;
      if (!l.bound) continue;
      symbols.push({ name: String(l), section: l.section, offset: this.labelOffset(l), global: l.global });
    }
    return { sections, symbols, relocations };
  }
}


// ---- one typed method per mnemonic -----------------------------------------------------------------------------------
// Declared here (types) and installed on the prototype below from the opcode table, so the list cannot drift from it.

type M0 = () => Assembler;
type M1<A> = (a: A) => Assembler;
type M2<A, B> = (a: A, b: B) => Assembler;
type M3<A, B, C> = (a: A, b: B, c: C) => Assembler;
type CC = Condition;

type SetccMethods = { [K in CC as `set${K}`]: M1<RM> };
type CmovMethods = { [K in CC as `cmov${K}`]: M2<Gpr, RM> };
type JccMethods = { [K in CC as `j${K}`]: M1<Label> };

export interface Instructions extends SetccMethods, CmovMethods, JccMethods {
  add: M2<RM, Src>; or: M2<RM, Src>; adc: M2<RM, Src>; sbb: M2<RM, Src>; and: M2<RM, Src>; sub: M2<RM, Src>; xor: M2<RM, Src>; cmp: M2<RM, Src>;
  /** mov in all its forms, including segment, control and debug registers and `mov r64, addr(label)` (abs64). */
  mov: M2<RM | SegReg | CtrlReg | DbgReg, Src | SegReg | CtrlReg | DbgReg | SymRef>;
  /** mov with a 64-bit immediate or a 64-bit absolute address (moffs) with al/ax/eax/rax. */
  movabs: M2<Gpr | Mem, Gpr | Mem | Imm | SymRef>;
  movzx: M2<Gpr, RM>; movsx: M2<Gpr, RM>; movsxd: M2<Gpr, RM>; lea: M2<Gpr, Mem>; test: M2<RM, Src>;
  inc: M1<RM>; dec: M1<RM>; not: M1<RM>; neg: M1<RM>; mul: M1<RM>; div: M1<RM>; idiv: M1<RM>;
  /** imul rm; imul r, rm; imul r, rm, imm; imul r, imm. */
  imul: ((a: RM) => Assembler) & ((a: Gpr, b: RM | Imm) => Assembler) & ((a: Gpr, b: RM, c: Imm) => Assembler);
  rol: M2<RM, Gpr | Imm>; ror: M2<RM, Gpr | Imm>; rcl: M2<RM, Gpr | Imm>; rcr: M2<RM, Gpr | Imm>;
  shl: M2<RM, Gpr | Imm>; sal: M2<RM, Gpr | Imm>; shr: M2<RM, Gpr | Imm>; sar: M2<RM, Gpr | Imm>;
  shld: M3<RM, Gpr, Gpr | Imm>; shrd: M3<RM, Gpr, Gpr | Imm>;
  cbw: M0; cwde: M0; cdqe: M0; cwd: M0; cdq: M0; cqo: M0;
  xchg: M2<RM, RM>; cmpxchg: M2<RM, Gpr>; xadd: M2<RM, Gpr>;
  bt: M2<RM, Gpr | Imm>; bts: M2<RM, Gpr | Imm>; btr: M2<RM, Gpr | Imm>; btc: M2<RM, Gpr | Imm>;
  bsf: M2<Gpr, RM>; bsr: M2<Gpr, RM>; lzcnt: M2<Gpr, RM>; tzcnt: M2<Gpr, RM>; popcnt: M2<Gpr, RM>; bswap: M1<Gpr>;
  lretq: M0; iretq: M0;
  push: M1<Gpr | Mem | Imm | SegReg>; pop: M1<Gpr | Mem | SegReg>;
  leave: M0; int3: M0; ud2: M0; int: M1<number>;
  /** nop, or the multi-byte `nop r/m` form. For n bytes of padding use nops(n). */
  nop: (a?: RM) => Assembler;
  movsb: M0; movsw: M0; movsd: M0; movsq: M0; stosb: M0; stosw: M0; stosd: M0; stosq: M0;
  lodsb: M0; lodsw: M0; lodsd: M0; lodsq: M0; scasb: M0; scasw: M0; scasd: M0; scasq: M0;
  cmpsb: M0; cmpsw: M0; cmpsd: M0; cmpsq: M0;
  cli: M0; sti: M0; hlt: M0; pause: M0; cpuid: M0; rdtsc: M0; rdtscp: M0; rdmsr: M0; wrmsr: M0;
  cld: M0; std: M0; clc: M0; stc: M0; cmc: M0; lahf: M0; sahf: M0; pushfq: M0; popfq: M0;
  /** in al/ax/eax, imm8|dx. */
  in: M2<Gpr, Gpr | number>;
  /** out imm8|dx, al/ax/eax. */
  out: M2<Gpr | number, Gpr>;
  /** Memory operands of implied size: `ptr(...)` works (and is what GNU as writes), see forms.ts. */
  lgdt: M1<Mem>; lidt: M1<Mem>; sgdt: M1<Mem>; sidt: M1<Mem>; ltr: M1<RM>; lldt: M1<RM>; str: M1<RM>; sldt: M1<RM>;
  smsw: M1<RM>; lmsw: M1<RM>; verr: M1<RM>; verw: M1<RM>;
  syscall: M0; sysretq: M0; swapgs: M0; invlpg: M1<Mem>; wbinvd: M0; clflush: M1<Mem>; clflushopt: M1<Mem>; clwb: M1<Mem>;
  prefetchnta: M1<Mem>; prefetcht0: M1<Mem>; prefetcht1: M1<Mem>; prefetcht2: M1<Mem>; prefetchw: M1<Mem>; prefetchwt1: M1<Mem>;
  mfence: M0; lfence: M0; sfence: M0; ldmxcsr: M1<Mem>; stmxcsr: M1<Mem>;
  fxsave: M1<Mem>; fxrstor: M1<Mem>; fxsave64: M1<Mem>; fxrstor64: M1<Mem>;
  xsave: M1<Mem>; xrstor: M1<Mem>; xsave64: M1<Mem>; xrstor64: M1<Mem>; xsaveopt: M1<Mem>; xsaveopt64: M1<Mem>;
  xsavec: M1<Mem>; xsavec64: M1<Mem>; xsaves: M1<Mem>; xsaves64: M1<Mem>; xrstors: M1<Mem>; xrstors64: M1<Mem>; xgetbv: M0; xsetbv: M0;
  vmcall: M0; vmmcall: M0;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface Assembler extends Instructions {}

const OWN = new Set(["jmp", "call", "ret", "jmpfar", "callfar"]);
// Reused operand arrays by arity: the typed methods allocate nothing per instruction (encode() does not keep them).
const SCRATCH: Operand[][] = [[], [0], [0, 0], [0, 0, 0]];
type Ins = (forms: readonly Form[] | undefined, mnemonic: string, ops: Operand[]) => Assembler;
for (const [mnemonic, forms] of FORMS) {
  if (OWN.has(mnemonic)) continue;
  Object.defineProperty(Assembler.prototype, mnemonic, {
    value: function (this: Assembler, a?: Operand, b?: Operand, c?: Operand, d?: Operand) {
      // Arity from the defined arguments (no `arguments` object): operands are never undefined.
      if (d !== undefined) throw new EncodeError(`${mnemonic}: at most 3 operands`);
      const n = c !== undefined ? 3 : b !== undefined ? 2 : a !== undefined ? 1 : 0;
      const ops = SCRATCH[n]!;
      if (n > 0) ops[0] = a!;
      if (n > 1) ops[1] = b!;
      if (n > 2) ops[2] = c!;
      return (this as unknown as { ins: Ins }).ins(forms, mnemonic, ops);
    },
    writable: true,
    configurable: true,
  });
}
type Branch = (kind: 0 | 1, cc: number, target: Label, what: string) => Assembler;
for (const [cc, n] of CONDITIONS) {
  const what = `j${cc}`;
  Object.defineProperty(Assembler.prototype, what, {
    // The condition number is resolved here, once, not by a map lookup per branch.
    value: function (this: Assembler, target: Label) {
      return (this as unknown as { branch: Branch }).branch(1, n, target, what);
    },
    writable: true,
    configurable: true,
  });
}
