// Native execution tests: functions generated with the typed assembler run on the host CPU through native.ts (koffi),
// checked against BigInt models of x86 semantics: arithmetic, flag-dependent branches (jcc/setcc/cmovcc across signed
// and unsigned edge values), memory addressing forms, string instructions with rep, linking two sections.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Assembler } from "./assembler.ts";
import { type Condition, CONDITIONS } from "./forms.ts";
import { link } from "./link.ts";
import { ExecRegion, HostBuffer, runNative } from "./native.ts";
import { addr, byte, dword, qword, word } from "./operands.ts";
import {
  al, cl, eax, ecx, edi, edx, r10, r11, r12, r13, r8, r8d, r9, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp,
} from "./registers.ts";

const U = (v: bigint) => BigInt.asUintN(64, v);
const S = (v: bigint) => BigInt.asIntN(64, v);
const EDGES = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x7fffffffffffffffn, 0x8000000000000000n,
  0xffffffffffffffffn, 0xfffffffffffffffen, 0x123456789abcdef0n];

/** Assembles functions into one region; returns a caller by function index. */
function build(fns: ((a: Assembler) => void)[]): { call: (i: number, ...args: bigint[]) => bigint; dispose: () => void } {
  const a = new Assembler();
  const starts = fns.map((f) => {
    a.align(16);
    const l = a.here();
    f(a);
    return l;
  });
  const obj = a.finish();
  const region = new ExecRegion(obj.sections[0]!.bytes.length).load(obj.sections[0]!.bytes);
  return { call: (i, ...args) => region.call(a.labelOffset(starts[i]!), ...args), dispose: () => region.dispose() };
}

function condHolds(cc: number, x: bigint, y: bigint): boolean {
  const r = U(x - y);
  const sx = S(x), sy = S(y);
  const of = S(sx - sy) !== sx - sy;
  const sf = r >> 63n === 1n;
  const zf = r === 0n;
  const cf = U(x) < U(y);
  let pf = true;
  for (let b = r & 0xffn; b; b >>= 1n) if (b & 1n) pf = !pf;
  const base = [of, cf, zf, cf || zf, sf, pf, sf !== of, zf || sf !== of][cc >> 1]!;
  return cc & 1 ? !base : base;
}

describe("native execution of generated code", () => {
  it("computes arithmetic like the BigInt model", () => {
    const ops: [string, (a: Assembler) => void, (x: bigint, y: bigint) => bigint | null][] = [
      ["add", (a) => a.mov(rax, rdi).add(rax, rsi), (x, y) => U(x + y)],
      ["sub", (a) => a.mov(rax, rdi).sub(rax, rsi), (x, y) => U(x - y)],
      ["imul2", (a) => a.mov(rax, rdi).imul(rax, rsi), (x, y) => U(S(x) * S(y))],
      ["imul3", (a) => a.imul(rax, rdi, -7), (x) => U(S(x) * -7n)],
      ["mul-high", (a) => a.mov(rax, rdi).mul(rsi).mov(rax, rdx), (x, y) => (x * y) >> 64n],
      ["div", (a) => a.mov(rax, rdi).xor(edx, edx).div(rsi), (x, y) => (y === 0n ? null : x / y)],
      ["idiv-rem", (a) => a.mov(rax, rdi).cqo().idiv(rsi).mov(rax, rdx), (x, y) => {
        if (y === 0n || (S(x) === -(1n << 63n) && S(y) === -1n)) return null;
        return U(S(x) % S(y));
      }],
      ["neg-not-xor", (a) => a.mov(rax, rdi).neg(rax).not(rax).xor(rax, rsi), (x, y) => U(~U(-x)) ^ y],
      ["shl-cl", (a) => a.mov(rax, rdi).mov(rcx, rsi).shl(rax, cl), (x, y) => U(x << (y & 63n))],
      ["sar-cl", (a) => a.mov(rax, rdi).mov(rcx, rsi).sar(rax, cl), (x, y) => U(S(x) >> (y & 63n))],
      ["shr-imm", (a) => a.mov(rax, rdi).shr(rax, 13), (x) => x >> 13n],
      ["rol-imm", (a) => a.mov(rax, rdi).rol(rax, 17), (x) => U((x << 17n) | (x >> 47n))],
      ["adc", (a) => a.mov(rax, rdi).add(rax, rsi).mov(eax, 0).adc(rax, 0), (x, y) => (x + y) >> 64n],
      ["shld", (a) => a.mov(rax, rdi).shld(rax, rsi, 12), (x, y) => U((x << 12n) | (y >> 52n))],
      ["movsx32", (a) => a.movsxd(rax, edi), (x) => U(BigInt.asIntN(32, x))],
      ["movzx8", (a) => a.movzx(eax, byte(rsp, -8)).mov(qword(rsp, -8), rdi).movzx(eax, byte(rsp, -8)), (x) => x & 0xffn],
      ["bswap", (a) => a.mov(rax, rdi).bswap(rax), (x) => BigInt(`0x${x.toString(16).padStart(16, "0").match(/../g)!.reverse().join("")}`)],
      ["bsr", (a) => a.mov(rax, -1).bsr(rax, rdi), (x) => (x === 0n ? U(-1n) : BigInt(x.toString(2).length - 1))],
      ["xadd", (a) => a.mov(qword(rsp, -8), rdi).mov(rax, rsi).xadd(qword(rsp, -8), rax).add(rax, qword(rsp, -8)), (x, y) => U(x + x + y)],
      ["cmpxchg", (a) => a.mov(qword(rsp, -8), rdi).mov(rax, rdi).mov(rcx, rsi).lock().cmpxchg(qword(rsp, -8), rcx).mov(rax, qword(rsp, -8)), (_x, y) => y],
    ];
    const cpu = readFileSync("/proc/cpuinfo", "utf8");
    if (/\babm\b/.test(cpu)) ops.push(["lzcnt", (a) => a.lzcnt(rax, rdi), (x) => BigInt(64 - (x === 0n ? 0 : x.toString(2).length))]);
    if (/\bbmi1\b/.test(cpu)) ops.push(["tzcnt", (a) => a.tzcnt(rax, rdi), (x) => (x === 0n ? 64n : BigInt(x.toString(2).length - x.toString(2).lastIndexOf("1") - 1))]);
    if (/\bpopcnt\b/.test(cpu)) ops.push(["popcnt", (a) => a.popcnt(rax, rdi), (x) => BigInt([...x.toString(2)].filter((c) => c === "1").length)]);
    const fns = build(ops.map(([, f]) => (a: Assembler) => (f(a), a.ret())));
    const bad: string[] = [];
    ops.forEach(([name, , model], i) => {
      for (const x of EDGES) for (const y of EDGES) {
        const want = model(x, y);
        if (want === null) continue;
        const got = fns.call(i, x, y);
        if (got !== want) bad.push(`${name}(0x${x.toString(16)}, 0x${y.toString(16)}) = 0x${got.toString(16)}, want 0x${want.toString(16)}`);
      }
    });
    fns.dispose();
    expect(bad.slice(0, 20)).toEqual([]);
  });

  it("takes flag-dependent branches, setcc and cmovcc like the flag model (signed and unsigned edges)", () => {
    const ccs = [...CONDITIONS.entries()];
    const fns: ((a: Assembler) => void)[] = [];
    for (const [cc] of ccs) {
      const c = cc as Condition;
      fns.push((a) => a.cmp(rdi, rsi).setcc(c, al).movzx(eax, al).ret());
      fns.push((a) => {
        const yes = a.label();
        a.cmp(rdi, rsi).jcc(c, yes).mov(eax, 0).ret().bind(yes).mov(eax, 1).ret();
      });
      fns.push((a) => {
        // A far-away target forces the near form of jcc as well.
        const yes = a.label();
        a.cmp(rdi, rsi).jcc(c, yes).mov(eax, 0).ret().nops(200).bind(yes).mov(eax, 1).ret();
      });
      fns.push((a) => a.xor(eax, eax).mov(ecx, 1).cmp(rdi, rsi).cmovcc(c, eax, ecx).ret());
    }
    const f = build(fns);
    const bad: string[] = [];
    ccs.forEach(([cc, n], k) => {
      for (const x of EDGES) for (const y of EDGES) {
        const want = condHolds(n, x, y) ? 1n : 0n;
        for (let v = 0; v < 4; v++) {
          const got = f.call(k * 4 + v, x, y);
          if (got !== want) bad.push(`${["set", "j short", "j near", "cmov"][v]}${cc}(0x${x.toString(16)}, 0x${y.toString(16)}) = ${got}`);
        }
      }
    });
    f.dispose();
    expect(bad.slice(0, 20)).toEqual([]);
  });

  it("addresses memory through base, index, scale and displacement forms (rsp/r12/rbp/r13 included)", () => {
    const buf = new HostBuffer(4096);
    for (let i = 0; i < 512; i++) buf.view.setBigUint64(i * 8, BigInt(i) * 0x0101010101n, true);
    // Each function: rdi = buffer, rsi = index; returns a loaded value computed through one addressing form.
    const K = 0x0101010101n;
    const forms: [string, (a: Assembler) => void, (i: bigint) => bigint][] = [
      ["[r12+rsi*8+16]", (a) => a.push(r12).mov(r12, rdi).mov(rax, qword({ base: r12, index: rsi, scale: 8, disp: 16 })).pop(r12), (i) => (i + 2n) * K],
      ["[r13]", (a) => a.push(r13).lea(r13, qword({ base: rdi, index: rsi, scale: 8 })).mov(rax, qword(r13)).pop(r13), (i) => i * K],
      ["[rbp-8] frame", (a) => a.push(rbp).mov(rbp, rsp).sub(rsp, 16).mov(qword(rbp, -8), rsi).mov(rax, qword(rbp, -8)).leave(), (i) => i],
      ["[rsp+r8*2]", (a) => a.sub(rsp, 32).mov(qword(rsp, 8), rsi).mov(r8d, 4).mov(rax, qword({ base: rsp, index: r8, scale: 2 })).add(rsp, 32), (i) => i],
      ["[r9*4] no base", (a) => a.mov(r9, rdi).shr(r9, 2).lea(r10, qword({ index: r9, scale: 4, disp: 0 })).mov(rax, qword({ base: r10, index: rsi, scale: 8, disp: 1024 })), (i) => (i + 128n) * K],
      ["[r11-128]+[r11+120]", (a) => a.lea(r11, qword(rdi, 1024)).mov(rax, qword(r11, -128)).add(rax, qword(r11, 120)), () => (112n + 143n) * K],
      ["[rdi+2048]+[rdi+136]", (a) => a.mov(rax, qword(rdi, 2048)).add(rax, qword(rdi, 136)), () => (256n + 17n) * K],
      ["word/dword sizes", (a) => a.movzx(eax, word(rdi, 8 * 3)).mov(edx, dword(rdi, 8 * 5)).add(rax, rdx), () => ((3n * K) & 0xffffn) + ((5n * K) & 0xffffffffn)],
    ];
    const f = build(forms.map(([, g]) => (a: Assembler) => (g(a), a.ret())));
    const bad: string[] = [];
    forms.forEach(([name, , model], k) => {
      for (const i of [0n, 1n, 5n, 100n, 200n]) {
        const want = model(i);
        const got = f.call(k, buf.address, i);
        if (got !== want) bad.push(`${name} i=${i}: 0x${got.toString(16)} want 0x${want.toString(16)}`);
      }
    });
    // A store through [rdi+rsi*4+disp] is visible to the host.
    const st = build([(a) => a.mov(dword({ base: rdi, index: rsi, scale: 4, disp: 12 }), 0x5eed).ret()]);
    st.call(0, buf.address, 7n);
    expect(buf.view.getUint32(12 + 28, true)).toBe(0x5eed);
    f.dispose();
    st.dispose();
    buf.dispose();
    expect(bad).toEqual([]);
  });

  it("runs string instructions with rep prefixes", () => {
    const buf = new HostBuffer(8192);
    const src = 0, dst = 4096;
    for (let i = 0; i < 1000; i++) buf.bytes[src + i] = (i * 7 + 3) & 0xff;
    const f = build([
      (a) => a.mov(rcx, rdx).rep().movsb().mov(rax, rdi).ret(), // memcpy(dst, src, n) → end of dst
      (a) => a.mov(rax, rsi).mov(rcx, rdx).rep().stosq().ret(), // fill qwords
      (a) => a.mov(rcx, -1).xor(eax, eax).repne().scasb().mov(rax, -2).sub(rax, rcx).ret(), // strlen
      (a) => a.mov(rcx, rdx).xor(eax, eax).repe().cmpsb().setne(al).ret(), // memcmp != 0
      (a) => a.mov(rcx, rdx).mov(rbx, rbx).lodsb().ret(), // one lodsb
    ]);
    const base = buf.address;
    expect(f.call(0, base + BigInt(dst), base + BigInt(src), 1000n)).toBe(base + BigInt(dst + 1000));
    expect(Buffer.compare(Buffer.from(buf.bytes.subarray(dst, dst + 1000)), Buffer.from(buf.bytes.subarray(src, src + 1000)))).toBe(0);
    f.call(1, base + BigInt(dst), 0x1122334455667788n, 10n);
    for (let i = 0; i < 10; i++) expect(buf.view.getBigUint64(dst + i * 8, true)).toBe(0x1122334455667788n);
    buf.bytes.fill(0x41, src, src + 37);
    buf.bytes[src + 37] = 0;
    expect(f.call(2, base + BigInt(src))).toBe(37n);
    buf.bytes.set(buf.bytes.subarray(src, src + 100), dst);
    expect(f.call(3, base + BigInt(dst), base + BigInt(src), 100n)).toBe(0n);
    buf.bytes[dst + 60] ^= 1;
    expect(f.call(3, base + BigInt(dst), base + BigInt(src), 100n)).toBe(1n);
    expect(f.call(4, 0n, base + BigInt(src), 0n) & 0xffn).toBe(0x41n);
    f.dispose();
    buf.dispose();
  });

  it("links .text and .data at the region's address: RIP-relative loads, abs64 and a cross-section call", () => {
    const a = new Assembler();
    const table = a.label("table");
    const helper = a.label("helper");
    const entry = a.here("entry");
    a.lea(rcx, qword(table)).mov(rax, qword(rcx, 8)).add(rax, qword(table, 16)); // 20 + 30
    a.mov(rdx, addr(table, 8)).add(rax, qword(rdx)); // + 20 via abs64
    a.mov(rdx, qword(table, 24)).add(rax, qword(rdx)); // + 10 via a dq addr() in data
    a.call(helper).ret();
    a.section(".data");
    a.bind(table).dq(10, 20, 30, addr(table));
    a.section(".tail", "text");
    a.bind(helper).add(rax, 1000).ret();
    const obj = a.finish();
    expect(obj.relocations.map((r) => r.kind).sort()).toEqual(["abs64", "abs64", "rel32", "rel32", "rel32", "rel32"]);
    const sizes = obj.sections.map((s) => s.bytes.length);
    const region = new ExecRegion(4096);
    const bases = [region.address, region.address + 1024n, region.address + 2048n];
    const linked = link(obj, bases);
    expect(linked.abs64.length).toBe(2);
    const image = new Uint8Array(3072);
    linked.sections.forEach((b, i) => image.set(b, i * 1024));
    region.load(image);
    expect(region.call(a.labelOffset(entry))).toBe(1080n);
    region.dispose();
    expect(sizes.every((n) => n < 1024)).toBe(true);
    expect(runNative(new Uint8Array([0x48, 0x8d, 0x04, 0x37, 0xc3]), 40n, 2n)).toBe(42n); // lea rax, [rdi+rsi]
  });

  it("native.ts: six System V arguments, number or bigint, and misuse errors", () => {
    const a = new Assembler();
    a.mov(rax, rdi).add(rax, rsi).add(rax, rdx).add(rax, rcx).add(rax, r8).add(rax, r9).ret();
    const code = a.finish().sections[0]!.bytes;
    expect(runNative(code, 1, 2, 3n, 4, 5n, -1)).toBe(14n);
    const r = new ExecRegion(code.length);
    expect(() => r.call(0)).toThrow(/load\(\) the code first/);
    r.load(code);
    expect(() => r.load(code)).toThrow(/already loaded/);
    expect(() => r.call(0, 1, 2, 3, 4, 5, 6, 7)).toThrow(/at most 6/);
    expect(r.call(0, 0xffffffffffffffffn, 1)).toBe(0n);
    r.dispose();
    expect(() => r.call(0)).toThrow(/dispose/);
    expect(() => new ExecRegion(4).load(new Uint8Array(5))).toThrow(/do not fit/);
  });
});
