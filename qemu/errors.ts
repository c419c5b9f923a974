// Errors of the QEMU harness. HarnessError is a user-facing, one-line problem (missing QEMU/OVMF/image, bad size);
// BootError is a boot that went wrong and carries the artifacts folder where its logs were kept.

/** Bad input or missing prerequisite: the message alone says what to install or pass. */
export class HarnessError extends Error {
  override name = "HarnessError";
}

/** A boot failed (timeout, pattern never seen, QEMU died); `artifacts` is the folder holding serial, stderr, command line. */
export class BootError extends Error {
  override name = "BootError";
  constructor(
    message: string,
    readonly artifacts: string | undefined,
  ) {
    super(artifacts ? `${message} (logs kept in ${artifacts})` : message);
  }
}
