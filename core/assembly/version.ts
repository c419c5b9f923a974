// Entry module of core.wasm that identifies the build: the host checks it before trusting the layout constants.
import { LAYOUT_VERSION } from "./lib/layout";

/** Version of the resource-database layout in docs/specs/memory-layout.md (major << 16 | minor). */
export function core_layout_version(): u32 {
  return LAYOUT_VERSION;
}
