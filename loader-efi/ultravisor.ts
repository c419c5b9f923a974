// The boot partition's loader of the bare-metal ultravisor (generated code, EFI side): reads the UEFI memory map,
// checks that the resource database's own 4 MiB page is RAM, allocates almost all conventional memory below 4 GiB
// (leaving a pool for the firmware), keeps the largest range as the ultravisor region and carves core's private 4 MiB
// page from its top, leaves boot services with the map-key retry and jumps to the lead monitor (uv_main in
// monitor-gen/lead.ts). Offsets: docs/specs/efi-abi.md; layout decisions: docs/specs/image-layout.md.
import { type Assembler, type Label, eax, ecx, edx, ptr, qword, dword, r8, r9, r12, r12d, r13, r14, r15, rax, rbp, rbx, rcx, rdi, rdx, rsi, rsp } from "../toolchain/x64/index.ts";
import { monitorLine } from "../monitor-gen/console.ts";
import { EXIT, PRIVATE_PAGE_BYTES } from "../monitor-gen/layout.ts";
import { emitExit } from "../monitor-gen/paging.ts";
import { emitStageFiles, LI_IMAGE_BASE, LOADED_IMAGE_GUID } from "./linux-stage.ts";

export const LOADER_ENTRY = "efi_main";
/** Pages left free for the firmware until ExitBootServices (event callbacks still allocate). */
export const FIRMWARE_POOL_PAGES = 1024;
/** Conventional ranges smaller than this are left alone (not worth a descriptor in the database). */
const MIN_RANGE_PAGES = 16;
const MAP_BUFFER = 64 * 1024;
const EBS_TRIES = 4;

const ST_BOOT_SERVICES = 96;
const BS = { allocatePages: 40, getMemoryMap: 56, allocatePool: 64, handleProtocol: 152, exitBootServices: 232, stall: 248 } as const;
const MD = { type: 0, start: 8, pages: 24 } as const;
const CONVENTIONAL = 7;
const LOADER_DATA = 2;
const ALLOCATE_ADDRESS = 2;

export const LOADER_LINES = {
  started: "ultravisor: loader started",
  /** Where the firmware loaded the image (its ImageBase): a debugger's symbol offset is this − the preferred base. */
  loadedAt: /^ultravisor: image loaded at (0x[0-9a-f]+)/,
  allocated: /^ultravisor: allocated (\d+) pages in (\d+) ranges; region (0x[0-9a-f]+) of (\d+) pages; firmware pool (\d+) pages$/,
  entered: /^ultravisor: entered: boot services exited after (\d+) ExitBootServices call\(s\)/,
  /** Core's private 4 MiB page [0,M,*] (docs/specs/memory-layout.md §5), carved from the region's top. */
  privatePage: /^ultravisor: core private page (0x[0-9a-f]+)-(0x[0-9a-f]+) \(\[0,(\d+),\*\]\) carved from the top of the ultravisor region$/,
};

/**
 * What the loader checks and reserves for the resource database built by core after ExitBootServices: its own 4 MiB
 * page `dbPage` must be wholly covered, in the map read first, by descriptors of `types` (memory free once boot
 * services are gone); core's private 4 MiB page is carved from the ultravisor region (g_core_private).
 */
export interface CoreLoaderPlan {
  dbPage: { lo: number; hi: number };
  types: number[];
}

/** RAM descriptor types (they count towards the host's memory): loader, boot and runtime services, conventional, ACPI. */
const RAM_TYPES = [1, 2, 3, 4, 5, 6, 7, 9, 10];

/**
 * `core`: the resource database's needs (null: no database). g_core_ok says whether they are met: the database's page
 * is RAM and a private page could be carved (else a line says which range conflicts, and the lead monitor skips the
 * database); g_core_private is the private page's physical address.
 */
export interface LoaderOptions {
  /** Test builds: make the first ExitBootServices key stale. */
  staleMapKeyOnce?: boolean;
  /** Linux partitions' ESP files, staged before the memory map is read (their pages are then not conventional). */
  linux?: ReadonlyArray<LinuxStaging>;
}

/** One Linux partition's files: ESP path and exact size each; file i's staging address ends up in `${prefix}stage${i}`. */
export interface LinuxStaging {
  prefix: string;
  files: ReadonlyArray<{ path: string; size: number }>;
}

/**
 * Stages every Linux partition's files (loader-efi/linux-stage.ts) while the firmware is up — before the memory map is
 * read, so the region allocation below never takes their pages — and measures the TSC against 10 ms of the firmware's
 * Stall for the kernels' `tsc_early_khz=` (docs/specs/linux-pc.md §8), leaving it in g_tsc_khz (monitor-gen/svm/linux.ts).
 */
function emitLinuxStaging(a: Assembler, linux: ReadonlyArray<LinuxStaging>): void {
  const L = (n: string): Label => a.symbol(n);
  for (const p of linux) {
    emitStageFiles(a, {
      image: L("g_image"), bs: L("g_bs"), files: p.files, floor: 0x100000, prefix: p.prefix,
      error: (x, text) => {
        monitorLine(x, `ultravisor: error: Linux partition files: ${text}`);
        emitExit(x, EXIT.loaderFailed);
      },
    });
  }
  monitorLine(a, `ultravisor: staged ${linux.reduce((n, p) => n + p.files.length, 0)} Linux partition files from the ESP`);
  a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(r12, rax);
  a.mov(ecx, TSC_STALL_US).mov(rax, qword(L("g_bs"))).call(qword(rax, BS.stall));
  a.rdtsc().shl(rdx, 32).or(rax, rdx).sub(rax, r12);
  a.xor(edx, edx).mov(ecx, TSC_STALL_US / 1000).div(rcx);
  a.mov(qword(L("g_tsc_khz")), rax);
  monitorLine(a, `ultravisor: TSC `, { dec: (x) => x.mov(rdi, qword(L("g_tsc_khz"))) }, ` kHz (measured over ${TSC_STALL_US / 1000} ms of the firmware's Stall)`);
}
const TSC_STALL_US = 10_000;

export function emitLoader(a: Assembler, core: CoreLoaderPlan | null = null, opts: LoaderOptions = {}): void {
  emitLoaderData(a);
  emitLoaderEntry(a);
  const fail = a.label();
  emitBelow4GiB(a, fail);
  if (opts.linux?.length) emitLinuxStaging(a, opts.linux);
  emitTrampolinePage(a);
  emitMapBuffer(a, fail);
  emitMapSurvey(a, core);
  emitRegionAllocation(a, fail);
  if (core) emitCorePrivatePage(a, core);
  emitRegionHandOver(a);
  emitExitBootServices(a, fail, opts);
  emitLoaderFailure(a, fail);
  emitGetMap(a);
}

/** The loader's variables (.bss) and the LoadedImage GUID. */
function emitLoaderData(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  a.section(".bss");
  a.align(8);
  for (const n of ["g_image", "g_systab", "g_bs", "g_map_size", "g_map_key", "g_desc_size", "g_desc_ver", "g_map_buf", "g_region", "g_region_pages", "g_alloc_pages", "g_alloc_ranges", "g_budget", "g_addr", "g_ram_top", "g_core_ok",
    "g_core_private", "g_core_cover", "g_core_conf_type", "g_core_conf_lo", "g_core_conf_hi", "g_loaded_image"]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".rdata");
  a.bind(L("g_loaded_image_guid"));
  a.db(...LOADED_IMAGE_GUID);
  a.section(".text");
}

/** efi_main's prologue: the image handle, system table and boot services saved, the first line, the load address. */
function emitLoaderEntry(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  const main = L(LOADER_ENTRY);
  a.global(main);
  a.bind(main);
  a.push(rbp).mov(rbp, rsp);
  for (const r of [rbx, rsi, rdi, r12, r13, r14, r15]) a.push(r);
  a.sub(rsp, 0x38); // keeps calls 16-aligned with shadow space and a fifth argument slot at [rsp+32]
  a.mov(qword(L("g_image")), rcx).mov(qword(L("g_systab")), rdx);
  a.mov(rax, qword(rdx, ST_BOOT_SERVICES)).mov(qword(L("g_bs")), rax);
  a.rdtsc().shl(rdx, 32).or(rax, rdx).mov(qword(L("g_tsc_entry")), rax);
  a.mov(qword(L("g_direct")), 1);
  monitorLine(a, "ultravisor: loader started");
  // The actual load address, from the Loaded Image protocol: the firmware relocates the image wherever it likes, and
  // gdb needs (this − the preferred base) to place the symbol file's addresses (docs/specs/efi-abi.md, Debugging).
  {
    const unknown = a.label();
    const known = a.label();
    a.mov(rcx, qword(L("g_image"))).lea(rdx, ptr(L("g_loaded_image_guid"))).lea(r8, ptr(L("g_loaded_image")));
    a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.handleProtocol));
    a.test(rax, rax).jnz(unknown);
    monitorLine(a, "ultravisor: image loaded at ", { hex: (x) => x.mov(rax, qword(L("g_loaded_image"))).mov(rdi, qword(rax, LI_IMAGE_BASE)) });
    a.jmp(known);
    a.bind(unknown);
    a.mov(rbx, rax); // k_puts clobbers rax
    monitorLine(a, "ultravisor: image load address unknown: HandleProtocol(LoadedImage) failed with status ", { hex: (x) => x.mov(rdi, rbx) });
    a.bind(known);
  }
}

/** The image must run identity-mapped below 4 GiB: refused otherwise. */
function emitBelow4GiB(a: Assembler, fail: Label): void {
  const L = (n: string): Label => a.symbol(n);
  a.lea(rax, ptr(L(LOADER_ENTRY))).shr(rax, 32);
  const low = a.label();
  a.jz(low);
  monitorLine(a, "ultravisor: error: image above 4 GiB; the ultravisor needs its code identity-mapped below 4 GiB");
  a.mov(rax, 1).jmp(fail);
  a.bind(low);
}

/**
 * One page below 1 MiB for the application processors' trampoline (monitor-gen/smp.ts; a STARTUP IPI's vector names a
 * page there): AllocateMaxAddress at 0x9F000, loader data, so nothing else takes it. Without one the application
 * processors stay halted (g_trampoline 0), which the monitor reports.
 */
function emitTrampolinePage(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  const got = a.label();
  a.mov(qword(L("g_trampoline")), TRAMPOLINE_MAX);
  a.mov(ecx, ALLOCATE_MAX_ADDRESS).mov(edx, LOADER_DATA).mov(r8, 1).lea(r9, ptr(L("g_trampoline")));
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.allocatePages));
  a.test(rax, rax).jz(got);
  a.mov(qword(L("g_trampoline")), 0);
  a.bind(got);
}
const ALLOCATE_MAX_ADDRESS = 1;
/** The highest page a STARTUP IPI can name below the EBDA and the legacy hole (vector 0x9F). */
const TRAMPOLINE_MAX = 0x9f000;

/** From here on rbx = the boot services table (every allocation and ExitBootServices call through it). */
function emitMapBuffer(a: Assembler, fail: Label): void {
  const L = (n: string): Label => a.symbol(n);
  // The map buffer: pool memory of fixed size, reused by every GetMemoryMap call below.
  a.mov(rbx, qword(L("g_bs")));
  a.mov(ecx, LOADER_DATA).mov(edx, MAP_BUFFER).lea(r8, ptr(L("g_map_buf")));
  a.call(qword(rbx, BS.allocatePool));
  a.test(rax, rax).jnz(fail);
  a.call(L("get_map"));
  a.test(rax, rax).jnz(fail);
}

/** The memory map read once: the RAM top below 4 GiB and whether the database's own 4 MiB page is usable. */
function emitMapSurvey(a: Assembler, core: CoreLoaderPlan | null): void {
  const L = (n: string): Label => a.symbol(n);
  // RAM top below 4 GiB (the host size the database is bootstrapped for) and the check of the database's 4 MiB page:
  // the bytes of it that descriptors of the allowed types cover, and the first descriptor of another type inside it.
  {
    a.mov(r12, qword(L("g_map_buf")));
    a.mov(r13, r12).add(r13, qword(L("g_map_size")));
    a.mov(qword(L("g_core_ok")), core ? 1 : 0);
    const loop = a.here();
    const done = a.label();
    const notRam = a.label();
    a.cmp(r12, r13).jae(done);
    a.mov(r14, qword(r12, MD.start)).mov(r15, qword(r12, MD.pages)).shl(r15, 12).add(r15, r14); // [r14, r15)
    a.mov(eax, dword(r12, MD.type));
    const isRam = a.label();
    for (const t of RAM_TYPES) a.cmp(eax, t).je(isRam);
    a.jmp(notRam);
    a.bind(isRam);
    a.mov(rcx, 0x1_0000_0000n).cmp(r15, rcx).ja(notRam);
    const lower = a.label();
    a.cmp(r15, qword(L("g_ram_top"))).jbe(lower);
    a.mov(qword(L("g_ram_top")), r15);
    a.bind(lower);
    a.bind(notRam);
    if (core) {
      const apart = a.label();
      const allowed = a.label();
      // [rsi, rdi) = the descriptor's range ∩ the database's page
      a.mov(rsi, r14).mov(rcx, core.dbPage.lo).cmp(rsi, rcx).cmovb(rsi, rcx);
      a.mov(rdi, r15).mov(rcx, core.dbPage.hi).cmp(rdi, rcx).cmova(rdi, rcx);
      a.cmp(rsi, rdi).jae(apart);
      for (const t of core.types) a.cmp(eax, t).je(allowed);
      a.cmp(qword(L("g_core_conf_hi")), 0).jne(apart); // the first conflict is the one reported
      a.mov(qword(L("g_core_conf_type")), rax).mov(qword(L("g_core_conf_lo")), rsi).mov(qword(L("g_core_conf_hi")), rdi);
      a.jmp(apart);
      a.bind(allowed);
      a.sub(rdi, rsi).add(qword(L("g_core_cover")), rdi);
      a.bind(apart);
    }
    a.add(r12, qword(L("g_desc_size"))).jmp(loop);
    a.bind(done);
    if (core) {
      const { lo, hi } = core.dbPage;
      const page = `0x${lo.toString(16)}-0x${(hi - 1).toString(16)}`;
      const fine = a.label();
      const conflict = a.label();
      const skipped = a.label();
      a.cmp(qword(L("g_core_conf_hi")), 0).jne(conflict);
      a.mov(rax, hi - lo).cmp(qword(L("g_core_cover")), rax).je(fine);
      monitorLine(a, `ultravisor: resource database skipped: its 4 MiB page ${page} is not wholly in the firmware's map (`, { dec: (x) => x.mov(rdi, qword(L("g_core_cover"))) },
        " bytes described)");
      a.jmp(skipped);
      a.bind(conflict);
      monitorLine(a, `ultravisor: resource database skipped: its 4 MiB page ${page} holds firmware memory of type `, { dec: (x) => x.mov(rdi, qword(L("g_core_conf_type"))) },
        " at ", { hex: (x) => x.mov(rdi, qword(L("g_core_conf_lo"))) }, "-", { hex: (x) => x.mov(rdi, qword(L("g_core_conf_hi"))).dec(rdi) });
      a.bind(skipped);
      a.mov(qword(L("g_core_ok")), 0);
      a.bind(fine);
    }
  }
}

/** Allocates the conventional ranges (all but the firmware pool); the largest is the ultravisor region. */
function emitRegionAllocation(a: Assembler, fail: Label): void {
  const L = (n: string): Label => a.symbol(n);
  // Pass 1: conventional pages in usable ranges. Pass 2: allocate them, all but the firmware pool.
  const eachRange = (body: () => void): void => {
    a.mov(r12, qword(L("g_map_buf")));
    a.mov(r13, r12).add(r13, qword(L("g_map_size")));
    const loop = a.here();
    const skip = a.label();
    const done = a.label();
    a.cmp(r12, r13).jae(done);
    a.cmp(dword(r12, MD.type), CONVENTIONAL).jne(skip);
    a.mov(r14, qword(r12, MD.start)).mov(r15, qword(r12, MD.pages));
    a.cmp(r14, 0x100000).jb(skip);
    a.cmp(r15, MIN_RANGE_PAGES).jb(skip);
    a.mov(rax, r15).shl(rax, 12).add(rax, r14);
    a.mov(rcx, 0x1_0000_0000n).cmp(rax, rcx).ja(skip);
    body();
    a.bind(skip);
    a.add(r12, qword(L("g_desc_size"))).jmp(loop);
    a.bind(done);
  };
  a.mov(qword(L("g_budget")), 0);
  eachRange(() => a.add(qword(L("g_budget")), r15));
  a.sub(qword(L("g_budget")), FIRMWARE_POOL_PAGES);
  const noBudget = a.label();
  a.cmp(qword(L("g_budget")), 0).jg(noBudget);
  monitorLine(a, "ultravisor: error: not enough conventional memory below 4 GiB");
  a.mov(rax, 2).jmp(fail);
  a.bind(noBudget);
  eachRange(() => {
    const take = a.label();
    const none = a.label();
    a.mov(rax, qword(L("g_budget")));
    a.test(rax, rax).jle(none);
    a.cmp(r15, rax).jbe(take);
    a.mov(r15, rax);
    a.bind(take);
    a.mov(qword(L("g_addr")), r14);
    a.mov(ecx, ALLOCATE_ADDRESS).mov(edx, LOADER_DATA).mov(r8, r15).lea(r9, ptr(L("g_addr")));
    a.call(qword(rbx, BS.allocatePages));
    a.test(rax, rax).jnz(none); // a range the firmware refuses stays the firmware's
    a.sub(qword(L("g_budget")), r15);
    a.add(qword(L("g_alloc_pages")), r15);
    a.inc(qword(L("g_alloc_ranges")));
    a.cmp(r15, qword(L("g_region_pages"))).jbe(none);
    a.mov(qword(L("g_region_pages")), r15).mov(qword(L("g_region")), r14);
    a.bind(none);
  });
}

/** Cuts core's private 4 MiB page off the region's top (ADR 0002). */
function emitCorePrivatePage(a: Assembler, core: CoreLoaderPlan): void {
  const L = (n: string): Label => a.symbol(n);
  {
    // Core's private 4 MiB page: the highest 4 MiB-aligned page wholly inside the ultravisor region (conventional
    // memory this loader allocated), cut off the region so the monitor's bump allocator never hands it out.
    const { lo, hi } = core.dbPage;
    const done = a.label();
    const none = a.label();
    const apart = a.label();
    a.cmp(qword(L("g_core_ok")), 0).je(done);
    a.mov(rcx, qword(L("g_region")));
    a.mov(rax, qword(L("g_region_pages"))).shl(rax, 12).add(rax, rcx); // [rcx, rax) = the region
    a.cmp(rcx, hi).jae(apart);
    a.cmp(rax, lo).jbe(apart);
    monitorLine(a, "ultravisor: resource database skipped: the ultravisor region ", { hex: (x) => x.mov(rdi, qword(L("g_region"))) },
      ` overlaps the database's 4 MiB page 0x${lo.toString(16)}-0x${(hi - 1).toString(16)}`);
    a.mov(qword(L("g_core_ok")), 0).jmp(done);
    a.bind(apart);
    a.and(rax, -PRIVATE_PAGE_BYTES);
    a.cmp(rax, 2 * PRIVATE_PAGE_BYTES).jb(none);
    a.sub(rax, PRIVATE_PAGE_BYTES);
    a.cmp(rax, rcx).jb(none);
    a.mov(qword(L("g_core_private")), rax);
    a.sub(rax, rcx).shr(rax, 12).mov(qword(L("g_region_pages")), rax);
    monitorLine(a, "ultravisor: core private page ", { hex: (x) => x.mov(rdi, qword(L("g_core_private"))) }, "-",
      { hex: (x) => x.mov(rdi, qword(L("g_core_private"))).add(rdi, PRIVATE_PAGE_BYTES - 1) }, " ([0,", { dec: (x) => x.mov(rdi, qword(L("g_core_private"))).shr(rdi, 22) },
      ",*]) carved from the top of the ultravisor region");
    a.jmp(done);
    a.bind(none);
    monitorLine(a, "ultravisor: resource database skipped: no 4 MiB-aligned page wholly inside the ultravisor region for core's private page");
    a.mov(qword(L("g_core_ok")), 0);
    a.bind(done);
  }
}

/** Reports the allocation and hands the region to the monitor's bump allocator (g_next, g_end). */
function emitRegionHandOver(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  monitorLine(a, "ultravisor: allocated ", { dec: (x) => x.mov(rdi, qword(L("g_alloc_pages"))) }, " pages in ", { dec: (x) => x.mov(rdi, qword(L("g_alloc_ranges"))) },
    " ranges; region ", { hex: (x) => x.mov(rdi, qword(L("g_region"))) }, " of ", { dec: (x) => x.mov(rdi, qword(L("g_region_pages"))) },
    ` pages; firmware pool ${FIRMWARE_POOL_PAGES} pages`);
  a.mov(rax, qword(L("g_region"))).mov(qword(L("g_next")), rax);
  a.mov(rcx, qword(L("g_region_pages"))).shl(rcx, 12).add(rax, rcx).mov(qword(L("g_end")), rax);
}

/** Leaves boot services (with the map-key retry) and jumps to the lead monitor. */
function emitExitBootServices(a: Assembler, fail: Label, opts: LoaderOptions): void {
  const L = (n: string): Label => a.symbol(n);
  // ExitBootServices with the map-key retry: a stale key (the map changed since GetMemoryMap) fails with
  // EFI_INVALID_PARAMETER; fetch the map again and retry. Nothing may print through the firmware in between.
  a.mov(r12d, 0);
  const retry = a.here();
  const exited = a.label();
  a.inc(r12);
  a.call(L("get_map"));
  a.test(rax, rax).jnz(fail);
  if (opts.staleMapKeyOnce) {
    // Test builds: change the map after reading it on the first try, so the key is stale and the retry must work.
    const fresh = a.label();
    a.cmp(r12, 1).jne(fresh);
    a.xor(ecx, ecx).mov(edx, LOADER_DATA).mov(r8, 1).lea(r9, ptr(L("g_addr")));
    a.call(qword(rbx, BS.allocatePages));
    a.bind(fresh);
  }
  a.mov(rcx, qword(L("g_image"))).mov(rdx, qword(L("g_map_key")));
  a.call(qword(rbx, BS.exitBootServices));
  a.test(rax, rax).jz(exited);
  a.cmp(r12, EBS_TRIES).jb(retry);
  a.jmp(fail);
  a.bind(exited);
  a.cli();
  a.mov(qword(L("g_ebs_tries")), r12);
  a.jmp(L("uv_main"));
}

/** Binds `fail`: reports the status on COM1 and leaves QEMU. */
function emitLoaderFailure(a: Assembler, fail: Label): void {
  // Failure while boot services may still be up: report on COM1 and leave QEMU.
  a.bind(fail);
  a.mov(rbx, rax);
  monitorLine(a, "ultravisor: error: loader failed with status ", { hex: (x) => x.mov(rdi, rbx) });
  emitExit(a, EXIT.loaderFailed);
}

/** The get_map routine every step above calls. */
function emitGetMap(a: Assembler): void {
  const L = (n: string): Label => a.symbol(n);
  // get_map → rax = EFI status; fills g_map_size (bytes), g_map_key, g_desc_size.
  a.bind(L("get_map"));
  a.sub(rsp, 0x38);
  a.mov(qword(L("g_map_size")), MAP_BUFFER);
  a.lea(rcx, ptr(L("g_map_size"))).mov(rdx, qword(L("g_map_buf"))).lea(r8, ptr(L("g_map_key"))).lea(r9, ptr(L("g_desc_size")));
  a.lea(rax, ptr(L("g_desc_ver"))).mov(qword(rsp, 32), rax);
  a.mov(rax, qword(L("g_bs"))).call(qword(rax, BS.getMemoryMap));
  a.add(rsp, 0x38).ret();
}
