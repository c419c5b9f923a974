// Unit tests of the accelerator choice (qemu/accel.ts): the decision table and the probe cache. The probe boot
// itself runs for real in test/hw/harness.test.ts; here it is a counted function so the caching can be observed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearProcessAccelCache, imageNeedsSvm, nestedSvmProblem, parseAccel, requireNestedSvm, resolveAccel, SVM_IMAGE_MARKER } from "./accel.ts";

let dir: string;
let dev: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "uv-accel-test-"));
  dev = join(dir, "kvm");
  writeFileSync(dev, "");
  clearProcessAccelCache();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function counter(kvm: boolean) {
  const c = { calls: 0, probe: async () => (c.calls++, { kvm, reason: kvm ? "ok" : "KVM internal error" }) };
  return c;
}

describe("resolveAccel", () => {
  it("uses TCG without probing when asked, or when the KVM device is missing", async () => {
    const c = counter(true);
    expect((await resolveAccel({ request: "tcg", key: "k", probe: c.probe, cacheFile: null, kvmDevice: dev })).accel).toBe("tcg");
    const r = await resolveAccel({ request: "auto", key: "k", probe: c.probe, cacheFile: null, kvmDevice: join(dir, "none") });
    expect(r).toMatchObject({ accel: "tcg", source: "no-kvm-device" });
    expect(c.calls).toBe(0);
  });

  it("refuses --accel kvm without a usable device", async () => {
    await expect(resolveAccel({ request: "kvm", key: "k", probe: counter(true).probe, cacheFile: null, kvmDevice: join(dir, "none") })).rejects.toThrow(/does not exist/);
  });

  it("follows the probe under auto, and probes once per process and key", async () => {
    const bad = counter(false);
    const o = { request: "auto" as const, key: "q|fw", probe: bad.probe, cacheFile: null, kvmDevice: dev };
    expect(await resolveAccel(o)).toMatchObject({ accel: "tcg", source: "probe", reason: "KVM internal error" });
    expect(await resolveAccel(o)).toMatchObject({ accel: "tcg", source: "process-cache" });
    expect(bad.calls).toBe(1);
    const good = counter(true);
    expect(await resolveAccel({ ...o, key: "other", probe: good.probe })).toMatchObject({ accel: "kvm", source: "probe" });
  });

  it("keeps the verdict in the cache file for the next process", async () => {
    const file = join(dir, "cache", "accel.json");
    const c = counter(false);
    await resolveAccel({ request: "auto", key: "q|fw", probe: c.probe, cacheFile: file, kvmDevice: dev });
    expect(JSON.parse(readFileSync(file, "utf8"))["q|fw"]).toMatchObject({ kvm: false });
    clearProcessAccelCache();
    expect(await resolveAccel({ request: "auto", key: "q|fw", probe: c.probe, cacheFile: file, kvmDevice: dev })).toMatchObject({ accel: "tcg", source: "file-cache" });
    expect(c.calls).toBe(1);
  });

  it("parses the --accel values", () => {
    expect(parseAccel("auto")).toBe("auto");
    expect(() => parseAccel("hvf")).toThrow(/auto, kvm or tcg/);
  });
});

describe("images with hardware-virtualized partitions (nested SVM)", () => {
  it("reads kvm_amd's nested parameter: 1 or Y offer nested SVM, anything else or no module does not", () => {
    const f = join(dir, "nested");
    writeFileSync(f, "1\n");
    expect(nestedSvmProblem(f)).toBeUndefined();
    writeFileSync(f, "0\n");
    expect(nestedSvmProblem(f)).toBe("kvm_amd nested=0");
    expect(nestedSvmProblem(join(dir, "absent"))).toMatch(/kvm_amd is not loaded/);
  });

  it("keeps KVM when nested SVM works, falls back to TCG with the reason under auto, refuses a forced kvm", () => {
    const probed = { accel: "kvm" as const, reason: "KVM probe boot reached firmware output", source: "probe" as const };
    expect(requireNestedSvm(probed, undefined)).toBe(probed);
    const fallback = requireNestedSvm(probed, "kvm_amd nested=0");
    expect(fallback).toEqual({ accel: "tcg", reason: "the image holds a hardware-virtualized partition and this KVM has no nested SVM (kvm_amd nested=0): TCG emulates SVM with nested paging", source: "probe" });
    expect(() => requireNestedSvm({ accel: "kvm", reason: "requested", source: "forced" }, "kvm_amd nested=0")).toThrow(/--accel kvm: .*no nested SVM.*use --accel tcg or auto/);
    const tcg = { accel: "tcg" as const, reason: "requested", source: "forced" as const };
    expect(requireNestedSvm(tcg, "kvm_amd nested=0")).toBe(tcg);
  });

  it("finds the builder's marker in an image file", () => {
    const with_ = join(dir, "with.img");
    writeFileSync(with_, Buffer.concat([Buffer.alloc(5000), Buffer.from(SVM_IMAGE_MARKER), Buffer.alloc(100)]));
    writeFileSync(join(dir, "without.img"), Buffer.alloc(5000));
    expect(imageNeedsSvm(with_)).toBe(true);
    expect(imageNeedsSvm(join(dir, "without.img"))).toBe(false);
  });
});
