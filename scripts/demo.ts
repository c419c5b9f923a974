// What ./scripts/demo shows (after ./scripts/setup): `uvt build` of the default image (the Figure 1 ultravisor host)
// with our own toolchain, then `uvt run` booting it under QEMU + OVMF. The serial console shows the loader and lead
// monitor starting, every partition's console lines as the I/O partition prints them, containment of a refused
// command submission, and the monitor's summary. Exits 0 only when the host reported success through isa-debug-exit.
import { main } from "../cli/main.ts";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log("Usage: ./scripts/demo [uvt run options]   builds the Figure 1 host into out/ and boots out/esp.img (options go to uvt run)");
  process.exit(0);
}

console.log("== uvt build  (assembler + AOT-compiled core → PE32+ → GPT/FAT ESP, all in TypeScript)");
const built = await main(["build"]);
if (built !== 0) process.exit(built);

console.log("\n== uvt run  (QEMU q35 + OVMF; the guest's serial console follows)");
const code = await main(["run", ...args]);
// uvt run exits 0 when the guest reported the image's success code (its map records it: run.exitCode, 33).
if (code === 0) {
  console.log("\ndemo: the guest exited with its success code");
  process.exit(0);
}
console.error(`\ndemo: uvt run exited ${code}: the guest did not report success`);
process.exit(code);
