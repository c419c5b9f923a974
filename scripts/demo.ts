// What ./scripts/demo shows (after ./scripts/setup): `uvt build` of the default image with our own toolchain, then
// `uvt run` booting it under QEMU + OVMF, whose serial console shows the banner and the memory figure. Grows with the
// project (see README); exits 0 only when the guest reported success through isa-debug-exit.
import { FIRST_IMAGE_EXIT_CODE } from "../loader-efi/first-image.ts";
import { main } from "../cli/main.ts";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log("Usage: npx tsx scripts/demo.ts [uvt run options]   builds out/ and boots out/esp.img (options go to uvt run)");
  process.exit(0);
}

console.log("== uvt build  (assembler → PE32+ → GPT/FAT ESP, all in TypeScript)");
const built = await main(["build"]);
if (built !== 0) process.exit(built);

console.log("\n== uvt run  (QEMU q35 + OVMF; the guest's serial console follows)");
const code = await main(["run", ...args]);
if (code === FIRST_IMAGE_EXIT_CODE) {
  console.log(`\ndemo: the guest exited with its success code ${code}`);
  process.exit(0);
}
console.error(`\ndemo: the guest exited with ${code}, expected ${FIRST_IMAGE_EXIT_CODE}`);
process.exit(code === 0 ? 1 : code);
