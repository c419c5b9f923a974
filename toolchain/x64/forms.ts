// The opcode table of the typed x86-64 assembler: for each mnemonic, its encodable forms in a compact notation parsed
// once at load time into `Form` records that encoder.ts matches operands against. Order matters: the first matching
// form wins, and the order is chosen so that the choice equals GNU as (shortest encoding; the r/m,reg "store" form for
// register-to-register; sign-extended imm8 before imm16/32).
//
// Notation, "ENCODING : OPERANDS":
//   ENCODING  hex opcode bytes; W = REX.W; o16 = 0x66 operand-size prefix; pF3/pF2 = mandatory prefix;
//             +r = register number added to the last opcode byte; /r = ModRM with a register; /0../7 = ModRM
//             with an opcode extension; /rr = ModRM whose reg and r/m are both operand 0 (imul r, imm); ns = the
//             32-bit variant needs two different registers.
//   OPERANDS  r8 r16 r32 r64 | rm8..rm64 | m (any memory, sized or not) mu (unsized memory only) m8..m64 m48 (fword)
//             m80 (tbyte), with an `i` suffix (m16i, rm16i, m32i, m80i) also unsized memory: the instruction implies
//             the size (GNU as accepts `lgdt [rax]`, `ltr [rax]`) | al ax eax rax | cl dx
//             | sreg fs gs cr dr | mo (moffs) | ib (imm8) ibs (sign-extended imm8) ub (unsigned imm8) iw uw iz (imm16
//             or imm32 by operand size, sign-extended to 64) io (imm64) one (the constant 1).
//   A `v` suffix (rv, rmv, mv, av, mov) expands the form into 16/32/64-bit variants (o16 / none / W); `y` into 32/64;
//   `x` into 16/64 with 64 as the default size (push/pop); `z` into 16/32.

import { C_CREG, C_DREG, C_GPR, C_IMM, C_MEM, C_MEM_ANY, C_SREG, C_SYM } from "./registers.ts";

export const enum Imm {
  None = 0,
  IB = 1,
  IBS = 2,
  UB = 3,
  IW = 4,
  UW = 5,
  IZ = 6,
  IO = 7,
  ONE = 8,
}

/** Operand class bits, the same values as K in registers.ts. */
export const GPR = 1, MEM = 2, IMM = 4, SREG = 8, CREG = 16, DREG = 32;

export interface Spec {
  mask: number;
  /** Operand width in bytes, 0 for any (m, sreg, cr, dr, immediates). */
  size: number;
  /** Memory: an unsized operand is accepted too, the instruction implying the size (m16i, m80i ...). */
  implied?: boolean;
  /** Memory (size 0): only an unsized operand (fxsave/xsave: GNU as refuses any `ptr` size there). */
  unsizedOnly?: boolean;
  /** A fixed register number (al = 0, cl = 1, dx = 2, fs = 4, gs = 5) or -1. */
  num: number;
  imm: Imm;
  /** moffs: a memory operand with neither base nor index, encoded as a 64-bit address. */
  moffs: boolean;
}

export interface Form {
  mnemonic: string;
  ops: Spec[];
  /** Operand size used for immediate ranges and widths. */
  osize: number;
  o16: boolean;
  rexW: boolean;
  /** Mandatory prefix byte (0xF3, 0xF2) or 0. */
  mand: number;
  opcode: number[];
  /** Operand index whose register is added to the last opcode byte, or -1. */
  plusR: number;
  /** -1: no ModRM; 0..7: /digit; 8: /r; 9: /rr. */
  modrm: number;
  regOp: number;
  rmOp: number;
  immOp: number;
  /** Operand index of a moffs memory operand (its 64-bit address follows the opcode), or -1. */
  moffsOp: number;
  /** The two operands must not be the same 32-bit register (xchg eax, eax is not the one-byte nop 90). */
  distinct: boolean;
  /** Per operand, the operand classes (registers.ts C_*) it can possibly accept: a cheap filter before matchOp. */
  acc: number[];
  /** The table line the form came from (for messages and coverage reports). */
  text: string;
  /** Index of the mnemonic's list in FORMS (the encoder's form cache keys on it), −1 outside FORMS. */
  listId: number;
}

const CC = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"] as const;
/** Condition codes by name, including the synonyms GNU as accepts. */
export const CONDITIONS: ReadonlyMap<string, number> = new Map([
  ...CC.map((c, i) => [c, i] as const),
  ["c", 2], ["nae", 2], ["nb", 3], ["nc", 3], ["z", 4], ["nz", 5], ["na", 6], ["nbe", 7],
  ["pe", 10], ["po", 11], ["nge", 12], ["nl", 13], ["ng", 14], ["nle", 15],
]);
export type Condition = "o" | "no" | "b" | "c" | "nae" | "ae" | "nb" | "nc" | "e" | "z" | "ne" | "nz" | "be" | "na" | "a"
  | "nbe" | "s" | "ns" | "p" | "pe" | "np" | "po" | "l" | "nge" | "ge" | "nl" | "le" | "ng" | "g" | "nle";

const h = (n: number) => n.toString(16).padStart(2, "0");

function alu(base: number, ext: number): string[] {
  return [
    `${h(base)} /r : rm8, r8`, `${h(base + 1)} /r : rmv, rv`, `${h(base + 2)} /r : r8, rm8`, `${h(base + 3)} /r : rv, rmv`,
    `${h(base + 4)} : al, ib`, `83 /${ext} : rmv, ibs`, `${h(base + 5)} : av, iz`, `80 /${ext} : rm8, ib`, `81 /${ext} : rmv, iz`,
  ];
}
const unary = (op8: string, op: string, ext: number) => [`${op8} /${ext} : rm8`, `${op} /${ext} : rmv`];
const shift = (ext: number) => [
  `d0 /${ext} : rm8, one`, `d1 /${ext} : rmv, one`, `d2 /${ext} : rm8, cl`, `d3 /${ext} : rmv, cl`,
  `c0 /${ext} : rm8, ub`, `c1 /${ext} : rmv, ub`,
];
const bt = (rr: string, ext: number) => [`0f ${rr} /r : rmv, rv`, `0f ba /${ext} : rmv, ub`];
const bare = (enc: string) => [`${enc} :`];

const SOURCE: Record<string, string[]> = {
  add: alu(0x00, 0), or: alu(0x08, 1), adc: alu(0x10, 2), sbb: alu(0x18, 3),
  and: alu(0x20, 4), sub: alu(0x28, 5), xor: alu(0x30, 6), cmp: alu(0x38, 7),
  mov: [
    "88 /r : rm8, r8", "89 /r : rmv, rv", "8a /r : r8, rm8", "8b /r : rv, rmv",
    "8c /r : m16, sreg", "o16 8c /r : r16, sreg", "8c /r : r32, sreg", "8c /r : r64, sreg",
    "8e /r : sreg, m16", "8e /r : sreg, r16", "8e /r : sreg, r32", "8e /r : sreg, r64",
    "b0 +r : r8, ib", "b8 +r : rz, iz", "c6 /0 : rm8, ib", "c7 /0 : rmv, iz", "W b8 +r : r64, io",
    "0f 20 /r : r64, cr", "0f 22 /r : cr, r64", "0f 21 /r : r64, dr", "0f 23 /r : dr, r64",
  ],
  movabs: ["a0 : al, mo8", "a1 : av, mov", "a2 : mo8, al", "a3 : mov, av", "W b8 +r : r64, io"],
  movzx: ["0f b6 /r : rv, rm8", "0f b7 /r : ry, rm16"],
  movsx: ["0f be /r : rv, rm8", "0f bf /r : ry, rm16"],
  movsxd: ["W 63 /r : r64, rm32"],
  lea: ["8d /r : rv, m"],
  test: ["a8 : al, ib", "a9 : av, iz", "f6 /0 : rm8, ib", "f7 /0 : rmv, iz", "84 /r : rm8, r8", "85 /r : rmv, rv", "84 /r : r8, m8", "85 /r : rv, mv"],
  inc: unary("fe", "ff", 0), dec: unary("fe", "ff", 1), not: unary("f6", "f7", 2), neg: unary("f6", "f7", 3),
  mul: unary("f6", "f7", 4), div: unary("f6", "f7", 6), idiv: unary("f6", "f7", 7),
  imul: [...unary("f6", "f7", 5), "0f af /r : rv, rmv", "6b /r : rv, rmv, ibs", "69 /r : rv, rmv, iz", "6b /rr : rv, ibs", "69 /rr : rv, iz"],
  rol: shift(0), ror: shift(1), rcl: shift(2), rcr: shift(3), shl: shift(4), sal: shift(4), shr: shift(5), sar: shift(7),
  shld: ["0f a4 /r : rmv, rv, ub", "0f a5 /r : rmv, rv, cl"],
  shrd: ["0f ac /r : rmv, rv, ub", "0f ad /r : rmv, rv, cl"],
  cbw: bare("o16 98"), cwde: bare("98"), cdqe: bare("W 98"), cwd: bare("o16 99"), cdq: bare("99"), cqo: bare("W 99"),
  xchg: ["90 : rax, rax", "ns 90 +r : av, rv", "ns 90 +r : rv, av", "86 /r : rm8, r8", "86 /r : r8, rm8", "87 /r : rmv, rv", "87 /r : rv, rmv"],
  cmpxchg: ["0f b0 /r : rm8, r8", "0f b1 /r : rmv, rv"],
  xadd: ["0f c0 /r : rm8, r8", "0f c1 /r : rmv, rv"],
  bt: bt("a3", 4), bts: bt("ab", 5), btr: bt("b3", 6), btc: bt("bb", 7),
  bsf: ["0f bc /r : rv, rmv"], bsr: ["0f bd /r : rv, rmv"],
  lzcnt: ["pF3 0f bd /r : rv, rmv"], tzcnt: ["pF3 0f bc /r : rv, rmv"], popcnt: ["pF3 0f b8 /r : rv, rmv"],
  bswap: ["0f c8 +r : ry"],
  jmp: ["ff /4 : rm64"], call: ["ff /2 : rm64"],
  jmpfar: ["ff /5 : m48", "W ff /5 : m80"], callfar: ["ff /3 : m48", "W ff /3 : m80"],
  ret: ["c3 :", "c2 : uw"], lretq: bare("W cb"), iretq: bare("W cf"),
  push: ["50 +r : rx", "ff /6 : mx", "6a : ibs", "68 : iz", "0f a0 : fs", "0f a8 : gs"],
  pop: ["58 +r : rx", "8f /0 : mx", "0f a1 : fs", "0f a9 : gs"],
  leave: bare("c9"), nop: ["90 :", "0f 1f /0 : rmv"], int3: bare("cc"), ud2: bare("0f 0b"), int: ["cd : ub"],
  movsb: bare("a4"), movsw: bare("o16 a5"), movsd: bare("a5"), movsq: bare("W a5"),
  stosb: bare("aa"), stosw: bare("o16 ab"), stosd: bare("ab"), stosq: bare("W ab"),
  lodsb: bare("ac"), lodsw: bare("o16 ad"), lodsd: bare("ad"), lodsq: bare("W ad"),
  scasb: bare("ae"), scasw: bare("o16 af"), scasd: bare("af"), scasq: bare("W af"),
  cmpsb: bare("a6"), cmpsw: bare("o16 a7"), cmpsd: bare("a7"), cmpsq: bare("W a7"),
  cli: bare("fa"), sti: bare("fb"), hlt: bare("f4"), pause: bare("pF3 90"), cpuid: bare("0f a2"),
  // Flags: the direction flag (cld/std), the carry flag, AH ↔ flags, and the flags on the stack (64-bit in long mode).
  cld: bare("fc"), std: bare("fd"), clc: bare("f8"), stc: bare("f9"), cmc: bare("f5"), lahf: bare("9f"), sahf: bare("9e"),
  pushfq: bare("9c"), popfq: bare("9d"),
  rdtsc: bare("0f 31"), rdtscp: bare("0f 01 f9"), rdmsr: bare("0f 32"), wrmsr: bare("0f 30"),
  in: ["e4 : al, ub", "e5 : az, ub", "ec : al, dx", "ed : az, dx"],
  out: ["e6 : ub, al", "e7 : ub, az", "ee : dx, al", "ef : dx, az"],
  // Memory operands whose size the instruction implies (GNU as is the oracle, implied-size.gas.test.ts): the
  // descriptor-table pointer (m16:64, tbyte or unsized), the word selector / machine status word (word or unsized;
  // sldt/str/smsw also store to any 16/32/64-bit register), MXCSR (dword or unsized), the FXSAVE/XSAVE areas (unsized
  // only: as refuses every `ptr` size there), and the cache-line / page addresses (any size: as ignores it).
  lgdt: ["0f 01 /2 : m80i"], lidt: ["0f 01 /3 : m80i"], sgdt: ["0f 01 /0 : m80i"], sidt: ["0f 01 /1 : m80i"],
  ltr: ["0f 00 /3 : rm16i"], lldt: ["0f 00 /2 : rm16i"], str: ["0f 00 /1 : m16i", "o16 0f 00 /1 : r16", "0f 00 /1 : r32", "0f 00 /1 : r64"],
  sldt: ["0f 00 /0 : m16i", "o16 0f 00 /0 : r16", "0f 00 /0 : r32", "0f 00 /0 : r64"],
  smsw: ["0f 01 /4 : m16i", "o16 0f 01 /4 : r16", "0f 01 /4 : r32", "W 0f 01 /4 : r64"],
  lmsw: ["0f 01 /6 : rm16i"], verr: ["0f 00 /4 : rm16i"], verw: ["0f 00 /5 : rm16i"],
  syscall: bare("0f 05"), sysretq: bare("W 0f 07"), swapgs: bare("0f 01 f8"), invlpg: ["0f 01 /7 : m"],
  wbinvd: bare("0f 09"), clflush: ["0f ae /7 : m"], clflushopt: ["o16 0f ae /7 : m"], clwb: ["o16 0f ae /6 : m"],
  prefetchnta: ["0f 18 /0 : m"], prefetcht0: ["0f 18 /1 : m"], prefetcht1: ["0f 18 /2 : m"], prefetcht2: ["0f 18 /3 : m"],
  prefetchw: ["0f 0d /1 : m"], prefetchwt1: ["0f 0d /2 : m"],
  mfence: bare("0f ae f0"), lfence: bare("0f ae e8"), sfence: bare("0f ae f8"),
  ldmxcsr: ["0f ae /2 : m32i"], stmxcsr: ["0f ae /3 : m32i"],
  fxsave: ["0f ae /0 : mu"], fxrstor: ["0f ae /1 : mu"], fxsave64: ["W 0f ae /0 : mu"], fxrstor64: ["W 0f ae /1 : mu"],
  xsave: ["0f ae /4 : mu"], xrstor: ["0f ae /5 : mu"], xsave64: ["W 0f ae /4 : mu"], xrstor64: ["W 0f ae /5 : mu"],
  xsaveopt: ["0f ae /6 : mu"], xsaveopt64: ["W 0f ae /6 : mu"], xsavec: ["0f c7 /4 : mu"], xsavec64: ["W 0f c7 /4 : mu"],
  xsaves: ["0f c7 /5 : mu"], xsaves64: ["W 0f c7 /5 : mu"], xrstors: ["0f c7 /3 : mu"], xrstors64: ["W 0f c7 /3 : mu"],
  // XCR0 (the monitor enables the extended-state components it saves on every switch; monitor-gen/cpu.ts).
  xgetbv: bare("0f 01 d0"), xsetbv: bare("0f 01 d1"),
  vmcall: bare("0f 01 c1"), vmmcall: bare("0f 01 d9"),
};
for (const [cc, n] of CONDITIONS) {
  SOURCE[`set${cc}`] = [`0f ${h(0x90 + n)} /0 : rm8`];
  SOURCE[`cmov${cc}`] = [`0f ${h(0x40 + n)} /r : rv, rmv`];
}

/** Instructions the lock prefix may precede (with a memory destination). */
export const LOCKABLE = new Set(["add", "adc", "and", "btc", "btr", "bts", "cmpxchg", "dec", "inc", "neg", "not", "or", "sbb", "sub", "xadd", "xchg", "xor"]);
/** Instructions the rep prefixes may precede. */
export const REPEATABLE = new Set(["movsb", "movsw", "movsd", "movsq", "stosb", "stosw", "stosd", "stosq", "lodsb", "lodsw", "lodsd", "lodsq", "scasb", "scasw", "scasd", "scasq", "cmpsb", "cmpsw", "cmpsd", "cmpsq"]);

const IMMS: Record<string, Imm> = { ib: Imm.IB, ibs: Imm.IBS, ub: Imm.UB, iw: Imm.IW, uw: Imm.UW, iz: Imm.IZ, io: Imm.IO, one: Imm.ONE };
const SIZES: Record<string, number> = { "8": 1, "16": 2, "32": 4, "64": 8, "48": 6, "80": 10 };

function spec(text: string, v: number): Spec {
  const s: Spec = { mask: 0, size: 0, num: -1, imm: Imm.None, moffs: false };
  const imm = IMMS[text];
  if (imm !== undefined) return { ...s, mask: IMM, imm };
  const fixed: Record<string, [number, number]> = { al: [1, 0], ax: [2, 0], eax: [4, 0], rax: [8, 0], cl: [1, 1], dx: [2, 2] };
  if (fixed[text]) return { ...s, mask: GPR, size: fixed[text][0], num: fixed[text][1] };
  if (text === "sreg") return { ...s, mask: SREG };
  if (text === "fs" || text === "gs") return { ...s, mask: SREG, num: text === "fs" ? 4 : 5 };
  if (text === "cr") return { ...s, mask: CREG };
  if (text === "dr") return { ...s, mask: DREG };
  if (text === "mu") return { ...s, mask: MEM, unsizedOnly: true };
  const m = /^(rm|r|mo|m|a)(8|16|32|48|64|80|v|y|x|z)?(i)?$/.exec(text);
  if (!m) throw new Error(`forms.ts: bad operand spec '${text}'`);
  const size = m[2] === undefined ? 0 : (SIZES[m[2]] ?? v);
  if (m[3] && (size === 0 || (m[1] !== "m" && m[1] !== "rm"))) throw new Error(`forms.ts: implied size needs a sized memory spec: '${text}'`);
  const implied = m[3] ? { implied: true } : {};
  switch (m[1]) {
    case "rm": return { ...s, mask: GPR | MEM, size, ...implied };
    case "r": return { ...s, mask: GPR, size };
    case "m": return { ...s, mask: MEM, size, ...implied };
    case "mo": return { ...s, mask: MEM, size, moffs: true };
    default: return { ...s, mask: GPR, size, num: 0 };
  }
}

function accepts(s: Spec): number {
  let m = 0;
  if (s.mask & GPR) m |= C_GPR[s.size] ?? 0;
  if (s.mask & MEM) m |= s.unsizedOnly ? C_MEM[0]! : s.size === 0 ? C_MEM_ANY : C_MEM[s.size]! | C_MEM[0]!;
  if (s.mask & IMM) m |= C_IMM | (s.imm === Imm.IO || s.imm === Imm.IZ ? C_SYM : 0);
  if (s.mask & SREG) m |= C_SREG;
  if (s.mask & CREG) m |= C_CREG;
  if (s.mask & DREG) m |= C_DREG;
  return m;
}

function parseForm(mnemonic: string, text: string): Form[] {
  const [enc = "", opsText = ""] = text.split(":").map((p) => p.trim());
  const opTokens = opsText ? opsText.split(",").map((t) => t.trim()) : [];
  const all = `${enc} ${opsText}`;
  const variant = /\b(?:rm|r|m|a|mo)v\b/.test(all) ? "v" : /\b(?:rm|r|m|a)y\b/.test(all) ? "y" : /\b(?:rm|r|m|a)x\b/.test(all) ? "x" : /\b(?:rm|r|m|a)z\b/.test(all) ? "z" : "";
  const sizes = variant === "v" ? [2, 4, 8] : variant === "y" ? [4, 8] : variant === "x" ? [2, 8] : variant === "z" ? [2, 4] : [0];
  return sizes.map((v) => {
    const ops = opTokens.map((t) => spec(t, v));
    const f: Form = {
      mnemonic, ops, osize: 0, o16: v === 2, rexW: v === 8 && variant !== "x", mand: 0, opcode: [], plusR: -1, modrm: -1,
      regOp: -1, rmOp: -1, immOp: ops.findIndex((o) => o.mask === IMM), moffsOp: ops.findIndex((o) => o.moffs), distinct: false, acc: [], text,
      listId: -1,
    };
    for (const tok of enc.split(/\s+/).filter(Boolean)) {
      if (tok === "W") f.rexW = true;
      else if (tok === "o16") f.o16 = true;
      else if (tok === "ns") f.distinct = v === 4;
      else if (tok === "pF3") f.mand = 0xf3;
      else if (tok === "pF2") f.mand = 0xf2;
      else if (tok === "+r") f.plusR = ops.findIndex((o) => o.mask === GPR && o.num < 0);
      else if (tok === "/r") f.modrm = 8;
      else if (tok === "/rr") f.modrm = 9;
      else if (/^\/[0-7]$/.test(tok)) f.modrm = Number(tok[1]);
      else if (/^[0-9a-f]{2}$/.test(tok)) f.opcode.push(parseInt(tok, 16));
      else throw new Error(`forms.ts: bad token '${tok}' in ${mnemonic}: ${text}`);
    }
    f.acc = ops.map(accepts);
    f.osize = v || Math.max(0, ...ops.filter((o) => o.mask & (GPR | MEM)).map((o) => o.size)) || 8;
    if (f.modrm === 8) {
      // The memory-capable operand goes in r/m; with two register-only operands the general register does, because the
      // other one is a segment, control or debug register (which live in the reg field).
      f.rmOp = ops.findIndex((o) => (o.mask & MEM) !== 0);
      if (f.rmOp < 0) f.rmOp = ops.findIndex((o) => o.mask === GPR);
      f.regOp = ops.findIndex((o, i) => i !== f.rmOp && (o.mask & (GPR | SREG | CREG | DREG)) !== 0);
    } else if (f.modrm >= 0) {
      f.rmOp = ops.findIndex((o) => (o.mask & (GPR | MEM)) !== 0);
    }
    return f;
  });
}

/**
 * A mnemonic's forms in preference order, with a cache of the candidate forms per combination of operand classes
 * (filled by encoder.ts select(): most instructions then try one or two forms instead of the whole list).
 */
export type FormList = readonly Form[] & { readonly byClass: Map<number, Candidates> };

/** The forms that can match one combination of operand classes; `sure` is set when the first always does. */
export interface Candidates {
  list: readonly Form[];
  sure: Form | null;
}

/** The parsed table: mnemonic → forms in preference order. */
export const FORMS: ReadonlyMap<string, FormList> = new Map(
  Object.entries(SOURCE).map(([mn, texts], listId) => {
    const list = texts.flatMap((t) => parseForm(mn, t));
    for (const f of list) f.listId = listId;
    Object.defineProperty(list, "byClass", { value: new Map<number, Candidates>(), enumerable: false });
    return [mn, list as unknown as FormList];
  }),
);
