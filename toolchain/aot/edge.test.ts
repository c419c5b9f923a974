// Per-opcode edge cases of the AOT compiler, each checked against V8: every integer binary and unary operator on edge
// values (with the right operand in a register and as an immediate, which take different code paths), INT_MIN / -1,
// shifts and rotates by ≥ the width, clz/ctz of 0, memory accesses at the bounds, br_table defaults and out-of-range
// indices, deep nesting, call_indirect traps, memory.grow past the maximum and the call-depth limit.
import { describe, expect, it } from "vitest";
import { Trap } from "./abi.ts";
import { HostInstance } from "./host.ts";
import { compareCall, describeMismatch, instantiateBoth } from "./testing/differential.ts";
import { I32, I64, ModuleBuilder, op } from "./testing/wasm-builder.ts";

const E32 = [0n, 1n, 2n, 3n, 31n, 32n, 33n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0xfffffffen, 0x12345678n, 0x80000001n];
const E64 = [0n, 1n, 2n, 63n, 64n, 65n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0xfffffffffffffffen, 0x123456789abcdef0n, 0xffffffffn, 0x100000000n];

function checkAll(wasm: Uint8Array, calls: { name: string; args: bigint[] }[]): void {
  const pair = instantiateBoth(wasm, {}, 4);
  try {
    const bad: string[] = [];
    for (const c of calls) {
      const m = compareCall(pair, c, 256);
      if (m) bad.push(describeMismatch(m));
    }
    expect(bad.slice(0, 10)).toEqual([]);
  } finally {
    pair.aot.dispose();
  }
}

describe("per-opcode edge values", () => {
  it("every i32/i64 binary operator and comparison, register and immediate right operands", () => {
    for (const [t, edges, binops] of [
      [I32, E32, [...range(0x46, 0x4f), ...range(0x6a, 0x78)]],
      [I64, E64, [...range(0x51, 0x5a), ...range(0x7c, 0x8a)]],
    ] as const) {
      const b = new ModuleBuilder();
      const calls: { name: string; args: bigint[] }[] = [];
      const res = (o: number) => ((o >= 0x46 && o <= 0x5a) ? I32 : t);
      const cst = (v: bigint) => (t === I64 ? op.i64(v) : op.i32(v));
      for (const o of binops) {
        b.func([t, t], [res(o)], [], [...op.get(0), ...op.get(1), o], `r${o}`);
        for (const x of edges) for (const y of edges) calls.push({ name: `r${o}`, args: [x, y] });
        edges.forEach((c, k) => {
          b.func([t], [res(o)], [], [...op.get(0), ...cst(c), o], `i${o}_${k}`);
          b.func([t], [res(o)], [], [...cst(c), ...op.get(0), o], `l${o}_${k}`);
          for (const x of edges) {
            calls.push({ name: `i${o}_${k}`, args: [x] });
            calls.push({ name: `l${o}_${k}`, args: [x] });
          }
        });
      }
      checkAll(b.build(), calls);
    }
  });

  it("unary operators and conversions on edge values", () => {
    const b = new ModuleBuilder();
    const calls: { name: string; args: bigint[] }[] = [];
    const un = [
      [I32, I32, [0x45, 0x67, 0x68, 0x69, 0xc0, 0xc1]], [I64, I32, [0x50, 0xa7]], [I64, I64, [0x79, 0x7a, 0x7b, 0xc2, 0xc3, 0xc4]],
      [I32, I64, [0xac, 0xad]],
    ] as const;
    for (const [pt, rt, ops] of un) {
      for (const o of ops) {
        b.func([pt], [rt], [], [...op.get(0), o], `u${o}`);
        for (const x of pt === I64 ? E64 : E32) calls.push({ name: `u${o}`, args: [x] });
      }
    }
    checkAll(b.build(), calls);
  });

  it("loads and stores of every width at the memory bounds, with offsets", () => {
    const b = new ModuleBuilder();
    b.setMemory(1, 1);
    const loads = [0x28, 0x29, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35];
    const stores = [[0x36, I32], [0x37, I64], [0x3a, I32], [0x3b, I32], [0x3c, I64], [0x3d, I64], [0x3e, I64]] as const;
    const calls: { name: string; args: bigint[] }[] = [];
    const addrs = [0n, 65528n, 65529n, 65532n, 65533n, 65534n, 65535n, 65536n, 0xfffffff0n, 0xffffffffn];
    for (const off of [0, 1, 8, 0x7fffffff, 0xffffffff]) {
      for (const o of loads) {
        const rt = o === 0x28 || (o >= 0x2c && o <= 0x2f) ? I32 : I64;
        b.func([I32], [rt], [], [...op.get(0), ...op.mem(o, off)], `ld${o}_${off}`);
        for (const a of addrs) calls.push({ name: `ld${o}_${off}`, args: [a] });
      }
      for (const [o, t] of stores) {
        b.func([I32, t], [], [], [...op.get(0), ...op.get(1), ...op.mem(o, off)], `st${o}_${off}`);
        for (const a of addrs) calls.push({ name: `st${o}_${off}`, args: [a, t === I64 ? 0x1122334455667788n : 0xa1b2c3d4n] });
      }
    }
    // Constant addresses: inside the initial memory the bounds check is dropped; at and past its end it must stay.
    for (const ca of [0, 65528, 65531, 65532, 65535, 65536, 0x7ffffffc, 0xfffffffc]) {
      for (const off of [0, 4, 8]) {
        b.func([], [I64], [], [...op.i32(ca), ...op.mem(0x29, off)], `cl${ca}_${off}`);
        b.func([I64], [], [], [...op.i32(ca), ...op.get(0), ...op.mem(0x37, off)], `cs${ca}_${off}`);
        b.func([], [], [], [...op.i32(ca), ...op.i32(-7), ...op.mem(0x3b, off)], `cc${ca}_${off}`);
        calls.push({ name: `cs${ca}_${off}`, args: [0x0102030405060708n] }, { name: `cl${ca}_${off}`, args: [] }, { name: `cc${ca}_${off}`, args: [] });
      }
    }
    // Constant values stored (immediate paths), including 64-bit constants that do not fit in 32 bits.
    b.func([I32], [], [], [...op.get(0), ...op.i64(-2n), ...op.mem(0x37, 0)], "stc1");
    b.func([I32], [], [], [...op.get(0), ...op.i64(0x123456789n), ...op.mem(0x37, 0)], "stc2");
    b.func([I32], [], [], [...op.get(0), ...op.i32(-1), ...op.mem(0x3a, 3)], "stc3");
    for (const n of ["stc1", "stc2", "stc3"]) for (const a of [0n, 100n, 65530n, 65535n]) calls.push({ name: n, args: [a] });
    checkAll(b.build(), calls);
  });

  it("bounds checks reused on a pinned local only where they still hold (after local.set and at joins they are redone)", () => {
    const b = new ModuleBuilder();
    b.setMemory(1, 1);
    // Same register, smaller end: the second check is dropped; a local.set makes the third access check again.
    b.func([I32], [I32], [], [
      ...op.get(0), ...op.mem(0x28, 16), ...op.get(0), ...op.mem(0x28, 0), 0x6a,
      ...op.get(0), ...op.i32(65530), 0x6a, ...op.set(0), ...op.get(0), ...op.mem(0x28, 0), 0x6a,
    ], "reuse");
    // A check made inside one arm of an if does not cover the access after the join.
    b.func([I32, I32], [I32], [], [
      ...op.get(1), 0x04, 0x40, ...op.get(0), ...op.mem(0x29, 100), 0x1a, ...op.end,
      ...op.get(0), ...op.mem(0x28, 0), ...op.get(0), ...op.mem(0x2d, 2), 0x6a,
    ], "join");
    // A tee'd address inside a loop: each iteration's access is checked against the new value.
    b.func([I32], [I32], [I32], [
      ...op.block(), ...op.loop(), ...op.get(0), ...op.mem(0x28, 0), ...op.get(1), 0x6a, ...op.set(1),
      ...op.get(0), ...op.i32(4096), 0x6a, ...op.tee(0), ...op.i32(70000), 0x49, ...op.brIf(0), ...op.end, ...op.end, ...op.get(1),
    ], "walk");
    const calls: { name: string; args: bigint[] }[] = [];
    for (const p of [0n, 4n, 6n, 7n, 65500n, 65512n, 65516n, 65520n, 65532n, 0xfffffff0n]) calls.push({ name: "reuse", args: [p] });
    for (const p of [0n, 65432n, 65436n, 65532n, 65533n, 65535n, 0xfffffff0n]) for (const c of [0n, 1n]) calls.push({ name: "join", args: [p, c] });
    for (const p of [0n, 1000n, 3000n, 65532n]) calls.push({ name: "walk", args: [p] });
    checkAll(b.build(), calls);
  });

  it("i64.const in minimal and padded LEB128 encodings of every length (decoder fast and slow paths)", () => {
    const b = new ModuleBuilder();
    const calls: { name: string; args: bigint[] }[] = [];
    const values = [0n, 1n, -1n, 63n, -64n, -65n, (1n << 48n) - 1n, 1n << 48n, -(1n << 48n) - 1n, 1n << 49n, -(1n << 55n), 1n << 62n, (1n << 63n) - 1n, -(1n << 63n), 0x123456789abcdefn, -0x7edcba987654321n];
    values.forEach((v, i) => {
      for (let pad = 0; pad < 10; pad++) {
        const e = sleb(v, pad);
        if (e.length > 10) break;
        b.func([], [I64], [], [0x42, ...e], `c${i}_${pad}`);
        calls.push({ name: `c${i}_${pad}`, args: [] });
      }
    });
    checkAll(b.build(), calls);
  });

  it("br_table: default, out-of-range and huge indices; deep nesting", () => {
    const b = new ModuleBuilder();
    const g = b.global(I32, true, -1);
    const body: number[] = [];
    const depth = 300;
    for (let i = 0; i < depth; i++) body.push(...op.block());
    body.push(...op.get(0), ...op.brTable([0, 1, 2, 5, 100, 299], 3));
    for (let i = 0; i < depth; i++) body.push(...op.end, ...op.i32(i), ...op.gset(g));
    b.func([I32], [I32], [], [...body, ...op.gget(g)], "table");
    // value-carrying br_table into a block with a result
    b.func([I32], [I64], [], [
      ...op.block(I64), ...op.block(I64), ...op.i64(7), ...op.get(0), ...op.brTable([0], 1), ...op.end, ...op.i64(5), 0x7c, ...op.end,
    ], "value");
    // A 200-entry table (binary search) with a value carried to one of several result blocks.
    const big: number[] = [...op.block(I32), ...op.block(I32), ...op.block(I32), ...op.i32(5), ...op.get(0)];
    big.push(...op.brTable(Array.from({ length: 200 }, (_, i) => (i * 7) % 3), 2));
    big.push(...op.end, ...op.i32(100), 0x6a, ...op.end, ...op.i32(1000), 0x6a, ...op.end);
    b.func([I32], [I32], [], big, "big");
    const calls = [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 100n, 198n, 199n, 200n, 201n, 1000n, 0x7fffffffn, 0x80000000n, 0xffffffffn].flatMap((i) => [
      { name: "big", args: [i] },
      { name: "table", args: [i] }, { name: "value", args: [i] },
    ]);
    checkAll(b.build(), calls);
  });

  it("call_indirect: in range, null entry, signature mismatch, out of range", () => {
    const b = new ModuleBuilder();
    const t = b.type([I32], [I32]);
    const f0 = b.func([I32], [I32], [], [...op.get(0), ...op.i32(1), 0x6a]);
    const f1 = b.func([I64], [I64], [], [...op.get(0)]);
    b.setTable(4);
    b.elem(0, [f0, f1]);
    b.func([I32, I32], [I32], [], [...op.get(1), ...op.get(0), ...op.callIndirect(t)], "ci");
    const pair = instantiateBoth(b.build(), {}, 1);
    try {
      const codes = [0n, 1n, 2n, 3n, 4n, 0xffffffffn].map((i) => pair.aot.call("ci", [i, 41n]));
      expect(codes.map((c) => c.trap)).toEqual([0, Trap.SignatureMismatch, Trap.NullFunction, Trap.NullFunction, Trap.TableOutOfBounds, Trap.TableOutOfBounds]);
      expect(codes[0]!.value).toBe(42n);
      for (const i of [0n, 1n, 2n, 4n, 0xffffffffn]) expect(compareCall(pair, { name: "ci", args: [i, 41n] })).toBeNull();
    } finally {
      pair.aot.dispose();
    }
  });

  it("memory.grow up to the maximum, then -1; grown pages are zero and addressable", () => {
    const b = new ModuleBuilder();
    b.setMemory(1, 3);
    b.func([I32], [I32], [], [...op.get(0), 0x40, 0], "grow");
    b.func([I32], [I32], [], [...op.get(0), ...op.mem(0x28, 0)], "ld");
    b.func([I32, I32], [], [], [...op.get(0), ...op.get(1), ...op.mem(0x36, 0)], "st");
    const calls = [
      { name: "ld", args: [70000n] }, { name: "grow", args: [0n] }, { name: "grow", args: [1n] }, { name: "ld", args: [70000n] },
      { name: "st", args: [131068n, 7n] }, { name: "st", args: [131069n, 7n] }, { name: "grow", args: [5n] }, { name: "grow", args: [0xffffffffn] },
      { name: "grow", args: [1n] }, { name: "grow", args: [1n] }, { name: "st", args: [196604n, 9n] }, { name: "ld", args: [196604n] },
    ];
    checkAll(b.build(), calls);
    // The embedder's own maximum (here 2 pages) caps growth below the module's maximum.
    const inst = new HostInstance(b.build(), {}, { maxPages: 2 });
    try {
      expect([1n, 1n, 0n].map((d) => inst.call("grow", [d]).value)).toEqual([1n, 0xffffffffn, 2n]);
    } finally {
      inst.dispose();
    }
  });

  it("unbounded recursion traps with the call-depth limit and the host survives", () => {
    const b = new ModuleBuilder();
    b.func([I32], [I32], [], [...op.get(0), ...op.i32(1), 0x6a, ...op.call(0)], "down");
    b.func([I32], [I32], [], [...op.get(0), ...op.i32(1), 0x6a], "ok");
    const inst = new HostInstance(b.build());
    try {
      for (let i = 0; i < 3; i++) {
        expect(inst.call("down", [0]).trap).toBe(Trap.StackOverflow);
        expect(inst.call("ok", [41]).value).toBe(42n);
      }
    } finally {
      inst.dispose();
    }
    const pair = instantiateBoth(b.build());
    try {
      expect(compareCall(pair, { name: "down", args: [0n] })).toBeNull();
    } finally {
      pair.aot.dispose();
    }
  });

  it("unreachable, select on every type, globals, start function", () => {
    const b = new ModuleBuilder();
    b.setMemory(1, 1);
    const g64 = b.global(I64, true, -5n);
    const gi = b.global(I32, false, 0x7fffffff);
    b.func([I32], [I32], [], [...op.get(0), ...op.if(), 0x00, ...op.end, ...op.i32(3)], "unr");
    b.func([I64, I64, I32], [I64], [], [...op.get(0), ...op.get(1), ...op.get(2), 0x1b], "sel64");
    b.func([I32], [I32], [], [...op.i32(-1), ...op.i32(0), ...op.get(0), 0x1c, 1, I32], "selc");
    b.func([I64], [I64], [], [...op.gget(g64), ...op.get(0), 0x7c, ...op.gset(g64), ...op.gget(g64)], "acc");
    b.func([], [I32], [], [...op.gget(gi)], "imm");
    const st = b.func([], [], [], [...op.i32(8), ...op.i64(-1n), ...op.mem(0x37, 0)]);
    b.start(st);
    b.func([], [I64], [], [...op.i32(8), ...op.mem(0x29, 0)], "seed");
    const calls = [
      { name: "unr", args: [0n] }, { name: "unr", args: [1n] }, { name: "sel64", args: [1n, 2n, 0n] }, { name: "sel64", args: [1n, 2n, 5n] },
      { name: "selc", args: [0n] }, { name: "selc", args: [9n] }, { name: "acc", args: [5n] }, { name: "acc", args: [2n ** 64n - 1n] },
      { name: "imm", args: [] }, { name: "seed", args: [] },
    ];
    checkAll(b.build(), calls);
  });

  it("non-hw imports are System V calls to embedder functions (six arguments, i32 and i64, misaligned caller stack)", () => {
    const b = new ModuleBuilder();
    b.importFunc("env", "mix", [I32, I64, I32, I64, I32, I64], [I64]);
    b.importFunc("env", "note", [I32], []);
    // Non-linear in its arguments, so it sees whether they arrive as unsigned values (koffi hands a uint64_t at or
    // above 2^63 over as negative, which a sum modulo 2^64 cannot notice).
    b.importFunc("env", "top", [I64, I32], [I64]);
    // Called at different stack depths so the 16-byte realignment is exercised both ways.
    b.func([I32, I64], [I64], [], [
      ...op.get(0), ...op.call(1),
      ...op.get(0), ...op.get(1), ...op.i32(3), ...op.i64(-4n), ...op.i32(-5), ...op.get(1), ...op.call(0),
      ...op.i64(1n), ...op.get(0), ...op.get(1), ...op.i32(7), ...op.i64(8n), ...op.i32(9), ...op.i64(10n), ...op.call(0), 0x7c, 0x7c,
    ], "f");
    // Four hot locals (all pinned, r10 included) live across an import call.
    const use4 = [...op.get(0), ...op.get(1), 0x7c, ...op.get(2), 0x7c, ...op.get(3), 0x7c];
    b.func([I64, I64, I64, I64], [I64], [], [
      ...op.get(3), ...op.get(0), 0x7c, ...op.set(3), ...op.get(2), ...op.i64(9n), 0x7e, ...op.set(2),
      ...use4, ...op.i32(1), ...op.get(0), ...op.i32(2), ...op.get(1), ...op.i32(3), ...op.get(2), ...op.call(0), 0x7c,
      ...op.i32(4), ...op.call(1), ...use4, 0x7e, ...op.get(3), 0x85,
    ], "g");
    b.func([I64, I32], [I64], [], [...op.get(0), ...op.get(1), ...op.call(2)], "h");
    const seen: bigint[] = [];
    const imports = {
      env: {
        mix: (a: bigint, b2: bigint, c: bigint, d: bigint, e: bigint, f: bigint) =>
          BigInt.asUintN(64, a * 3n + b2 * 5n - c * 7n + d * 11n + e * 13n - BigInt.asIntN(64, f) * 17n),
        note: (x: bigint) => void seen.push(x),
        top: (x: bigint, y: bigint) => (x >> 56n) | ((y >> 24n) << 8n),
      },
    };
    const pair = instantiateBoth(b.build(), imports);
    try {
      for (const [x, y] of [[0n, 0n], [1n, 2n], [0xffffffffn, 0xffffffffffffffffn], [0x80000000n, 0x8000000000000000n]] as const) {
        const m = compareCall(pair, { name: "f", args: [x, y] });
        expect(m && describeMismatch(m)).toBeNull();
      }
      for (const args of [[1n, 2n, 3n, 4n], [2n ** 64n - 1n, 5n, 2n ** 63n, 7n]]) {
        const m = compareCall(pair, { name: "g", args });
        expect(m && describeMismatch(m)).toBeNull();
      }
      for (const args of [[2n ** 64n - 1n, 2n ** 32n - 1n], [2n ** 63n, 2n ** 31n], [2n ** 63n - 1n, 2n ** 31n - 1n], [5n, 6n]]) {
        const m = compareCall(pair, { name: "h", args });
        expect(m && describeMismatch(m)).toBeNull();
      }
      expect(pair.aot.call("h", [2n ** 64n - 1n, 2n ** 32n - 1n]).value).toBe(0xffffn);
      expect(seen.length).toBe(12);
    } finally {
      pair.aot.dispose();
    }
  });

  it("Microsoft x64 entry thunks (the image's UEFI convention) agree with the System V ones, traps included", () => {
    const b = new ModuleBuilder();
    b.setMemory(1, 1);
    b.func([I32, I64, I32, I64, I32], [I64], [], [
      ...op.get(0), 0xad, ...op.get(1), 0x7e, ...op.get(2), 0xac, 0x7c, ...op.get(3), 0x85, ...op.get(4), ...op.mem(0x28, 0), 0xad, 0x7c,
    ], "f");
    const inst = new HostInstance(b.build(), {}, { msThunks: true });
    try {
      expect(inst.compiled.exports[0]!.msThunk).toBeGreaterThan(0);
      expect(inst.compiled.object.symbols.some((x) => x.name === "wasm.ms.f" && x.global)).toBe(true);
      for (const args of [[3n, 5n, 7n, 9n, 0n], [0xffffffffn, 2n ** 64n - 1n, 0x80000000n, 1n, 65532n], [1n, 1n, 1n, 1n, 65533n]]) {
        const sysv = inst.call("f", args);
        const ms = inst.call("f", args, "ms");
        expect(ms).toEqual(sysv);
      }
      expect(inst.call("f", [1n, 1n, 1n, 1n, 65533n], "ms").trap).toBe(Trap.MemoryOutOfBounds);
    } finally {
      inst.dispose();
    }
  });

  it("register pressure: expressions deeper than the register file spill and reload correctly", () => {
    const b = new ModuleBuilder();
    const body: number[] = [];
    const n = 40;
    for (let i = 0; i < n; i++) body.push(...op.get(0), ...op.i64(i * 7919), 0x7c);
    for (let i = 0; i < n - 1; i++) body.push(i % 2 ? 0x85 : 0x7e);
    b.func([I64], [I64], [], body, "deep");
    checkAll(b.build(), E64.map((x) => ({ name: "deep", args: [x] })));
  });
});

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** Signed LEB128 of v, padded with `pad` redundant continuation bytes (valid wasm, longer than minimal). */
function sleb(v: bigint, pad: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const last = (v === 0n && !(byte & 0x40)) || (v === -1n && (byte & 0x40) !== 0);
    if (last && pad-- <= 0) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}
