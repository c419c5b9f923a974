// A standalone EFI application that boots one Linux partition's files on the bare machine, without the ultravisor
// (loader-efi/, EFI side; docs/specs/linux-partition.md §7–§8). It is the loading half of a Linux partition, kept
// apart so it can be tested alone: it opens the ESP it was loaded from through EFI_SIMPLE_FILE_SYSTEM_PROTOCOL,
// reads LOWPAGES, KERNEL and INITRD into pages it allocates above the partition's memory (the firmware holds parts of
// the target ranges until ExitBootServices: OVMF's own data sits at 16 MiB), leaves boot services (map-key retry),
// copies each file to its guest-physical address and enters the kernel with the 64-bit entry state of §6: the low
// pages' GDT and identity page tables, CS = 0x10, data segments 0x18, rsi = the zero page, interrupts off, through
// an indirect far jump (no stack is used after the copies), rsp = the top of page 0 as the monitor sets it. Physical address
// = guest-physical address here (the machine is the partition), so the kernel sees exactly the e820 map of the zero
// page and nothing of the rest of the machine's RAM. test/hw/linux-direct.test.ts boots Debian's kernel with it.
import { Assembler, type Label, al, ax, dx, eax, ecx, edx, ptr, qword, r8, r9, r12, r13, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp, cr3, ds, es, fs, gs, ss, tbyte } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";

export const LINUX_DIRECT_ENTRY = "efi_main";

export interface LinuxDirectPlan {
  /** ESP path ("/LINUX/L/KERNEL"), size and guest-physical address of each file, in load order. */
  files: ReadonlyArray<{ path: string; size: number; gpa: number }>;
  entry: { rip: number; rsi: number; rsp: number; cr3: number; gdt: number };
  /** The partition's memory: the staging pages and this image must lie above it. */
  memory: number;
}

/** Lines it prints on COM1 (before the kernel's own). */
export const LINUX_DIRECT_LINES = {
  started: "linux-direct: started",
  loaded: "linux-direct: files loaded, leaving boot services",
  failed: /^linux-direct: error: (.*)$/,
} as const;

const ST_BOOT_SERVICES = 96;
const BS = { allocatePages: 40, getMemoryMap: 56, allocatePool: 64, handleProtocol: 152, exitBootServices: 232 } as const;
const LI_DEVICE_HANDLE = 24;
const SFS_OPEN_VOLUME = 8;
const FILE = { open: 8, close: 16, read: 32 } as const;
const ALLOCATE_ANY = 0;
const LI_IMAGE_BASE = 64;
const LOADER_DATA = 2;
const MODE_READ = 1;
const MAP_BUFFER = 64 * 1024;
const EBS_TRIES = 4;
/** EFI_LOADED_IMAGE_PROTOCOL_GUID 5b1b31a1-9562-11d2-8e3f-00a0c969723b, in memory order. */
const LOADED_IMAGE_GUID = [0xa1, 0x31, 0x1b, 0x5b, 0x62, 0x95, 0xd2, 0x11, 0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b];
/** EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID 964e5b22-6459-11d2-8e39-00a0c969723b, in memory order. */
const SFS_GUID = [0x22, 0x5b, 0x4e, 0x96, 0x59, 0x64, 0xd2, 0x11, 0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b];

/** A UCS-2 path with backslashes, NUL-terminated, as EFI_FILE_PROTOCOL.Open takes it. */
function ucs2(path: string): number[] {
  const out: number[] = [];
  for (const ch of path.replace(/\//g, "\\")) {
    const c = ch.charCodeAt(0);
    if (c > 0x7e || c < 0x20) throw new Error(`ESP path ${path}: printable ASCII only`);
    out.push(c & 0xff, c >> 8);
  }
  return [...out, 0, 0];
}

/** COM1 output without the firmware (valid before and after ExitBootServices); clobbers al, dx. */
function say(a: Assembler, text: string): void {
  for (const ch of `${text}\r\n`) a.mov(dx, 0x3f8).mov(al, ch.charCodeAt(0)).out(dx, al);
}

export function assembleLinuxDirect(plan: LinuxDirectPlan): ObjectFile {
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_image", "g_bs", "g_li", "g_sfs", "g_root", "g_fh", "g_size", "g_addr", "g_map", "g_map_size", "g_map_key", "g_desc_size", "g_desc_ver"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".rdata");
  a.bind(L("g_li_guid"));
  a.db(...LOADED_IMAGE_GUID);
  a.bind(L("g_sfs_guid"));
  a.db(...SFS_GUID);
  a.section(".data");
  a.align(8);
  a.bind(L("g_far")); // m16:64 of the far jump: rip, then the selector
  a.dq(BigInt(plan.entry.rip));
  a.dw(0x10);
  a.section(".bss");
  a.align(8);
  plan.files.forEach((_, i) => {
    a.bind(L(`g_stage${i}`));
    a.zero(8);
  });
  a.section(".rdata");
  plan.files.forEach((f, i) => {
    a.align(2);
    a.bind(L(`g_path${i}`));
    a.db(...ucs2(f.path));
  });
  a.align(8);
  a.bind(L("g_gdtr"));
  a.db(31, 0, ...Array.from({ length: 8 }, (_, i) => Number((BigInt(plan.entry.gdt) >> BigInt(8 * i)) & 0xffn)));
  a.section(".text");

  const main = L(LINUX_DIRECT_ENTRY);
  const fail = a.label();
  a.global(main).bind(main);
  a.push(rbp).mov(rbp, rsp);
  a.sub(rsp, 0x40); // 16-aligned calls with shadow space and a fifth argument at [rsp+32]
  a.mov(qword(L("g_image")), rcx);
  a.mov(rax, qword(rdx, ST_BOOT_SERVICES)).mov(qword(L("g_bs")), rax);
  say(a, LINUX_DIRECT_LINES.started);
  // Our code must stay reachable once CR3 is the low pages' identity map of the first 4 GiB.
  const low = a.label();
  a.lea(rax, ptr(main)).shr(rax, 32).jz(low);
  say(a, "linux-direct: error: loaded above 4 GiB");
  a.jmp(fail);
  a.bind(low);

  const check = (what: string): void => {
    const ok = a.label();
    a.test(rax, rax).jz(ok);
    say(a, `linux-direct: error: ${what}`);
    a.jmp(fail);
    a.bind(ok);
  };
  // The ESP this image came from: LoadedImage.DeviceHandle → SimpleFileSystem → its root directory.
  a.mov(rcx, qword(L("g_image"))).lea(rdx, ptr(L("g_li_guid"))).lea(r8, ptr(L("g_li")));
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.handleProtocol));
  check("HandleProtocol(LoadedImage) failed");
  a.mov(rax, qword(L("g_li"))).mov(rcx, qword(rax, LI_DEVICE_HANDLE)).lea(rdx, ptr(L("g_sfs_guid"))).lea(r8, ptr(L("g_sfs")));
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.handleProtocol));
  check("HandleProtocol(SimpleFileSystem) on the boot device failed");
  a.mov(rcx, qword(L("g_sfs"))).lea(rdx, ptr(L("g_root"))).call(qword(rcx, SFS_OPEN_VOLUME));
  check("OpenVolume failed");

  // Nothing of ours may sit in the partition's memory: the copies after ExitBootServices would overwrite it.
  a.mov(rax, qword(L("g_li"))).mov(rax, qword(rax, LI_IMAGE_BASE)).mov(rcx, plan.memory).cmp(rax, rcx);
  const imageHigh = a.label();
  a.jae(imageHigh);
  say(a, "linux-direct: error: the firmware loaded this image inside the partition's memory");
  a.jmp(fail);
  a.bind(imageHigh);
  plan.files.forEach((f, i) => {
    const pages = Math.ceil(f.size / 4096);
    a.mov(ecx, ALLOCATE_ANY).mov(edx, LOADER_DATA).mov(r8, pages).lea(r9, ptr(L(`g_stage${i}`)));
    a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.allocatePages));
    check(`AllocatePages(${pages} pages) for ${f.path} failed`);
    const high = a.label();
    a.mov(rax, qword(L(`g_stage${i}`))).mov(rcx, plan.memory).cmp(rax, rcx).jae(high);
    say(a, `linux-direct: error: the staging pages of ${f.path} are inside the partition's memory`);
    a.jmp(fail);
    a.bind(high);
    a.mov(rcx, qword(L("g_root"))).lea(rdx, ptr(L("g_fh"))).lea(r8, ptr(L(`g_path${i}`))).mov(r9, MODE_READ);
    a.mov(qword(rsp, 32), 0);
    a.call(qword(rcx, FILE.open));
    check(`cannot open ${f.path} on the ESP`);
    a.mov(qword(L("g_size")), f.size);
    a.mov(rcx, qword(L("g_fh"))).lea(rdx, ptr(L("g_size"))).mov(r8, qword(L(`g_stage${i}`))).call(qword(rcx, FILE.read));
    check(`reading ${f.path} failed`);
    a.mov(rax, qword(L("g_size"))).sub(rax, f.size);
    check(`${f.path} is not ${f.size} bytes`);
    a.mov(rcx, qword(L("g_fh"))).call(qword(rcx, FILE.close));
  });
  say(a, LINUX_DIRECT_LINES.loaded);

  // Leave boot services: GetMemoryMap for the key, ExitBootServices, again if the map changed in between.
  a.mov(ecx, LOADER_DATA).mov(edx, MAP_BUFFER).lea(r8, ptr(L("g_map")));
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.allocatePool));
  check("AllocatePool for the memory map failed");
  a.mov(r12, EBS_TRIES);
  const again = a.here();
  const exited = a.label();
  a.mov(qword(L("g_map_size")), MAP_BUFFER);
  a.lea(rcx, ptr(L("g_map_size"))).mov(rdx, qword(L("g_map"))).lea(r8, ptr(L("g_map_key"))).lea(r9, ptr(L("g_desc_size")));
  a.lea(rax, ptr(L("g_desc_ver"))).mov(qword(rsp, 32), rax);
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.getMemoryMap));
  check("GetMemoryMap failed");
  a.mov(rcx, qword(L("g_image"))).mov(rdx, qword(L("g_map_key")));
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.exitBootServices));
  a.test(rax, rax).jz(exited);
  a.dec(r12).jnz(again);
  say(a, "linux-direct: error: ExitBootServices kept failing");
  a.jmp(fail);

  // The 64-bit boot protocol's state (docs/specs/linux-partition.md §6), as the monitor sets it in a VMCB.
  a.bind(exited);
  a.cli();
  plan.files.forEach((f, i) => {
    a.mov(rsi, qword(L(`g_stage${i}`))).mov(rdi, f.gpa).mov(rcx, f.size);
    a.rep().movsb();
  });
  a.lgdt(ptr(L("g_gdtr")));
  a.mov(rax, plan.entry.cr3).mov(cr3, rax);
  a.mov(eax, 0x18);
  for (const s of [ds, es, ss, fs, gs]) a.mov(s, ax);
  a.mov(rsi, plan.entry.rsi).mov(rsp, plan.entry.rsp);
  for (const r of [rax, rbx, rcx, rdx, rdi, rbp, r8, r9, r12, r13]) a.xor(r, r);
  a.jmpFar(tbyte(L("g_far")));

  a.bind(fail);
  // Report failure through isa-debug-exit (code 3) so the test ends at once with the line above.
  a.mov(eax, 3).mov(dx, 0xf4).out(dx, eax);
  a.mov(rsp, rbp).pop(rbp);
  a.mov(rax, 1).ret();
  return a.finish();
}
