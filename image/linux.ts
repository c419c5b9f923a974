// What the image carries for a Linux partition (image/, docs/specs/linux-partition.md §7): three files on the ESP,
// `\LINUX\<NAME>\KERNEL` (the protected-mode kernel), `INITRD` and `LOWPAGES` (guest-physical 0x1000–0x9FFF: GDT,
// zero page, command line, page tables), and the load plan the loader follows to copy them into the partition's
// allotment and the monitor uses to start it (addresses are partition-relative). The FAT itself is written by the
// disk writer through efi-image.ts (extraFiles); nothing here writes FAT. The loader stages the files through the
// firmware's file protocol (loader-efi/linux-stage.ts) and the lead monitor copies them (monitor-gen/svm/linux.ts).
import { buildLowPages } from "../toolchain/linux/boot-params.ts";
import { appendsTscArg, LOW } from "../toolchain/linux/layout.ts";
import type { LinuxInputs } from "../definition/linux.ts";

/** The ESP folder of a partition's Linux files. */
export const linuxEspDir = (name: string): string => `/LINUX/${name}`;

export interface LinuxFile {
  /** ESP path. */
  path: string;
  data: Uint8Array;
  /** Guest-physical address (partition-relative) the loader copies the file to. */
  gpa: number;
}

/** The loader's and the monitor's view of one Linux partition. */
export interface LinuxLoadPlan {
  name: string;
  /** Bytes of guest-physical memory from 0: the allotment the database must give the partition. */
  memory: number;
  files: LinuxFile[];
  /** The 64-bit entry state of §6: rip, rsi (zero page), rsp (top of page 0), cr3, gdtr base. */
  entry: { rip: number; rsi: number; rsp: number; cr3: number; gdt: number };
  /** Guest-physical address of the command line's NUL, where the monitor appends ` tsc_early_khz=N`; undefined when
   * the definition's command line names tsc_early_khz itself (docs/specs/linux-pc.md §8). */
  tscArgAt?: number;
}

export function linuxLoadPlan(name: string, l: LinuxInputs): LinuxLoadPlan {
  const dir = linuxEspDir(name);
  return {
    name,
    memory: l.layout.memory,
    files: [
      { path: `${dir}/LOWPAGES`, data: buildLowPages(l.kernel, l.layout, l.cmdline), gpa: LOW.gdt },
      { path: `${dir}/KERNEL`, data: l.kernel.kernel, gpa: l.layout.kernelAddr },
      { path: `${dir}/INITRD`, data: l.initrd, gpa: l.layout.initrdAddr },
    ],
    entry: { rip: l.layout.entry, rsi: LOW.zeroPage, rsp: LOW.stackTop, cr3: LOW.pml4, gdt: LOW.gdt },
    ...(appendsTscArg(l.cmdline) ? { tscArgAt: LOW.cmdline + l.layout.cmdlineLength } : {}),
  };
}

/** The ESP files of every Linux partition; two names that FAT would fold together are refused. */
export function linuxEspFiles(plans: readonly LinuxLoadPlan[]): Array<{ path: string; data: Uint8Array }> {
  const seen = new Map<string, string>();
  for (const p of plans) {
    const folded = p.name.toUpperCase();
    const other = seen.get(folded);
    if (other !== undefined) throw new Error(`Linux partitions '${other}' and '${p.name}' would share the ESP folder ${linuxEspDir(folded)} (FAT ignores case): rename one`);
    seen.set(folded, p.name);
  }
  return plans.flatMap((p) => p.files.map((f) => ({ path: f.path, data: f.data })));
}
