// A standalone EFI application that boots one Linux partition's files on the bare machine, without the ultravisor
// (loader-efi/, EFI side; docs/specs/linux-partition.md §7–§8). It is the loading half of a Linux partition, kept
// apart so it can be tested alone: it opens the ESP it was loaded from through EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and
// (linux-stage.ts, shared with the ultravisor's loader to come) reads LOWPAGES, KERNEL and INITRD into pages it allocates above the partition's memory (the firmware holds parts of
// the target ranges until ExitBootServices: OVMF's own data sits at 16 MiB), leaves boot services (map-key retry),
// copies each file to its guest-physical address and enters the kernel with the 64-bit entry state of §6: the low
// pages' GDT and identity page tables, CS = 0x10, data segments 0x18, rsi = the zero page, interrupts off, through
// an indirect far jump (no stack is used after the copies), rsp = the top of page 0 as the monitor sets it. Physical address
// = guest-physical address here (the machine is the partition), so the kernel sees exactly the e820 map of the zero
// page and nothing of the rest of the machine's RAM. test/hw/linux-direct.test.ts boots Debian's kernel with it.
import { Assembler, type Label, al, ax, dx, eax, ecx, edx, ptr, qword, r8, r9, r12, r13, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp, cr3, ds, es, fs, gs, ss, tbyte } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { emitStageFiles, LI_IMAGE_BASE } from "./linux-stage.ts";

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
const BS = { getMemoryMap: 56, allocatePool: 64, exitBootServices: 232 } as const;
const LOADER_DATA = 2;
const MAP_BUFFER = 64 * 1024;
const EBS_TRIES = 4;

/** COM1 output without the firmware (valid before and after ExitBootServices); clobbers al, dx. */
function say(a: Assembler, text: string): void {
  for (const ch of `${text}\r\n`) a.mov(dx, 0x3f8).mov(al, ch.charCodeAt(0)).out(dx, al);
}

export function assembleLinuxDirect(plan: LinuxDirectPlan): ObjectFile {
  const a = new Assembler();
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_image", "g_bs", "g_map", "g_map_size", "g_map_key", "g_desc_size", "g_desc_ver"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".data");
  a.align(8);
  a.bind(L("g_far")); // m16:64 of the far jump: rip, then the selector
  a.dq(BigInt(plan.entry.rip));
  a.dw(0x10);
  a.section(".rdata");
  a.align(8);
  a.bind(L("g_gdtr"));
  a.db(31, 0, ...Array.from({ length: 8 }, (_, i) => Number((BigInt(plan.entry.gdt) >> BigInt(8 * i)) & 0xffn)));
  a.section(".text");

  const main = L(LINUX_DIRECT_ENTRY);
  const fail = a.label();
  const error = (x: Assembler, text: string): void => {
    say(x, `linux-direct: error: ${text}`);
    x.jmp(fail);
  };
  a.global(main).bind(main);
  a.push(rbp).mov(rbp, rsp);
  a.sub(rsp, 0x40); // 16-aligned calls with shadow space and a fifth argument at [rsp+32]
  a.mov(qword(L("g_image")), rcx);
  a.mov(rax, qword(rdx, ST_BOOT_SERVICES)).mov(qword(L("g_bs")), rax);
  say(a, LINUX_DIRECT_LINES.started);
  // Our code must stay reachable once CR3 is the low pages' identity map of the first 4 GiB.
  const low = a.label();
  a.lea(rax, ptr(main)).shr(rax, 32).jz(low);
  error(a, "loaded above 4 GiB");
  a.bind(low);
  // Staged above the partition's memory: the copies after ExitBootServices must not overwrite their own sources.
  emitStageFiles(a, { image: L("g_image"), bs: L("g_bs"), files: plan.files, floor: plan.memory, error, prefix: "g_linux_" });
  // Nothing of ours may sit in the partition's memory either.
  const imageHigh = a.label();
  a.mov(rax, qword(L("g_linux_li"))).mov(rax, qword(rax, LI_IMAGE_BASE)).mov(rcx, plan.memory).cmp(rax, rcx).jae(imageHigh);
  error(a, "the firmware loaded this image inside the partition's memory");
  a.bind(imageHigh);
  say(a, LINUX_DIRECT_LINES.loaded);

  // Leave boot services: GetMemoryMap for the key, ExitBootServices, again if the map changed in between.
  a.mov(ecx, LOADER_DATA).mov(edx, MAP_BUFFER).lea(r8, ptr(L("g_map")));
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.allocatePool));
  {
    const ok = a.label();
    a.test(rax, rax).jz(ok);
    error(a, "AllocatePool for the memory map failed");
    a.bind(ok);
  }
  a.mov(r12, EBS_TRIES);
  const again = a.here();
  const exited = a.label();
  a.mov(qword(L("g_map_size")), MAP_BUFFER);
  a.lea(rcx, ptr(L("g_map_size"))).mov(rdx, qword(L("g_map"))).lea(r8, ptr(L("g_map_key"))).lea(r9, ptr(L("g_desc_size")));
  a.lea(rax, ptr(L("g_desc_ver"))).mov(qword(rsp, 32), rax);
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.getMemoryMap));
  {
    const ok = a.label();
    a.test(rax, rax).jz(ok);
    error(a, "GetMemoryMap failed");
    a.bind(ok);
  }
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
    a.mov(rsi, qword(L(`g_linux_stage${i}`))).mov(rdi, f.gpa).mov(rcx, f.size);
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
