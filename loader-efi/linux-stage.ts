// Staging a Linux partition's files while the firmware is up (loader-efi/, EFI side; docs/specs/linux-partition.md
// §7): opens the ESP the image was loaded from (EFI_LOADED_IMAGE_PROTOCOL.DeviceHandle → EFI_SIMPLE_FILE_SYSTEM_PROTOCOL
// → OpenVolume) and reads each file of a load plan into pages allocated for it (AllocateAnyPages, LoaderData), which
// must lie at or above a floor; a short read, a file of another size, or pages below the floor end the boot through
// the caller's error path. Used by linux-direct.ts (the bare-machine test loader) and meant for the ultravisor's
// loader, whose partition start copies the staged pages into the allotment. Win64 calls: the caller keeps rsp
// 16-aligned with 32 bytes of shadow space and a fifth-argument slot at [rsp+32].
import { type Assembler, type Label, ecx, edx, ptr, qword, r8, r9, rax, rcx, rdx, rsp } from "../toolchain/x64/index.ts";

const BS = { allocatePages: 40, handleProtocol: 152 } as const;
const LI_DEVICE_HANDLE = 24;
/** EFI_LOADED_IMAGE_PROTOCOL.ImageBase. */
export const LI_IMAGE_BASE = 64;
const SFS_OPEN_VOLUME = 8;
const FILE = { open: 8, close: 16, read: 32 } as const;
const ALLOCATE_ANY = 0;
const LOADER_DATA = 2;
const MODE_READ = 1;
/** EFI_LOADED_IMAGE_PROTOCOL_GUID 5b1b31a1-9562-11d2-8e3f-00a0c969723b, in memory order (UEFI 2.10, 9.1). */
export const LOADED_IMAGE_GUID = [0xa1, 0x31, 0x1b, 0x5b, 0x62, 0x95, 0xd2, 0x11, 0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b];
/** EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID 964e5b22-6459-11d2-8e39-00a0c969723b, in memory order. */
const SFS_GUID = [0x22, 0x5b, 0x4e, 0x96, 0x59, 0x64, 0xd2, 0x11, 0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b];

export interface StageOptions {
  /** qword symbols the caller fills before: the image handle and the boot services table. */
  image: Label;
  bs: Label;
  /** ESP path and exact size of each file, in order. */
  files: ReadonlyArray<{ path: string; size: number }>;
  /** Staging pages must start at or above this physical address. */
  floor: number;
  /** Emits code that reports `text` as an error and leaves; it must not fall through. */
  error: (a: Assembler, text: string) => void;
  /** Prefix of the symbols defined here: `${prefix}stage${i}` holds file i's staging address, `${prefix}li` the loaded image. */
  prefix: string;
}

/** A UCS-2 path with backslashes, NUL-terminated, as EFI_FILE_PROTOCOL.Open takes it. */
export function ucs2(path: string): number[] {
  const out: number[] = [];
  for (const ch of path.replace(/\//g, "\\")) {
    const c = ch.charCodeAt(0);
    if (c > 0x7e || c < 0x20) throw new Error(`ESP path ${path}: printable ASCII only`);
    out.push(c & 0xff, c >> 8);
  }
  return [...out, 0, 0];
}

/** Emits the data and the code that stage `o.files`; falls through when every file is staged. */
export function emitStageFiles(a: Assembler, o: StageOptions): void {
  const L = (n: string): Label => a.symbol(`${o.prefix}${n}`);
  a.section(".bss");
  a.align(8);
  for (const n of ["li", "sfs", "root", "fh", "size", ...o.files.map((_, i) => `stage${i}`)]) {
    a.bind(L(n));
    a.zero(8);
  }
  a.section(".rdata");
  a.bind(L("li_guid"));
  a.db(...LOADED_IMAGE_GUID);
  a.bind(L("sfs_guid"));
  a.db(...SFS_GUID);
  o.files.forEach((f, i) => {
    a.align(2);
    a.bind(L(`path${i}`));
    a.db(...ucs2(f.path));
  });
  a.section(".text");

  const check = (what: string): void => {
    const ok = a.label();
    a.test(rax, rax).jz(ok);
    o.error(a, what);
    a.bind(ok);
  };
  // The ESP this image came from: LoadedImage.DeviceHandle → SimpleFileSystem → its root directory.
  a.mov(rcx, qword(o.image)).lea(rdx, ptr(L("li_guid"))).lea(r8, ptr(L("li")));
  a.mov(rax, qword(o.bs)).call(qword(rax, BS.handleProtocol));
  check("HandleProtocol(LoadedImage) failed");
  a.mov(rax, qword(L("li"))).mov(rcx, qword(rax, LI_DEVICE_HANDLE)).lea(rdx, ptr(L("sfs_guid"))).lea(r8, ptr(L("sfs")));
  a.mov(rax, qword(o.bs)).call(qword(rax, BS.handleProtocol));
  check("HandleProtocol(SimpleFileSystem) on the boot device failed");
  a.mov(rcx, qword(L("sfs"))).lea(rdx, ptr(L("root"))).call(qword(rcx, SFS_OPEN_VOLUME));
  check("OpenVolume failed");
  o.files.forEach((f, i) => {
    const pages = Math.ceil(f.size / 4096);
    a.mov(ecx, ALLOCATE_ANY).mov(edx, LOADER_DATA).mov(r8, pages).lea(r9, ptr(L(`stage${i}`)));
    a.mov(rax, qword(o.bs)).call(qword(rax, BS.allocatePages));
    check(`AllocatePages(${pages} pages) for ${f.path} failed`);
    const high = a.label();
    a.mov(rax, qword(L(`stage${i}`))).mov(rcx, o.floor).cmp(rax, rcx).jae(high);
    o.error(a, `the staging pages of ${f.path} are below 0x${o.floor.toString(16)}`);
    a.bind(high);
    a.mov(rcx, qword(L("root"))).lea(rdx, ptr(L("fh"))).lea(r8, ptr(L(`path${i}`))).mov(r9, MODE_READ);
    a.mov(qword(rsp, 32), 0);
    a.call(qword(rcx, FILE.open));
    check(`cannot open ${f.path} on the ESP`);
    a.mov(qword(L("size")), f.size);
    a.mov(rcx, qword(L("fh"))).lea(rdx, ptr(L("size"))).mov(r8, qword(L(`stage${i}`))).call(qword(rcx, FILE.read));
    check(`reading ${f.path} failed`);
    a.mov(rax, qword(L("size"))).sub(rax, f.size);
    check(`${f.path} is not ${f.size} bytes`);
    a.mov(rcx, qword(L("fh"))).call(qword(rcx, FILE.close));
  });
}
