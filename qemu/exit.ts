// Decoding how a QEMU process ended: the guest's isa-debug-exit code, a clean shutdown, a QEMU error or our own kill.
// isa-debug-exit makes QEMU exit with (v << 1) | 1 when the guest writes v to its port, so odd statuses are guest codes.

export type ExitReason =
  /** The guest wrote `code` to isa-debug-exit. */
  | { kind: "guest"; code: number }
  /** QEMU shut down normally: QMP quit, ACPI power-off, or -no-reboot after a guest reset. */
  | { kind: "shutdown" }
  /** QEMU itself failed (bad option, missing file, KVM refused); `message` is its first error line. */
  | { kind: "error"; status: number; message: string }
  /** The process was killed by a signal (someone else's, or a crash such as SIGABRT). */
  | { kind: "signal"; signal: string }
  /** The harness stopped QEMU because the boot ran past its time limit (set by Machine, never by decodeExit). */
  | { kind: "timeout"; seconds: number };

/** QEMU's own error lines, without the warnings it prints on success too. */
export function qemuErrorLine(stderr: string): string | undefined {
  for (const raw of stderr.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    if (/^qemu-system-[\w-]+: (warning|terminating on signal)/.test(line)) continue;
    if (/^qemu-system-[\w-]+: /.test(line) || /^KVM internal error/.test(line)) return line;
  }
  return undefined;
}

/**
 * Status 1 is ambiguous: it is both QEMU's generic failure and a guest writing 0. QEMU always explains its own
 * failures on stderr, so 1 with an error line there is QEMU's, and 1 with a clean stderr is the guest's 0.
 */
export function decodeExit(status: number | undefined, signal: string | undefined, stderr = ""): ExitReason {
  if (signal) return { kind: "signal", signal };
  if (status === undefined) return { kind: "error", status: -1, message: "QEMU ended without a status" };
  if (status === 0) return { kind: "shutdown" };
  const err = qemuErrorLine(stderr);
  if (status === 1 && err !== undefined) return { kind: "error", status, message: err };
  if (status % 2 === 1) return { kind: "guest", code: status >>> 1 };
  return { kind: "error", status, message: err ?? `QEMU exited with status ${status}` };
}

/** Largest code a guest can report: QEMU's status is one byte and the low bit marks debug-exit. */
export const MAX_GUEST_EXIT_CODE = 127;

/** One line for logs and CLI output. */
export function describeExit(r: ExitReason): string {
  switch (r.kind) {
    case "guest":
      return `guest exit code ${r.code}`;
    case "shutdown":
      return "QEMU shut down";
    case "error":
      return `QEMU failed (status ${r.status}): ${r.message}`;
    case "signal":
      return `QEMU killed by ${r.signal}`;
    case "timeout":
      return `boot timed out after ${r.seconds} s`;
  }
}
