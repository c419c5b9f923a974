// Oracle test of the encoder: every form of the opcode table over generated operand combinations (ModRM/SIB special
// cases, every register, immediate boundaries), assembled by us and by GNU as in ONE batch, compared byte for byte.
// Also: invalid combinations must throw an error naming the instruction, and GNU as must reject them too.
import { describe as group, expect, it } from "vitest";
import { Assembler } from "./assembler.ts";
import { describe, EncodeError, type Operand, select } from "./encoder.ts";
import { type Form, FORMS, LOCKABLE, REPEATABLE } from "./forms.ts";
import { GAS_PROLOGUE, gasAssemble, gasErrors, hex } from "./gas.ts";
import { byte, dword, ptr, qword, word } from "./operands.ts";
import { ah, al, ax, bh, bl, bx, ch, cl, cr0, cx, dil, ds, dx, eax, ebx, ecx, r8, r8b, rax, rbx, rcx, rsp, sil, spl } from "./registers.ts";
import { parseAsm } from "./parse.ts";
import { gasLine, generateCases, xorshift32 } from "./samples.ts";

/** The mnemonics issue 2 lists (families such as setcc/cmovcc/jcc are checked through their members). */
const ISSUE_MNEMONICS = [
  "mov", "movzx", "movsx", "movsxd", "lea", "add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test", "inc", "dec",
  "neg", "not", "shl", "shr", "sar", "sal", "rol", "ror", "rcl", "rcr", "shld", "shrd", "mul", "imul", "div", "idiv",
  "cwd", "cdq", "cqo", "xchg", "cmpxchg", "xadd", "bt", "bts", "btr", "btc", "bsf", "bsr", "lzcnt", "tzcnt", "popcnt",
  "bswap", "sete", "setne", "setl", "setb", "cmove", "cmovne", "cmovg", "cmova", "jmp", "call", "ret", "push", "pop",
  "leave", "nop", "int3", "ud2", "movsb", "movsq", "stosb", "stosq", "lodsb", "lodsq", "scasb", "scasq", "cmpsb", "cmpsq",
  "cli", "sti", "hlt", "pause", "cpuid", "rdtsc", "rdtscp", "rdmsr", "wrmsr", "in", "out", "lgdt", "lidt", "sgdt", "sidt",
  "ltr", "lldt", "str", "iretq", "syscall", "sysretq", "swapgs", "invlpg", "wbinvd", "clflush", "mfence", "lfence",
  "sfence", "fxsave64", "fxrstor64", "xsave", "xrstor", "lretq", "jmpfar", "callfar", "int", "vmcall", "vmmcall",
];

/** Memory operands of implied size (issue 23; implied-size.gas.test.ts audits every operand size against as). */
const IMPLIED_MNEMONICS = [
  "clflushopt", "clwb", "prefetchnta", "prefetcht0", "prefetcht1", "prefetcht2", "prefetchw", "prefetchwt1", "sldt", "smsw",
  "lmsw", "verr", "verw", "ldmxcsr", "stmxcsr", "xsaveopt", "xsaveopt64", "xsavec", "xsavec64", "xsaves", "xsaves64",
  "xrstors", "xrstors64",
];

/** Flag instructions added for the monitor (direction flag at entry, flags save/restore). */
const FLAG_MNEMONICS = ["cld", "std", "clc", "stc", "cmc", "lahf", "sahf", "pushfq", "popfq"];

group("encoder vs GNU as", () => {
  it("encodes every form over generated operands exactly like GNU as", () => {
    const a = new Assembler();
    const tgt = a.label("tgt");
    const cases = generateCases(160, tgt);
    const ours: { start: ReturnType<Assembler["mark"]>; end: ReturnType<Assembler["mark"]> }[] = [];
    const rejected: string[] = [];
    const accepted: typeof cases = [];
    const used = new Set<Form>();
    for (const c of cases) {
      const start = a.mark();
      try {
        a.emit(c.mnemonic, ...c.ops);
      } catch (e) {
        if (!(e instanceof EncodeError)) throw e;
        rejected.push(c.text);
        continue;
      }
      used.add(select(FORMS.get(c.mnemonic)!, c.ops)!);
      accepted.push(c);
      ours.push({ start, end: a.mark() });
    }
    // Prefixed forms: lock before every lockable instruction with a memory destination, rep/repe/repne before every
    // string instruction. They join the same batch.
    const prefixed: { text: string; run: () => void }[] = [];
    for (const mn of LOCKABLE) {
      const withMem = accepted.filter((c) => c.mnemonic === mn && typeof c.ops[0] === "object" && (c.ops[0] as { k: number }).k === 2);
      for (const c of withMem.filter((_, i) => i % 37 === 0)) prefixed.push({ text: `lock ${c.text}`, run: () => a.lock().emit(c.mnemonic, ...c.ops) });
    }
    for (const mn of REPEATABLE) {
      prefixed.push({ text: `rep ${mn}`, run: () => a.rep().emit(mn) }, { text: `repne ${mn}`, run: () => a.repne().emit(mn) });
    }
    expect(prefixed.length).toBeGreaterThan(200);
    for (const p of prefixed) {
      const start = a.mark();
      p.run();
      accepted.push({ mnemonic: "(prefixed)", ops: [], text: p.text, form: accepted[0]!.form });
      ours.push({ start, end: a.mark() });
    }
    a.bind(tgt).nop();
    const ourText = a.finish().sections[0]!.bytes;
    const source = GAS_PROLOGUE + accepted.map((c, i) => `c${i}: ${c.text}\n`).join("") + "tgt: nop\n";
    let gas;
    try {
      gas = gasAssemble(source);
    } catch {
      const errs = gasErrors(source);
      const bad = [...errs.lines].map((l) => accepted[l - 3]?.text).slice(0, 30);
      throw new Error(`GNU as rejects ${errs.lines.size} lines we accept, e.g.:\n${bad.join("\n")}\n${errs.stderr.slice(0, 2000)}`);
    }
    const mismatches: string[] = [];
    accepted.forEach((c, i) => {
      const g0 = gas.labels.get(`c${i}`)!;
      const g1 = gas.labels.get(i + 1 < accepted.length ? `c${i + 1}` : "tgt")!;
      const want = hex(gas.bytes.subarray(g0, g1));
      const got = hex(ourText.subarray(a.offsetOf(ours[i]!.start), a.offsetOf(ours[i]!.end)));
      if (want !== got) mismatches.push(`${c.text}\n    as:   ${want}\n    ours: ${got}   (${c.form.mnemonic}: ${c.form.text})`);
    });
    expect(mismatches.slice(0, 40).join("\n")).toBe("");
    // The text front end reads the same source GNU as read and must produce the same bytes.
    const parsed = parseAsm(source, "gas-batch.s").asm.finish().sections[0]!.bytes;
    expect(parsed.length).toBe(gas.bytes.length);
    expect(Buffer.compare(Buffer.from(parsed), Buffer.from(gas.bytes))).toBe(0);
    expect(accepted.length).toBeGreaterThan(20000);
    // Only ah/bh/ch/dh with a REX-requiring operand may be rejected among generated combinations.
    expect(rejected.filter((t) => !/\b[abcd]h\b/.test(t))).toEqual([]);
    // Every form of the table is reachable and was compared.
    const unused = [...FORMS.values()].flat().filter((f) => !used.has(f)).map((f) => `${f.mnemonic}: ${f.text} (osize ${f.osize})`);
    expect(unused).toEqual([]);
    const covered = new Set(accepted.map((c) => c.mnemonic));
    expect(accepted.some((c) => c.text.startsWith("lock ") && c.text.includes("cmpxchg"))).toBe(true);
    expect(ISSUE_MNEMONICS.filter((m) => !covered.has(m))).toEqual([]);
    expect(FLAG_MNEMONICS.filter((m) => !covered.has(m))).toEqual([]);
    expect(IMPLIED_MNEMONICS.filter((m) => !covered.has(m))).toEqual([]);
    // Unsized memory is among the compared samples of the implied-size forms (clflush [rcx], lgdt [rax] ...).
    expect(accepted.some((c) => /^clflush \[/.test(c.text)) && accepted.some((c) => /^lgdt \[/.test(c.text)) && accepted.some((c) => /^ltr \[/.test(c.text))).toBe(true);
    // Rejected high-byte combinations must be rejected by GNU as as well (one batch).
    const errSource = GAS_PROLOGUE + rejected.map((t) => `${t}\n`).join("");
    const errs = gasErrors(errSource);
    expect(rejected.filter((_, i) => !errs.lines.has(i + 3))).toEqual([]);
  });

  it("rejects invalid combinations with an error naming the instruction, as GNU as does", () => {
    const m = (size: 0 | 1 | 2 | 4 | 8, base = rax) => (size === 0 ? ptr(base) : size === 1 ? byte(base) : size === 2 ? word(base) : size === 4 ? dword(base) : qword(base));
    // [mnemonic, operands, what GNU as does]: "error"; "warn" where as truncates the immediate with a warning; "accepted"
    // for our deliberate refusals (an 8-bit immediate below -128; 32-bit addressing, which nothing here needs).
    const bad: [string, Operand[], "error" | "warn" | "accepted"][] = [
      ["mov", [ah, sil], "error"], ["add", [ah, r8b], "error"], ["mov", [bh, spl], "error"], ["xchg", [ch, dil], "error"],
      ["mov", [qword(rax), qword(rbx)], "error"], ["add", [m(4), m(4, rbx)], "error"],
      ["mov", [rax, ecx], "error"], ["mov", [eax, bx], "error"], ["add", [r8, r8b], "error"], ["mov", [qword(rax), ecx], "error"],
      ["inc", [m(0)], "error"], ["mov", [m(0), 5], "error"], ["lea", [rax, rbx], "error"], ["push", [eax], "error"],
      ["shl", [rax, bl], "error"], ["out", [dx, rax], "error"], ["movzx", [rax, rbx], "error"], ["imul", [al, bl, 3], "error"],
      ["ret", [70000], "error"], ["int", [256], "error"], ["add", [rax, 0x80000000], "error"], ["movsxd", [rax, rbx], "error"],
      ["bswap", [ax], "error"], ["mov", [ds, 5], "error"], ["mov", [cr0, eax], "error"], ["pop", [5], "error"],
      ["cmove", [al, bl], "error"], ["setne", [ax], "error"], ["bt", [al, 1], "error"], ["jmp", [eax], "error"],
      ["add", [al, 300], "warn"], ["in", [al, 256], "warn"], ["mov", [eax, 0x100000000], "warn"], ["test", [al, 256], "warn"],
      ["add", [rax, 1.5], "error"], ["mov", [cl, -129], "accepted"], ["mov", [rax, qword(eax)], "accepted"],
    ];
    const a = new Assembler();
    for (const [mn, ops] of bad) {
      let msg = "accepted";
      try {
        a.emit(mn, ...ops);
      } catch (e) {
        expect(e).toBeInstanceOf(EncodeError);
        msg = (e as Error).message;
      }
      expect(msg.startsWith(`${describe(mn, ops)}:`), `${describe(mn, ops)} → ${msg}`).toBe(true);
    }
    // The lock prefix on a non-lockable instruction and rsp as an index.
    expect(() => a.lock().mov(m(4), eax)).toThrow(/^lock mov dword ptr \[rax\], eax: lock needs/);
    expect(() => a.mov(eax, dword({ base: rax, index: rsp }))).toThrow(/rsp cannot be an index/);
    expect(() => a.rep().add(eax, 1)).toThrow(/^rep add eax, 1: rep\/repne only/);
    const src = GAS_PROLOGUE + bad.map(([mn, ops]) => `${gasLine(mn, ops).replace("0x1.8", "1.5")}\n`).join("");
    const errs = gasErrors(src);
    const warned = new Set([...errs.stderr.matchAll(/in\.s:(\d+): Warning/g)].map((x) => Number(x[1])));
    bad.forEach(([mn, ops, as], i) => {
      const seen = errs.lines.has(i + 3) ? "error" : warned.has(i + 3) ? "warn" : "accepted";
      expect(`${gasLine(mn, ops)}: ${seen}`).toBe(`${gasLine(mn, ops)}: ${as}`);
    });
  });

  it("never accepts an immediate GNU as complains about, and encodes the accepted ones like it (random values)", () => {
    const rnd = xorshift32(0x9e3779b9);
    const EDGE = [0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000];
    const value = (): number | bigint => {
      const k = rnd() % 4;
      const e = EDGE[rnd() % EDGE.length]!;
      const v = k === 0 ? e : k === 1 ? e - 1 : k === 2 ? -e : -e - 1;
      return rnd() % 8 === 0 ? BigInt.asIntN(64, BigInt(v) * 0x100000000n + BigInt(rnd())) : v;
    };
    const shapes: [string, Operand][] = [
      ["add", al], ["add", ax], ["add", eax], ["add", rax], ["mov", cl], ["mov", cx], ["mov", ecx], ["mov", rcx], ["mov", r8],
      ["cmp", byte(rbx)], ["cmp", word(rbx)], ["cmp", dword(rbx)], ["cmp", qword(rbx)], ["test", eax], ["test", rbx],
      ["imul", rax], ["push", 0], ["shl", eax], ["int", 0], ["ret", 0], ["in", al], ["and", ebx], ["or", bx],
    ];
    const lines: { text: string; ok: boolean; why: string }[] = [];
    const a = new Assembler();
    for (let i = 0; i < 3000; i++) {
      const [mn, dst] = shapes[i % shapes.length]!;
      const v = value();
      const ops: Operand[] = mn === "push" || mn === "int" || mn === "ret" ? [v] : mn === "imul" ? [dst, dst, v] : [dst, v];
      let why = "";
      try {
        a.emit(mn, ...ops);
      } catch (e) {
        if (!(e instanceof EncodeError)) throw e;
        why = e.message;
      }
      lines.push({ text: gasLine(mn, ops), ok: !why, why });
    }
    // One as run over every line. What as rejects or truncates with a warning we must refuse too.
    const errs = gasErrors(GAS_PROLOGUE + lines.map((l) => `${l.text}\n`).join(""));
    const complained = new Set([...errs.lines, ...[...errs.stderr.matchAll(/in\.s:(\d+): Warning/g)].map((m) => Number(m[1]))]);
    expect(lines.filter((l, i) => l.ok && complained.has(i + 3)).map((l) => l.text).slice(0, 20)).toEqual([]);
    // We are stricter than as on purpose (it silently truncates e.g. `add al, 0xfffe`); our refusals are all range errors.
    expect(lines.filter((l) => !l.ok && !/does not fit/.test(l.why)).map((l) => l.why).slice(0, 20)).toEqual([]);
    expect(lines.filter((l) => l.ok).length).toBeGreaterThan(1000);
    // The accepted ones, through the text front end, produce as's bytes.
    const ok = GAS_PROLOGUE + lines.filter((l) => l.ok).map((l) => `${l.text}\n`).join("");
    expect(hex(parseAsm(ok, "imm.s").asm.finish().sections[0]!.bytes)).toBe(hex(gasAssemble(ok).bytes));
  });
});
