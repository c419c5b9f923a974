// The default image of `uvt build` for now: the first EFI application (loader-efi/first-image.ts) linked and put on
// an ESP. Replaced by the full Figure 1 host image as the loader, monitor and partitions arrive.
import { assembleFirstImage, ENTRY_SYMBOL, FIRST_IMAGE_EXIT_CODE, type FirstImageOptions } from "../loader-efi/first-image.ts";
import { type EfiImage, linkEfiImage } from "./efi-image.ts";

export interface FirstImage extends EfiImage {
  timings: EfiImage["timings"] & { assemble: number };
}

export function buildFirstImage(opts: FirstImageOptions & { espSizeMiB?: number } = {}): FirstImage {
  const t0 = performance.now();
  const obj = assembleFirstImage(opts);
  const t1 = performance.now();
  const img = linkEfiImage(obj, {
    entry: ENTRY_SYMBOL, successExit: opts.exitCode ?? FIRST_IMAGE_EXIT_CODE, ...(opts.espSizeMiB !== undefined ? { espSizeMiB: opts.espSizeMiB } : {}),
  });
  return { ...img, timings: { ...img.timings, assemble: t1 - t0 } };
}
