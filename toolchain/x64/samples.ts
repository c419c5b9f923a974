// Generated operand combinations for every form of the opcode table, rendered both as typed operands and as GNU
// `.intel_syntax noprefix` text: the input of the GNU as oracle tests (encoder.gas.test.ts) and the encoding benchmark.
// The memory samples cover the ModRM/SIB special cases: rsp/r12 bases (SIB), rbp/r13 bases without displacement
// (disp8 0), disp8/disp32 boundaries (−128/127/128/−129), every base and index register, scales, absolute and
// RIP-relative forms, and segment overrides.
import type { Operand } from "./encoder.ts";
import { type Form, FORMS, Imm, type Spec } from "./forms.ts";
import { type Label, Mem, type MemSize } from "./operands.ts";
import { CRS, DRS, fs, GPR16, GPR32, GPR64, GPR8, gs, HIGH8, SEGS, type Gpr } from "./registers.ts";

export interface Case {
  /** Our mnemonic (FORMS key). */
  mnemonic: string;
  ops: Operand[];
  /** The same instruction for GNU as. */
  text: string;
  form: Form;
}

const DISPS = [0, 1, -1, 127, -128, 128, -129, 0x12345678, -0x80000000, 0x7fffffff];

/** Memory operands of one size; `label` gives RIP-relative samples. */
export function memSamples(size: MemSize, label: Label | null): Mem[] {
  const out: Mem[] = [];
  const m = (base: Gpr | null, index: Gpr | null, scale: 1 | 2 | 4 | 8, disp: number) => new Mem(size, base, index, scale, disp, null, false, null);
  for (const base of GPR64) for (const d of DISPS) out.push(m(base, null, 1, d));
  GPR64.forEach((index, i) => {
    if (i === 4) return;
    const base = GPR64[(i * 5 + 3) % 16]!;
    for (const scale of [1, 2, 4, 8] as const) out.push(m(base, index, scale, DISPS[(i + scale) % DISPS.length]!));
    out.push(m(null, index, ([1, 2, 4, 8] as const)[i % 4]!, DISPS[i % DISPS.length]!));
  });
  for (const base of [GPR64[5]!, GPR64[13]!, GPR64[4]!, GPR64[12]!]) out.push(m(base, GPR64[1]!, 2, 0), m(base, GPR64[9]!, 8, 0));
  out.push(m(null, null, 1, 0x1000), m(null, null, 1, 0), m(null, null, 1, -8), m(null, null, 1, 0x7fffffff));
  out.push(new Mem(size, null, null, 1, 16, null, true, null));
  if (label) out.push(new Mem(size, null, null, 1, 0, label, true, null), new Mem(size, null, null, 1, -5, label, true, null));
  for (const seg of SEGS) out.push(new Mem(size, GPR64[(seg.num * 3) % 16]!, null, 1, 8, null, false, seg));
  return out;
}

function immSamples(kind: Imm, osize: number): (number | bigint)[] {
  switch (kind) {
    case Imm.IB: return [0, 1, 127, 128, 255, -1, -128];
    case Imm.UB: return [0, 1, 2, 31, 63, 127, 255];
    case Imm.IBS: return osize === 2 ? [0, 1, -1, 127, -128, 0xffff] : osize === 4 ? [0, 2, -1, 127, -128, 0xffffffff] : [0, 3, -1, 127, -128];
    case Imm.IW: return [0, 1, 128, -129, 32767, 65535, -32768];
    case Imm.UW: return [0, 8, 128, 65535];
    case Imm.IZ:
      return osize === 2 ? [128, -129, 32767, 65535, -32768] : osize === 4 ? [128, -129, 0x7fffffff, 0xffffffff, -0x80000000] : [128, -129, 0x7fffffff, -0x80000000];
    case Imm.IO: return [0x80000000, 0xffffffff, -0x80000001, 0x123456789abcdef0n, 0xffffffffffffffffn, 0x8000000000000000n];
    case Imm.ONE: return [1];
    default: return [];
  }
}

function gprs(size: number): Gpr[] {
  return size === 8 ? GPR64 : size === 4 ? GPR32 : size === 2 ? GPR16 : [...GPR8, ...HIGH8];
}

function samples(s: Spec, f: Form, label: Label | null): Operand[] {
  if (s.imm) return immSamples(s.imm, f.osize);
  const out: Operand[] = [];
  if (s.mask & 1) {
    const regs = gprs(s.size);
    out.push(...(s.num >= 0 ? regs.filter((r) => r.num === s.num && !r.noRex) : regs));
  }
  if (s.mask & 2) {
    if (s.moffs) out.push(...[0, 0x1000, 0x7fffffff, 0x80000000, 0x123456789a].map((d) => new Mem(s.size as MemSize, null, null, 1, d, null, false, null)));
    else {
      out.push(...memSamples(s.size as MemSize, label));
      // Implied-size forms (m16i, m80i ...) also take unsized memory, which GNU as accepts for them.
      if (s.implied) out.push(...memSamples(0, label).filter((_, i) => i % 3 === 0));
    }
  }
  if (s.mask & 8) out.push(...(s.num === 4 ? [fs] : s.num === 5 ? [gs] : SEGS));
  if (s.mask & 16) out.push(CRS[0]!, CRS[2]!, CRS[3]!, CRS[4]!, CRS[8]!);
  if (s.mask & 32) out.push(...DRS);
  return out;
}

/** The GNU as spelling of an operand. */
export function gasOperand(o: Operand): string {
  if (typeof o === "bigint") return o < 0n ? `-0x${(-o).toString(16)}` : `0x${o.toString(16)}`;
  if (typeof o === "number") return o < 0 ? `-0x${(-o).toString(16)}` : `0x${o.toString(16)}`;
  return String(o);
}

/** The GNU as spelling of an instruction of ours. */
export function gasLine(mnemonic: string, ops: readonly Operand[], form?: Form): string {
  let mn = mnemonic;
  let text = ops.map(gasOperand).join(", ");
  if (mnemonic === "jmpfar" || mnemonic === "callfar") {
    // GNU as spells m16:64 as `rex64 jmp fword ptr`.
    mn = `${form?.rexW ? "rex64 " : ""}${mnemonic.slice(0, -3)}`;
    text = text.replace(/^tbyte/, "fword");
  }
  return text ? `${mn} ${text}` : mn;
}

/**
 * Every form with up to `cap` operand combinations. Products larger than the cap are sampled so that every sample of
 * every operand position still appears (stride walk with co-prime steps).
 */
export function generateCases(cap: number, label: Label | null): Case[] {
  const cases: Case[] = [];
  for (const [mnemonic, forms] of FORMS) {
    for (const form of forms) {
      const lists = form.ops.map((s) => samples(s, form, label));
      const total = lists.reduce((n, l) => n * l.length, 1);
      const emit = (ops: Operand[]) => cases.push({ mnemonic, ops, text: gasLine(mnemonic, ops, form), form });
      if (total <= cap) {
        const idx = lists.map(() => 0);
        for (let k = 0; k < total; k++) {
          emit(lists.map((l, i) => l[idx[i]!]!));
          for (let i = idx.length - 1; i >= 0; i--) {
            if (++idx[i]! < lists[i]!.length) break;
            idx[i] = 0;
          }
        }
      } else {
        const steps = [1, 7, 13];
        const longest = Math.max(...lists.map((l) => l.length));
        const n = Math.max(cap, longest);
        for (let k = 0; k < n; k++) emit(lists.map((l, i) => l[(k * steps[i]! + i * 3) % l.length]!));
      }
    }
  }
  return cases;
}

/** Deterministic 32-bit generator (xorshift32) for the generated oracle inputs, so a failure reproduces. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
