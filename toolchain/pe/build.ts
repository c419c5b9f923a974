// The whole object-to-EFI-application step in one call: layoutPe → x64/link.ts at imageBase + RVA → writePe. This is
// what image/ and the first-image builder use; the pieces stay separately callable for tools that need the
// layout before linking (symbol maps, listings).
import { link, type Linked } from "../x64/link.ts";
import type { ObjectFile } from "../x64/object.ts";
import { layoutPe, peInputFromObject, type PeLayout } from "./layout.ts";
import { writePe } from "./write.ts";

export interface BuildPeOptions {
  /** Name of the entry symbol (defined in a text section). */
  entry: string;
  /** Preferred load address; default 0x140000000. */
  imageBase?: bigint;
  /** Addresses of symbols defined outside the object. */
  externals?: ReadonlyMap<string, bigint>;
  /** COFF TimeDateStamp (default 0, reproducible). */
  timestamp?: number;
}

export interface BuiltPe {
  file: Uint8Array;
  layout: PeLayout;
  /** Patched sections, abs64 sites, and every symbol's address at the preferred image base. */
  linked: Linked;
}

export function buildPe(obj: ObjectFile, options: BuildPeOptions): BuiltPe {
  // A 32-bit absolute address cannot be fixed up by a DIR64 base relocation and would go stale when the firmware
  // loads the image elsewhere, which it always may.
  const abs32 = obj.relocations.find((r) => r.kind === "abs32");
  if (abs32) {
    const at = `${obj.sections[abs32.section]?.name ?? abs32.section}+0x${abs32.offset.toString(16)}`;
    throw new Error(
      `abs32 reference to '${abs32.target}' at ${at} cannot be relocated in an EFI image; ` +
        `use a RIP-relative operand or a 64-bit address (dq / mov r64)`,
    );
  }
  const layout = layoutPe(obj, options.imageBase === undefined ? {} : { imageBase: options.imageBase });
  const linked = link(
    obj,
    layout.sections.map((s) => s.address),
    options.externals,
  );
  const input = peInputFromObject(obj, layout, linked, options.entry);
  if (options.timestamp !== undefined) input.timestamp = options.timestamp;
  return { file: writePe(input), layout, linked };
}
