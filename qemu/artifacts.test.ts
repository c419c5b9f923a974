// Unit tests of the artifacts folder of failed boots (qemu/artifacts.ts).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { artifactsFolderName, keepArtifacts } from "./artifacts.ts";

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

describe("keepArtifacts", () => {
  it("writes serial log, stderr, command line and reason into one complete folder", () => {
    dir = mkdtempSync(join(tmpdir(), "uv-art-test-"));
    const serial = join(dir, "s.log");
    writeFileSync(serial, "BdsDxe: loading\n");
    const ev = { name: "hw banner 256M", reason: "timed out", commandLine: "qemu -m 256M", stderr: "qemu: oops\n", serialLog: serial };
    const a = keepArtifacts(join(dir, "artifacts"), ev);
    expect(readdirSync(a).sort()).toEqual(["qemu-cmdline.txt", "qemu-stderr.txt", "reason.txt", "serial.log"]);
    expect(readFileSync(join(a, "serial.log"), "utf8")).toBe("BdsDxe: loading\n");
    expect(readFileSync(join(a, "qemu-cmdline.txt"), "utf8")).toBe("qemu -m 256M\n");
    const b = keepArtifacts(join(dir, "artifacts"), ev);
    expect(b).not.toBe(a);
    expect(readdirSync(join(dir, "artifacts")).some((n) => n.endsWith(".partial"))).toBe(false);
    expect(existsSync(b)).toBe(true);
  });

  it("names folders by time, then a filesystem-safe boot name", () => {
    expect(artifactsFolderName("hw: banner/256M", new Date("2026-01-02T03:04:05.678Z"))).toBe("2026-01-02T03-04-05-678Z-hw-banner-256M");
  });
});
