// Public surface of the QEMU harness (qemu/): what the CLI, test/hw and the benches import.
export { Machine, type MachineOptions, type SerialLine, findQemu, DEFAULT_TIMEOUT_MS } from "./machine.ts";
export { QmpClient, QmpError, type QmpEvent, type QmpStatus } from "./qmp.ts";
export { type ExitReason, decodeExit, describeExit, MAX_GUEST_EXIT_CODE } from "./exit.ts";
export { HarnessError, BootError } from "./errors.ts";
export { discoverOvmf, type OvmfFiles } from "./ovmf.ts";
export { parseMemSize } from "./size.ts";
export { imageMemoryMiB, parseAccel, type AccelRequest, type AccelChoice } from "./accel.ts";
export { DEBUG_EXIT_PORT, type DirectLinux } from "./args.ts";
