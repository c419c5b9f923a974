// Merging of x64 object files for images: a hand-written assembly object and an AOT-compiled module's object (or
// any two objects) become one, section indices shifted and the second object's local `.L` labels renamed, with
// aliases naming offsets of its sections (entry thunks, trap handlers). Used by everything that links a compiled
// module into an image (partitions/aot-guest.ts, partitions/uv-core.ts, image/ultravisor.ts); it lives in
// toolchain/aot, below all of them, beside emitImageContext (image-context.ts), the other half of that job.
import type { ObjectFile } from "../x64/object.ts";

/** Appends `b` to `a`: section indices shifted, b's local `.L` labels renamed so they cannot meet a's. */
export function mergeObjects(a: ObjectFile, b: ObjectFile, tag: string, aliases: Array<{ name: string; section: number; offset: number }> = []): ObjectFile {
  const shift = a.sections.length;
  const local = new Set(b.symbols.filter((s) => s.name.startsWith(".L")).map((s) => s.name));
  const rename = (n: string): string => (local.has(n) ? `${tag}${n}` : n);
  return {
    sections: [...a.sections, ...b.sections],
    symbols: [
      ...a.symbols,
      ...b.symbols.map((s) => ({ ...s, name: rename(s.name), section: s.section + shift })),
      ...aliases.map((x) => ({ name: x.name, section: x.section + shift, offset: x.offset, global: false })),
    ],
    relocations: [...a.relocations, ...b.relocations.map((r) => ({ ...r, section: r.section + shift, target: rename(r.target) }))],
  };
}
