// Benchmark: time to build the default image (assemble → link + PE32+ → GPT/FAT ESP in memory → files on disk).
// Target: under 200 ms (issue 3).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, bestOf, round } from "./bench.ts";
import { writeEfiImage } from "../image/efi-image.ts";
import { buildFirstImage } from "../image/first-image.ts";

const bench: Bench = {
  name: "image",
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "uv-bench-image-"));
    try {
      buildFirstImage(); // warm the JIT and module graph: `uvt build` pays this once per process as well
      const inMemory = await bestOf(10, () => buildFirstImage());
      const toDisk = await bestOf(10, () => writeEfiImage(dir, buildFirstImage()));
      return [
        { bench: "image.build_in_memory", value: round(inMemory * 1000, 2), unit: "ms" },
        { bench: "image.build_and_write", value: round(toDisk * 1000, 2), unit: "ms", vs: "target 200 ms", ratio: round((toDisk * 1000) / 200, 3) },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
