// Test behaviours of ring-3 guests around PCI devices (docs/specs/pci-devices.md §5–6, test/hw/pci-devices.test.ts),
// written with the typed assembler into partitions/programs.ts's guest: "pci-owner" reads its own devices through
// the mappings the ultravisor gave it — the virtio common and device configuration through the memory BAR, the
// legacy virtio header through the I/O BAR — and prints what it read; the attacks "pci-bar", "pci-cf8" and
// "pci-port" touch another partition's device (its BAR at DEVWIN + address, its I/O port) or the configuration
// address port, and must be stopped by the fault. Every address comes from the device list page (DEVLIST).
import { type Assembler, type Label, byte, dword, dx, eax, ebp, ebx, ecx, edx, qword, r12, r12d, r13, r14, r14d, r15, rax, rbp, rbx, rcx, rdx, word } from "../toolchain/x64/index.ts";
import { INFO, WINDOW } from "../monitor-gen/layout.ts";
import { BAR_KIND, CONFIG_ADDRESS, DEVLIST, DEVWIN, PCI_LIST, pciEntryAt } from "../monitor-gen/pci.ts";
import { consoleLine } from "./runtime.ts";

/** virtio 1.x §4.1.4 cfg_type values and offsets the owner reads (common: device_feature_select 0, device_feature 4). */
const VIRTIO_COMMON = 1;
const VIRTIO_DEVICE = 4;
/** The legacy virtio header's device-specific part starts at 0x14 without MSI-X (virtio 0.9.5 / 1.x §4.1.4.10). */
const LEGACY_DEVICE_CONFIG = 0x14;

/**
 * The owner's report, one line per device it owns and way it reaches it (a console line holds 64 characters):
 * "pci owner 0xBDF mem features-hi 0x.. cap N" through the memory BAR (device_feature with select 1, the virtio-blk
 * capacity in 512-byte sectors), "pci owner 0xBDF io port 0x.. cap N" through the I/O BAR's legacy header.
 * Uses rbx, rbp, r12–r15 (the guest sets them up afterwards).
 */
export function emitPciOwner(a: Assembler): void {
  const none = a.label();
  const done = a.label();
  a.mov(rbx, DEVLIST);
  a.cmp(dword(rbx, 0), PCI_LIST.magic).jne(none);
  a.mov(r12, WINDOW + BigInt(INFO.number)).mov(r12, qword(r12)); // this partition's number
  a.xor(r14d, r14d);
  const entry = a.here();
  const next = a.label();
  a.cmp(r14d, dword(rbx, PCI_LIST.count)).jae(done);
  pciEntryAt(a, rbp, rbx, r14);
  a.cmp(dword(rbp, PCI_LIST.owner), r12d).jne(next);
  // Memory: the common and device configuration structures, each at DEVWIN + BAR address + offset.
  const noMem = a.label();
  const find = (type: number, into: typeof r13, missing: Label): void => {
    const k = a.label();
    const hit = a.label();
    a.xor(ecx, ecx);
    a.bind(k);
    a.movzx(eax, word(rbp, PCI_LIST.caps)).cmp(ecx, eax).jae(missing);
    a.imul(eax, ecx, 12).cmp(byte({ base: rbp, index: rax, disp: PCI_LIST.cap(0) }), type).je(hit);
    a.inc(ecx).jmp(k);
    a.bind(hit);
    // into = DEVWIN + bars[cap.bar].address + cap.offset
    a.movzx(edx, byte({ base: rbp, index: rax, disp: PCI_LIST.cap(0) + 1 })).shl(edx, 4);
    a.mov(into, qword({ base: rbp, index: rdx, disp: PCI_LIST.barAddress(0) }));
    a.mov(edx, dword({ base: rbp, index: rax, disp: PCI_LIST.cap(0) + 4 })).add(into, rdx);
    a.mov(rdx, DEVWIN).add(into, rdx);
  };
  find(VIRTIO_COMMON, r13, noMem);
  find(VIRTIO_DEVICE, r15, noMem);
  a.mov(dword(r13, 0), 1); // device_feature_select = 1: feature bits 32–63
  a.mov(eax, dword(r13, 4)).mov(r13, rax);
  consoleLine(a, "pci owner ", { hex: (x) => x.movzx(eax, word(rbp, PCI_LIST.bdf)) }, " mem features-hi ", { hex: (x) => x.mov(rax, r13) },
    " cap ", { dec: (x) => x.mov(rax, qword(r15, 0)) });
  a.bind(noMem);
  // I/O: each I/O BAR as a legacy virtio header (a transitional device): the capacity (u64) at 0x14.
  for (let i = 0; i < 6; i++) {
    const skip = a.label();
    a.cmp(byte(rbp, PCI_LIST.barKind(i)), BAR_KIND.io).jne(skip);
    a.mov(r13, qword(rbp, PCI_LIST.barAddress(i)));
    a.lea(rdx, qword(r13, LEGACY_DEVICE_CONFIG + 4)).in(eax, dx).mov(r15, rax).shl(r15, 32);
    a.lea(rdx, qword(r13, LEGACY_DEVICE_CONFIG)).in(eax, dx).or(r15, rax);
    consoleLine(a, "pci owner ", { hex: (x) => x.movzx(eax, word(rbp, PCI_LIST.bdf)) }, " io port ", { hex: (x) => x.mov(rax, r13) },
      " cap ", { dec: (x) => x.mov(rax, r15) });
    a.bind(skip);
  }
  a.bind(next);
  a.inc(r14d).jmp(entry);
  a.bind(none);
  consoleLine(a, "pci owner: no device list");
  a.bind(done);
}

/** The attacks, at the point where the guest commits its fault; clobbers rax, rbx, rcx, rdx, rbp. */
export function emitPciAttack(a: Assembler, kind: "pci-bar" | "pci-cf8" | "pci-port"): void {
  if (kind === "pci-cf8") {
    consoleLine(a, "pci attack: out 0xcf8");
    a.mov(dx, CONFIG_ADDRESS).mov(eax, 0x8000_0000).out(dx, eax);
    return;
  }
  // Another partition's device: the first entry with an owner that is not this partition and a BAR of the kind.
  const found = a.label();
  const none = a.label();
  a.mov(rbx, DEVLIST);
  a.mov(rcx, WINDOW + BigInt(INFO.number)).mov(rcx, qword(rcx));
  a.xor(ebp, ebp);
  const entry = a.here();
  const next = a.label();
  a.cmp(ebp, dword(rbx, PCI_LIST.count)).jae(none);
  pciEntryAt(a, rdx, rbx, rbp);
  a.cmp(dword(rdx, PCI_LIST.owner), 0).je(next);
  a.cmp(dword(rdx, PCI_LIST.owner), ecx).je(next);
  for (let i = 0; i < 6; i++) {
    const no = a.label();
    a.movzx(eax, byte(rdx, PCI_LIST.barKind(i))).and(eax, 15);
    if (kind === "pci-bar") a.cmp(eax, BAR_KIND.mem32).jb(no);
    else a.cmp(eax, BAR_KIND.io).jne(no);
    a.mov(rbx, qword(rdx, PCI_LIST.barAddress(i)));
    a.jmp(found);
    a.bind(no);
  }
  a.bind(next);
  a.inc(ebp).jmp(entry);
  a.bind(none);
  consoleLine(a, `pci attack: ${kind}: no device of another partition in the list`);
  const end = a.label();
  a.jmp(end);
  a.bind(found);
  if (kind === "pci-bar") {
    a.mov(rax, DEVWIN).add(rbx, rax);
    consoleLine(a, "pci attack: read DEVWIN + ", { hex: (x) => x.mov(rax, rbx).mov(rcx, DEVWIN).sub(rax, rcx) });
    a.mov(eax, dword(rbx, 0));
  } else {
    consoleLine(a, "pci attack: in port ", { hex: (x) => x.mov(rax, rbx) });
    a.mov(edx, ebx).in(eax, dx);
  }
  a.bind(end);
}
