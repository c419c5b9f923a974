// Unit tests of the QEMU command line the harness builds (qemu/args.ts).
import { describe, expect, it } from "vitest";
import { buildQemuArgs, qemuEscape, shellQuote } from "./args.ts";

const base = {
  ovmf: { code: "/fw/OVMF_CODE_4M.fd", vars: "/fw/OVMF_VARS_4M.fd" },
  varsCopy: "/tmp/run/vars.fd",
  accel: "tcg" as const,
  memMiB: 256,
  smp: 2,
  serialLog: "/tmp/run/serial.log",
  qmpSocket: "/tmp/run/qmp.sock",
};

function valueOf(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === flag) out.push(args[i + 1]!);
  });
  return out;
}

describe("buildQemuArgs", () => {
  it("boots q35 with OVMF on two pflash drives, the copy of VARS writable", () => {
    const a = buildQemuArgs(base);
    expect(valueOf(a, "-machine")).toEqual(["q35,accel=tcg"]);
    expect(valueOf(a, "-drive")).toEqual([
      "if=pflash,format=raw,unit=0,readonly=on,file=/fw/OVMF_CODE_4M.fd",
      "if=pflash,format=raw,unit=1,file=/tmp/run/vars.fd",
    ]);
    expect(valueOf(a, "-m")).toEqual(["256M"]);
    expect(valueOf(a, "-smp")).toEqual(["2"]);
    expect(a).toContain("-nodefaults");
    expect(valueOf(a, "-display")).toEqual(["none"]);
  });

  it("adds isa-debug-exit on port 0xf4, serial on stdio logged to a file, QMP on a unix socket", () => {
    const a = buildQemuArgs(base);
    expect(valueOf(a, "-device")).toContain("isa-debug-exit,iobase=0xf4,iosize=0x04");
    expect(valueOf(a, "-chardev")).toEqual([
      "stdio,id=serial0,signal=off,logfile=/tmp/run/serial.log",
      "socket,id=qmp0,path=/tmp/run/qmp.sock,server=on,wait=off",
    ]);
    expect(valueOf(a, "-serial")).toEqual(["chardev:serial0"]);
    expect(valueOf(a, "-mon")).toEqual(["chardev=qmp0,mode=control"]);
  });

  it("attaches the image as a raw virtio disk (not vvfat), first in boot order, snapshot by default", () => {
    const a = buildQemuArgs({ ...base, image: "/out/esp.img" });
    expect(valueOf(a, "-drive")[2]).toBe("if=none,id=esp0,format=raw,file=/out/esp.img,snapshot=on");
    expect(valueOf(a, "-device")).toContain("virtio-blk-pci,drive=esp0,bootindex=0");
    expect(a.join(" ")).not.toMatch(/vvfat|fat:/);
    const rw = buildQemuArgs({ ...base, image: "/out/esp.img", snapshot: false });
    expect(valueOf(rw, "-drive")[2]).toBe("if=none,id=esp0,format=raw,file=/out/esp.img");
  });

  it("uses the host CPU model under KVM and escapes commas in paths", () => {
    const a = buildQemuArgs({ ...base, accel: "kvm", image: "/odd,dir/esp.img" });
    expect(valueOf(a, "-cpu")).toEqual(["host"]);
    expect(valueOf(a, "-machine")).toEqual(["q35,accel=kvm"]);
    expect(valueOf(a, "-drive")[2]).toContain("file=/odd,,dir/esp.img,");
    expect(qemuEscape("a,b,,c")).toBe("a,,b,,,,c");
  });

  it("puts an image that asks for the IOMMU behind intel-iommu: the IOMMU before every device, the data disks with iommu_platform=on", () => {
    const a = buildQemuArgs({ ...base, image: "/d/esp.img", disks: ["/d/data.img"], iommu: true });
    const devices = valueOf(a, "-device");
    expect(devices[0]).toBe("intel-iommu,intremap=on");
    expect(devices).toContain("virtio-blk-pci,drive=data0,disable-legacy=on,iommu_platform=on,id=data0-dev");
    expect(devices).toContain("virtio-blk-pci,drive=esp0,bootindex=0"); // the firmware's disk stays outside it
    expect(valueOf(a, "-machine")).toEqual(["q35,accel=tcg"]);
    // intremap needs the split irqchip under KVM.
    expect(valueOf(buildQemuArgs({ ...base, accel: "kvm", iommu: true }), "-machine")).toEqual(["q35,accel=kvm,kernel-irqchip=split"]);
    // Without it: no IOMMU, no iommu_platform.
    const plain = buildQemuArgs({ ...base, disks: ["/d/data.img"] });
    expect(plain.join(" ")).not.toMatch(/iommu/);
  });

  it("gives a file named twice one -blockdev node and two devices sharing it (share-rw=on), the pair's two disks", () => {
    const a = buildQemuArgs({ ...base, disks: ["/d/pair.img", "/d/other.img", "/d/pair.img"] });
    expect(valueOf(a, "-blockdev").map((j) => (JSON.parse(j) as { "node-name": string })["node-name"])).toEqual(["data0", "data1"]);
    expect(valueOf(a, "-device").filter((d) => d.includes("data"))).toEqual([
      "virtio-blk-pci,drive=data0,disable-legacy=on,id=data0-dev,share-rw=on",
      "virtio-blk-pci,drive=data1,disable-legacy=on,id=data1-dev",
      "virtio-blk-pci,drive=data0,disable-legacy=on,id=data2-dev,share-rw=on",
    ]);
  });

  it("takes another CPU model when asked (a processor without XSAVE, for the FXSAVE path), else max under TCG", () => {
    expect(valueOf(buildQemuArgs(base), "-cpu")).toEqual(["max"]);
    expect(valueOf(buildQemuArgs({ ...base, cpu: "max,-xsave" }), "-cpu")).toEqual(["max,-xsave"]);
  });

  it("attaches each data disk as a modern virtio-blk device on its own -blockdev node, file names unescaped in JSON", () => {
    const a = buildQemuArgs({ ...base, disks: ["/d/one.img", "/d/two,three.img"] });
    expect(valueOf(a, "-blockdev").map((j) => JSON.parse(j))).toEqual([
      { driver: "raw", "node-name": "data0", file: { driver: "file", filename: "/d/one.img" } },
      { driver: "raw", "node-name": "data1", file: { driver: "file", filename: "/d/two,three.img" } },
    ]);
    expect(valueOf(a, "-device").filter((d) => d.includes("data"))).toEqual([
      "virtio-blk-pci,drive=data0,disable-legacy=on,id=data0-dev", "virtio-blk-pci,drive=data1,disable-legacy=on,id=data1-dev",
    ]);
  });

  it("rejects non-integer memory and CPU counts", () => {
    expect(() => buildQemuArgs({ ...base, memMiB: 0 })).toThrow(/memMiB/);
    expect(() => buildQemuArgs({ ...base, smp: 1.5 })).toThrow(/smp/);
  });

  it("quotes a command line so a shell gets the same argv back", () => {
    expect(shellQuote(["qemu", "-m", "256M", "a b", "it's"])).toBe(`qemu -m 256M 'a b' 'it'\\''s'`);
  });
});

describe("buildQemuArgs for a direct Linux boot", () => {
  const linux = { kernel: "/k/vmlinuz", initrd: "/k/initrd.gz", append: "console=ttyS0 reboot=k" };
  it("uses QEMU's -kernel loader under SeaBIOS: no pflash, no disk", () => {
    const a = buildQemuArgs({ ...base, linux });
    expect(valueOf(a, "-kernel")).toEqual(["/k/vmlinuz"]);
    expect(valueOf(a, "-initrd")).toEqual(["/k/initrd.gz"]);
    expect(valueOf(a, "-append")).toEqual(["console=ttyS0 reboot=k"]);
    expect(valueOf(a, "-drive")).toEqual([]);
    expect(a).toContain("-no-reboot");
  });
  it("refuses a disk image beside it", () => {
    expect(() => buildQemuArgs({ ...base, linux, image: "/x/esp.img" })).toThrow(/no disk image/);
  });
});
