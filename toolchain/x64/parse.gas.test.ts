// Oracle test of the text front end and of branch relaxation: a generated program full of forward and backward
// jmp/jcc/call, RIP-relative references (with immediates after the displacement), gaps around the short-branch limits
// and alignment, assembled by `parseAsm` and by GNU as (one run), compared byte for byte. Plus syntax error positions.
import { describe, expect, it } from "vitest";
import { GAS_PROLOGUE, gasAssemble, hex } from "./gas.ts";
import { AsmSyntaxError, parseAsm } from "./parse.ts";
import { xorshift32 } from "./samples.ts";

/** Uniform in [0, 1), reproducible from the seed. */
function rng(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 4294967296;
}

const CCS = ["e", "ne", "l", "ge", "b", "ae", "o", "s", "np", "g", "le", "a", "be", "z", "nz", "c"];

function program(seed: number, lines: number): string {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const nLabels = Math.floor(lines / 6);
  const out: string[] = [];
  let next = 0;
  const target = () => `L${Math.floor(r() * nLabels)}`;
  // Boundary cases: exact short-branch limits in both directions.
  for (let d = 120; d <= 136; d++) {
    out.push(`  jmp F${d}`, `  .skip ${d}`, `F${d}:`, `B${d}:`, `  .skip ${d}`, `  jne B${d}`, `  j${CCS[d % 16]} F${d}b`, `  .skip ${d - 4}`, `F${d}b:`);
  }
  for (let i = 0; i < lines; i++) {
    const k = r();
    if (k < 0.15 && next < nLabels) out.push(`L${next++}:`);
    else if (k < 0.3) out.push(`  jmp ${target()}`);
    else if (k < 0.5) out.push(`  j${pick(CCS)} ${target()}`);
    else if (k < 0.55) out.push(`  call ${target()}`);
    else if (k < 0.6) out.push(`  lea rax, [rip+${target()}]`);
    else if (k < 0.63) out.push(`  mov dword ptr [rip+${target()}+4], 0x12345`);
    else if (k < 0.66) out.push(`  cmp byte ptr [rip+${target()}-2], 7`);
    else if (k < 0.7) out.push(`  .skip ${pick([1, 3, 40, 100, 125, 126, 127, 128, 129, 130, 250])}`);
    else if (k < 0.72) out.push(`  .balign ${pick([4, 8, 16, 32])}, 0xcc`);
    else if (k < 0.85) out.push(`  add ${pick(["rax", "ecx", "r9", "bl"])}, ${Math.floor(r() * 200)}`);
    else out.push(`  mov ${pick(["rax", "r12", "rsi"])}, qword ptr [${pick(["rsp", "rbp", "r13", "rbx+rcx*8"])}+${Math.floor(r() * 300)}]`);
  }
  while (next < nLabels) out.push(`L${next++}:`);
  out.push("  ret");
  return GAS_PROLOGUE + out.join("\n") + "\n";
}

describe("uvt asm text front end vs GNU as", () => {
  it("relaxes branches and resolves RIP-relative references exactly like GNU as", () => {
    const src = program(20260521, 12000);
    const gas = gasAssemble(src);
    const ours = parseAsm(src, "relax.s").asm.finish();
    const text = ours.sections[0]!.bytes;
    expect(ours.relocations).toEqual([]);
    if (hex(text) !== hex(gas.bytes)) {
      let i = 0;
      while (i < text.length && text[i] === gas.bytes[i]) i++;
      throw new Error(`first difference at 0x${i.toString(16)} (ours ${text.length} bytes, as ${gas.bytes.length}):\n as:   ${hex(gas.bytes.subarray(i - 8, i + 16))}\n ours: ${hex(text.subarray(i - 8, i + 16))}`);
    }
    // Enough of the branches must have gone each way for the test to mean something.
    const shortJumps = (src.match(/\bj[a-z]+ /g) ?? []).length;
    expect(shortJumps).toBeGreaterThan(3000);
  });

  it("reports syntax and encoding errors with file, line and column", () => {
    const cases: [string, RegExp][] = [
      ["nop\n  mov eax, [rbx+\n", /^t\.s:2:17: expected a number/],
      ["  add al, 300\n", /^t\.s:1:3: add al, 300: immediate 300 does not fit/],
      ["  mov qword ptr [rax], qword ptr [rbx]\n", /^t\.s:1:3: .*memory-to-memory/],
      ["x:\nx:\n", /^t\.s:2:1: label 'x' is defined twice/],
      ["  frob eax\n", /^t\.s:1:3: unknown instruction 'frob'/],
      ["  mov eax, [rbx*3]\n", /^t\.s:1:\d+: scale 3 is not 1, 2, 4 or 8/],
      ["  .bogus 1\n", /^t\.s:1:3: unknown directive '\.bogus'/],
      ["  mov ah, sil\n", /^t\.s:1:3: .*ah\/bh\/ch\/dh cannot be used/],
      ["  lock mov dword ptr [rax], 1\n", /^t\.s:1:3: lock mov dword ptr \[rax\], 1: lock needs/],
      ["  mov eax, ebx ebx\n", /^t\.s:1:\d+: unexpected 'ebx'/],
    ];
    for (const [src, re] of cases) {
      let msg = "no error";
      try {
        parseAsm(src, "t.s");
      } catch (e) {
        expect(e).toBeInstanceOf(AsmSyntaxError);
        msg = (e as Error).message;
      }
      expect(msg).toMatch(re);
    }
  });
});
