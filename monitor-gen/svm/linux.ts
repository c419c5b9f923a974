// The ring-0 half of starting a Linux partition (monitor-gen/svm/, lead monitor side; docs/specs/linux-partition.md
// §7 and §9): `linux_load`, called by reserve_partitions once every allotment is reserved (zeroed) and before the
// database exists, copies each file the loader staged while the firmware was up (loader-efi/linux-stage.ts) to
// allotment base + its guest-physical address, appends ` tsc_early_khz=N` to the command line in the low pages when
// the build asked for it (N measured by the loader, docs/specs/linux-pc.md §8), sets the partition's memory size in
// pages (its channel pages follow) and writes the 64-bit entry state into the VM page, which svm_prepare puts into
// the VMCB. Everything here is known at build time except the staging addresses and N, so the code is straight-line
// per partition; the monitor never parses the kernel.
import { type Assembler, type Label, al, byte, eax, ecx, edx, ptr, qword, r8, r13, r15, rax, rdi, rdx, rsi } from "../../toolchain/x64/index.ts";
import { PARTITION_RECORD } from "../lead.ts";
import { STATE_PAGE } from "../layout.ts";
import { VM } from "./layout.ts";
import { TSC_ARG } from "../../toolchain/linux/layout.ts";


export interface LinuxLoad {
  /** Index of the partition's record in g_partitions. */
  record: number;
  /** Pages of guest-physical memory (the definition's `memory` / 4096). */
  memPages: number;
  /** Each file: the qword symbol holding its staging address (loader-efi), its size, its guest-physical address. */
  files: ReadonlyArray<{ stage: string; size: number; gpa: number }>;
  /** Guest-physical address of the command line's NUL when ` tsc_early_khz=` is to be appended there. */
  tscArgAt?: number;
  entry: { rip: number; rsi: number; rsp: number; cr3: number; gdt: number };
}

/** Emits `linux_load` (preserves rbx, rbp, r12–r15) and the qword `g_tsc_khz` the loader fills (0: unknown). */
export function emitLinuxLoad(a: Assembler, loads: readonly LinuxLoad[]): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  a.bind(L("g_tsc_khz"));
  a.zero(8);
  a.section(".text");
  a.bind(L("linux_load"));
  if (loads.length) {
    a.push(r13).push(r15);
    for (const p of loads) {
      a.lea(rax, ptr(L("g_partitions"))).mov(r13, qword(rax, p.record * PARTITION_RECORD.size + PARTITION_RECORD.state));
      a.mov(r15, qword(r13, STATE_PAGE.window)); // the allotment's first page = guest-physical 0
      for (const f of p.files) {
        a.lea(rdi, qword(r15, f.gpa)).mov(rsi, qword(L(f.stage))).mov(ecx, f.size);
        a.rep().movsb();
      }
      if (p.tscArgAt !== undefined) {
        const skip = a.label();
        a.mov(rax, qword(L("g_tsc_khz"))).test(rax, rax).jz(skip);
        a.lea(rdi, qword(r15, p.tscArgAt));
        [...TSC_ARG].forEach((ch, k) => a.mov(byte(rdi, k), ch.charCodeAt(0)));
        a.add(rdi, TSC_ARG.length);
        // Decimal digits, most significant first: pushed least significant first, then popped.
        a.xor(ecx, ecx).mov(r8, 10);
        const digit = a.here();
        a.xor(edx, edx).div(r8).push(rdx).inc(ecx);
        a.test(rax, rax).jnz(digit);
        const put = a.here();
        a.pop(rax).add(eax, 0x30).mov(byte(rdi), al);
        a.inc(rdi).dec(ecx).jnz(put);
        a.mov(byte(rdi), 0);
        a.bind(skip);
      }
      a.mov(qword(r13, STATE_PAGE.memPages), p.memPages);
      a.mov(rax, qword(r13, STATE_PAGE.svmPage));
      a.mov(qword(rax, VM.boot.long), 1);
      for (const k of ["rip", "rsi", "rsp", "cr3", "gdt"] as const) a.mov(qword(rax, VM.boot[k]), p.entry[k]);
    }
    a.pop(r15).pop(r13);
  }
  a.ret();
}
