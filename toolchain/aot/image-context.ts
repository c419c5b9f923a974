// The VM context of an AOT-compiled module inside a bootable image: the one place that lays out its initial words
// (memory base and size, trap handler, stack budget, globals, table) as data, for every embedder in the image
// (loader, lead monitor, ultravisor partition, AssemblyScript guests). host.ts fills the same layout at run time for
// host tests; ABI.md defines it.
import { type Assembler, type Label, addr } from "../x64/index.ts";
import { Ctx } from "./abi.ts";
import type { CompiledModule } from "./compile.ts";

export interface ImageContext {
  /** Linear memory base: a physical/virtual address, or a label's absolute address. */
  memBase: bigint | Label;
  memBytes: number;
  /** memory.grow ceiling in 64 KiB pages (default: memBytes / 64 KiB). */
  maxPages?: number;
  trapHandler: Label;
  stackBudget: number;
  /** Label of a table entry's function (only needed when the module has a table). */
  tableFunc?: (func: number) => Label;
}

/** Emits the module's VM context at the current position of the current (data) section. */
export function emitImageContext(a: Assembler, mod: CompiledModule, c: ImageContext): void {
  const ctx: Array<bigint | ReturnType<typeof addr>> = new Array(mod.layout.size / 8).fill(0n);
  ctx[Ctx.MemBase / 8] = typeof c.memBase === "bigint" ? c.memBase : addr(c.memBase);
  ctx[Ctx.MemSize / 8] = BigInt(c.memBytes);
  ctx[Ctx.MemMaxPages / 8] = BigInt(c.maxPages ?? c.memBytes / 65536);
  ctx[Ctx.TrapHandler / 8] = addr(c.trapHandler);
  ctx[Ctx.StackBudget / 8] = BigInt(c.stackBudget);
  if (mod.tableInits.length) throw new Error("emitImageContext: element segments placed by imported globals have no value in an image");
  if (mod.table.length) {
    if (!c.tableFunc) throw new Error("emitImageContext: the module has a table; pass tableFunc");
    ctx[Ctx.TableSize / 8] = BigInt(mod.table.length);
    mod.table.forEach((e, i) => {
      ctx[(mod.layout.table + 16 * i) / 8] = e.func === null ? 0n : addr(c.tableFunc!(e.func));
      ctx[(mod.layout.table + 16 * i + 8) / 8] = BigInt(e.sig);
    });
  }
  // Imported globals (and the data offsets they give) have no value in an image.
  if (mod.globalImports.length) throw new Error(`emitImageContext: imported globals (${mod.globalImports.map((g) => `${g.module}.${g.name}`).join(", ")}) have no value in an image`);
  mod.globals.forEach((g, i) => (ctx[(mod.layout.globals + 8 * i) / 8] = BigInt.asUintN(64, g.init)));
  for (const v of ctx) a.dq(v);
}
