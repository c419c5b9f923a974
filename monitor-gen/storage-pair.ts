// The storage pair's failover in ring 0 (docs/specs/storage-failover.md §7.5): when the pair's active member (the
// primary) faults, the monitor — in its fault path, before anything else is dispatched — steps the pair's control
// block through core's pair_ctl_step (the AOT-compiled core, the same module the simulator runs), fences every device
// the dead member owns (PCI bus mastering off, virtio reset, device_status read back as 0), steps the block to FENCED
// and ACTIVE (epoch 1, the secondary), and prints the failover line. Clients learn the epoch through PAIR_EPOCH
// (hypercall 7, docs/specs/hypercall-abi.md), answered by core's pair_ctl_epoch. The first completion the secondary
// signals afterwards is timed (TSC and quanta since the death): the failover time of the benchmark. Emitted only for
// a host with a pair (image/ultravisor.ts); the block's layout is core's (core/storage-pair.ts PAIR_LAYOUT).
import { Assembler, type Label, byte, dword, eax, ecx, edi, edx, esi, ptr, qword, r12, r12d, r13, r13d, r14, r15, r15d, rax, rbx, rcx, rdi, rdx, rsi, rsp, rbp, word } from "../toolchain/x64/index.ts";
import { PAIR_LAYOUT, PairState } from "../core/storage-pair.ts";
import { EVENT_KIND } from "../core/database.ts";
import { monitorLine } from "./console.ts";
import { coreLock, coreUnlock } from "./core-db.ts";
import { HC_ERR, SAVED_FRAME, STATE_PAGE } from "./layout.ts";
import { DEVWIN, PCI_LIST, VIRTIO_VENDOR, busMasterOff, pciEntryAt } from "./pci.ts";
import { PARTITION_RECORD } from "./lead.ts";

export interface StoragePairPlan {
  /** Indices of the members in the partition records (g_partitions, g_name_<i>). */
  primary: number;
  secondary: number;
  names: [string, string];
}

/** virtio 1.x §4.1.4.3: the common configuration's device_status byte, and the common configuration's cap type. */
const VIRTIO_STATUS = 0x14;
const CAP_COMMON = 1;
/** Reads of device_status before the fence is declared failed. */
const FENCE_POLLS = 1_000_000;


export function emitStoragePair(a: Assembler, plan: StoragePairPlan): void {
  const L = (n: string): Label => a.symbol(n);
  const { ctl } = PAIR_LAYOUT;
  a.section(".data");
  a.align(64);
  a.bind(L("g_pair_ctl"));
  a.zero(ctl.bytes);
  for (const n of ["g_pair_t0", "g_pair_q0", "g_pair_first", "g_pair_bdf", "g_pair_event_rc"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".text");

  // pair_core(rax = thunk): calls core's export with core_args already written; eax/rax = its result. The block is
  // made by core's pair_ctl_init at first use. Clobbers the caller-saved registers.
  a.bind(L("pair_core"));
  {
    // Any stack alignment on entry: the thunk is entered as System V asks (rsp ≡ 8 mod 16 after the call).
    a.push(rbx).mov(rbx, rsp).and(rsp, -16);
    a.lea(rdi, ptr(L("core_ctx"))).lea(rsi, ptr(L("core_args"))).lea(rdx, ptr(L("core_result")));
    a.call(rax);
    a.mov(rsp, rbx).pop(rbx);
    a.mov(rax, qword(L("core_result")));
    a.ret();
  }
  a.bind(L("pair_ready"));
  {
    const ok = a.label();
    a.cmp(dword(L("g_pair_ctl")), 0).jne(ok);
    a.lea(rax, ptr(L("g_pair_ctl"))).mov(qword(L("core_args")), rax);
    a.lea(rax, ptr(L("core_pair_init_thunk"))).call(L("pair_core"));
    a.bind(ok);
    a.ret();
  }
  // pair_step(esi = state to): core's pair_ctl_step(block, to, now = TSC) → eax (0, or core's refusal).
  a.bind(L("pair_step"));
  {
    coreLock(a); // from core_args to core_result: one core instance for every processor (core-db.ts)
    a.lea(rax, ptr(L("g_pair_ctl"))).mov(qword(L("core_args")), rax);
    a.mov(qword({ label: L("core_args"), disp: 8 }), rsi);
    a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword({ label: L("core_args"), disp: 16 }), rax);
    a.lea(rax, ptr(L("core_pair_step_thunk"))).call(L("pair_core"));
    coreUnlock(a);
    a.ret();
  }
  // pair_epoch → rax: core's pair_ctl_epoch (≥ 0, −3 during a failover, −1 bad block).
  a.bind(L("pair_epoch"));
  {
    coreLock(a);
    a.call(L("pair_ready"));
    a.lea(rax, ptr(L("g_pair_ctl"))).mov(qword(L("core_args")), rax);
    a.lea(rax, ptr(L("core_pair_epoch_thunk"))).call(L("pair_core"));
    coreUnlock(a);
    a.ret();
  }

  emitFailover(a, L, plan);
  emitEpochHypercall(a, L, plan);
  emitFirstCompletion(a, L, plan);
}

function emitFailover(a: Assembler, L: (n: string) => Label, plan: StoragePairPlan): void {
  // pair_on_fault(rbp = the failed partition's state page): called by on_fault for the primary. Only while it is the
  // active member (epoch 0); nothing happens for a second failure.
  a.bind(L("pair_on_fault"));
  {
    const out = a.label();
    const refused = a.label();
    const failed = a.label();
    for (const r of [rbx, r12, r13, r14, r15]) a.push(r);
    a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(L("g_pair_t0")), rax);
    a.mov(rax, qword(L("g_quantum"))).mov(qword(L("g_pair_q0")), rax);
    a.call(L("pair_epoch"));
    a.test(rax, rax).jnz(out); // not the active member any more (or a bad block): no failover
    a.mov(esi, PairState.fencing).call(L("pair_step"));
    a.test(eax, eax).jnz(refused);
    // The fence: every device of the device list this partition owns.
    a.mov(r12, qword(rbp, STATE_PAGE.index)).inc(r12); // the list's owner field holds the partition number
    a.lea(rbx, ptr(L("g_pci_list")));
    a.xor(r13, r13);
    a.mov(qword(L("g_pair_bdf")), -1);
    const entries = a.here();
    const nextE = a.label();
    const fenced = a.label();
    a.cmp(r13d, dword(rbx, PCI_LIST.count)).jae(fenced);
    pciEntryAt(a, r14, rbx, r13);
    a.cmp(dword(r14, PCI_LIST.owner), r12d).jne(nextE);
    a.movzx(eax, word(r14, PCI_LIST.bdf)).mov(qword(L("g_pair_bdf")), rax);
    // Bus mastering off first: from here the device starts no new DMA.
    busMasterOff(a, L, r14);
    // A virtio function: reset through its common configuration, then device_status read back until 0 (QEMU drains
    // the in-flight requests before the reset completes).
    a.cmp(word(r14, PCI_LIST.vendor), VIRTIO_VENDOR).jne(nextE);
    const capLoop = a.label();
    const capFound = a.label();
    // (a capability count above the list's maximum means a damaged list: the fence fails rather than guess)
    a.movzx(r15d, word(r14, PCI_LIST.caps)).cmp(r15d, PCI_LIST.maxCaps).ja(failed);
    a.bind(capLoop);
    a.test(r15d, r15d).jz(failed);
    a.dec(r15d);
    a.imul(ecx, r15d, 12).lea(rcx, qword({ base: r14, index: rcx, disp: PCI_LIST.cap(0) }));
    a.cmp(byte(rcx, 0), CAP_COMMON).je(capFound);
    a.jmp(capLoop);
    a.bind(capFound);
    a.movzx(eax, byte(rcx, 1)).cmp(eax, 5).ja(failed);
    a.shl(eax, 4).mov(rax, qword({ base: r14, index: rax, disp: PCI_LIST.barAddress(0) }));
    a.test(rax, rax).jz(failed);
    a.mov(edx, dword(rcx, 4)).add(rax, rdx);
    a.mov(rdx, DEVWIN).add(rax, rdx); // the BAR as the dead partition's own page tables map it (uncached)
    a.mov(byte(rax, VIRTIO_STATUS), 0);
    a.mov(ecx, FENCE_POLLS);
    const poll = a.here();
    const zero = a.label();
    a.movzx(edx, byte(rax, VIRTIO_STATUS)).test(edx, edx).jz(zero);
    a.pause();
    a.dec(ecx).jnz(poll);
    a.jmp(failed);
    a.bind(zero);
    a.bind(nextE);
    a.inc(r13).jmp(entries);
    a.bind(fenced);
    a.mov(esi, PairState.fenced).call(L("pair_step"));
    a.test(eax, eax).jnz(refused);
    a.mov(esi, PairState.active).call(L("pair_step"));
    a.test(eax, eax).jnz(refused);
    monitorLine(a, `ultravisor: storage pair: ${plan.names[0]} failed at quantum `, { dec: (x) => x.mov(rdi, qword(L("g_pair_q0"))) },
      " tsc ", { dec: (x) => x.mov(rdi, qword(L("g_pair_t0"))) }, "; device ", { str: (x) => x.mov(rdi, qword(L("g_pair_bdf"))).call(L("pci_text")) },
      " fenced (bus mastering off, reset, status 0); epoch ", { dec: (x) => x.mov(rdi, qword({ label: L("g_pair_ctl"), disp: PAIR_LAYOUT.ctl.epoch })).and(edi, edi) },
      `: ${plan.names[1]} active at tsc `, { dec: (x) => x.mov(rdi, qword({ label: L("g_pair_ctl"), disp: PAIR_LAYOUT.ctl.fencedAt })) });
    // The audit log's record of it (memory-layout.md §11.3): core's db_log_event(STORAGE_FAILOVER, the failed member's
    // partition number in the database, the active one's), between transactions — none is in flight here: only the
    // ultravisor partition submits, and the primary was the one running.
    coreLock(a);
    a.mov(qword(L("core_args")), EVENT_KIND.storageFailover);
    a.mov(eax, dword(rbp, STATE_PAGE.descriptor)).mov(qword({ label: L("core_args"), disp: 8 }), rax);
    a.mov(rax, qword({ label: L("g_partitions"), disp: plan.secondary * PARTITION_RECORD.size + PARTITION_RECORD.state }));
    a.mov(eax, dword(rax, STATE_PAGE.descriptor)).mov(qword({ label: L("core_args"), disp: 16 }), rax);
    a.lea(rax, ptr(L("core_log_event_thunk"))).call(L("pair_core"));
    a.movsxd(rax, eax).neg(rax).mov(qword(L("g_pair_event_rc")), rax); // 0, or core's code negated (the line prints it)
    coreUnlock(a);
    monitorLine(a, "ultravisor: storage pair: failover recorded in the audit log (EVENT kind 1, status -", { dec: (x) => x.mov(rdi, qword(L("g_pair_event_rc"))) }, ")");
    a.jmp(out);
    a.bind(failed);
    monitorLine(a, `ultravisor: storage pair: fence of ${plan.names[0]} failed (device_status never read 0): clients stay on epoch 0, storage stops`);
    a.jmp(out);
    a.bind(refused);
    monitorLine(a, "ultravisor: storage pair: core refused a step of the control block: ", { dec: (x) => x.mov(edi, eax).neg(edi) });
    a.bind(out);
    for (const r of [r15, r14, r13, r12, rbx]) a.pop(r);
    a.ret();
  }
}

function emitEpochHypercall(a: Assembler, L: (n: string) => Label, plan: StoragePairPlan): void {
  // pair_epoch_call(rbp = the caller's state page) → rax, and rdx in its frame: PAIR_EPOCH. Only a client of the pair:
  // its slot 2 is a channel to the secondary.
  a.bind(L("pair_epoch_call"));
  {
    const denied = a.label();
    const out = a.label();
    a.mov(rax, qword(rbp, STATE_PAGE.slots + 2 * 16)).test(rax, rax).jz(denied);
    a.cmp(qword(rax, STATE_PAGE.index), plan.secondary).jne(denied);
    a.call(L("pair_epoch"));
    const ok = a.label();
    a.test(rax, rax).jns(ok);
    a.mov(rax, HC_ERR.refused);
    a.bind(ok);
    a.mov(rcx, qword({ label: L("g_pair_ctl"), disp: PAIR_LAYOUT.ctl.fencedAt })).mov(qword(rbp, SAVED_FRAME.reg("rdx")), rcx);
    a.ret();
    a.bind(denied);
    a.mov(rax, HC_ERR.denied);
    a.bind(out);
    a.ret();
  }
}

function emitFirstCompletion(a: Assembler, L: (n: string) => Label, plan: StoragePairPlan): void {
  // pair_signal_note(rbp = the caller of SIGNAL): the secondary's first signal on a storage slot (slot ≥ 1: slot 0 is
  // its console) after the failover is its first completion to a client (queue 1 of a channel never used before goes
  // from empty to non-empty): the failover's end, timed from the primary's death.
  a.bind(L("pair_signal_note"));
  {
    const out = a.label();
    a.cmp(qword(rbp, STATE_PAGE.index), plan.secondary).jne(out);
    a.cmp(qword(rbp, SAVED_FRAME.reg("rcx")), 0).je(out);
    a.cmp(qword(L("g_pair_t0")), 0).je(out);
    a.cmp(qword(L("g_pair_first")), 0).jne(out);
    a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(L("g_pair_first")), rax);
    monitorLine(a, `ultravisor: storage pair: first completion by ${plan.names[1]} at quantum `, { dec: (x) => x.mov(rdi, qword(L("g_quantum"))) },
      " tsc ", { dec: (x) => x.mov(rdi, qword(L("g_pair_first"))) }, ": failover took ", { dec: (x) => x.mov(rdi, qword(L("g_pair_first"))).sub(rdi, qword(L("g_pair_t0"))) },
      " tsc, ", { dec: (x) => x.mov(rdi, qword(L("g_quantum"))).sub(rdi, qword(L("g_pair_q0"))) }, " quanta");
    a.bind(out);
    a.ret();
  }
}
