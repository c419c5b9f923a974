// Unit tests of the accelerator choice (qemu/accel.ts): the decision table and the probe cache. The probe boot
// itself runs for real in test/hw/harness.test.ts; here it is a counted function so the caching can be observed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearProcessAccelCache, parseAccel, resolveAccel } from "./accel.ts";

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
