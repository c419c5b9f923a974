// The lead monitor's start-up (generated ring-0 code), entered by the loader once boot services are gone: descriptor
// tables, the kernel identity map, one monitor state page and one address space per partition (window pages from the
// ultravisor region, only its own pages and its channel pages mapped for CPL 3), the channels, the local APIC timer,
// and the first dispatch. Tables it reads (g_partitions, g_channels, g_schedule) are laid out by
// toolchain/image/ultravisor.ts as docs/specs/image-layout.md describes.
import { Assembler, type Label, al, byte, cr3, dword, eax, ebp, ecx, edi, edx, esi, ptr, qword, r12, r12d, r13, r14, r15, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp } from "../toolchain/x64/index.ts";
import { kline } from "./console.ts";
import { VECTORS } from "./entry.ts";
import { DB_PAGES, DBWIN, FLAG, FR, HYPERCALL_VECTOR, PRIVATE_PAGE_BYTES, SEL, SP, TIMER_VECTOR, WIN, WINDOW } from "./layout.ts";
import { PTE } from "./paging.ts";

/** Partition record (64 bytes) offsets in g_partitions. */
export const PREC = { name: 0, blob: 8, blobBytes: 16, entry: 24, number: 32, flags: 36, state: 40, size: 64 } as const;
/** Channel record (16 bytes) offsets in g_channels. */
export const CREC = { client: 0, server: 4, serverSlot: 8, clientSlot: 12, size: 16 } as const;

const USER_PAGE = Number(PTE.P | PTE.W | PTE.U);

export function emitLead(a: Assembler, quantumTicks: number, withCore = false, scheduleText = ""): void {
  const L = (n: string): Label => a.symbol(n);

  // uv_main: never returns. The loader jumps here with interrupts off and boot services exited.
  a.bind(L("uv_main"));
  a.lea(rsp, ptr(L("g_kstack_top")));
  a.mov(qword(L("g_direct")), 1);
  kline(a, "ultravisor: entered: boot services exited after ", { dec: (x) => x.mov(rdi, qword(L("g_ebs_tries"))) }, " ExitBootServices call(s); interrupts off, own stack");
  a.mov(al, 0xff).out(0x21, al).out(0xa1, al); // legacy PICs masked: the local APIC timer is the only interrupt source
  a.call(L("uv_install_descriptors"));
  for (const v of VECTORS) {
    a.mov(edi, v).lea(rsi, ptr(L(`stub_${v}`))).mov(edx, v === HYPERCALL_VECTOR ? 0xee : 0x8e).call(L("set_gate"));
  }
  kline(a, `ultravisor: GDT (ring 0 and ring 3), TSS (IST 1, I/O bitmap denying every port) and IDT (${VECTORS.length} gates, hypercall vector 0x80) installed`);
  a.call(L("build_kernel_map"));
  a.mov(rax, qword(L("g_kpml4"))).mov(cr3, rax);
  kline(a, "ultravisor: paging: own 4-level tables, identity map of 4 GiB supervisor-only, cr3 ", { hex: (x) => x.mov(rdi, cr3) });
  if (withCore) {
    const skip = a.label();
    const done = a.label();
    a.cmp(qword(L("g_core_ok")), 0).je(skip);
    a.call(L("uv_core_db"));
    a.call(L("uv_boot_db"));
    a.jmp(done);
    a.bind(skip);
    kline(a, "ultravisor: resource database skipped (the loader's line above says why)");
    a.bind(done);
  }
  a.call(L("setup_partitions"));
  a.call(L("setup_channels"));
  if (withCore) {
    // The resource manager in the ultravisor partition sees the database's pages (and only those) at DBWIN.
    const skip = a.label();
    a.cmp(qword(L("g_core_ok")), 0).je(skip);
    a.xor(r12d, r12d);
    const find = a.here();
    a.cmp(r12, qword(L("g_partition_count"))).jae(skip);
    a.mov(rbx, r12).shl(rbx, 6).lea(rax, ptr(L("g_partitions"))).add(rbx, rax);
    const found = a.label();
    a.test(byte(rbx, PREC.flags), FLAG.ultra).jnz(found);
    a.inc(r12).jmp(find);
    a.bind(found);
    a.mov(rax, qword(rbx, PREC.state)).mov(r13, qword(rax, SP.cr3));
    // [r14, r15): the database's own 4 MiB page, then core's private 4 MiB page.
    for (const first of [true, false]) {
      if (first) a.mov(r14, DB_PAGES.lo).mov(r15, DB_PAGES.hi);
      else a.mov(r14, qword(L("g_core_private"))).lea(r15, qword(r14, PRIVATE_PAGE_BYTES));
      const map = a.here();
      a.mov(rdi, r13).mov(rsi, DBWIN).add(rsi, r14).mov(rdx, r14).or(rdx, USER_PAGE);
      a.call(L("map_page"));
      a.add(r14, 4096).cmp(r14, r15).jb(map);
    }
    kline(a, "ultravisor: database pages ", { hex: (x) => x.mov(rdi, DB_PAGES.lo) }, "-", { hex: (x) => x.mov(rdi, DB_PAGES.hi) }, " and ",
      { hex: (x) => x.mov(rdi, qword(L("g_core_private"))) }, "-", { hex: (x) => x.mov(rdi, qword(L("g_core_private"))).add(rdi, PRIVATE_PAGE_BYTES) },
      " mapped into partition ", { str: (x) => x.mov(rax, qword(rbx, PREC.state)).mov(rdi, qword(rax, SP.name)) });
    a.bind(skip);
  }
  // Where each partition's address space lives, so a test can walk its page tables over QMP.
  {
    a.xor(r12d, r12d);
    const loop = a.here();
    const done = a.label();
    const next = a.label();
    a.cmp(r12, qword(L("g_partition_count"))).jae(done);
    a.mov(rbx, r12).shl(rbx, 6).lea(rax, ptr(L("g_partitions"))).add(rbx, rax);
    a.test(byte(rbx, PREC.flags), FLAG.idle).jnz(next);
    a.mov(r13, qword(rbx, PREC.state));
    kline(a, "ultravisor: partition ", { str: (x) => x.mov(rdi, qword(r13, SP.name)) }, " cr3 ", { hex: (x) => x.mov(rdi, qword(r13, SP.cr3)) },
      " window ", { hex: (x) => x.mov(rdi, qword(r13, SP.window)) });
    a.bind(next);
    a.inc(r12).jmp(loop);
    a.bind(done);
  }
  kline(a, "ultravisor: ", { dec: (x) => x.mov(rdi, qword(L("g_partition_count"))) }, " partitions and ", { dec: (x) => x.mov(rdi, qword(L("g_channel_count"))) },
    " channels built; ultravisor region used ", { dec: (x) => x.mov(rdi, qword(L("g_next"))).sub(rdi, qword(L("g_region"))).shr(rdi, 12) }, " pages");
  a.call(L("lapic_init"));
  kline(a, `ultravisor: local APIC timer: ${quantumTicks} ticks per quantum, 16 quanta per schedule cycle`);
  if (scheduleText) kline(a, `ultravisor: schedule (PCPU 0, quanta 0-15): ${scheduleText}`);
  kline(a, "ultravisor: all partitions running (", { dec: (x) => x.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, qword(L("g_tsc_entry"))).mov(rdi, rax) }, " TSC cycles since loader entry)");
  a.mov(qword(L("g_direct")), 0);
  a.mov(qword(L("g_quantum")), 0);
  a.mov(rax, -1).mov(qword(L("g_probe_min")), rax);
  a.jmp(L("dispatch"));

  // setup_partitions: state page, address space and window for every record of g_partitions.
  a.bind(L("setup_partitions"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.xor(r12d, r12d);
    const loop = a.here();
    const done = a.label();
    const next = a.label();
    const user = a.label();
    a.cmp(r12, qword(L("g_partition_count"))).jae(done);
    a.mov(rbx, r12).shl(rbx, 6).lea(rax, ptr(L("g_partitions"))).add(rbx, rax);
    a.call(L("alloc_page")).mov(r13, rax).mov(qword(rbx, PREC.state), r13);
    a.mov(rax, qword(rbx, PREC.name)).mov(qword(r13, SP.name), rax);
    a.mov(qword(r13, SP.index), r12);
    a.mov(eax, dword(rbx, PREC.flags)).mov(dword(r13, SP.flags), eax);
    a.mov(eax, dword(rbx, PREC.number)).lea(rcx, ptr(L("g_by_number"))).mov(qword({ base: rcx, index: rax, scale: 8 }), r13);
    a.test(byte(rbx, PREC.flags), FLAG.idle).jz(user);
    // The idle partition: a ring-0 context whose code is idle_loop.
    a.mov(qword(L("g_idle")), r13);
    a.mov(rax, qword(L("g_kpml4"))).mov(qword(r13, SP.cr3), rax);
    a.lea(rax, ptr(L("idle_loop"))).mov(qword(r13, FR.rip), rax);
    a.mov(qword(r13, FR.cs), SEL.kcode).mov(qword(r13, FR.rflags), 0x202);
    a.lea(rax, qword(r13, 0x800)).mov(qword(r13, FR.rsp), rax);
    a.mov(qword(r13, FR.ss), SEL.kdata);
    a.jmp(next);

    a.bind(user);
    const notIo = a.label();
    a.test(byte(rbx, PREC.flags), FLAG.com1).jz(notIo);
    a.mov(qword(L("g_io")), r13);
    a.bind(notIo);
    a.call(L("alloc_page")).mov(r14, rax).mov(qword(r13, SP.cr3), r14);
    a.mov(rax, qword(L("g_kpdpt"))).or(rax, Number(PTE.P | PTE.W)).mov(qword(r14), rax);
    // Window pages: consecutive from the bump allocator.
    a.call(L("alloc_page")).mov(r15, rax).mov(qword(r13, SP.window), r15);
    a.mov(ebp, 1);
    const more = a.here();
    a.call(L("alloc_page"));
    a.inc(ebp).cmp(ebp, WIN.pages).jb(more);
    a.mov(rsi, qword(rbx, PREC.blob)).mov(rdi, r15).mov(rcx, qword(rbx, PREC.blobBytes));
    a.rep().movsb();
    a.xor(ebp, ebp);
    const map = a.here();
    a.mov(rdi, r14);
    a.mov(rsi, rbp).shl(rsi, 12).mov(rax, WINDOW).add(rsi, rax);
    a.mov(rdx, rbp).shl(rdx, 12).add(rdx, r15).or(rdx, USER_PAGE);
    a.call(L("map_page"));
    a.inc(ebp).cmp(ebp, WIN.pages).jb(map);
    a.mov(rax, qword(rbx, PREC.entry)).mov(qword(r13, FR.rip), rax);
    a.mov(qword(r13, FR.cs), SEL.ucode).mov(qword(r13, FR.rflags), 0x202);
    a.mov(rax, WINDOW + BigInt(WIN.stackTop)).mov(qword(r13, FR.rsp), rax);
    a.mov(qword(r13, FR.ss), SEL.udata);
    a.bind(next);
    a.inc(r12).jmp(loop);
    a.bind(done);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }

  // setup_channels: a page of the client's memory from the template, mapped at the client's and the server's slot.
  a.bind(L("setup_channels"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.xor(r12d, r12d);
    const loop = a.here();
    const done = a.label();
    a.cmp(r12, qword(L("g_channel_count"))).jae(done);
    a.mov(rbx, r12).shl(rbx, 4).lea(rax, ptr(L("g_channels"))).add(rbx, rax);
    a.call(L("alloc_page")).mov(r13, rax);
    a.lea(rsi, ptr(L("g_chan_template"))).mov(rdi, r13).mov(ecx, 4096);
    a.rep().movsb();
    a.mov(qword(r13, 56), r13); // handle = the channel's physical address
    const record = (field: number, into: typeof r14): void => {
      a.mov(eax, dword(rbx, field)).shl(rax, 6).lea(rcx, ptr(L("g_partitions"))).add(rax, rcx);
      a.mov(into, rax);
    };
    record(CREC.client, r14); // r14 = client record
    record(CREC.server, r15); // r15 = server record
    a.mov(eax, dword(r14, PREC.number)).mov(qword(r13, 48), rax); // partition_handle = the client's number
    const mapAt = (rec: typeof r14, slotField: number): void => {
      a.mov(rax, qword(rec, PREC.state)).mov(rdi, qword(rax, SP.cr3));
      a.mov(esi, dword(rbx, slotField)).shl(rsi, 12).mov(rax, WINDOW + BigInt(WIN.slot(0))).add(rsi, rax);
      a.mov(rdx, r13).or(rdx, USER_PAGE);
      a.call(L("map_page"));
    };
    mapAt(r14, CREC.clientSlot);
    mapAt(r15, CREC.serverSlot);
    const link = (rec: typeof r14, slotField: number, peer: typeof r14, peerSlotField: number): void => {
      a.mov(rax, qword(rec, PREC.state));
      a.mov(ecx, dword(rbx, slotField)).shl(rcx, 4).add(rax, rcx);
      a.mov(rdx, qword(peer, PREC.state)).mov(qword(rax, SP.slots), rdx);
      a.mov(edx, dword(rbx, peerSlotField)).mov(qword(rax, SP.slots + 8), rdx);
    };
    link(r14, CREC.clientSlot, r15, CREC.serverSlot);
    link(r15, CREC.serverSlot, r14, CREC.clientSlot);
    a.inc(r12).jmp(loop);
    a.bind(done);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }

  // lapic_init: xAPIC enabled, spurious vector 0xFF, periodic timer on vector 0x20 at divide-by-1.
  a.bind(L("lapic_init"));
  {
    a.mov(ecx, 0x1b).rdmsr();
    a.or(eax, 0x800).wrmsr();
    a.and(eax, 0xfffff000).shl(rdx, 32).or(rax, rdx);
    a.mov(qword(L("g_lapic")), rax);
    a.mov(dword(rax, 0xf0), 0x1ff);
    a.mov(dword(rax, 0x80), 0);
    a.mov(dword(rax, 0x3e0), 0xb);
    a.mov(dword(rax, 0x320), TIMER_VECTOR | 0x20000);
    a.mov(dword(rax, 0x380), quantumTicks);
    a.ret();
  }
}
