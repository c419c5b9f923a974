// Random program generator over the AOT compiler's accepted subset: typed expression trees, locals, mutable and
// immutable globals, nested block/loop/if (with results, and blocks and loops with parameters through type indices),
// br/br_if/br_table/return with and without values, nop, loads and stores (mostly in bounds, sometimes not),
// memory.size/grow, direct calls to earlier functions, calls of an embedder import, call_indirect through a table,
// data segments and a start function. Many functions go into one module so a test run amortises compilation; loops are
// bounded by counters and calls only go backwards, so every program ends (or traps). Used by differential.test.ts and
// by the longer `npm run fuzz` (toolchain/aot/fuzz.ts).
import type { HostImport } from "../host.ts";
import { I32, I64, ModuleBuilder, op } from "./wasm-builder.ts";

/** xorshift128+ — deterministic from a seed so a failing program can be regenerated from its seed. */
export class Rng {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n);
    this.s1 = BigInt.asUintN(64, BigInt(seed) ^ 0xdeadbeefcafebaben);
    for (let i = 0; i < 4; i++) this.next64();
  }
  next64(): bigint {
    let s1 = this.s0;
    const s0 = this.s1;
    this.s0 = s0;
    s1 ^= BigInt.asUintN(64, s1 << 23n);
    s1 ^= s1 >> 17n;
    s1 ^= s0 ^ (s0 >> 26n);
    this.s1 = s1;
    return BigInt.asUintN(64, this.s1 + s0);
  }
  int(n: number): number {
    return Number(this.next64() % BigInt(n));
  }
  chance(p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** Integers biased towards the edges that break compilers. */
  interesting(type: number): bigint {
    const bits = type === I64 ? 64 : 32;
    const edges = [0n, 1n, -1n, 2n, 7n, 8n, 31n, 32n, 63n, 64n, 255n, 256n, 65535n, -(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n, 0x80n, 0x7fffn];
    const k = this.int(4);
    if (k === 0) return this.pick(edges);
    if (k === 1) return BigInt(this.int(100)) - 50n;
    return BigInt.asIntN(bits, this.next64());
  }
}

interface FnSig {
  index: number;
  params: number[];
  result: number | null;
  /** Upper bound on the work one call does (loop trips times callee costs), to keep runs short. */
  cost: number;
}

interface Label {
  /** Value type a branch to this label carries, or null. */
  type: number | null;
  /** Loop heads are only targeted by their own counter branch (anything else could loop forever). */
  loop?: boolean;
}

const COST_LIMIT = 4000;

const BIN32 = [0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78];
const CMP32 = [0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f];
const LOAD32 = [0x28, 0x2c, 0x2d, 0x2e, 0x2f];
const LOAD64 = [0x29, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35];
const STORE32 = [0x36, 0x3a, 0x3b];
const STORE64 = [0x37, 0x3c, 0x3d, 0x3e];

export interface GenOptions {
  functions: number;
  /** Rough size budget per function (expression nodes). */
  size: number;
}

export interface GeneratedModule {
  wasm: Uint8Array;
  /** Exported function names with their signatures. */
  exports: { name: string; params: number[]; result: number | null }[];
  /** The embedder functions the module imports (pure, so both engines see the same results). */
  imports: Record<string, Record<string, HostImport>>;
}

/** A global: its value type and whether global.set may write it. */
interface GlobalDef {
  type: number;
  mutable: boolean;
}

/** Binary operators that never trap (add, sub, xor), used to combine a block's or loop's parameter with its body. */
const COMBINE = [0x6a, 0x6b, 0x73];
const INT_MIN = { [I32]: -(1n << 31n), [I64]: -(1n << 63n) } as Record<number, bigint>;

/** The address space generated accesses use: the first MEM_WINDOW bytes, compared after each call. */
export const MEM_WINDOW = 1024;

class FuncGen {
  private out: number[] = [];
  private labels: Label[] = [];
  private budget: number;
  /** Product of the trip-count bounds of the enclosing loops. */
  private mult = 1;
  private loops = 0;
  cost = 1;
  constructor(
    private readonly r: Rng,
    private readonly locals: number[],
    private readonly result: number | null,
    private readonly callees: FnSig[],
    private readonly globals: GlobalDef[],
    private readonly indirectTypes: { type: number; sig: FnSig }[],
    size: number,
    /** Locals reserved as loop counters; never written by random code. */
    private readonly counters: number[],
    /** Type index of the block type [t] -> [t], by value type (blocks and loops with a parameter). */
    private readonly passTypes: Record<number, number>,
  ) {
    this.budget = size;
  }

  body(): number[] {
    this.labels.push({ type: this.result });
    const n = 1 + this.r.int(4);
    for (let i = 0; i < n; i++) this.stmt(0);
    if (this.result !== null) this.expr(this.result, 0);
    return this.out;
  }

  private emit(...b: number[][]): void {
    for (const x of b) for (const y of x) this.out.push(y);
  }

  private localOf(t: number, writable = false): number | null {
    const c: number[] = [];
    this.locals.forEach((lt, i) => {
      if (lt === t && !(writable && this.counters.includes(i))) c.push(i);
    });
    return c.length ? this.r.pick(c) : null;
  }

  /**
   * An access's address for memarg `offset`: mostly inside the compared window; sometimes aimed at the end of memory
   * (effective address size − width − 1 … size + 1 with this offset, from memory.size, so after memory.grow too) or
   * at the 4 GiB edge of the 33-bit effective address; sometimes anything (usually out of bounds). Off-by-one bounds
   * checks only show at those edges: random addresses almost never land there.
   */
  private addr(offset: number): void {
    const r = this.r;
    const k = r.int(20);
    if (k < 9) this.emit(op.i32(r.int(MEM_WINDOW - 16)));
    else if (k < 16) {
      this.expr(I32, 3);
      this.emit(op.i32(MEM_WINDOW - 16 - 1), [0x71]);
    } else if (k < 18) {
      // memory.size << 16 − (offset + c), c in [−2, 10]: the access [ea, ea + width) straddles the end for every width.
      this.emit([0x3f, 0x00], op.i32(16), [0x74], op.i32(offset + r.int(13) - 2), [0x6b]);
    } else if (k < 19) {
      // Near 2^32 − 1 − offset: ea + width crosses 4 GiB, which a 32-bit sum would wrap.
      this.emit(op.i32(Number(BigInt.asIntN(32, BigInt(0xffff_ffff - offset - r.int(12))))));
    } else this.expr(I32, 3); // anything: usually out of bounds
  }

  /** A memarg offset: mostly small, sometimes up to 64 KiB, rarely near 2^32 (with a small address, past 4 GiB). */
  private offset(): number {
    const r = this.r;
    return r.chance(0.8) ? r.int(16) : r.chance(0.9) ? r.int(1 << 16) : 0xffff_ffff - r.int(16);
  }

  expr(t: number, depth: number): void {
    const r = this.r;
    this.budget--;
    const leaf = depth > 5 || this.budget <= 0 || r.chance(0.25);
    if (leaf) {
      const l = this.localOf(t);
      const g = this.globals.map((gd, i) => [gd.type, i] as const).filter(([gt]) => gt === t);
      const k = r.int(10);
      if (k < 4 && l !== null) return this.emit(op.get(l));
      if (k === 4 && g.length) return this.emit(op.gget(r.pick(g)[1]));
      if (k === 5 && t === I32) return this.emit([0x3f, 0]);
      return this.emit(t === I64 ? op.i64(r.interesting(I64)) : op.i32(r.interesting(I32)));
    }
    const d = depth + 1;
    switch (r.int(18)) {
      case 0: case 1: case 2: case 3: {
        if (r.chance(0.01)) {
          // INT_MIN / -1 with the divisor in a register: the signed-overflow trap.
          const c = t === I64 ? op.i64 : op.i32;
          this.emit(c(INT_MIN[t]!));
          this.expr(t, d);
          return this.emit(c(-1), [t === I64 ? 0x84 : 0x72], [t === I64 ? 0x7f : 0x6d]);
        }
        this.expr(t, d);
        this.expr(t, d);
        const o = r.pick(BIN32);
        // Divisors are usually forced odd (never zero, -1 still possible) so most programs run past the division.
        if (o >= 0x6d && o <= 0x70 && r.chance(0.8)) this.emit(t === I64 ? op.i64(1) : op.i32(1), [t === I64 ? 0x84 : 0x72]);
        return this.emit([t === I64 ? o + 0x12 : o]);
      }
      case 4: {
        const at = r.pick([I32, I64]);
        if (r.chance(0.3)) {
          // Operands equal or one apart (a local or an edge constant against itself, ±1 with wrap-around): where
          // a condition code and its negation differ only at equality or by one, random operands almost never land.
          const l = this.localOf(at);
          const x = l !== null && r.chance(0.5) ? op.get(l) : at === I64 ? op.i64(r.interesting(I64)) : op.i32(r.interesting(I32));
          const delta = r.pick([0, 0, 1, -1]);
          const y = delta === 0 ? x : [...x, ...(at === I64 ? op.i64(BigInt(delta)) : op.i32(delta)), at === I64 ? 0x7c : 0x6a];
          if (r.chance(0.5)) this.emit(x, y);
          else this.emit(y, x);
        } else {
          this.expr(at, d);
          this.expr(at, d);
        }
        const o = r.pick(CMP32);
        this.emit([at === I64 ? o + 0x0b : o]);
        if (t === I64) this.emit([r.chance(0.5) ? 0xac : 0xad]);
        return;
      }
      case 5: {
        if (t === I32) {
          const k = r.int(6);
          if (k === 0) { this.expr(I64, d); return this.emit([0xa7]); }
          if (k === 1) { this.expr(I64, d); return this.emit([0x50]); }
          this.expr(I32, d);
          return this.emit([r.pick([0x67, 0x68, 0x69, 0x45, 0xc0, 0xc1])]);
        }
        const k = r.int(3);
        if (k === 0) { this.expr(I32, d); return this.emit([r.pick([0xac, 0xad])]); }
        this.expr(I64, d);
        return this.emit([r.pick([0x79, 0x7a, 0x7b, 0xc2, 0xc3, 0xc4])]);
      }
      case 6: {
        const off = this.offset();
        this.addr(off);
        const o = r.pick(t === I64 ? LOAD64 : LOAD32);
        return this.emit(op.mem(o, off));
      }
      case 7: {
        this.expr(t, d);
        this.expr(t, d);
        this.expr(I32, d);
        return this.emit(r.chance(0.5) ? [0x1b] : [0x1c, 1, t]);
      }
      case 8: {
        this.expr(I32, d);
        this.emit(op.if(t));
        this.labels.push({ type: t });
        this.stmts(d, 2);
        this.expr(t, d);
        this.emit(op.else);
        this.stmts(d, 2);
        this.expr(t, d);
        this.labels.pop();
        return this.emit(op.end);
      }
      case 9: {
        // block with a value, maybe left early by br_if carrying the value
        this.emit(op.block(t));
        this.labels.push({ type: t });
        this.stmts(d, 2);
        if (r.chance(0.5)) {
          this.expr(t, d);
          this.expr(I32, d);
          this.emit(op.brIf(0), [0x1a]);
        }
        if (r.chance(0.3)) {
          // br_table over the value-carrying labels of the same type
          this.expr(t, d);
          this.expr(I32, d);
          const same = this.labelsOfType(t);
          const targets = Array.from({ length: r.int(4) }, () => r.pick(same));
          this.emit(op.brTable(targets, r.pick(same)));
          this.labels.pop();
          return this.emit(op.end);
        }
        if (r.chance(0.2)) {
          // An unconditional br carrying the value to this or an enclosing label, then dead code up to the end.
          this.expr(t, d);
          this.emit(op.br(r.pick(this.labelsOfType(t))));
          this.stmts(d, 1);
          this.labels.pop();
          return this.emit(op.end);
        }
        this.expr(t, d);
        this.labels.pop();
        return this.emit(op.end);
      }
      case 10: {
        const cs = this.callees.filter((c) => c.result === t && c.cost * this.mult <= COST_LIMIT);
        if (!cs.length) return this.expr(t, d);
        const c = r.pick(cs);
        this.cost += c.cost * this.mult;
        for (const p of c.params) this.expr(p, d);
        return this.emit(op.call(c.index));
      }
      case 11: {
        const cs = this.indirectTypes.filter((c) => c.sig.result === t);
        if (!cs.length) return this.expr(t, d);
        const c = r.pick(cs);
        for (const p of c.sig.params) this.expr(p, d);
        // Mostly the matching slot (so programs keep running); sometimes a mismatched, null or out-of-range one.
        const slot = this.indirectTypes.indexOf(c);
        if (r.chance(0.85)) this.emit(op.i32(slot));
        else if (r.chance(0.7)) this.emit(op.i32(r.int(this.indirectTypes.length + 2)));
        // Around the table's bounds: its last (null) slot, one and two past it, and the largest unsigned index.
        else if (r.chance(0.5)) this.emit(op.i32(r.pick([this.indirectTypes.length, this.indirectTypes.length + 1, this.indirectTypes.length + 2, -1])));
        else this.expr(I32, d);
        return this.emit(op.callIndirect(c.type));
      }
      case 12: {
        const l = this.localOf(t, true);
        if (l === null) return this.expr(t, d);
        this.expr(t, d);
        return this.emit(op.tee(l));
      }
      case 13: {
        if (t !== I32) return this.expr(t, d);
        this.emit(op.i32(r.int(3)), [0x40, 0]);
        return;
      }
      case 14: {
        // A block with a parameter (type-index block type [t] -> [t]), maybe left early by br_if with a value.
        this.expr(t, d);
        this.emit(op.block(this.passTypes[t]!));
        this.labels.push({ type: t });
        this.stmts(d, 2);
        if (r.chance(0.3)) {
          this.expr(t, d);
          this.expr(I32, d);
          this.emit(op.brIf(0), [0x1a]);
        }
        this.expr(t, d);
        this.emit([r.pick(COMBINE) + (t === I64 ? 0x12 : 0)]);
        this.labels.pop();
        return this.emit(op.end);
      }
      case 15: {
        // A loop with a result. With a parameter, each trip combines it with a new value and carries it back through
        // br_if; without one, the branch back leaves the trip's value behind and only the last trip's value remains.
        const c = this.counters[this.loops];
        if (c === undefined) return this.expr(t, d);
        const trips = 1 + r.int(3);
        const param = r.chance(0.5);
        // The initial value first: code inside it may run a loop of its own on this same counter.
        if (param) this.expr(t, d);
        this.emit(op.i32(trips), op.set(c), op.loop(param ? this.passTypes[t]! : t));
        this.labels.push({ type: param ? t : null, loop: true });
        this.loops++;
        this.mult *= trips;
        this.stmts(d, 2);
        this.expr(t, d);
        if (param) this.emit([r.pick(COMBINE) + (t === I64 ? 0x12 : 0)]);
        this.mult /= trips;
        this.loops--;
        this.emit(op.get(c), op.i32(1), [0x6b], op.tee(c), op.brIf(0));
        this.labels.pop();
        return this.emit(op.end);
      }
      default: {
        this.expr(t, d);
        this.expr(t, d);
        const o = r.pick([0x6a, 0x6b, 0x6c, 0x71, 0x72, 0x73]);
        return this.emit([t === I64 ? o + 0x12 : o]);
      }
    }
  }

  /** Relative depths of enclosing labels whose branch type is t. */
  private labelsOfType(t: number | null): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.labels.length; i++) {
      const l = this.labels[this.labels.length - 1 - i]!;
      if (l.type === t && !l.loop) out.push(i);
    }
    return out;
  }

  private stmts(depth: number, max: number): void {
    const n = this.r.int(max + 1);
    for (let i = 0; i < n; i++) this.stmt(depth);
  }

  stmt(depth: number): void {
    const r = this.r;
    this.budget--;
    const d = depth + 1;
    const simple = depth > 4 || this.budget <= 0;
    switch (simple ? r.int(4) : r.int(14)) {
      case 0: {
        const t = r.pick([I32, I64]);
        const l = this.localOf(t, true);
        if (l === null) return;
        this.expr(t, d);
        return this.emit(op.set(l));
      }
      case 1: {
        const t = r.pick([I32, I64]);
        const off = this.offset();
        this.addr(off);
        this.expr(t, d);
        return this.emit(op.mem(r.pick(t === I64 ? STORE64 : STORE32), off));
      }
      case 2: {
        this.expr(r.pick([I32, I64]), d);
        return this.emit([0x1a]);
      }
      case 3: {
        const gs = this.globals.map((g, i) => [g.type, i, g.mutable] as const).filter(([, , mutable]) => mutable);
        if (!gs.length) return;
        const [t, i] = r.pick(gs);
        this.expr(t, d);
        return this.emit(op.gset(i));
      }
      case 4: {
        this.expr(I32, d);
        this.emit(op.if());
        this.labels.push({ type: null });
        this.stmts(d, 3);
        if (r.chance(0.5)) {
          this.emit(op.else);
          this.stmts(d, 3);
        }
        this.labels.pop();
        return this.emit(op.end);
      }
      case 5: {
        this.emit(op.block());
        this.labels.push({ type: null });
        this.stmts(d, 2);
        this.expr(I32, d);
        this.emit(op.brIf(r.pick(this.labelsOfType(null))));
        this.stmts(d, 2);
        this.labels.pop();
        return this.emit(op.end);
      }
      case 6: {
        // A bounded loop: counter local set to a small trip count, decremented at the bottom.
        const c = this.counters[this.loops];
        if (c === undefined) return;
        const trips = 1 + r.int(4);
        this.emit(op.i32(trips), op.set(c), op.block(), op.loop());
        this.labels.push({ type: null }, { type: null, loop: true });
        this.loops++;
        this.mult *= trips;
        this.stmts(d, 3);
        if (r.chance(0.3)) {
          this.expr(I32, d);
          this.emit(op.brIf(1));
        }
        this.mult /= trips;
        this.loops--;
        this.emit(op.get(c), op.i32(1), [0x6b], op.tee(c), op.brIf(0));
        this.labels.pop();
        this.labels.pop();
        return this.emit(op.end, op.end);
      }
      case 7: {
        // br_table out of nested blocks
        const n = 1 + r.int(3);
        for (let i = 0; i < n; i++) {
          this.emit(op.block());
          this.labels.push({ type: null });
        }
        this.expr(I32, d);
        const ts = this.labelsOfType(null);
        this.emit(op.brTable(Array.from({ length: r.int(5) }, () => r.pick(ts)), r.pick(ts)));
        for (let i = 0; i < n; i++) {
          this.labels.pop();
          this.emit(op.end);
          if (i < n - 1) this.stmts(d, 1);
        }
        return;
      }
      case 8: {
        // rarely: a guarded trap or early return
        this.expr(I32, d);
        this.emit(op.i32(r.int(16)), [0x46], op.if());
        this.labels.push({ type: null });
        if (r.chance(0.3)) this.emit([0x00]);
        else {
          if (this.result !== null) this.expr(this.result, d);
          this.emit([0x0f]);
        }
        this.labels.pop();
        return this.emit(op.end);
      }
      case 9: {
        const cs = this.callees.filter((c) => c.result === null && c.cost * this.mult <= COST_LIMIT);
        if (!cs.length) return;
        const c = r.pick(cs);
        this.cost += c.cost * this.mult;
        for (const p of c.params) this.expr(p, d);
        return this.emit(op.call(c.index));
      }
      case 10: {
        // br out of nested blocks, followed by dead code (which must still validate and compile).
        const n = 1 + r.int(2);
        for (let i = 0; i < n; i++) {
          this.emit(op.block());
          this.labels.push({ type: null });
        }
        this.stmts(d, 1);
        this.emit(op.br(r.pick(this.labelsOfType(null))));
        this.stmts(d, 1);
        for (let i = 0; i < n; i++) {
          this.labels.pop();
          this.emit(op.end);
        }
        return;
      }
      case 11:
        return this.emit([0x01]);
      default: {
        const t = r.pick([I32, I64]);
        const l = this.localOf(t, true);
        if (l === null) return;
        this.expr(t, d);
        return this.emit(op.set(l));
      }
    }
  }
}

/** Generates one module of `opts.functions` random exported functions ("f0", "f1", ...). */
export function generateModule(seed: number, opts: GenOptions): GeneratedModule {
  const r = new Rng(seed);
  const b = new ModuleBuilder();
  // env.mix(i32, i64) -> i64: an embedder function (a System V call natively), pure so both engines agree.
  const mixIndex = b.importFunc("env", "mix", [I32, I64], [I64]);
  const imports = { env: { mix: (a: bigint, x: bigint) => BigInt.asUintN(64, ((x << 7n) | (x >> 57n)) ^ (a * 0x9e3779b9n)) } };
  b.setMemory(1, 3);
  const globals: GlobalDef[] = [[I32, true], [I64, true], [I32, true], [I32, false], [I64, false]].map(([t, mutable]) => {
    b.global(t as number, mutable as boolean, r.interesting(t as number));
    return { type: t as number, mutable: mutable as boolean };
  });
  // Data segments inside the compared window, so loads see initialised bytes.
  for (let i = 0; i < 2; i++) b.data(r.int(MEM_WINDOW - 64), Array.from({ length: 1 + r.int(64) }, () => r.int(256)));
  const passTypes = { [I32]: b.type([I32], [I32]), [I64]: b.type([I64], [I64]) };
  // Block type indices are encoded as one s33 byte here.
  if (passTypes[I32]! >= 64 || passTypes[I64]! >= 64) throw new Error("generator: block type index does not fit one byte");
  // A few table targets with fixed shapes, so call_indirect has matching and mismatching entries.
  const shapes: { params: number[]; result: number | null }[] = [
    { params: [I32], result: I32 },
    { params: [I64, I32], result: I64 },
    { params: [], result: I32 },
  ];
  const sigs: FnSig[] = [];
  const indirect: { type: number; sig: FnSig }[] = [];
  for (const s of shapes) {
    const index = b.func(s.params, s.result === null ? [] : [s.result], [], shapeBody(r, s.params, s.result));
    const sig = { index, params: s.params, result: s.result, cost: 1 };
    sigs.push(sig);
    indirect.push({ type: b.type(s.params, s.result === null ? [] : [s.result]), sig });
  }
  b.setTable(indirect.length + 1);
  b.elem(0, indirect.map((x) => x.sig.index));
  // The start function runs at instantiation in both engines: a store into the window and a global write.
  b.start(b.func([], [], [], [...op.i32(r.int(MEM_WINDOW - 8)), ...op.i64(r.interesting(I64)), ...op.mem(0x37, 0), ...op.i32(r.interesting(I32)), ...op.gset(0)]));
  const mix: FnSig = { index: mixIndex, params: [I32, I64], result: I64, cost: 1 };
  const exports: GeneratedModule["exports"] = [];
  for (let i = 0; i < opts.functions; i++) {
    const params = Array.from({ length: r.int(4) }, () => r.pick([I32, I64]));
    const result = r.chance(0.85) ? r.pick([I32, I64]) : null;
    const extra = Array.from({ length: r.int(4) }, () => r.pick([I32, I64]));
    const counters = [0, 1, 2].map((k) => params.length + extra.length + k);
    const locals = [...params, ...extra, I32, I32, I32];
    const g = new FuncGen(r, locals, result, [mix, ...sigs.slice(-12)], globals, indirect, opts.size, counters, passTypes);
    const body = g.body();
    const name = `f${i}`;
    const index = b.func(params, result === null ? [] : [result], [...extra, I32, I32, I32], body, name);
    sigs.push({ index, params, result, cost: g.cost + 1 });
    exports.push({ name, params, result });
  }
  return { wasm: b.build(), exports, imports };
}

function shapeBody(r: Rng, params: number[], result: number | null): number[] {
  if (result === null) return [];
  const out: number[] = [];
  const same = params.map((p, i) => [p, i] as const).filter(([p]) => p === result);
  out.push(...(same.length ? op.get(same[0]![1]) : result === I64 ? op.i64(r.interesting(I64)) : op.i32(r.interesting(I32))));
  out.push(...(result === I64 ? op.i64(r.interesting(I64)) : op.i32(r.interesting(I32))), result === I64 ? 0x7c : 0x6a);
  return out;
}
