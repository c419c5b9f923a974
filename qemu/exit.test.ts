// Unit tests of QEMU exit-status decoding (qemu/exit.ts): isa-debug-exit's (v << 1) | 1 and the status-1 ambiguity.
import { describe, expect, it } from "vitest";
import { decodeExit, describeExit, qemuErrorLine } from "./exit.ts";

describe("decodeExit", () => {
  it("turns odd statuses into the value the guest wrote", () => {
    for (const v of [1, 2, 42, 0x31, 127]) expect(decodeExit((v << 1) | 1, undefined)).toEqual({ kind: "guest", code: v });
  });

  it("reads status 0 as a clean shutdown", () => {
    expect(decodeExit(0, undefined)).toEqual({ kind: "shutdown" });
  });

  it("reads status 1 as QEMU's failure when stderr explains one, else as the guest's 0", () => {
    const err = "qemu-system-x86_64: -drive file=x: Could not open 'x': No such file or directory\n";
    expect(decodeExit(1, undefined, err)).toEqual({ kind: "error", status: 1, message: err.trim() });
    expect(decodeExit(1, undefined, "")).toEqual({ kind: "guest", code: 0 });
    // Warnings are printed on successful runs too; they do not make status 1 an error.
    expect(decodeExit(1, undefined, "qemu-system-x86_64: warning: host doesn't support requested feature\n")).toEqual({ kind: "guest", code: 0 });
  });

  it("reports even non-zero statuses and signals as failures", () => {
    expect(decodeExit(2, undefined).kind).toBe("error");
    expect(decodeExit(undefined, "SIGKILL")).toEqual({ kind: "signal", signal: "SIGKILL" });
  });

  it("finds the KVM failure line among QEMU's output", () => {
    expect(qemuErrorLine("KVM internal error. Suberror: 1\nextra data[0]: 0x1\n")).toBe("KVM internal error. Suberror: 1");
    expect(qemuErrorLine("qemu-system-x86_64: terminating on signal 15 from pid 7\n")).toBeUndefined();
  });

  it("describes every outcome in one line", () => {
    expect(describeExit({ kind: "guest", code: 3 })).toBe("guest exit code 3");
    expect(describeExit({ kind: "timeout", seconds: 5 })).toBe("boot timed out after 5 s");
  });
});
