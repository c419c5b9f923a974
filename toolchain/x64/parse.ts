// The Intel-syntax text front end (`uvt asm`): GNU `.intel_syntax noprefix` dialect, one instruction per line, labels,
// `#`/`;` comments, db/dw/dd/dq and the GNU data directives, .align, sections, `byte/word/dword/qword ptr`. It only
// drives the typed Assembler (assembler.ts); it never produces bytes itself. Errors carry file:line:column.
import { Assembler, type Mark } from "./assembler.ts";
import { EncodeError, type Operand } from "./encoder.ts";
import { CONDITIONS, type Condition, FORMS as FORMS_IMPORT } from "./forms.ts";
import { type Label, Mem, type MemSize, SymRef } from "./operands.ts";
import { type CtrlReg, type DbgReg, type Gpr, REGISTERS as REGISTERS_IMPORT, type SegReg } from "./registers.ts";

// Module-local copies of what the per-line path reads (imported bindings can be getters after transpilation), and
// local operand tags (registers.ts K).
const FORMS = FORMS_IMPORT;
const REGISTERS = REGISTERS_IMPORT;
const KGPR = 1, KMEM = 2, KSREG = 8, KLABEL = 64;
const PTR_SIZES = new Map<string, MemSize>([["byte", 1], ["word", 2], ["dword", 4], ["fword", 6], ["qword", 8], ["tbyte", 10], ["xmmword", 16], ["oword", 16]]);
const PREFIXES = new Set(["lock", "rep", "repe", "repz", "repne", "repnz", "rex64"]);
/** jcc mnemonics by name (je, jnz, ...) → condition name. */
const JCC = new Map([...CONDITIONS.keys()].map((c) => [`j${c}`, c as Condition]));

/** What an identifier is, when it is not a label: looked up without creating a string for short words. */
const enum WK {
  Reg = 1, Size, Ptr, Offset, Rip, Insn, Jcc, Prefix, Data, Branch,
}
interface Word {
  kind: WK;
  name: string;
  reg: Gpr | SegReg | CtrlReg | DbgReg | null;
  size: MemSize;
  cc: Condition | null;
}
const WORDS = new Map<string, Word>();
/** Words of at most 5 letters/digits by their base-37 packed value (a small integer: no string hashing). */
const PACKED = new Map<number, Word>();

function packWord(w: string): number {
  let key = 0;
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if (c >= 97 && c <= 122) key = key * 37 + (c - 96);
    else if (c >= 48 && c <= 57) key = key * 37 + (c - 21);
    else return -1;
  }
  return w.length <= 5 ? key : -1;
}

function addWord(name: string, kind: WK, extra: Partial<Word> = {}): void {
  if (WORDS.has(name)) return;
  const w: Word = { kind, name, reg: null, size: 0, cc: null, ...extra };
  WORDS.set(name, w);
  const key = packWord(name);
  if (key >= 0) PACKED.set(key, w);
}
for (const [name, reg] of REGISTERS) addWord(name, WK.Reg, { reg });
for (const [name, size] of PTR_SIZES) addWord(name, WK.Size, { size });
addWord("ptr", WK.Ptr);
addWord("offset", WK.Offset);
addWord("rip", WK.Rip);
for (const p of PREFIXES) addWord(p, WK.Prefix);
for (const d of ["db", "dw", "dd", "dq"]) addWord(d, WK.Data);
for (const [name, cc] of JCC) addWord(name, WK.Jcc, { cc });
addWord("jmp", WK.Branch);
addWord("call", WK.Branch);
for (const name of FORMS.keys()) if (name !== "jmpfar" && name !== "callfar") addWord(name, WK.Insn);

export class AsmSyntaxError extends Error {
  override name = "AsmSyntaxError";
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}:${column}: ${detail}`);
  }
}

/** One source line that produced output, for listings. */
export interface LineSpan {
  line: number;
  text: string;
  start: Mark;
  end: Mark;
}

export interface ParseResult {
  asm: Assembler;
  spans: LineSpan[];
}

const DATA_WIDTH: Record<string, number> = { db: 1, ".byte": 1, dw: 2, ".word": 2, ".short": 2, ".value": 2, dd: 4, ".long": 4, ".int": 4, dq: 8, ".quad": 8 };

const isIdStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 46 || c === 36;
const isIdChar = (c: number) => isIdStart(c) || (c >= 48 && c <= 57);

/** Parses and assembles `source`. With `spans`, records each emitting line's marks for a listing. */
export function parseAsm(source: string, file = "<input>", opts: { spans?: boolean } = {}): ParseResult {
  const a = new Assembler();
  const spans: LineSpan[] = [];
  const p = new LineParser(a, file);
  let lineNo = 0;
  let at = 0;
  const n = source.length;
  p.s = source;
  while (at <= n) {
    let end = source.indexOf("\n", at);
    if (end < 0) end = n;
    lineNo++;
    const stop = source.charCodeAt(end - 1) === 13 ? end - 1 : end;
    if (opts.spans) {
      const start = a.mark();
      p.line(at, stop, lineNo);
      const after = a.mark();
      if (after.section === start.section && (after.pos !== start.pos || after.item !== start.item)) {
        spans.push({ line: lineNo, text: source.slice(at, stop), start, end: after });
      }
    } else p.line(at, stop, lineNo);
    at = end + 1;
  }
  return { asm: a, spans };
}

/** Parses one line at a time in place in the whole source (no per-line strings); `i` is an absolute index. */
class LineParser {
  s = "";
  private i = 0;
  private end = 0;
  private base = 0;
  private lineNo = 0;
  /** Reused operand arrays by arity: the assembler does not keep them. */
  private readonly scratch: Operand[][] = [[], [0], [0, 0], [0, 0, 0]];
  constructor(
    private readonly a: Assembler,
    private readonly file: string,
  ) {}

  private fail(msg: string, col = this.i): never {
    throw new AsmSyntaxError(this.file, this.lineNo, col - this.base + 1, msg);
  }

  private ws(): void {
    const s = this.s;
    const end = this.end;
    let i = this.i;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c !== 32 && c !== 9) break;
      i++;
    }
    this.i = i;
  }

  private atEnd(): boolean {
    this.ws();
    if (this.i >= this.end) return true;
    const c = this.s.charCodeAt(this.i);
    return c === 35 || c === 59; // # ;
  }

  private ident(): string {
    const s = this.s;
    const st = this.i;
    const end = this.end;
    let i = st;
    while (i < end && isIdChar(s.charCodeAt(i))) i++;
    this.i = i;
    return s.slice(st, i);
  }

  /** Start of the identifier word() last scanned, for slicing its text when it is a label. */
  private wStart = 0;

  /** Scans an identifier; returns its keyword entry, or null for a label/unknown name (text: s.slice(wStart, i)). */
  private word(): Word | null {
    const s = this.s;
    const st = this.i;
    const end = this.end;
    let i = st;
    let key = 0;
    let packable = true;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c >= 97 && c <= 122) key = key * 37 + (c - 96);
      else if (c >= 65 && c <= 90) key = key * 37 + (c - 64);
      else if (c >= 48 && c <= 57) key = key * 37 + (c - 21);
      else if (c === 95 || c === 46 || c === 36) packable = false;
      else break;
      i++;
    }
    this.wStart = st;
    this.i = i;
    const len = i - st;
    if (packable && len <= 5) return len ? (PACKED.get(key) ?? null) : null;
    if (len > 12) return null;
    return WORDS.get(lower(s.slice(st, i))) ?? null;
  }

  private wordText(): string {
    return this.s.slice(this.wStart, this.i);
  }

  line(start: number, end: number, lineNo: number): void {
    const text = this.s;
    this.i = start;
    this.base = start;
    this.end = end;
    this.lineNo = lineNo;
    for (;;) {
      if (this.atEnd()) return;
      const st = this.i;
      const c = text.charCodeAt(st);
      if (!isIdStart(c)) this.fail(`expected a label, directive or instruction, found '${text[st]}'`);
      const w = this.word();
      const wEnd = this.i;
      this.ws();
      if (this.i < end && text.charCodeAt(this.i) === 58 /* : */ && text.charCodeAt(this.i + 1) !== 58) {
        this.i++;
        this.defineLabel(text.slice(st, wEnd), st);
        continue;
      }
      try {
        this.statement(w, text.slice(st, wEnd), st);
      } catch (e) {
        if (e instanceof AsmSyntaxError) throw e;
        if (e instanceof Error) this.fail(e.message, st);
        throw e;
      }
      if (!this.atEnd()) this.fail(`unexpected '${text.slice(this.i, end).trim()}' after the statement`);
      return;
    }
  }

  private defineLabel(name: string, col: number): void {
    const l = this.a.symbol(name);
    if (l.bound) this.fail(`label '${name}' is defined twice`, col);
    this.a.bind(l);
  }

  private statement(first: Word | null, text: string, col: number): void {
    const a = this.a;
    if (!first || first.kind === WK.Data) {
      const name = lower(text);
      if (name.charCodeAt(0) === 46 /* . */ || first) return this.directive(name, col);
      this.fail(`unknown instruction '${name}'`, col);
    }
    let w: Word = first;
    let rex64 = false;
    while (w.kind === WK.Prefix) {
      const p = w.name;
      if (p === "lock") a.lock();
      else if (p === "rep" || p === "repe" || p === "repz") a.rep();
      else if (p === "repne" || p === "repnz") a.repne();
      else rex64 = true;
      if (this.atEnd()) this.fail(`'${p}' must be followed by an instruction`);
      const st = this.i;
      const next = this.word();
      if (!next || (next.kind !== WK.Insn && next.kind !== WK.Jcc && next.kind !== WK.Branch && next.kind !== WK.Prefix)) {
        this.fail(`expected an instruction after '${p}', found '${this.wordText() || this.s[st]}'`, st);
      }
      w = next;
    }
    if (w.kind !== WK.Insn && w.kind !== WK.Jcc && w.kind !== WK.Branch) this.fail(`unknown instruction '${lower(text)}'`, col);
    const mn = w.name;
    const ops = this.operands();
    // Branches: labels go to the relaxing jmp/jcc/call methods; far forms to jmpfar/callfar.
    if (w.kind === WK.Jcc) {
      if (ops.length !== 1 || !isLabel(ops[0]!)) this.fail(`${mn} takes one label operand`, col);
      a.jcc(w.cc!, ops[0] as Label);
      return;
    }
    if (w.kind === WK.Branch) {
      if (ops.length !== 1) this.fail(`${mn} takes one operand`, col);
      const t = ops[0]!;
      if (isLabel(t)) {
        if (mn === "jmp") a.jmp(t);
        else a.call(t);
        return;
      }
      if (typeof t === "object" && t.k === KMEM && (t.size === 6 || t.size === 10)) {
        const far = rex64 && t.size === 6 ? new Mem(10, t.base, t.index, t.scale, t.disp, t.label, t.rip, t.seg) : t;
        a.emit(mn === "jmp" ? "jmpfar" : "callfar", far);
        return;
      }
    }
    if (rex64) this.fail("rex64 is only supported before far jmp/call", col);
    a.emitOps(mn, ops);
  }

  /** Parses the operand list into a reused array of the exact arity (no allocation, no length writes). */
  private operands(): Operand[] {
    if (this.atEnd()) return this.scratch[0]!;
    let n = 0;
    let o0: Operand = 0, o1: Operand = 0, o2: Operand = 0;
    for (;;) {
      const o = this.operand();
      if (n === 0) o0 = o;
      else if (n === 1) o1 = o;
      else if (n === 2) o2 = o;
      else this.fail("too many operands (at most 3)");
      n++;
      this.ws();
      if (this.i >= this.end || this.s.charCodeAt(this.i) !== 44 /* , */) break;
      this.i++;
    }
    const ops = this.scratch[n]!;
    if (n > 0) ops[0] = o0;
    if (n > 1) ops[1] = o1;
    if (n > 2) ops[2] = o2;
    return ops;
  }

  private operand(): Operand {
    this.ws();
    const s = this.s;
    const c = s.charCodeAt(this.i);
    if (c === 91 /* [ */) return this.memory(0, null);
    if (isIdStart(c)) {
      const w = this.word();
      if (w) {
        if (w.kind === WK.Reg) {
          const reg = w.reg!;
          if (reg.k === KSREG) {
            this.ws();
            if (s.charCodeAt(this.i) === 58 /* : */ && this.i < this.end) {
              this.i++;
              this.ws();
              return this.memory(0, reg as SegReg);
            }
          }
          return reg;
        }
        if (w.kind === WK.Size) {
          this.ws();
          const save = this.i;
          const p = this.word();
          if (!p || p.kind !== WK.Ptr) this.i = save;
          this.ws();
          return this.memory(w.size, null);
        }
        if (w.kind === WK.Offset) {
          this.ws();
          const t = this.ident();
          if (!t) this.fail("expected a label after 'offset'");
          return new SymRef(this.a.symbol(t), this.addend());
        }
      }
      return this.a.symbol(this.wordText());
    }
    return this.number(true);
  }

  /** An optional +N/-N after a symbol. */
  private addend(): number {
    this.ws();
    const c = this.s.charCodeAt(this.i);
    if (c !== 43 && c !== 45) return 0;
    return Number(this.number(true));
  }

  /** `[ ... ]`, after an optional size and segment. */
  private memory(size: MemSize, seg: SegReg | null): Mem {
    this.ws();
    const s = this.s;
    if (!seg && isIdStart(s.charCodeAt(this.i))) {
      const save = this.i;
      const w = this.word();
      this.ws();
      if (w && w.kind === WK.Reg && w.reg!.k === KSREG && s.charCodeAt(this.i) === 58 && this.i < this.end) {
        this.i++;
        this.ws();
        seg = w.reg as SegReg;
      } else this.i = save;
    }
    if (s.charCodeAt(this.i) !== 91) this.fail("expected '[' to start a memory operand (labels as absolute memory are not supported: use [rip+label])");
    this.i++;
    let base: Gpr | null = null, index: Gpr | null = null, scale: 1 | 2 | 4 | 8 = 1, disp = 0;
    let label: Label | null = null, rip = false;
    let sign = 1;
    let first = true;
    for (;;) {
      this.ws();
      const st = this.i;
      let c = s.charCodeAt(st);
      if (!first) {
        if (c === 93 /* ] */) {
          this.i++;
          break;
        }
        if (c === 43) sign = 1;
        else if (c === 45) sign = -1;
        else this.fail("expected '+', '-' or ']' in the memory operand");
        this.i++;
        this.ws();
        c = s.charCodeAt(this.i);
      } else if (c === 45) {
        sign = -1;
        this.i++;
        this.ws();
        c = s.charCodeAt(this.i);
      }
      first = false;
      const tst = this.i;
      if (isIdStart(c)) {
        const word = this.word();
        if (word && word.kind === WK.Rip) {
          rip = true;
          continue;
        }
        const w = this.wordText();
        const r = word && word.kind === WK.Reg ? word.reg! : null;
        if (r) {
          if (r.k !== KGPR || sign < 0) this.fail(`'${w}' cannot be used here in an address`, tst);
          this.ws();
          if (s.charCodeAt(this.i) === 42 /* * */) {
            this.i++;
            this.ws();
            const sc = Number(this.number(false));
            if (sc !== 1 && sc !== 2 && sc !== 4 && sc !== 8) this.fail(`scale ${sc} is not 1, 2, 4 or 8`);
            if (index) this.fail("two index registers", tst);
            index = r as Gpr;
            scale = sc;
          } else if (!base) base = r as Gpr;
          else if (!index) index = r as Gpr;
          else this.fail("too many registers in the address", tst);
          continue;
        }
        if (label || sign < 0) this.fail(`symbol '${w}' cannot be used here in an address`, tst);
        label = this.a.symbol(w);
        continue;
      }
      const v = Number(this.number(false)) * sign;
      this.ws();
      if (s.charCodeAt(this.i) === 42) {
        this.i++;
        this.ws();
        const rs = this.i;
        const rw = this.word();
        const r = rw && rw.kind === WK.Reg ? rw.reg! : null;
        if (!r || r.k !== KGPR || index) this.fail("expected an index register after 'scale*'", rs);
        if (v !== 1 && v !== 2 && v !== 4 && v !== 8) this.fail(`scale ${v} is not 1, 2, 4 or 8`, tst);
        index = r as Gpr;
        scale = v;
        continue;
      }
      disp += v;
    }
    if (label && !rip) this.fail("a label in an address must be RIP-relative: write [rip+label]");
    if (rip && (base || index)) this.fail("RIP-relative addresses take no base or index register");
    return new Mem(size, base, index, scale, disp, label, rip, seg);
  }

  /** Integer literal, optionally signed: 123, 0x7f, 0b101, 0o17, 017, 'c', 10h. */
  private number(signed: boolean): number | bigint {
    this.ws();
    const s = this.s;
    let neg = false;
    if (signed) {
      while (s.charCodeAt(this.i) === 45 || s.charCodeAt(this.i) === 43) {
        if (s.charCodeAt(this.i) === 45) neg = !neg;
        this.i++;
        this.ws();
      }
    }
    const st = this.i;
    if (s.charCodeAt(st) === 39 /* ' */) {
      const ch = s.charCodeAt(st + 1);
      if (s.charCodeAt(st + 2) !== 39 || Number.isNaN(ch)) this.fail("bad character constant");
      this.i = st + 3;
      return neg ? -ch : ch;
    }
    let i = st;
    while (i < this.end && isIdChar(s.charCodeAt(i))) i++;
    this.i = i;
    // Fast path: short decimal or 0x-hex literals (nearly all of them) without regexes or BigInt.
    const len = i - st;
    if (len > 0 && len <= 15) {
      let v = 0;
      let ok = true;
      if (len > 2 && s.charCodeAt(st) === 48 && (s.charCodeAt(st + 1) | 32) === 120) {
        for (let j = st + 2; j < i; j++) {
          const c = s.charCodeAt(j) | 32;
          const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
          if (d < 0) { ok = false; break; }
          v = v * 16 + d;
        }
      } else if (len === 1 || s.charCodeAt(st) !== 48) {
        for (let j = st; j < i; j++) {
          const d = s.charCodeAt(j) - 48;
          if (d < 0 || d > 9) { ok = false; break; }
          v = v * 10 + d;
        }
      } else ok = false;
      if (ok) return neg ? -v : v;
    }
    const tok = s.slice(st, i);
    if (!tok) this.fail(`expected a number, found '${s.slice(st, Math.min(st + 10, this.end)) || "end of line"}'`);
    let v: bigint;
    try {
      const t = tok.toLowerCase();
      if (/^[0-9][0-9a-f]*h$/.test(t)) v = BigInt(`0x${t.slice(0, -1)}`);
      else if (/^0[0-7]+$/.test(t)) v = BigInt(`0o${t.slice(1)}`);
      else if (/^(0x[0-9a-f]+|0b[01]+|0o[0-7]+|[0-9]+)$/.test(t)) v = BigInt(t);
      else throw new Error();
    } catch {
      this.fail(`'${tok}' is not a number`, st);
    }
    if (neg) v = -v;
    const small = v >= -(2n ** 53n) && v <= 2n ** 53n;
    return small ? Number(v) : v;
  }

  private stringLit(): Uint8Array {
    this.ws();
    const s = this.s;
    if (s.charCodeAt(this.i) !== 34) this.fail("expected a string in double quotes");
    const out: number[] = [];
    let i = this.i + 1;
    for (;;) {
      if (i >= this.end) this.fail("unterminated string");
      const c = s.charCodeAt(i++);
      if (c === 34) break;
      if (c !== 92) {
        if (c < 128) out.push(c);
        else out.push(...new TextEncoder().encode(String.fromCodePoint(s.codePointAt(i - 1)!)));
        if (c >= 0xd800 && c < 0xdc00) i++;
        continue;
      }
      const e = s[i++];
      const simple: Record<string, number> = { n: 10, t: 9, r: 13, "0": 0, "\\": 92, '"': 34, "'": 39, a: 7, b: 8, f: 12, v: 11 };
      if (e === "x") {
        const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i, this.end));
        if (!m) this.fail("bad \\x escape", i);
        out.push(parseInt(m[0], 16));
        i += m[0].length;
      } else if (e !== undefined && simple[e] !== undefined) out.push(simple[e]);
      else this.fail(`unknown escape '\\${e ?? ""}'`, i - 1);
    }
    this.i = i;
    return new Uint8Array(out);
  }

  private list<T>(item: () => T): T[] {
    const out: T[] = [];
    if (this.atEnd()) return out;
    for (;;) {
      out.push(item());
      this.ws();
      if (this.s.charCodeAt(this.i) !== 44) break;
      this.i++;
    }
    return out;
  }

  private directive(d: string, col: number): void {
    const a = this.a;
    const width = DATA_WIDTH[d];
    if (width !== undefined) {
      const vals = this.list(() => {
        this.ws();
        const c = this.s.charCodeAt(this.i);
        if (width === 1 && c === 34) return this.stringLit();
        if (isIdStart(c)) {
          const name = this.ident();
          return new SymRef(a.symbol(name), this.addend());
        }
        return this.number(true);
      });
      if (vals.length === 0) this.fail(`${d} needs at least one value`, col);
      for (const v of vals) {
        if (v instanceof Uint8Array) a.db(v);
        else if (v instanceof SymRef) {
          if (width === 8) a.dq(v);
          else if (width === 4) a.dd(v);
          else this.fail(`${d}: a symbol address needs dd/.long (abs32) or dq/.quad (abs64)`, col);
        } else if (width === 1) a.db(Number(v));
        else if (width === 2) a.dw(v);
        else if (width === 4) a.dd(v);
        else a.dq(v);
      }
      return;
    }
    switch (d) {
      case ".intel_syntax":
        if (!this.atEnd() && this.ident().toLowerCase() !== "noprefix") this.fail(".intel_syntax: only 'noprefix' is supported");
        return;
      case ".code64":
        return;
      case ".att_syntax":
        this.fail("AT&T syntax is not supported; use .intel_syntax noprefix", col);
        break;
      case ".text": case ".data": case ".bss": case ".rdata":
        a.section(d);
        return;
      case ".section": {
        this.ws();
        const name = this.ident();
        if (!name) this.fail(".section needs a name");
        // GNU flags: "x" executable → text, "w" writable → data, otherwise read-only data; no flags: by name.
        let kind: "text" | "data" | "rdata" | undefined;
        this.ws();
        if (this.s.charCodeAt(this.i) === 44) {
          this.i++;
          const flags = this.stringLit();
          const f = new TextDecoder().decode(flags);
          kind = f.includes("x") ? "text" : f.includes("w") ? "data" : "rdata";
          while (!this.atEnd()) this.i++; // section types (@progbits ...) are accepted and ignored
        }
        a.section(name, name === ".bss" ? "bss" : kind);
        return;
      }
      case ".globl": case ".global":
        for (const name of this.list(() => this.ident())) a.global(a.symbol(name));
        return;
      case ".align": case ".balign": case ".p2align": {
        const args = this.list(() => Number(this.number(true)));
        if (args.length < 1) this.fail(`${d} needs an alignment`, col);
        const n = d === ".p2align" ? 2 ** args[0]! : args[0]!;
        a.align(n, args[1]);
        return;
      }
      case ".zero": case ".skip": case ".space": {
        const args = this.list(() => Number(this.number(true)));
        if (args.length < 1) this.fail(`${d} needs a count`, col);
        if (args[1] !== undefined && args[1] !== 0) a.db(new Uint8Array(args[0]!).fill(args[1] & 0xff));
        else a.zero(args[0]!);
        return;
      }
      case ".ascii": case ".asciz": case ".string":
        for (const b of this.list(() => this.stringLit())) {
          a.db(b);
          if (d !== ".ascii") a.db(0);
        }
        return;
      default:
        this.fail(`unknown directive '${d}'`, col);
    }
  }
}

/** Lower-cases only when needed (sources are nearly always lower case already). */
function lower(w: string): string {
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if (c >= 65 && c <= 90) return w.toLowerCase();
  }
  return w;
}

function isLabel(o: Operand): o is Label {
  return typeof o === "object" && o.k === KLABEL;
}

export { EncodeError };
