// Builds QEMU's command line for one boot: q35, OVMF as two pflash drives, the ESP image as a raw virtio disk,
// serial on stdio (QEMU also logs it to a file), QMP on a unix socket and isa-debug-exit. A direct Linux boot (the
// plain-QEMU side of the Linux partition's comparison, docs/specs/linux-partition.md §8) replaces OVMF and the disk
// with QEMU's own loader: SeaBIOS and -kernel/-initrd/-append. Pure, so it is unit-tested.
import type { OvmfFiles } from "./ovmf.ts";

export type Accel = "kvm" | "tcg";

export interface QemuArgsInput {
  ovmf: OvmfFiles;
  /** This run's private copy of the VARS template (pflash unit 1 is writable). */
  varsCopy: string;
  accel: Accel;
  memMiB: number;
  smp: number;
  /** Raw disk image holding the ESP; absent for firmware-only boots (the accelerator probe, the OVMF floor). */
  image?: string;
  /** Keep the image untouched: writes go to a throw-away overlay. */
  snapshot?: boolean;
  /** File QEMU copies the serial output into (independently of our stdio stream, so it survives our crash). */
  serialLog: string;
  qmpSocket: string;
  /** Extra arguments appended verbatim (devices a test needs). */
  extra?: string[];
  /**
   * Data disks (raw image files), each a modern-only virtio-blk PCI device (`disable-legacy=on`: the transport the
   * I/O partition drives, docs/specs/storage-channel.md) on a -blockdev node named data0, data1 … (one node per file:
   * a file given twice is one node with two devices, share-rw=on)
   */
  disks?: string[];
  /** The -cpu model (default: host under KVM, max under TCG), e.g. "max,-xsave" to test a processor without XSAVE. */
  cpu?: string;
  /**
   * The image asks for the IOMMU (docs/specs/storage-channel.md §9): an emulated Intel IOMMU before every other device
   * (`intremap=on`; under KVM the split irqchip it needs), and the data disks behind it (`iommu_platform=on`).
   */
  iommu?: boolean;
  /** Boot this kernel with QEMU's own Linux loader under SeaBIOS instead of OVMF (no pflash, no disk). */
  linux?: DirectLinux;
}

/** A kernel QEMU loads itself (`-kernel`), with its initramfs and command line. */
export interface DirectLinux {
  kernel: string;
  initrd: string;
  append: string;
}

/** The I/O port guests write their exit code to; the loader and the docs use the same number. */
export const DEBUG_EXIT_PORT = 0xf4;

/** Commas in QEMU option values are escaped by doubling them. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ",,");
}

export function buildQemuArgs(i: QemuArgsInput): string[] {
  if (!Number.isInteger(i.memMiB) || i.memMiB <= 0) throw new RangeError(`memMiB must be a positive integer, got ${i.memMiB}`);
  if (!Number.isInteger(i.smp) || i.smp < 1) throw new RangeError(`smp must be a positive integer, got ${i.smp}`);
  const a: string[] = [
    // -nodefaults: no default NIC, CD-ROM or VGA, so OVMF's boot order has only the devices we add and does not spend
    // seconds trying a PXE boot or an empty DVD drive before our disk.
    "-nodefaults",
    "-machine", `q35,accel=${i.accel}${i.iommu && i.accel === "kvm" ? ",kernel-irqchip=split" : ""}`,
    "-cpu", i.cpu ?? (i.accel === "kvm" ? "host" : "max"),
    "-m", `${i.memMiB}M`,
    "-smp", String(i.smp),
    "-display", "none",
    // A triple fault must end the run, not reboot into the same fault forever.
    "-no-reboot",
    ...(i.linux
      // QEMU's -kernel loader under SeaBIOS: the setup code runs as a boot loader would run it, no EFI involved.
      ? ["-kernel", i.linux.kernel, "-initrd", i.linux.initrd, "-append", i.linux.append]
      : [
        "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${qemuEscape(i.ovmf.code)}`,
        "-drive", `if=pflash,format=raw,unit=1,file=${qemuEscape(i.varsCopy)}`,
      ]),
    "-chardev", `stdio,id=serial0,signal=off,logfile=${qemuEscape(i.serialLog)}`,
    "-serial", "chardev:serial0",
    "-chardev", `socket,id=qmp0,path=${qemuEscape(i.qmpSocket)},server=on,wait=off`,
    "-mon", "chardev=qmp0,mode=control",
    // The IOMMU first: QEMU wants it created before the PCI devices it translates for.
    ...(i.iommu ? ["-device", "intel-iommu,intremap=on"] : []),
    "-device", `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`,
  ];
  if (i.image !== undefined && i.linux) throw new RangeError("a direct Linux boot has no disk image");
  if (i.image !== undefined) {
    a.push(
      "-drive", `if=none,id=esp0,format=raw,file=${qemuEscape(i.image)}${i.snapshot === false ? "" : ",snapshot=on"}`,
      // bootindex puts the disk first in OVMF's boot order even when the VARS store remembers other entries.
      "-device", "virtio-blk-pci,drive=esp0,bootindex=0",
    );
  }
  // One -blockdev node per file, named after the first disk that names it: the same file given twice (a redundant
  // pair of I/O partitions, each with its own device on one disk: docs/specs/storage-failover.md §1) becomes two
  // devices on one node, both with share-rw=on — two nodes on one file fail on QEMU's image lock.
  const disks = i.disks ?? [];
  const nodeOf = new Map<string, number>();
  disks.forEach((file, n) => {
    if (nodeOf.has(file)) return;
    nodeOf.set(file, n);
    // The JSON form of -blockdev: a file name is a JSON string, so no comma escaping is needed.
    a.push("-blockdev", JSON.stringify({ driver: "raw", "node-name": `data${n}`, file: { driver: "file", filename: file } }));
  });
  disks.forEach((file, n) => {
    const shared = disks.indexOf(file) !== disks.lastIndexOf(file);
    a.push("-device", `virtio-blk-pci,drive=data${nodeOf.get(file)!},disable-legacy=on${i.iommu ? ",iommu_platform=on" : ""},id=data${n}-dev${shared ? ",share-rw=on" : ""}`);
  });
  if (i.extra) a.push(...i.extra);
  return a;
}

/** The command line as one shell-pasteable string, for the artifacts folder and error messages. */
export function shellQuote(argv: string[]): string {
  return argv.map((s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)).join(" ");
}
