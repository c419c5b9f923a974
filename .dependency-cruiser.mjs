// The layering check of docs/architecture.md (Layers) and ADR 0005, run by `npm run check` through dependency-cruiser:
// each folder may import itself and the folders of the layers below it, never a peer of its own layer nor anything
// above; bare-metal folders never import sim/; core/ imports nothing of ours outside core/; no import cycle crosses a
// folder. Unit tests (*.test.ts beside the code) follow their folder's rule; cli/, bench/, test/ and scripts/ may
// import anything. test/layering.test.ts proves that a bad import fails the check.

/** Bottom to top. A folder sees every folder of a lower layer (qemu/ excepted: see QEMU_USERS). */
const LAYERS = [
  ["toolchain/x64", "toolchain/disk", "toolchain/elf", "toolchain/initramfs", "core", "qemu"], // import nothing of ours
  // pe → x64; aot → x64, core (core.wasm is its input, core/webassembly.ts its V8 types); linux → initramfs (the default initramfs)
  ["toolchain/pe", "toolchain/aot", "toolchain/linux"],
  ["definition"], // the host-definition schema: core and toolchain only
  ["monitor-gen"], // ring-0 code generators
  ["loader-efi"], // the EFI loader and the ring-0 code around core's boot module
  ["partitions"], // partition programs; the ultravisor partition embeds the boot module with loader-efi's shims
  ["image"], // links loader, monitors, core and partitions into one EFI image
  ["sim"], // the simulator: core's bindings, may use any bare-metal folder
  ["ops"], // the operations partition (policy service, store, console): the simulator and the definitions below it
  ["datacenter"], // the virtual data center: many simulated hosts, heartbeats, re-hosting, live migration (above ops/)
  ["cli", "bench", "test", "scripts"], // may import anything
];
/** Bare-metal folders: never import sim/. */
const BARE_METAL = ["toolchain", "core", "definition", "monitor-gen", "loader-efi", "partitions", "image"];
/** qemu/ is the harness that starts QEMU: only the top layer uses it. */
const QEMU_USERS = LAYERS[LAYERS.length - 1];

const ALL = LAYERS.flat();
const TOP = LAYERS.length - 1;
/** A path regex matching any of `folders` (folder names hold no regex metacharacters but "."). */
const re = (folders) => `^(${folders.map((f) => f.replace(/\./g, "\\.")).join("|")})/`;

/** One rule per folder below the top: the folders it must not import. */
const layerRules = LAYERS.slice(0, TOP).flatMap((layer, i) =>
  layer.flatMap((folder) => {
    const below = LAYERS.slice(0, i).flat().filter((f) => f !== "qemu" || QEMU_USERS.includes(folder));
    const isCore = folder === "core";
    const bare = BARE_METAL.some((b) => folder === b || folder.startsWith(`${b}/`));
    // core/ and sim/ have their own, more specific rules below; they are left out here so an import breaks one rule.
    const forbidden = ALL.filter((f) => f !== folder && !below.includes(f) && !(bare && f === "sim"));
    if (isCore || forbidden.length === 0) return [];
    return [{
      name: `layer-${folder.replace("/", "-")}`,
      comment: `${folder}/ may import only itself and ${below.length ? below.map((f) => `${f}/`).join(", ") : "nothing of ours"} (docs/architecture.md, Layers)`,
      severity: "error",
      from: { path: `^${folder}/` },
      to: { path: re(forbidden) },
    }];
  }),
);

export default {
  forbidden: [
    {
      name: "bare-metal-never-imports-sim",
      comment: "toolchain, core, definition, monitor-gen, loader-efi, partitions and image never import sim/: move what both need into core/ (docs/architecture.md, Layers)",
      severity: "error",
      from: { path: re(BARE_METAL) },
      to: { path: "^sim/" },
    },
    {
      name: "core-imports-nothing-above",
      comment: "core/ is the bottom layer and owns both sides of the core.wasm boundary: it imports nothing of ours outside core/ (docs/architecture.md, Layers)",
      severity: "error",
      from: { path: "^core/" },
      to: { path: re(ALL.filter((f) => f !== "core")) },
    },
    ...layerRules,
    {
      name: "no-circular-between-folders",
      comment: "an import cycle may not cross folders (docs/architecture.md, Layers)",
      severity: "error",
      from: { path: "^(toolchain/[^/]+|[^/]+)/" },
      to: { circular: true, pathNot: "^$1/" },
    },
  ],
  options: {
    // The folders of the layer table (definition/ may not exist yet in every branch; a missing folder is no error).
    includeOnly: re(ALL),
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(node_modules|out|artifacts|\\.scratch)/" },
    // `import type` is a dependency of the design too.
    tsPreCompilationDeps: true,
    // AssemblyScript sources (*/assembly/) import without an extension.
    enhancedResolveOptions: { extensions: [".ts", ".js", ".mjs", ".cjs"] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
