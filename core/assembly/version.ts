// Entry module of core.wasm that identifies the build: the host checks it before trusting the layout constants.

/** Version of the resource-database layout in docs/specs/memory-layout.md (major << 16 | minor). */
export function core_layout_version(): u32 {
  return 0x0001_0000;
}
