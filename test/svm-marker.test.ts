// The marker that tells `uvt run` an image holds hardware-virtualized partitions (qemu/accel.ts imageNeedsSvm) is
// written by the image builder from monitor-gen/svm/layout.ts: the two copies must agree, and only images with a
// virtualized partition carry it.
import { describe, expect, it } from "vitest";
import { SVM_IMAGE_MARKER as BUILT } from "../monitor-gen/svm/layout.ts";
import { SVM_IMAGE_MARKER as SOUGHT } from "../qemu/accel.ts";
import { buildUltravisorImage } from "../image/ultravisor.ts";
import { configFrom, figure1Definition } from "../partitions/config.ts";

describe("the SVM image marker", () => {
  it("is the same text on both sides", () => {
    expect(BUILT).toBe(SOUGHT);
  });

  it("is in an image with a virtualized partition and not in one without", async () => {
    const def = figure1Definition();
    const withVm = await buildUltravisorImage({ config: configFrom(def), coreDatabase: false });
    const without = await buildUltravisorImage({ config: configFrom({ ...def, partitions: def.partitions!.filter((p) => p.behaviour?.vm === undefined) }), coreDatabase: false });
    expect(Buffer.from(withVm.efi).includes(BUILT)).toBe(true);
    expect(Buffer.from(without.efi).includes(BUILT)).toBe(false);
  }, 120_000);
});
