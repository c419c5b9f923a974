// The first bootable program: an EFI application written with the typed assembler (toolchain/x64) that prints a
// banner through ConOut->OutputString and straight to COM1, reads the UEFI memory map, reports the conventional
// memory in MiB and the descriptor count, and ends QEMU through isa-debug-exit. image/ links it into
// BOOTX64.EFI; test/hw boots it. Offsets and calling convention: docs/specs/efi-abi.md.
import {
  addr,
  Assembler,
  byte,
  dword,
  type Label,
  ptr,
  qword,
  al,
  ax,
  cl,
  dl,
  dx,
  eax,
  ecx,
  edx,
  r8,
  r8d,
  r9,
  r12,
  r13,
  r14,
  r15,
  rax,
  rbp,
  rbx,
  rcx,
  rdi,
  rdx,
  rsi,
  rsp,
  word,
} from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { emitAppendDec } from "../monitor-gen/format.ts";

/** Exit code the image reports through isa-debug-exit when everything worked (QEMU exits with 2·33+1 = 67). */
export const FIRST_IMAGE_EXIT_CODE = 33;
/** Exit code when a boot service failed; the failing status is printed just before. */
export const FIRST_IMAGE_FAILURE_CODE = 126;
export const ENTRY_SYMBOL = "efi_main";
export const DEFAULT_BANNER = "ultravisor first image: EFI application built by uvt";

// docs/specs/efi-abi.md
const ST_CONOUT = 64;
const ST_BOOT_SERVICES = 96;
const CONOUT_OUTPUT_STRING = 8;
const BS_GET_MEMORY_MAP = 56;
const BS_ALLOCATE_POOL = 64;
const BS_FREE_POOL = 72;
const MD_TYPE = 0;
const MD_NUMBER_OF_PAGES = 24;
const EFI_CONVENTIONAL_MEMORY = 7;
const EFI_LOADER_DATA = 2;
const EFI_BUFFER_TOO_SMALL = 0x8000_0000_0000_0005n;
const COM1 = 0x3f8;
const COM1_LSR = COM1 + 5;
const LSR_THR_EMPTY = 0x20;
const DEBUG_EXIT_PORT = 0xf4;
/** Longest line print() accepts, prefix included; the line buffers are sized from it. */
const MAX_LINE = 200;

export interface FirstImageOptions {
  exitCode?: number;
  banner?: string;
}

/** What the image prints, as the host sees it on the serial log (after terminal escapes are stripped). */
export const FIRST_IMAGE_LINES = {
  banner: (source: "COM1" | "ConOut", banner = DEFAULT_BANNER): string => `${source}: ${banner}`,
  memory: /^(COM1|ConOut): conventional memory: (\d+) MiB \((\d+) pages\) in (\d+) descriptors$/,
  exit: /^(COM1|ConOut): exiting through isa-debug-exit with code (\d+)$/,
  error: /^(COM1|ConOut): error: (.*)$/,
};

export function assembleFirstImage(opts: FirstImageOptions = {}): ObjectFile {
  const exitCode = opts.exitCode ?? FIRST_IMAGE_EXIT_CODE;
  const banner = opts.banner ?? DEFAULT_BANNER;
  if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 127) throw new RangeError(`exit code ${exitCode} must be 0..127 (QEMU's status byte keeps 7 bits of it)`);
  if (!/^[\x20-\x7e]*$/.test(banner) || banner.length > MAX_LINE - 10) throw new RangeError(`banner must be printable ASCII of at most ${MAX_LINE - 10} characters`);

  const a = new Assembler();
  emitFirstImageData(a, banner, exitCode);
  emitFirstImageMain(a, exitCode);
  emitFirstImagePrint(a);
  emitFirstImageText(a);
  emitCountMemory(a);
  return a.finish();
}

/** Strings, the two absolute pointers the code uses (DIR64 base relocations) and the zero-filled buffers. */
function emitFirstImageData(a: Assembler, banner: string, exitCode: number): void {
  const L = (name: string): Label => a.symbol(name);
  // ---- read-only strings -------------------------------------------------------------------------------------------
  a.section(".rdata");
  const str = (name: string, text: string): void => {
    a.bind(L(name));
    a.asciz(text);
  };
  str("s_banner", banner);
  str("s_prefix_com1", "COM1: ");
  str("s_prefix_conout", "ConOut: ");
  str("s_crlf", "\r\n");
  str("s_mem1", "conventional memory: ");
  str("s_mem2", " MiB (");
  str("s_mem3", " pages) in ");
  str("s_mem4", " descriptors");
  str("s_exit", `exiting through isa-debug-exit with code ${exitCode}`);
  str("s_err", "error: boot service failed with status 0x");
  str("s_hex", "0123456789abcdef");

  // ---- data: absolute pointers (DIR64 base relocations) that the code really uses ----------------------------------
  a.section(".data");
  a.align(8);
  a.bind(L("banner_ptr"));
  a.dq(addr(L("s_banner")));
  a.bind(L("print_ptr"));
  a.dq(addr(L("print")));
  a.bind(L("g_image"));
  a.dq(0);
  a.bind(L("g_systab"));
  a.dq(0);

  // ---- zero-filled buffers and results ----------------------------------------------------------------------------
  a.section(".bss");
  a.align(16);
  for (const name of ["g_map_size", "g_map_key", "g_desc_size", "g_desc_ver", "g_map_buf", "g_desc_count", "g_conv_pages"]) {
    a.bind(L(name));
    a.zero(8);
  }
  a.bind(L("linebuf"));
  a.zero(MAX_LINE + 8);
  a.align(16);
  a.bind(L("wbuf"));
  a.zero(2 * (MAX_LINE + 16));
}

/** efi_main: the banner, the memory line, the exit through isa-debug-exit (or the error line). */
function emitFirstImageMain(a: Assembler, exitCode: number): void {
  const L = (name: string): Label => a.symbol(name);
  // ---- code ---------------------------------------------------------------------------------------------------------
  a.section(".text");
  const main = L(ENTRY_SYMBOL);
  a.global(main);
  a.bind(main);
  // Entry: rsp ≡ 8 (mod 16). rbp + 7 saved registers = 64 bytes, then 0x38 keeps calls 16-aligned with 32 bytes of
  // shadow space and room for a fifth argument at [rsp+32].
  a.push(rbp).mov(rbp, rsp);
  for (const r of [rbx, rsi, rdi, r12, r13, r14, r15]) a.push(r);
  a.sub(rsp, 0x38);
  a.mov(qword(L("g_image")), rcx);
  a.mov(qword(L("g_systab")), rdx);

  // Banner through two absolute pointers from .data: a wrong base relocation would crash right here.
  a.mov(rsi, qword(L("banner_ptr")));
  a.call(qword(L("print_ptr")));

  a.call(L("count_memory"));
  a.test(rax, rax);
  const failed = a.label();
  a.jnz(failed);

  a.lea(rdi, ptr(L("linebuf")));
  a.lea(rsi, ptr(L("s_mem1"))).call(L("append_str"));
  a.mov(rax, qword(L("g_conv_pages"))).shr(rax, 8).call(L("append_dec")); // 256 pages of 4 KiB per MiB
  a.lea(rsi, ptr(L("s_mem2"))).call(L("append_str"));
  a.mov(rax, qword(L("g_conv_pages"))).call(L("append_dec"));
  a.lea(rsi, ptr(L("s_mem3"))).call(L("append_str"));
  a.mov(rax, qword(L("g_desc_count"))).call(L("append_dec"));
  a.lea(rsi, ptr(L("s_mem4"))).call(L("append_str"));
  a.mov(byte(rdi), 0);
  a.lea(rsi, ptr(L("linebuf"))).call(L("print"));

  a.lea(rsi, ptr(L("s_exit"))).call(L("print"));
  a.mov(eax, exitCode).mov(dx, DEBUG_EXIT_PORT).out(dx, eax);
  // Without an isa-debug-exit device (real hardware) the write is ignored: return EFI_SUCCESS to the boot manager.
  a.xor(eax, eax);
  const epilogue = a.label();
  a.jmp(epilogue);

  a.bind(failed);
  a.mov(rbx, rax);
  a.lea(rdi, ptr(L("linebuf")));
  a.lea(rsi, ptr(L("s_err"))).call(L("append_str"));
  a.mov(rax, rbx).call(L("append_hex"));
  a.mov(byte(rdi), 0);
  a.lea(rsi, ptr(L("linebuf"))).call(L("print"));
  a.mov(eax, FIRST_IMAGE_FAILURE_CODE).mov(dx, DEBUG_EXIT_PORT).out(dx, eax);
  a.mov(rax, rbx);

  a.bind(epilogue);
  a.add(rsp, 0x38);
  for (const r of [r15, r14, r13, r12, rdi, rsi, rbx]) a.pop(r);
  a.pop(rbp).ret();
}

/** print: a line on COM1 and through the firmware's ConOut. */
function emitFirstImagePrint(a: Assembler): void {
  const L = (name: string): Label => a.symbol(name);
  // print(rsi = NUL-terminated ASCII): "COM1: <text>\r\n" on the UART, then "ConOut: <text>\r\n" through the firmware.
  a.bind(L("print"));
  a.push(rbx).push(r12).sub(rsp, 40); // entry ≡ 8, two pushes ≡ 8, 40 more → ≡ 0 at the call below
  a.mov(r12, rsi);
  a.lea(rsi, ptr(L("s_prefix_com1"))).call(L("com1_puts"));
  a.mov(rsi, r12).call(L("com1_puts"));
  a.lea(rsi, ptr(L("s_crlf"))).call(L("com1_puts"));
  a.lea(rdi, ptr(L("wbuf")));
  a.lea(rsi, ptr(L("s_prefix_conout"))).call(L("widen"));
  a.mov(rsi, r12).call(L("widen"));
  a.lea(rsi, ptr(L("s_crlf"))).call(L("widen"));
  a.mov(qword(rdi), 0); // UTF-16 NUL (and one spare)
  a.mov(rax, qword(L("g_systab")));
  a.mov(rcx, qword(rax, ST_CONOUT));
  a.lea(rdx, ptr(L("wbuf")));
  a.call(qword(rcx, CONOUT_OUTPUT_STRING));
  a.add(rsp, 40).pop(r12).pop(rbx).ret();
}

/** The text helpers print and the memory line use: com1_puts, widen, append_str, append_dec, append_hex. */
function emitFirstImageText(a: Assembler): void {
  const L = (name: string): Label => a.symbol(name);
  // com1_puts(rsi): polls the line status register before every byte. Clobbers rax, rcx, rdx, rsi.
  {
    a.bind(L("com1_puts"));
    const next = a.here();
    const done = a.label();
    a.movzx(ecx, byte(rsi));
    a.test(cl, cl).jz(done);
    a.mov(dx, COM1_LSR);
    const wait = a.here();
    a.in(al, dx);
    a.test(al, LSR_THR_EMPTY).jz(wait);
    a.mov(dx, COM1).mov(al, cl).out(dx, al);
    a.inc(rsi).jmp(next);
    a.bind(done).ret();
  }

  // widen(rsi → rdi): ASCII to UTF-16LE, without the NUL; rdi ends after the last character. Clobbers rax, rsi.
  {
    a.bind(L("widen"));
    const next = a.here();
    const done = a.label();
    a.movzx(eax, byte(rsi));
    a.test(al, al).jz(done);
    a.mov(word(rdi), ax);
    a.add(rdi, 2).inc(rsi).jmp(next);
    a.bind(done).ret();
  }

  // append_str(rsi → rdi): copies without the NUL. Clobbers rax, rsi.
  {
    a.bind(L("append_str"));
    const next = a.here();
    const done = a.label();
    a.mov(al, byte(rsi));
    a.test(al, al).jz(done);
    a.mov(byte(rdi), al);
    a.inc(rdi).inc(rsi).jmp(next);
    a.bind(done).ret();
  }

  emitAppendDec(a, "append_dec");

  // append_hex(rax → rdi): 16 hex digits. Clobbers rax, rcx, rdx, r8.
  {
    a.bind(L("append_hex"));
    a.mov(ecx, 16).lea(r8, ptr(L("s_hex")));
    const digit = a.here();
    a.rol(rax, 4).mov(edx, eax).and(edx, 15);
    a.mov(dl, byte({ base: r8, index: rdx, scale: 1 }));
    a.mov(byte(rdi), dl).inc(rdi);
    a.dec(ecx).jnz(digit);
    a.ret();
  }
}

/** count_memory: the UEFI memory map read twice and its conventional pages counted. */
function emitCountMemory(a: Assembler): void {
  const L = (name: string): Label => a.symbol(name);
  // count_memory() → rax = EFI status; fills g_conv_pages and g_desc_count.
  // GetMemoryMap twice (size probe, then into a pool buffer with slack for the allocation's own descriptors).
  {
    a.bind(L("count_memory"));
    const fail = a.label();
    a.push(rbx).sub(rsp, 48); // entry ≡ 8, push ≡ 0, 48 keeps ≡ 0; fifth argument at [rsp+32]
    a.mov(rbx, qword(L("g_systab"))).mov(rbx, qword(rbx, ST_BOOT_SERVICES));
    const getMap = (buffer: "none" | "pool"): void => {
      a.lea(rcx, ptr(L("g_map_size")));
      if (buffer === "none") a.xor(edx, edx);
      else a.mov(rdx, qword(L("g_map_buf")));
      a.lea(r8, ptr(L("g_map_key"))).lea(r9, ptr(L("g_desc_size")));
      a.lea(rax, ptr(L("g_desc_ver"))).mov(qword(rsp, 32), rax);
      a.call(qword(rbx, BS_GET_MEMORY_MAP));
    };
    a.mov(qword(L("g_map_size")), 0);
    getMap("none");
    a.mov(rcx, EFI_BUFFER_TOO_SMALL).cmp(rax, rcx);
    const sized = a.label();
    a.je(sized);
    // Any other answer to a zero-sized buffer is a firmware problem; report it (success would also be wrong here).
    a.test(rax, rax).jnz(fail);
    a.mov(rax, EFI_BUFFER_TOO_SMALL).jmp(fail);
    a.bind(sized);
    a.mov(rax, qword(L("g_desc_size"))).shl(rax, 3).add(qword(L("g_map_size")), rax);
    a.mov(ecx, EFI_LOADER_DATA).mov(rdx, qword(L("g_map_size"))).lea(r8, ptr(L("g_map_buf")));
    a.call(qword(rbx, BS_ALLOCATE_POOL));
    a.test(rax, rax).jnz(fail);
    getMap("pool");
    a.test(rax, rax).jnz(fail);
    // count = size / descriptor size; walk with the firmware's stride, not sizeof(EFI_MEMORY_DESCRIPTOR).
    a.mov(rax, qword(L("g_map_size"))).xor(edx, edx).div(qword(L("g_desc_size")));
    a.mov(qword(L("g_desc_count")), rax);
    a.mov(rcx, rax).mov(rsi, qword(L("g_map_buf"))).xor(r8d, r8d).mov(r9, qword(L("g_desc_size")));
    const loop = a.here();
    const done = a.label();
    const skip = a.label();
    a.test(rcx, rcx).jz(done);
    a.cmp(dword(rsi, MD_TYPE), EFI_CONVENTIONAL_MEMORY).jne(skip);
    a.add(r8, qword(rsi, MD_NUMBER_OF_PAGES));
    a.bind(skip);
    a.add(rsi, r9).dec(rcx).jmp(loop);
    a.bind(done);
    a.mov(qword(L("g_conv_pages")), r8);
    a.mov(rcx, qword(L("g_map_buf"))).call(qword(rbx, BS_FREE_POOL));
    a.xor(eax, eax);
    a.bind(fail);
    a.add(rsp, 48).pop(rbx).ret();
  }
}
