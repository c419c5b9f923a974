// Benchmark: QEMU start → the first image's banner under TCG, next to the floor: QEMU start → OVMF running the
// smallest EFI application (loader-efi/minimal-image.ts) from the same kind of ESP. Both in one run, alternating, best
// of N each, so the ratio compares like with like on a shared machine. Target: banner within 10 % of the floor.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bench, round } from "./bench.ts";
import { DEFAULT_BANNER, FIRST_IMAGE_LINES } from "../loader-efi/first-image.ts";
import { assembleMinimalImage, MINIMAL_ENTRY, MINIMAL_MARKER } from "../loader-efi/minimal-image.ts";
import { Machine } from "../qemu/index.ts";
import { linkEfiImage, writeEfiImage } from "../image/efi-image.ts";
import { buildFirstImage } from "../image/first-image.ts";

const REPEAT = Number(process.env["UV_BENCH_BOOT_REPEAT"] ?? 3);

/** A pattern matching exactly this line (the banner is free text: its characters must not act as regex syntax). */
function exactLine(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

async function timeToLine(image: string, pattern: RegExp, name: string): Promise<number> {
  const m = await Machine.start({ name, image, accel: "tcg", mem: "256M", timeoutMs: 120_000, log: () => undefined });
  try {
    await m.waitFor(pattern, 110_000);
    return m.lines.find((l) => pattern.test(l.text))!.ms;
  } finally {
    await m.close();
  }
}

const bench: Bench = {
  name: "boot",
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "uv-bench-boot-"));
    try {
      const first = (await writeEfiImage(join(dir, "first"), buildFirstImage())).esp;
      const minimal = (await writeEfiImage(join(dir, "minimal"), linkEfiImage(assembleMinimalImage(), { entry: MINIMAL_ENTRY }))).esp;
      const bannerRe = exactLine(FIRST_IMAGE_LINES.banner("COM1", DEFAULT_BANNER));
      const floorRe = exactLine(MINIMAL_MARKER);
      let banner = Infinity;
      let floor = Infinity;
      for (let i = 0; i < REPEAT; i++) {
        floor = Math.min(floor, await timeToLine(minimal, floorRe, "bench-boot-floor"));
        banner = Math.min(banner, await timeToLine(first, bannerRe, "bench-boot-banner"));
        process.stderr.write(`bench: boot round ${i + 1}/${REPEAT}: floor ${floor.toFixed(0)} ms, banner ${banner.toFixed(0)} ms\n`);
      }
      return [
        { bench: "boot.tcg_ovmf_floor", value: round(floor, 0), unit: "ms" },
        { bench: "boot.tcg_to_banner", value: round(banner, 0), unit: "ms", vs: "boot.tcg_ovmf_floor", ratio: round(banner / floor, 3) },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
