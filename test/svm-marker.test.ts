// The marker that tells `uvt run` an image holds hardware-virtualized partitions (qemu/accel.ts imageNeedsSvm) is
// written by the image builder from monitor-gen/svm/layout.ts: the two copies must agree, and only images with a
// virtualized partition carry it.
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MEMORY_MARKER as MEMORY_BUILT, SVM_IMAGE_MARKER as BUILT } from "../monitor-gen/svm/layout.ts";
import { IOMMU_IMAGE_MARKER as IOMMU_SOUGHT, imageMemoryMiB, imageNeedsIommu, MEMORY_MARKER as MEMORY_SOUGHT, SVM_IMAGE_MARKER as SOUGHT } from "../qemu/accel.ts";
import { IOMMU_IMAGE_MARKER as IOMMU_BUILT } from "../monitor-gen/iommu.ts";
import { loadConfig } from "../partitions/config.ts";
import { definitionFrom } from "../definition/load.ts";
import { bareMetalConfig } from "../partitions/config.ts";
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

describe("the memory marker", () => {
  it("is the same text on both sides", () => {
    expect(MEMORY_BUILT).toBe(MEMORY_SOUGHT);
  });

  it("says 256 MiB plus the Linux partitions' memory, and is absent without them (uvt run's default --mem)", async () => {
    const d = definitionFrom({
      revision: 2,
      partitions: [{ name: "idle", kind: "idle" }, { name: "io", kind: "io", duty: 2 }, { name: "L", duty: 8, memory: "96 MB", linux: {} }, { name: "M", duty: 4, memory: "128 MB", linux: {} }],
    }, "memory-marker host");
    const dir = mkdtempSync(join(tmpdir(), "uv-memory-marker-"));
    try {
      const img = await buildUltravisorImage({ config: bareMetalConfig(d), coreDatabase: false });
      writeFileSync(join(dir, "linux.efi"), img.efi);
      expect(imageMemoryMiB(join(dir, "linux.efi"))).toBe(256 + 96 + 128);
      const plain = await buildUltravisorImage({ config: configFrom(figure1Definition()), coreDatabase: false });
      writeFileSync(join(dir, "plain.efi"), plain.efi);
      expect(imageMemoryMiB(join(dir, "plain.efi"))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("the IOMMU marker", () => {
  it("is the same text on both sides", () => {
    expect(IOMMU_BUILT).toBe(IOMMU_SOUGHT);
  });

  it("is in an image whose host asks for the IOMMU (uvt run then adds intel-iommu) and not in one without", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uv-iommu-marker-"));
    try {
      const withIommu = await buildUltravisorImage({ config: loadConfig(join(import.meta.dirname, "..", "examples", "storage-iommu.yaml")), coreDatabase: false });
      const without = await buildUltravisorImage({ config: loadConfig(join(import.meta.dirname, "..", "examples", "storage.yaml")), coreDatabase: false });
      writeFileSync(join(dir, "with.efi"), withIommu.efi);
      writeFileSync(join(dir, "without.efi"), without.efi);
      expect(imageNeedsIommu(join(dir, "with.efi"))).toBe(true);
      expect(imageNeedsIommu(join(dir, "without.efi"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
