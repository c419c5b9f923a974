// A small wasm binary encoder for the AOT compiler's tests and fuzzer: builds modules from byte-level instruction
// lists so tests can reach any corner of the accepted subset (and outside it) without a text-format toolchain.
// V8 runs the same bytes as the oracle.

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;

export function uleb(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

export function sleb(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const str = (s: string): number[] => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

/** Instruction helpers returning bytes. */
export const op = {
  i32: (v: number | bigint) => [0x41, ...sleb(BigInt.asIntN(32, BigInt(v)))],
  i64: (v: number | bigint) => [0x42, ...sleb(BigInt.asIntN(64, BigInt(v)))],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  gget: (i: number) => [0x23, ...uleb(i)],
  gset: (i: number) => [0x24, ...uleb(i)],
  call: (f: number) => [0x10, ...uleb(f)],
  callIndirect: (type: number) => [0x11, ...uleb(type), 0],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  brTable: (targets: number[], def: number) => [0x0e, ...uleb(targets.length), ...targets.flatMap((t) => uleb(t)), ...uleb(def)],
  /** Block type: -1 none, or a value type byte, or a type index ≥ 0 given as { idx }. */
  block: (t: number = 0x40) => [0x02, t],
  loop: (t: number = 0x40) => [0x03, t],
  if: (t: number = 0x40) => [0x04, t],
  else: [0x05],
  end: [0x0b],
  mem: (opcode: number, offset: number, align = 0) => [opcode, ...uleb(align), ...uleb(offset)],
};

export interface FuncDef {
  type: number;
  locals: number[];
  body: number[];
}

export class ModuleBuilder {
  private types: string[] = [];
  private typeBytes: number[][] = [];
  private imports: number[][] = [];
  private numImports = 0;
  private funcs: FuncDef[] = [];
  private exports: number[][] = [];
  private memory: { min: number; max: number | null } | null = null;
  private tableSize = -1;
  private elems: { offset: number; funcs: number[] }[] = [];
  private datas: { offset: number; bytes: number[] }[] = [];
  private globals: number[][] = [];
  private startFunc = -1;

  type(params: number[], results: number[]): number {
    const key = `${params.join()}>${results.join()}`;
    let i = this.types.indexOf(key);
    if (i < 0) {
      i = this.types.length;
      this.types.push(key);
      this.typeBytes.push([0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))]);
    }
    return i;
  }

  importFunc(module: string, name: string, params: number[], results: number[]): number {
    if (this.funcs.length) throw new Error("declare imports before functions");
    this.imports.push([...str(module), ...str(name), 0, ...uleb(this.type(params, results))]);
    return this.numImports++;
  }

  /** Adds a function; `body` excludes the final `end`. Returns its function index. */
  func(params: number[], results: number[], locals: number[], body: number[], exportName?: string): number {
    const index = this.numImports + this.funcs.length;
    this.funcs.push({ type: this.type(params, results), locals, body });
    if (exportName !== undefined) this.exportFunc(exportName, index);
    return index;
  }
  exportFunc(name: string, index: number): this {
    this.exports.push([...str(name), 0, ...uleb(index)]);
    return this;
  }
  setMemory(min: number, max: number | null, exportName = "memory"): this {
    this.memory = { min, max };
    this.exports.push([...str(exportName), 2, 0]);
    return this;
  }
  setTable(size: number): this {
    this.tableSize = size;
    return this;
  }
  elem(offset: number, funcs: number[]): this {
    this.elems.push({ offset, funcs });
    return this;
  }
  data(offset: number, bytes: number[] | Uint8Array): this {
    this.datas.push({ offset, bytes: [...bytes] });
    return this;
  }
  global(type: number, mutable: boolean, init: number | bigint, exportName?: string): number {
    const i = this.globals.length;
    this.globals.push([type, mutable ? 1 : 0, ...(type === I64 ? op.i64(init) : op.i32(init)), 0x0b]);
    if (exportName) this.exports.push([...str(exportName), 3, ...uleb(i)]);
    return i;
  }
  start(index: number): this {
    this.startFunc = index;
    return this;
  }

  build(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, body: number[]) => {
      out.push(id, ...uleb(body.length));
      for (const b of body) out.push(b);
    };
    section(1, vec(this.typeBytes));
    if (this.imports.length) section(2, vec(this.imports));
    section(3, vec(this.funcs.map((f) => uleb(f.type))));
    if (this.tableSize >= 0) section(4, [1, 0x70, 0, ...uleb(this.tableSize)]);
    if (this.memory) section(5, [1, ...(this.memory.max === null ? [0, ...uleb(this.memory.min)] : [1, ...uleb(this.memory.min), ...uleb(this.memory.max)])]);
    if (this.globals.length) section(6, vec(this.globals));
    if (this.exports.length) section(7, vec(this.exports));
    if (this.startFunc >= 0) section(8, uleb(this.startFunc));
    if (this.elems.length) section(9, vec(this.elems.map((e) => [0, ...op.i32(e.offset), 0x0b, ...vec(e.funcs.map((f) => uleb(f)))])));
    section(10, vec(this.funcs.map((f) => {
      const groups: number[][] = f.locals.map((t) => [1, t]);
      const body = [...vec(groups), ...f.body, 0x0b];
      return [...uleb(body.length), ...body];
    })));
    if (this.datas.length) section(11, vec(this.datas.map((d) => [0, ...op.i32(d.offset), 0x0b, ...uleb(d.bytes.length), ...d.bytes])));
    const bytes = new Uint8Array(out.length);
    bytes.set(out);
    return bytes;
  }
}
