// Oracle audit of memory operands whose size the instruction implies (cache control, prefetch, descriptor tables,
// selectors and the machine status word, MXCSR, the FXSAVE/XSAVE areas, invlpg): every such mnemonic with an
// unsized operand, every `ptr` size and 16/32/64-bit registers, through the typed API and the text front end, against
// GNU as in one batch. We must accept exactly what as accepts, with the same bytes, and refuse what it refuses.
import { describe, expect, it } from "vitest";
import { Assembler } from "./assembler.ts";
import { EncodeError, type Operand } from "./encoder.ts";
import { GAS_PROLOGUE, gasAssemble, gasErrors, hex } from "./gas.ts";
import { Mem, type MemSize, ptr, qword } from "./operands.ts";
import { parseAsm } from "./parse.ts";
import { ax, eax, r12, r13, rax, rbp, rcx, rsp } from "./registers.ts";
import { gasLine } from "./samples.ts";

const IMPLIED = [
  "clflush", "clflushopt", "clwb", "prefetchnta", "prefetcht0", "prefetcht1", "prefetcht2", "prefetchw", "prefetchwt1", "invlpg",
  "lgdt", "sgdt", "lidt", "sidt", "lldt", "sldt", "ltr", "str", "lmsw", "smsw", "verr", "verw", "ldmxcsr", "stmxcsr",
  "fxsave", "fxrstor", "fxsave64", "fxrstor64", "xsave", "xrstor", "xsave64", "xrstor64", "xsaveopt", "xsaveopt64",
  "xsavec", "xsavec64", "xsaves", "xsaves64", "xrstors", "xrstors64",
];
const SIZES: MemSize[] = [0, 1, 2, 4, 6, 8, 10, 16];

function operands(): Operand[] {
  const out: Operand[] = [];
  for (const size of SIZES) out.push(new Mem(size, rcx, null, 1, 0, null, false, null));
  // Addressing-mode special cases with the unsized form (SIB for rsp/r12, disp8 0 for rbp/r13, index, RIP-relative).
  for (const base of [rsp, r12, rbp, r13]) out.push(new Mem(0, base, null, 1, 0, null, false, null));
  out.push(new Mem(0, rax, rcx, 8, -0x80, null, false, null), new Mem(0, null, null, 1, 0x40, null, true, null));
  out.push(ax, eax, rax);
  return out;
}

describe("implied-size memory operands vs GNU as", () => {
  it("accepts exactly what as accepts, with the same bytes", () => {
    const lines: { text: string; ok: boolean; bytes: string; why: string }[] = [];
    for (const mn of IMPLIED) {
      for (const op of operands()) {
        const a = new Assembler();
        let why = "";
        try {
          a.emit(mn, op);
        } catch (e) {
          if (!(e instanceof EncodeError)) throw e;
          why = e.message;
        }
        lines.push({ text: gasLine(mn, [op]), ok: !why, bytes: why ? "" : hex(a.finish().sections[0]!.bytes), why });
      }
    }
    const errs = gasErrors(GAS_PROLOGUE + lines.map((l) => `${l.text}\n`).join(""));
    const disagree = lines.filter((l, i) => l.ok === errs.lines.has(i + 3)).map((l) => `${l.text}: ours ${l.ok ? "accepts" : `refuses (${l.why})`}, as ${l.ok ? "refuses" : "accepts"}`);
    expect(disagree).toEqual([]);
    // Bytes of every accepted line, each against as's encoding (one batch with marker labels).
    const ok = lines.filter((l) => l.ok);
    const gas = gasAssemble(GAS_PROLOGUE + ok.map((l, i) => `c${i}: ${l.text}\n`).join("") + "end:\n");
    const wrong = ok.flatMap((l, i) => {
      const want = hex(gas.bytes.subarray(gas.labels.get(`c${i}`)!, gas.labels.get(i + 1 < ok.length ? `c${i + 1}` : "end")!));
      return want === l.bytes ? [] : [`${l.text}: as ${want}, ours ${l.bytes}`];
    });
    expect(wrong).toEqual([]);
    // The text front end reads the same lines to the same bytes.
    const src = GAS_PROLOGUE + "start:\n" + ok.map((l) => `${l.text}\n`).join("");
    expect(hex(parseAsm(src, "implied.s").asm.finish().sections[0]!.bytes)).toBe(hex(gasAssemble(src).bytes));
    // The issue's example, and that the audit is not vacuous in either direction.
    expect(ok.some((l) => l.text === "clflush [rcx]")).toBe(true);
    expect(lines.filter((l) => !l.ok).length).toBeGreaterThan(100);
  });

  it("the typed API takes ptr(...) for them (clflush, lgdt, ltr)", () => {
    const a = new Assembler();
    a.clflush(ptr(rcx)).lgdt(ptr(rax)).ltr(ptr(rax)).fxsave64(ptr(rsp));
    expect(hex(a.finish().sections[0]!.bytes)).toBe("0f ae 39 0f 01 10 0f 00 18 48 0f ae 04 24");
    expect(() => new Assembler().fxsave(qword(rax))).toThrow(EncodeError);
    expect(() => new Assembler().lgdt(qword(rax))).toThrow(EncodeError);
  });
});
