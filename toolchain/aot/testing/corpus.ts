// A corpus of small hand-written test modules for the AOT differential tests: real algorithms (recursion, loops
// over memory, hashing, sorting, dispatch through tables, switch via br_table, globals, data segments, a start
// function) whose exports the tests call with random arguments in V8 and natively.
import { I32, I64, ModuleBuilder, op } from "./wasm-builder.ts";

export interface CorpusModule {
  name: string;
  wasm: Uint8Array;
}

const [ADD, SUB, MUL] = [0x6a, 0x6b, 0x6c];
const [LT_S, LT_U, EQZ] = [0x48, 0x49, 0x45];

function algorithms(): Uint8Array {
  const b = new ModuleBuilder();
  b.setMemory(1, 4);
  b.data(16, [...new TextEncoder().encode("hello, ultravisor")]);
  const counter = b.global(I32, true, 0, "counter");
  // fib(n) recursive, capped to keep calls short.
  const fib = 0;
  b.func([I32], [I32], [], [
    ...op.get(0), ...op.i32(2), LT_S, ...op.if(I32), ...op.get(0), ...op.else,
    ...op.get(0), ...op.i32(1), SUB, ...op.call(fib), ...op.get(0), ...op.i32(2), SUB, ...op.call(fib), ADD, ...op.end,
  ]);
  b.func([I32], [I32], [], [...op.get(0), ...op.i32(20), 0x70 /* rem_u */, ...op.call(fib)], "fib");
  // sum of 1..n in i64 with a loop (n masked to 16 bits).
  b.func([I32], [I64], [I64, I32], [
    ...op.get(0), ...op.i32(0xffff), 0x71, ...op.set(2),
    ...op.block(), ...op.loop(), ...op.get(2), EQZ, ...op.brIf(1),
    ...op.get(1), ...op.get(2), 0xad, 0x7c, ...op.set(1),
    ...op.get(2), ...op.i32(1), SUB, ...op.set(2), ...op.br(0), ...op.end, ...op.end, ...op.get(1),
  ], "sum");
  // FNV-1a over memory[ptr, ptr+len): traps when the range leaves memory.
  b.func([I32, I32], [I32], [I32, I32], [
    ...op.i32(0x811c9dc5), ...op.set(2), ...op.get(0), ...op.get(1), 0x71, ...op.set(1), ...op.get(0), ...op.i32(0xfff), 0x71, ...op.set(0),
    ...op.block(), ...op.loop(), ...op.get(3), ...op.get(1), 0x4f /* ge_u */, ...op.brIf(1),
    ...op.get(2), ...op.get(0), ...op.get(3), ADD, ...op.mem(0x2d, 0), 0x73, ...op.i32(0x01000193), MUL, ...op.set(2),
    ...op.get(3), ...op.i32(1), ADD, ...op.set(3), ...op.br(0), ...op.end, ...op.end, ...op.get(2),
  ], "fnv");
  // Fill memory[base..base+4n) with an LCG, then insertion-sort it as u32; returns the first element.
  b.func([I32, I32], [I32], [I32, I32, I32, I32], [
    ...op.get(1), ...op.i32(63), 0x71, ...op.set(1),
    ...op.get(0), ...op.i32(0xfff0), 0x71, ...op.i32(1024), ADD, ...op.set(0),
    ...op.block(), ...op.loop(), ...op.get(2), ...op.get(1), 0x4f, ...op.brIf(1),
    ...op.get(0), ...op.get(2), ...op.i32(2), 0x74, ADD,
    ...op.get(5), ...op.i32(1103515245), MUL, ...op.i32(12345), ADD, ...op.get(2), 0x73, ...op.tee(5), ...op.mem(0x36, 0, 2),
    ...op.get(2), ...op.i32(1), ADD, ...op.set(2), ...op.br(0), ...op.end, ...op.end,
    // insertion sort: for i in 1..n: j = i; while j>0 && a[j-1] > a[j]: swap; j--
    ...op.i32(1), ...op.set(2),
    ...op.block(), ...op.loop(), ...op.get(2), ...op.get(1), 0x4f, ...op.brIf(1),
    ...op.get(2), ...op.set(3),
    ...op.block(), ...op.loop(), ...op.get(3), EQZ, ...op.brIf(1),
    ...op.get(0), ...op.get(3), ...op.i32(2), 0x74, ADD, ...op.tee(4), ...op.i32(4), SUB, ...op.mem(0x28, 0, 2),
    ...op.get(4), ...op.mem(0x28, 0, 2), 0x4d /* le_u */, ...op.brIf(1),
    ...op.get(4), ...op.i32(4), SUB, ...op.get(4), ...op.mem(0x28, 0, 2),
    ...op.get(4), ...op.get(4), ...op.i32(4), SUB, ...op.mem(0x28, 0, 2), ...op.mem(0x36, 0, 2),
    ...op.mem(0x36, 0, 2),
    ...op.get(3), ...op.i32(1), SUB, ...op.set(3), ...op.br(0), ...op.end, ...op.end,
    ...op.get(2), ...op.i32(1), ADD, ...op.set(2), ...op.br(0), ...op.end, ...op.end,
    ...op.get(0), ...op.mem(0x28, 0, 2),
  ], "sort");
  // switch via br_table, counting calls in a global
  b.func([I32], [I32], [], [
    ...op.gget(counter), ...op.i32(1), ADD, ...op.gset(counter),
    ...op.block(), ...op.block(), ...op.block(), ...op.block(), ...op.get(0), ...op.brTable([0, 1, 2], 3), ...op.end,
    ...op.i32(100), [0x0f], ...op.end, ...op.i32(200), [0x0f], ...op.end, ...op.i32(300), [0x0f], ...op.end,
    ...op.gget(counter),
  ].flat(), "switch");
  // i64 arithmetic mix with traps: (a * b) / (a - b) % c
  b.func([I64, I64, I64], [I64], [], [
    ...op.get(0), ...op.get(1), 0x7e, ...op.get(0), ...op.get(1), 0x7d, 0x7f, ...op.get(2), 0x81,
  ], "mix64");
  // string compare against the data segment
  b.func([I32], [I32], [], [...op.get(0), ...op.i32(15), 0x71, ...op.mem(0x2d, 16)], "byteat");
  b.func([I32], [I32], [], [...op.get(0), ...op.mem(0x40, 0)].flat(), "grow");
  b.func([], [I32], [], [0x3f, 0], "size");
  return b.build();
}

function dispatch(): Uint8Array {
  const b = new ModuleBuilder();
  b.setMemory(1, 1);
  const t1 = b.type([I32, I32], [I32]);
  const fAdd = b.func([I32, I32], [I32], [], [...op.get(0), ...op.get(1), ADD]);
  const fSub = b.func([I32, I32], [I32], [], [...op.get(0), ...op.get(1), SUB]);
  const fMul = b.func([I32, I32], [I32], [], [...op.get(0), ...op.get(1), MUL]);
  const fOther = b.func([I64], [I64], [], [...op.get(0)]);
  b.setTable(6);
  b.elem(0, [fAdd, fSub, fMul, fOther]);
  // slot 4 and 5 stay null
  b.func([I32, I32, I32], [I32], [], [...op.get(1), ...op.get(2), ...op.get(0), ...op.i32(7), 0x71, ...op.callIndirect(t1)], "apply");
  b.func([I32, I32], [I32], [I32], [
    ...op.get(0), ...op.i32(3), LT_U, ...op.if(I32), ...op.get(0), ...op.get(1), ...op.get(1), 0x1b /* select */, ...op.else, ...op.i32(-1), ...op.end,
  ], "pick");
  const st = b.func([], [], [], [...op.i32(0), ...op.i32(0x5eed), ...op.mem(0x36, 0, 2)]);
  b.start(st);
  b.func([], [I32], [], [...op.i32(0), ...op.mem(0x28, 0, 2)], "seeded");
  return b.build();
}

function bits(): Uint8Array {
  const b = new ModuleBuilder();
  const un32 = { clz: 0x67, ctz: 0x68, popcnt: 0x69, ext8: 0xc0, ext16: 0xc1, eqz: 0x45 };
  for (const [n, o] of Object.entries(un32)) b.func([I32], [I32], [], [...op.get(0), o], `${n}32`);
  const un64 = { clz: 0x79, ctz: 0x7a, popcnt: 0x7b, ext8: 0xc2, ext16: 0xc3, ext32: 0xc4 };
  for (const [n, o] of Object.entries(un64)) b.func([I64], [I64], [], [...op.get(0), o], `${n}64`);
  b.func([I64], [I32], [], [...op.get(0), 0xa7], "wrap");
  b.func([I32], [I64], [], [...op.get(0), 0xac], "extend_s");
  b.func([I32], [I64], [], [...op.get(0), 0xad], "extend_u");
  b.func([I32, I32], [I32], [], [...op.get(0), ...op.get(1), 0x77, ...op.get(0), ...op.get(1), 0x78, 0x73], "rot32");
  b.func([I64, I64], [I64], [], [...op.get(0), ...op.get(1), 0x89, ...op.get(0), ...op.get(1), 0x8a, 0x85], "rot64");
  return b.build();
}

export function corpus(): CorpusModule[] {
  return [
    { name: "algorithms", wasm: algorithms() },
    { name: "dispatch", wasm: dispatch() },
    { name: "bits", wasm: bits() },
  ];
}
