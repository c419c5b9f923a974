// The default initramfs of a Linux partition (toolchain/linux/, build side; docs/specs/linux-partition.md §3):
// Debian's static busybox, /dev/console, the mount points, and an /init that prints `uname -a`, the MemTotal line of
// /proc/meminfo, runs a small workload and stops the machine through the keyboard controller (`reboot -f` with
// `reboot=k` on the command line). Written through toolchain/initramfs/, the one initramfs writer.
import { readFileSync } from "node:fs";
import { Initramfs } from "../initramfs/initramfs.ts";
import { findLinuxCache } from "./cache.ts";

/** The command line a Linux partition gets when its definition names none. */
export const DEFAULT_CMDLINE = "console=ttyS0 reboot=k panic=-1";

/** The workload's size: /init sums 1..N in shell arithmetic (a few hundred ms under TCG). */
export const WORKLOAD_N = 10_000;

/** Every line /init prints starts with this, so a reader can tell them from the kernel's. */
export const INIT_TAG = "init:";

/**
 * The /init script. Its lines, in order: "init: started", "init: uname <uname -a>", "init: <MemTotal line>",
 * "init: workload sum 1..N = S", "init: done, powering off"; then `reboot -f`.
 */
export function defaultInitScript(n = WORKLOAD_N): string {
  return [
    "#!/bin/sh",
    "# The default /init of a Linux partition (toolchain/linux/default-initramfs.ts).",
    "/bin/busybox --install -s /bin",
    "export PATH=/bin",
    `echo "${INIT_TAG} started"`,
    "mount -t proc proc /proc",
    `echo "${INIT_TAG} uname $(uname -a)"`,
    `echo "${INIT_TAG} $(grep MemTotal /proc/meminfo)"`,
    "i=0; s=0",
    `while [ $i -lt ${n} ]; do i=$((i + 1)); s=$((s + i)); done`,
    `echo "${INIT_TAG} workload sum 1..${n} = $s"`,
    `echo "${INIT_TAG} done, powering off"`,
    // With reboot=k the kernel resets through the keyboard controller (0xFE to port 0x64): a documented stop.
    "reboot -f",
    // reboot -f does not return; if it ever does, stay here rather than let init exit (which panics the kernel).
    "while true; do sleep 1; done",
    "",
  ].join("\n");
}

/** The default initramfs around `init` (default: defaultInitScript()), with busybox from `busybox` (default: the cache). */
export function defaultInitramfs(opts: { busybox?: string; init?: string } = {}): Initramfs {
  const busybox = readFileSync(opts.busybox ?? findLinuxCache().busybox);
  return new Initramfs()
    .dir("/bin")
    .file("/bin/busybox", busybox, 0o755)
    .symlink("/bin/sh", "busybox")
    .dir("/dev")
    // The kernel opens /dev/console for init's stdin, stdout and stderr before it runs /init: without the node,
    // /init runs with no output at all.
    .device("/dev/console", "char", 5, 1, 0o600)
    .dir("/proc", 0o555)
    .dir("/sys", 0o555)
    .dir("/tmp", 0o1777)
    .file("/init", opts.init ?? defaultInitScript(), 0o755);
}
