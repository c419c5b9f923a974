// Tests of the layering check (.dependency-cruiser.mjs, run by `npm run check`): the real tree passes, and on a small
// fixture tree with the same folders each kind of bad import — a bare-metal folder importing sim/, core/ importing a
// folder above it (from a unit test too), a peer or an upper layer, a cycle across two folders — fails the command
// with a message naming the rule, while the top folders (bench/, test/hw/) may import anything.
import { execa } from "execa";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CONFIG = ".dependency-cruiser.mjs";
const depcruise = join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
const dir = mkdtempSync(join(tmpdir(), "uv-layering-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The check as package.json's "check" script runs it, in `cwd`. */
async function check(cwd: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa(process.execPath, [depcruise, "--config", CONFIG, "--output-type", "err-long", "."], { cwd, reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, output: r.all ?? "" };
}

/** A fixture tree: path → the relative modules it imports. */
function fixture(name: string, files: Record<string, string[]>): string {
  const at = join(dir, name);
  for (const [file, imports] of Object.entries(files)) {
    mkdirSync(dirname(join(at, file)), { recursive: true });
    const body = imports.map((m, i) => `import * as m${i} from "${m}";\nexport const u${i} = m${i};\n`).join("");
    writeFileSync(join(at, file), `// fixture\n${body}export const here = "${file}";\n`);
  }
  copyFileSync(join(root, CONFIG), join(at, CONFIG));
  return at;
}

/** Every layer's folder with an import of each folder below it: the allowed shape. */
const GOOD: Record<string, string[]> = {
  "core/database.ts": [],
  "core/database.test.ts": ["./database.ts"],
  "toolchain/x64/asm.ts": [],
  "toolchain/disk/esp.ts": [],
  "qemu/machine.ts": [],
  "toolchain/pe/write.ts": ["../x64/asm.ts"],
  "toolchain/aot/compile.ts": ["../x64/asm.ts", "../../core/database.ts"],
  "definition/schema.ts": ["../core/database.ts", "../toolchain/aot/compile.ts"],
  "monitor-gen/lead.ts": ["../definition/schema.ts", "../toolchain/aot/compile.ts"],
  "loader-efi/boot.ts": ["../monitor-gen/lead.ts"],
  "partitions/uv.ts": ["../loader-efi/boot.ts", "../monitor-gen/lead.ts"],
  "image/ultravisor.ts": ["../partitions/uv.ts", "../loader-efi/boot.ts", "../toolchain/pe/write.ts", "../toolchain/disk/esp.ts"],
  "sim/host.ts": ["../core/database.ts", "../image/ultravisor.ts"],
  "ops/policy.ts": ["../sim/host.ts", "../definition/schema.ts"],
  "cli/main.ts": ["../sim/host.ts", "../image/ultravisor.ts", "../qemu/machine.ts", "../ops/policy.ts"],
  "bench/run.ts": ["../sim/host.ts", "../qemu/machine.ts", "../cli/main.ts"],
  "test/hw/boot.test.ts": ["../../sim/host.ts", "../../qemu/machine.ts", "../../image/ultravisor.ts"],
};

describe("layering check (npm run check)", () => {
  it("passes on the real tree", async () => {
    const r = await check(root);
    expect(r.output).toContain("no dependency violations found");
    expect(r.exitCode).toBe(0);
  }, 60_000);

  it("passes on a fixture that imports only downward", async () => {
    const r = await check(fixture("good", GOOD));
    expect(r.output).toContain("no dependency violations found");
    expect(r.exitCode).toBe(0);
  }, 60_000);

  it("fails on each kind of bad import, naming the rule", async () => {
    const r = await check(fixture("bad", {
      ...GOOD,
      // A bare-metal folder importing the simulator.
      "monitor-gen/lead.ts": ["../sim/host.ts"],
      // core/ importing a folder above it, from a unit test beside the code.
      "core/database.test.ts": ["../toolchain/aot/compile.ts"],
      // A peer of the same layer, and a folder above.
      "toolchain/x64/asm.ts": ["../disk/esp.ts"],
      "definition/schema.ts": ["../monitor-gen/lead.ts"],
      // A loop between two folders.
      "loader-efi/boot.ts": ["../partitions/uv.ts"],
      // qemu/ from below the top layer.
      "image/ultravisor.ts": ["../qemu/machine.ts"],
      // The simulator importing the operations layer above it.
      "sim/host.ts": ["../core/database.ts", "../ops/policy.ts"],
    }));
    expect(r.exitCode).not.toBe(0);
    for (const line of [
      "bare-metal-never-imports-sim: monitor-gen/lead.ts → sim/host.ts",
      "core-imports-nothing-above: core/database.test.ts → toolchain/aot/compile.ts",
      "layer-toolchain-x64: toolchain/x64/asm.ts → toolchain/disk/esp.ts",
      "layer-definition: definition/schema.ts → monitor-gen/lead.ts",
      "layer-loader-efi: loader-efi/boot.ts → partitions/uv.ts",
      "layer-image: image/ultravisor.ts → qemu/machine.ts",
      "layer-sim: sim/host.ts → ops/policy.ts",
    ]) expect(r.output).toContain(line);
    expect(r.output).toMatch(/no-circular-between-folders: loader-efi\/boot\.ts →\s+partitions\/uv\.ts →\s+loader-efi\/boot\.ts/);
    expect(r.output).not.toMatch(/(bench|cli|test\/hw)\/\S+ →/);
  }, 60_000);
});
