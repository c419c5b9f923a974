// The lead monitor's start-up (generated ring-0 code), entered by the loader once boot services are gone: descriptor
// tables, the kernel identity map, one monitor state page and one allotment per partition (its window and client
// channel pages, consecutive pages of the ultravisor region), the resource database and the boot partition's
// transactions (which create the partitions the boot creates and give them their allotments), then each partition
// started: its address space built from the database view — a page is mapped for CPL 3 only if the database says
// the partition owns it, a channel page only if its client owns it — and the channels whose two ends run. Guests
// defined by the command partition wait until the ultravisor partition has created them and calls START (the same
// start_partition). Then the local APIC timer, the application processors (smp_start) and the schedule for the
// processors online with each partition bound to its row (smp_bind, monitor-gen/smp.ts), and the first dispatch.
// Tables it reads (g_partitions, g_channels, the schedules) are laid out by image/ultravisor.ts as
// docs/specs/image-layout.md describes.
import { Assembler, type Label, type SymRef, al, byte, cr3, dword, eax, ebp, ecx, edi, edx, esi, ptr, qword, r12, r12d, r13, r13d, r14, r15, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp } from "../toolchain/x64/index.ts";
import { monitorLine } from "./console.ts";
import { coreLock, coreUnlock } from "./core-db.ts";
import { VECTORS } from "./entry.ts";
import { COMMAND_VIEW, DB_PAGES, DBWIN, FLAG, PCPU, SAVED_FRAME, HC_ERR, HYPERCALL_VECTOR, INFO, PRIVATE_PAGE_BYTES, SEL, STATE_PAGE, STATE, TIMER_VECTOR, WINDOW_LAYOUT, WINDOW } from "./layout.ts";
import { PTE } from "./paging.ts";

import { PD_MAGIC } from "../core/database.ts";

/** Partition record (64 bytes) offsets in g_partitions. */
export const PARTITION_RECORD = { name: 0, blob: 8, blobBytes: 16, entry: 24, number: 32, flags: 36, state: 40, allotPages: 48, definition: 56, size: 64 } as const;
/** The partition record's 4-byte fields (the others are 8 bytes). */
export const PARTITION_RECORD_DWORDS = ["number", "flags", "allotPages"] as const;
/** Channel record (32 bytes) offsets in g_channels: the template is the address of the channel's formatted page. */
export const CHANNEL_RECORD = { client: 0, server: 4, serverSlot: 8, clientSlot: 12, template: 16, size: 32 } as const;
/** The channel record's 4-byte fields (the others are 8 bytes). */
export const CHANNEL_RECORD_DWORDS = ["client", "server", "serverSlot", "clientSlot"] as const;

type RecordLayout = { readonly size: number } & Readonly<Record<string, number>>;
/**
 * Emits one record of `layout` (PARTITION_RECORD, CHANNEL_RECORD): each field's value at its offset, 4 bytes for the fields in `dwords` and
 * 8 for the others, zeros between and after them up to `size`. The image builder writes the records with it, so the
 * writer and the generators that read them (this file) share one offset table.
 */
export function emitRecord<T extends RecordLayout>(a: Assembler, layout: T, dwords: readonly (keyof T)[], values: { [K in Exclude<keyof T, "size">]: number | bigint | SymRef }): void {
  const fields = (Object.keys(layout) as Array<Exclude<keyof T, "size"> & string>).filter((k) => k !== "size").sort((x, y) => layout[x]! - layout[y]!);
  let at = 0;
  for (const k of fields) {
    const off = layout[k]!;
    const width = dwords.includes(k) ? 4 : 8;
    if (off < at || off % width !== 0) throw new Error(`record field ${k} at ${off} overlaps the one before or is misaligned`);
    if (off > at) a.zero(off - at);
    if (width === 4) a.dd(values[k]);
    else a.dq(values[k]);
    at = off + width;
  }
  if (at > layout.size) throw new Error(`record fields end at ${at}, past the record's ${layout.size} bytes`);
  if (at < layout.size) a.zero(layout.size - at);
}

const USER_PAGE = Number(PTE.P | PTE.W | PTE.U);

export interface LeadOptions {
  quantumTicks: number;
  /** The resource database is built at boot (core and the boot module are linked in). */
  withCore: boolean;
  /** Page of the Ultravisor Index (the database's partition numbers of the ultravisor partition). */
  ui: number;
  /** The host gives PCI devices to partitions: assign them at boot and map them when their owner starts (monitor-gen/pci.ts). */
  devices?: boolean;
  /** The host asks for the IOMMU: iommu_init after pci_assign (monitor-gen/iommu.ts, storage-channel.md §9). */
  iommu?: boolean;
}

export function emitLead(a: Assembler, o: LeadOptions): void {
  const h = leadHelpers(a);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_allot_lo", "g_allot_hi", "g_db_ok"]) {
    a.bind(h.L(n));
    a.zero(8);
  }
  a.section(".text");

  emitMain(a, o, h);
  emitReservePartitions(a, o, h);
  emitBootPartitions(a, o, h);
  emitStartChecked(a, o, h);
  emitStartPartition(a, o, h);
  emitConnectChannel(a, o, h);
  emitDbOwner(a, o, h);
  emitLapicInit(a, o, h);
}

/** What the lead monitor's routines share: symbol lookup and the walk over g_partitions. */
interface LeadHelpers {
  L: (n: string) => Label;
  /** into := &g_partitions[index] (64-byte records). */
  record: (index: typeof r12, into: typeof rbx) => void;
  /** The loop over g_partitions: r12 = index, rbx = its record; `body` jumps to `next` to skip the rest. */
  eachPartition: (body: (next: Label) => void) => void;
}

function leadHelpers(a: Assembler): LeadHelpers {
  const L = (n: string): Label => a.symbol(n);
  const record = (index: typeof r12, into: typeof rbx): void => {
    a.mov(into, index).shl(into, 6).lea(rax, ptr(L("g_partitions"))).add(into, rax);
  };
  const eachPartition = (body: (next: Label) => void): void => {
    const done = a.label();
    const next = a.label();
    a.xor(r12d, r12d);
    const loop = a.here();
    a.cmp(r12, qword(L("g_partition_count"))).jae(done);
    record(r12, rbx);
    body(next);
    a.bind(next);
    a.inc(r12).jmp(loop);
    a.bind(done);
  };
  return { L, record, eachPartition };
}

function emitMain(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L } = h;
  const { quantumTicks, withCore } = o;
  // uv_main: never returns. The loader jumps here with interrupts off and boot services exited.
  a.bind(L("uv_main"));
  a.lea(rsp, ptr(L("g_kstack_top")));
  a.mov(qword(L("g_direct")), 1);
  monitorLine(a, "ultravisor: entered: boot services exited after ", { dec: (x) => x.mov(rdi, qword(L("g_ebs_tries"))) }, " ExitBootServices call(s); interrupts off, own stack");
  a.mov(al, 0xff).out(0x21, al).out(0xa1, al); // legacy PICs masked: the local APIC timer is the only interrupt source
  a.call(L("uv_install_descriptors"));
  a.call(L("cpu_setup")); // extended state (monitor-gen/cpu.ts): may refuse to boot
  for (const v of VECTORS) {
    a.mov(edi, v).lea(rsi, ptr(L(`stub_${v}`))).mov(edx, v === HYPERCALL_VECTOR ? 0xee : 0x8e).call(L("set_gate"));
  }
  monitorLine(a, `ultravisor: GDT (ring 0 and ring 3), TSS (IST 1, I/O bitmap denying every port) and IDT (${VECTORS.length} gates, hypercall vector 0x80) installed`);
  a.call(L("build_kernel_map"));
  a.mov(rax, qword(L("g_kpml4"))).mov(cr3, rax);
  monitorLine(a, "ultravisor: paging: own 4-level tables, identity map of 4 GiB supervisor-only, cr3 ", { hex: (x) => x.mov(rdi, cr3) });
  a.call(L("pci_enumerate")); // bus 0 into the device list (monitor-gen/pci.ts, docs/specs/pci-devices.md)
  if (o.devices) a.call(L("pci_assign"));
  if (o.iommu) a.call(L("iommu_init")); // the I/O partition's devices behind VT-d, before any partition runs
  a.call(L("reserve_partitions"));
  monitorLine(a, "ultravisor: partition allotments ", { hex: (x) => x.mov(rdi, qword(L("g_allot_lo"))) }, "-", { hex: (x) => x.mov(rdi, qword(L("g_allot_hi"))) },
    " reserved (window and client channel pages, one run per partition in configuration order)");
  if (withCore) {
    const skip = a.label();
    const done = a.label();
    a.cmp(qword(L("g_core_ok")), 0).je(skip);
    a.call(L("uv_core_db"));
    a.call(L("uv_boot_db"));
    a.movsxd(rax, dword(L("bootdb_result")));
    a.test(rax, rax).js(done);
    a.mov(qword(L("g_db_ok")), 1);
    a.jmp(done);
    a.bind(skip);
    monitorLine(a, "ultravisor: resource database skipped (the loader's line above says why)");
    a.bind(done);
  }
  a.call(L("boot_partitions"));
  monitorLine(a, "ultravisor: ", { dec: (x) => x.mov(rdi, qword(L("g_partition_count"))) }, " partitions and ", { dec: (x) => x.mov(rdi, qword(L("g_channel_count"))) },
    " channels planned; ultravisor region used ", { dec: (x) => x.mov(rdi, qword(L("g_next"))).sub(rdi, qword(L("g_region"))).shr(rdi, 12) }, " pages");
  a.call(L("lapic_init"));
  monitorLine(a, `ultravisor: local APIC timer: ${quantumTicks} ticks per quantum, 16 quanta per schedule cycle`);
  a.call(L("smp_start")); // the application processors: started, each in its idle context (monitor-gen/smp.ts)
  a.call(L("smp_bind")); // the schedule for this many processors, each partition bound to its row's processor
  monitorLine(a, "ultravisor: scheduler running (", { dec: (x) => x.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, qword(L("g_tsc_entry"))).mov(rdi, rax) }, " TSC cycles since loader entry)");
  a.mov(qword(L("g_direct")), 0);
  a.mov(qword(L("g_quantum")), 0);
  a.mov(rax, -1).mov(qword(L("g_probe_min")), rax);
  // dispatch(rsi = PCPU 0's record, rbp = the page that "ran": its idle context) for quantum 0.
  a.lea(rsi, ptr(L("g_kstack_top"))).mov(qword(rsi, PCPU.seen), 0);
  a.mov(rbp, qword(L("g_idle")));
  a.jmp(L("dispatch"));
}

function emitReservePartitions(a: Assembler, _o: LeadOptions, h: LeadHelpers): void {
  const { L, record, eachPartition } = h;
  // reserve_partitions: a state page for every record of g_partitions, then each user partition's allotment —
  // window pages followed by one page per client channel slot, consecutive from the bump allocator — with its
  // image copied in and its first frame set. Nothing is mapped for CPL 3 yet: partitions are `waiting`.
  a.bind(L("reserve_partitions"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    eachPartition((nextState) => {
      a.call(L("alloc_page")).mov(r13, rax).mov(qword(rbx, PARTITION_RECORD.state), r13);
      a.lea(rax, ptr(L("g_kstack_top"))).mov(qword(r13, STATE_PAGE.pcpu), rax); // PCPU 0 until smp_bind says otherwise
      a.mov(rdi, r13).call(L("xstate_init"));
      a.mov(rax, qword(rbx, PARTITION_RECORD.name)).mov(qword(r13, STATE_PAGE.name), rax);
      a.mov(qword(r13, STATE_PAGE.index), r12);
      a.mov(eax, dword(rbx, PARTITION_RECORD.flags)).mov(dword(r13, STATE_PAGE.flags), eax);
      a.mov(eax, dword(rbx, PARTITION_RECORD.number)).lea(rcx, ptr(L("g_by_number"))).mov(qword({ base: rcx, index: rax, scale: 8 }), r13);
      a.mov(dword(r13, STATE_PAGE.state), STATE.waiting);
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.idle).jz(nextState);
      // The idle partition: a ring-0 context whose code is idle_loop, ready from the start.
      a.mov(qword(L("g_idle")), r13);
      a.mov(dword(r13, STATE_PAGE.state), STATE.ready);
      a.mov(rax, qword(L("g_kpml4"))).mov(qword(r13, STATE_PAGE.cr3), rax);
      a.lea(rax, ptr(L("idle_loop"))).mov(qword(r13, SAVED_FRAME.rip), rax);
      a.mov(qword(r13, SAVED_FRAME.cs), SEL.kcode).mov(qword(r13, SAVED_FRAME.rflags), 0x202);
      a.lea(rax, qword(r13, 0x800)).mov(qword(r13, SAVED_FRAME.rsp), rax);
      a.mov(qword(r13, SAVED_FRAME.ss), SEL.kdata);
    });

    a.mov(rax, qword(L("g_next"))).mov(qword(L("g_allot_lo")), rax);
    eachPartition((nextAllot) => {
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.idle).jnz(nextAllot);
      a.mov(r13, qword(rbx, PARTITION_RECORD.state));
      const notIo = a.label();
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.com1).jz(notIo);
      a.mov(qword(L("g_io")), r13);
      a.bind(notIo);
      const notUltra = a.label();
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.ultra).jz(notUltra);
      a.mov(qword(L("g_ultra")), r13);
      a.bind(notUltra);
      a.call(L("alloc_page")).mov(r15, rax).mov(qword(r13, STATE_PAGE.window), r15);
      a.mov(eax, dword(rbx, PARTITION_RECORD.allotPages)).mov(qword(r13, STATE_PAGE.allotPages), rax);
      a.mov(qword(r13, STATE_PAGE.memPages), WINDOW_LAYOUT.pages); // a Linux partition's: linux_load, below
      a.mov(ebp, 1);
      const more = a.here();
      a.call(L("alloc_page"));
      a.inc(ebp).cmp(ebp, dword(rbx, PARTITION_RECORD.allotPages)).jb(more);
      a.mov(rsi, qword(rbx, PARTITION_RECORD.blob)).mov(rdi, r15).mov(rcx, qword(rbx, PARTITION_RECORD.blobBytes));
      a.rep().movsb();
      a.mov(rax, qword(rbx, PARTITION_RECORD.entry)).mov(qword(r13, SAVED_FRAME.rip), rax);
      a.mov(qword(r13, SAVED_FRAME.cs), SEL.ucode).mov(qword(r13, SAVED_FRAME.rflags), 0x202);
      a.mov(rax, WINDOW + BigInt(WINDOW_LAYOUT.stackTop)).mov(qword(r13, SAVED_FRAME.rsp), rax);
      a.mov(qword(r13, SAVED_FRAME.ss), SEL.udata);
      // A virtualized partition's context is the VMRUN loop instead (monitor-gen/svm/monitor.ts).
      const ring3 = a.label();
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.vm).jz(ring3);
      a.call(L("svm_reserve"));
      a.bind(ring3);
    });
    a.mov(rax, qword(L("g_next"))).mov(qword(L("g_allot_hi")), rax);
    // Linux partitions: their staged files into their allotments, their memory size and entry (monitor-gen/svm/linux.ts).
    a.call(L("linux_load"));

    // The ultravisor partition's info page lists every allotment by partition number (INFO.allotment): its
    // resource manager gives partition n exactly these pages when it creates n.
    a.xor(r12d, r12d);
    const findUltra = a.here();
    const tableDone = a.label();
    const found = a.label();
    a.cmp(r12, qword(L("g_partition_count"))).jae(tableDone);
    record(r12, rbx);
    a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.ultra).jnz(found);
    a.inc(r12).jmp(findUltra);
    a.bind(found);
    a.mov(rax, qword(rbx, PARTITION_RECORD.state)).mov(r14, qword(rax, STATE_PAGE.window)); // the ultravisor partition's info page
    eachPartition((skip) => {
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.idle).jnz(skip);
      a.mov(r13, qword(rbx, PARTITION_RECORD.state));
      a.mov(eax, dword(rbx, PARTITION_RECORD.number)).shl(eax, 4).add(rax, r14);
      a.mov(rcx, qword(r13, STATE_PAGE.window)).mov(qword(rax, INFO.allotment(0)), rcx);
      a.mov(rcx, qword(r13, STATE_PAGE.allotPages)).mov(qword(rax, INFO.allotment(0) + 8), rcx);
    });
    a.bind(tableDone);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

function emitBootPartitions(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L, eachPartition } = h;
  const { withCore } = o;
  // boot_partitions: with the database, the ultravisor partition starts as the database's ultravisor partition, the
  // boot partition creates the others ([0104]: I/O and command; every partition when no command partition will
  // define it) and starts them, and guests the command partition defines keep waiting for START. Without the
  // database every partition starts at once, unchecked.
  a.bind(L("boot_partitions"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.sub(rsp, 8); // calls below reach compiled code through System V thunks: keep rsp 16-byte aligned
    eachPartition((next) => {
      const unchecked = a.label();
      const go = a.label();
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.idle).jnz(next);
      a.mov(r13, qword(rbx, PARTITION_RECORD.state));
      a.cmp(qword(L("g_db_ok")), 0).je(unchecked);
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.defined).jnz(next);
      const notUltra = a.label();
      a.test(byte(rbx, PARTITION_RECORD.flags), FLAG.ultra).jz(notUltra);
      a.mov(esi, dword({ disp: o.ui * 4096 + 24 })); // UI_ULTRA: the ultravisor partition's number
      a.jmp(go);
      a.bind(notUltra);
      if (withCore) {
        a.mov(rdi, qword(rbx, PARTITION_RECORD.definition)).mov(rsi, qword(r13, STATE_PAGE.window)).shr(rsi, 12).mov(rdx, qword(r13, STATE_PAGE.allotPages));
        a.mov(ecx, dword({ disp: o.ui * 4096 + 24 }));
        a.call(L("boot_create"));
        const created = a.label();
        a.test(rax, rax).jns(created);
        a.mov(r14, rax).neg(r14);
        a.mov(dword(r13, STATE_PAGE.state), STATE.failed);
        monitorLine(a, "ultravisor: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " not created by the boot partition: error -", { dec: (x) => x.mov(rdi, r14) });
        a.jmp(next);
        a.bind(created);
        a.mov(rsi, rax);
        a.jmp(go);
      }
      a.bind(unchecked);
      a.mov(rsi, -1);
      a.bind(go);
      a.mov(rdi, r13).call(L("start_partition"));
    });
    a.add(rsp, 8);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

function emitStartChecked(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L } = h;
  const { withCore } = o;
  // start_checked(rdi = state page, rsi = b, from the START hypercall) → rax: start_partition's result, or
  // HC_ERR.refused unless b is a live partition of the database other than the ultravisor — a page below 4 GiB that
  // owns itself there (GetMemOwner), holds a descriptor whose Me is b, and names this partition. Without a database
  // nothing can be started this way.
  a.bind(L("start_checked"));
  {
    const refuse = a.label();
    a.push(rbx).push(r12).push(r13);
    a.mov(r13, rdi).mov(r12, rsi);
    if (withCore) {
      a.cmp(qword(L("g_db_ok")), 0).je(refuse);
      a.test(r12, r12).jz(refuse);
      a.mov(rax, 1 << 20).cmp(r12, rax).jae(refuse); // unsigned: −1 and every page at or above 4 GiB
      a.cmp(r12d, dword({ disp: o.ui * 4096 + 24 })).je(refuse); // the ultravisor's own number
      a.mov(rdi, r12).shl(rdi, 12).call(L("db_owner"));
      a.cmp(rax, r12).jne(refuse);
      a.mov(rbx, r12).shl(rbx, 12); // the descriptor page (identity-mapped at ring 0; the database says it is b's)
      a.cmp(dword(rbx, 0), PD_MAGIC).jne(refuse);
      a.cmp(dword(rbx, 4), r12d).jne(refuse);
      // Its name (16 bytes at +16, NUL-padded) is the partition's (NUL-terminated, at most 15 characters).
      a.mov(rsi, qword(r13, STATE_PAGE.name)).xor(ecx, ecx);
      const cmpName = a.here();
      const same = a.label();
      a.mov(al, byte({ base: rsi, index: rcx })).cmp(al, byte({ base: rbx, index: rcx, disp: 16 })).jne(refuse);
      a.test(al, al).jz(same);
      a.inc(ecx).cmp(ecx, 16).jb(cmpName);
      a.jmp(refuse);
      a.bind(same);
      a.mov(rdi, r13).mov(rsi, r12).call(L("start_partition"));
      const out = a.label();
      a.jmp(out);
      a.bind(refuse);
      monitorLine(a, "ultravisor: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " not started: ", { hex: (x) => x.mov(rdi, r12) },
        " is not its descriptor in the database");
      a.mov(rax, HC_ERR.refused);
      a.bind(out);
    } else {
      a.bind(refuse);
      a.mov(rax, HC_ERR.refused);
    }
    a.pop(r13).pop(r12).pop(rbx);
    a.ret();
  }
}

function emitStartPartition(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L } = h;
  const { withCore } = o;
  // start_partition(rdi = state page, rsi = the partition's number in the database, or −1 without a database)
  // → rax = 0 or HC_ERR.refused. Every page of the allotment must be the partition's in the database (core's
  // GetMemOwner, the same compiled core that built it); then the address space is built from them, the channels
  // whose other end already runs are connected, and the partition is ready. A refusal leaves it waiting.
  a.bind(L("start_partition"));
  {
    for (const r of [rbx, rbp, r12, r13, r14, r15]) a.push(r);
    a.sub(rsp, 8);
    a.mov(r13, rdi).mov(r12, rsi);
    const refuse = a.label();
    const refuseVm = a.label();
    const owned = a.label();
    if (withCore) {
      a.cmp(r12, -1).je(owned);
      a.xor(ebp, ebp);
      const check = a.here();
      a.mov(rdi, rbp).shl(rdi, 12).add(rdi, qword(r13, STATE_PAGE.window)).mov(r15, rdi);
      a.call(L("db_owner"));
      a.cmp(rax, r12).jne(refuse);
      a.inc(rbp).cmp(rbp, qword(r13, STATE_PAGE.allotPages)).jb(check);
    }
    a.bind(owned);
    a.mov(qword(r13, STATE_PAGE.descriptor), r12);
    a.call(L("alloc_page")).mov(r14, rax).mov(qword(r13, STATE_PAGE.cr3), r14);
    a.mov(rax, qword(L("g_kpdpt"))).or(rax, Number(PTE.P | PTE.W)).mov(qword(r14), rax);
    // r15 = the image's code pages end (window page number, from the info page the image wrote; at most the image's
    // end): pages [1, r15) are executable, the info page, the rest of the image and the stack NX.
    a.mov(rax, qword(r13, STATE_PAGE.window)).mov(r15, qword(rax, INFO.codeEnd)).add(r15, 0xfff).shr(r15, 12);
    a.mov(eax, (WINDOW_LAYOUT.image + WINDOW_LAYOUT.imageMax) >> 12).cmp(r15, rax).cmova(r15, rax);
    a.xor(ebp, ebp);
    const map = a.here();
    a.mov(rdi, r14);
    a.mov(rsi, rbp).shl(rsi, 12).mov(rax, WINDOW).add(rsi, rax);
    a.mov(rdx, rbp).shl(rdx, 12).add(rdx, qword(r13, STATE_PAGE.window)).or(rdx, USER_PAGE);
    const exec = a.label();
    const nx = a.label();
    a.cmp(ebp, 1).jb(nx);
    a.cmp(rbp, r15).jb(exec);
    a.bind(nx);
    a.or(rdx, qword(L("g_nx")));
    a.bind(exec);
    a.call(L("map_page"));
    a.inc(ebp).cmp(ebp, WINDOW_LAYOUT.pages).jb(map);
    if (o.devices) a.mov(rdi, r13).mov(rsi, r14).call(L("pci_map")); // the device list, and its devices' BARs (monitor-gen/pci.ts)
    if (withCore) {
      // The resource manager in the ultravisor partition sees the database's pages (and only those) at DBWIN.
      const notUltra = a.label();
      a.test(byte(r13, STATE_PAGE.flags), FLAG.ultra).jz(notUltra);
      a.cmp(qword(L("g_db_ok")), 0).je(notUltra); // no database: no view (the partition reads INFO.database = 0)
      a.mov(rax, qword(r13, STATE_PAGE.window)).mov(qword(rax, INFO.database), 1);
      // [r15, r12): the database's own 4 MiB page, then core's private 4 MiB page (r12, the owner, is saved in the
      // state page already).
      for (const first of [true, false]) {
        if (first) a.mov(r15, DB_PAGES.lo).mov(r12, DB_PAGES.hi);
        else a.mov(r15, qword(L("g_core_private"))).lea(r12, qword(r15, PRIVATE_PAGE_BYTES));
        const view = a.here();
        a.mov(rdi, r14).mov(rsi, DBWIN).add(rsi, r15).mov(rdx, r15).or(rdx, USER_PAGE).or(rdx, qword(L("g_nx")));
        a.call(L("map_page"));
        a.add(r15, 4096).cmp(r15, r12).jb(view);
      }
      monitorLine(a, "ultravisor: database pages ", { hex: (x) => x.mov(rdi, DB_PAGES.lo) }, "-", { hex: (x) => x.mov(rdi, DB_PAGES.hi) }, " and ",
        { hex: (x) => x.mov(rdi, qword(L("g_core_private"))) }, "-", { hex: (x) => x.mov(rdi, qword(L("g_core_private"))).add(rdi, PRIVATE_PAGE_BYTES) },
        " mapped into partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) });
      a.bind(notUltra);
      // The command partition's read-only view ([0106]): the database's own 4 MiB page at WINDOW + p, user, no
      // write, no execute (COMMAND_VIEW), so that its line reader and resource service read the map in place.
      const notCommand = a.label();
      a.test(byte(r13, STATE_PAGE.flags), FLAG.command).jz(notCommand);
      a.cmp(qword(L("g_db_ok")), 0).je(notCommand);
      a.mov(rax, qword(r13, STATE_PAGE.window)).mov(qword(rax, INFO.database), 1);
      a.mov(r15, COMMAND_VIEW.lo);
      const viewPage = a.here();
      a.mov(rdi, r14).mov(rsi, WINDOW).add(rsi, r15).mov(rdx, r15).or(rdx, Number(PTE.P | PTE.U)).or(rdx, qword(L("g_nx")));
      a.call(L("map_page"));
      a.add(r15, 4096).cmp(r15, COMMAND_VIEW.hi).jb(viewPage);
      monitorLine(a, "ultravisor: database pages ", { hex: (x) => x.mov(rdi, COMMAND_VIEW.lo) }, "-", { hex: (x) => x.mov(rdi, COMMAND_VIEW.hi) },
        " mapped read-only into partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) });
      a.bind(notCommand);
    }
    // A virtualized partition's NPT and VMCB, from the same checked allotment (docs/specs/svm.md §2).
    const notVm = a.label();
    a.test(byte(r13, STATE_PAGE.flags), FLAG.vm).jz(notVm);
    a.call(L("svm_prepare"));
    a.test(rax, rax).jnz(refuseVm);
    a.bind(notVm);
    // A partition starts from the defined initial x87/SSE state, never from what its state page held before.
    a.mov(rdi, r13).call(L("xstate_init"));
    a.mov(rax, qword(L("g_quantum"))).mov(qword(r13, STATE_PAGE.started), rax);
    monitorLine(a, "ultravisor: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " started at quantum ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.started)) },
      ": cr3 ", { hex: (x) => x.mov(rdi, qword(r13, STATE_PAGE.cr3)) }, " window ", { hex: (x) => x.mov(rdi, qword(r13, STATE_PAGE.window)) },
      " allotment ", { dec: (x) => x.mov(rdi, qword(r13, STATE_PAGE.allotPages)) }, " pages owned by ", { hex: (x) => x.mov(rdi, qword(r13, STATE_PAGE.descriptor)) });
    // Channels whose other end has an address space already.
    a.xor(r12d, r12d);
    const chans = a.here();
    const chansDone = a.label();
    const nextChan = a.label();
    a.cmp(r12, qword(L("g_channel_count"))).jae(chansDone);
    a.mov(rbx, r12).shl(rbx, Math.log2(CHANNEL_RECORD.size)).lea(rax, ptr(L("g_channels"))).add(rbx, rax);
    const end = (field: number, other: number): void => {
      const no = a.label();
      a.mov(eax, dword(rbx, field)).cmp(rax, qword(r13, STATE_PAGE.index)).jne(no);
      a.mov(eax, dword(rbx, other)).shl(rax, 6).lea(rcx, ptr(L("g_partitions"))).add(rax, rcx);
      a.mov(rax, qword(rax, PARTITION_RECORD.state));
      a.cmp(qword(rax, STATE_PAGE.cr3), 0).je(nextChan);
      a.call(L("connect_channel"));
      a.jmp(nextChan);
      a.bind(no);
    };
    end(CHANNEL_RECORD.client, CHANNEL_RECORD.server);
    end(CHANNEL_RECORD.server, CHANNEL_RECORD.client);
    a.bind(nextChan);
    a.inc(r12).jmp(chans);
    a.bind(chansDone);
    // Ready last, with one aligned store: an application processor the partition is bound to may dispatch it from the
    // next quantum on, so its channels must be in place first (docs/specs/smp.md §2.4).
    a.mov(dword(r13, STATE_PAGE.state), STATE.ready);
    a.xor(eax, eax);
    const out = a.label();
    a.jmp(out);
    a.bind(refuseVm);
    a.mov(rax, HC_ERR.refused).jmp(out);
    if (withCore) {
      a.bind(refuse);
      a.mov(rbx, rax);
      monitorLine(a, "ultravisor: partition ", { str: (x) => x.mov(rdi, qword(r13, STATE_PAGE.name)) }, " not started: page ", { hex: (x) => x.mov(rdi, r15) },
        " is owned by ", { hex: (x) => x.mov(rdi, rbx) }, " in the database, not by ", { hex: (x) => x.mov(rdi, r12) });
      a.mov(rax, HC_ERR.refused);
    } else a.bind(refuse);
    a.bind(out);
    a.add(rsp, 8);
    for (const r of [r15, r14, r13, r12, rbp, rbx]) a.pop(r);
    a.ret();
  }
}

function emitConnectChannel(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L } = h;
  const { withCore } = o;
  // connect_channel(rbx = channel record): the client's page for this slot (in its allotment, after the window)
  // formatted from the record's template (console or command), mapped at the client's and the server's slot, and
  // listed in the server's info page, which is what tells the server the slot is live. With a database the page must be the client's there.
  a.bind(L("connect_channel"));
  {
    for (const r of [rbp, r12, r13, r14, r15]) a.push(r);
    const rec = (field: number, into: typeof r14): void => {
      a.mov(eax, dword(rbx, field)).shl(rax, 6).lea(rcx, ptr(L("g_partitions"))).add(rax, rcx);
      a.mov(into, rax);
    };
    rec(CHANNEL_RECORD.client, r14); // r14 = client record
    rec(CHANNEL_RECORD.server, r15); // r15 = server record
    a.mov(rax, qword(r14, PARTITION_RECORD.state));
    a.mov(r13d, dword(rbx, CHANNEL_RECORD.clientSlot)).add(r13, qword(rax, STATE_PAGE.memPages)).shl(r13, 12).add(r13, qword(rax, STATE_PAGE.window)); // r13 = the page
    const fine = a.label();
    const done = a.label();
    if (withCore) {
      a.mov(rax, qword(r14, PARTITION_RECORD.state)).mov(rbp, qword(rax, STATE_PAGE.descriptor));
      a.cmp(rbp, -1).je(fine);
      a.mov(rdi, r13).call(L("db_owner"));
      a.cmp(rax, rbp).je(fine);
      a.mov(rbp, rax);
      monitorLine(a, "ultravisor: channel page ", { hex: (x) => x.mov(rdi, r13) }, " of ", { str: (x) => x.mov(rax, qword(r14, PARTITION_RECORD.state)).mov(rdi, qword(rax, STATE_PAGE.name)) },
        " not connected: owned by ", { hex: (x) => x.mov(rdi, rbp) }, " in the database");
      a.jmp(done);
    }
    a.bind(fine);
    a.mov(rsi, qword(rbx, CHANNEL_RECORD.template)).mov(rdi, r13).mov(ecx, 4096);
    a.rep().movsb();
    a.mov(qword(r13, 56), r13); // handle = the channel's physical address
    a.mov(eax, dword(r14, PARTITION_RECORD.number)).mov(qword(r13, 48), rax); // partition_handle = the client's number
    const mapAt = (recReg: typeof r14, slotField: number): void => {
      a.mov(rax, qword(recReg, PARTITION_RECORD.state)).mov(rdi, qword(rax, STATE_PAGE.cr3));
      a.mov(esi, dword(rbx, slotField)).shl(rsi, 12).mov(rax, WINDOW + BigInt(WINDOW_LAYOUT.slot(0))).add(rsi, rax);
      a.mov(rdx, r13).or(rdx, USER_PAGE).or(rdx, qword(L("g_nx")));
      a.call(L("map_page"));
    };
    mapAt(r14, CHANNEL_RECORD.clientSlot);
    mapAt(r15, CHANNEL_RECORD.serverSlot);
    const link = (recReg: typeof r14, slotField: number, peer: typeof r14, peerSlotField: number): void => {
      a.mov(rax, qword(recReg, PARTITION_RECORD.state));
      a.mov(ecx, dword(rbx, slotField)).shl(rcx, 4).add(rax, rcx);
      a.mov(rdx, qword(peer, PARTITION_RECORD.state)).mov(qword(rax, STATE_PAGE.slots), rdx);
      a.mov(edx, dword(rbx, peerSlotField)).mov(qword(rax, STATE_PAGE.slots + 8), rdx);
    };
    link(r14, CHANNEL_RECORD.clientSlot, r15, CHANNEL_RECORD.serverSlot);
    link(r15, CHANNEL_RECORD.serverSlot, r14, CHANNEL_RECORD.clientSlot);
    // The server's info page (its window's first page): the slot's window address, last, so the slot turns live
    // only once everything behind it is in place.
    a.mov(rax, qword(r15, PARTITION_RECORD.state)).mov(rdi, qword(rax, STATE_PAGE.window));
    a.mov(ecx, dword(rbx, CHANNEL_RECORD.serverSlot)).shl(ecx, 5).add(rdi, rcx);
    a.mov(ecx, dword(rbx, CHANNEL_RECORD.serverSlot)).shl(rcx, 12).mov(rax, WINDOW + BigInt(WINDOW_LAYOUT.slot(0))).add(rax, rcx);
    a.mov(qword(rdi, INFO.slot(0)), rax);
    a.bind(done);
    for (const r of [r15, r14, r13, r12, rbp]) a.pop(r);
    a.ret();
  }
}

function emitDbOwner(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L } = h;
  const { withCore } = o;
  // db_owner(rdi = physical address) → rax: the owner core's GetMemOwner reports (ring-0 instance of the core).
  if (withCore) {
    a.bind(L("db_owner"));
    a.sub(rsp, 8);
    coreLock(a); // one core instance for every processor (core-db.ts)
    a.mov(qword(L("core_args")), rdi).mov(qword({ label: L("core_args"), disp: 8 }), 0);
    a.lea(rdi, ptr(L("core_ctx"))).lea(rsi, ptr(L("core_args"))).lea(rdx, ptr(L("core_result")));
    a.call(L("core_owner_thunk"));
    a.mov(eax, dword(L("core_result")));
    coreUnlock(a);
    a.add(rsp, 8).ret();
  }
}

function emitLapicInit(a: Assembler, o: LeadOptions, h: LeadHelpers): void {
  const { L } = h;
  const { quantumTicks } = o;
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

