// `npm run mutate [-- NAME…] [--all] [--list]`: the mutation check of the suite (issue #13). Applies one-line
// mutations to the code under test, one at a time, runs the tests that claim the property each one breaks, and
// reports which mutations survive (no test failed). Not part of ./scripts/test: the QEMU mutations take minutes each.
// Patch and restore in this checkout: the original text is also saved in out/mutate/restore.json before a file is
// touched, so an interrupted run (even kill -9) is undone by the next run before it starts; SIGINT/SIGTERM restore
// at once. A mutation whose text no longer matches exactly once is an error (the list must follow the code).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const outDir = join(root, "out", "mutate");
const restoreFile = join(outDir, "restore.json");

/** A test run: vitest files and an optional -t name filter. */
interface TestRun {
  files: string[];
  filter?: string;
}

interface Mutation {
  name: string;
  /** What the mutation breaks, as the audit of issue #13 put it. */
  what: string;
  file: string;
  from: string;
  to: string;
  /** The tests that claim the property, cheapest first; the first that fails kills the mutation. */
  tests: TestRun[];
}

/** The encoder's claims, one file per run so the table names the one that failed (GNU as first, then running the code). */
const GAS: TestRun[] = [{ files: ["toolchain/x64/encoder.gas.test.ts"] }, { files: ["toolchain/x64/parse.gas.test.ts"] }, { files: ["toolchain/x64/native.test.ts"] }];
const FUZZ: TestRun = { files: ["toolchain/aot/differential.test.ts"], filter: "random programs" };
const HW_DB: TestRun = { files: ["test/hw/ultravisor.test.ts"], filter: "boots the Figure 1|builds the resource database" };
const HW_CONTAIN: TestRun = { files: ["test/hw/ultravisor.test.ts"], filter: "stops a guest|normal path" };

export const MUTATIONS: Mutation[] = [
  // The encoder (toolchain/x64): GNU as is the oracle.
  { name: "bsr-opcode", what: "bsr encoded as 0f bc (bsf)", file: "toolchain/x64/forms.ts", from: `bsr: ["0f bd /r : rv, rmv"]`, to: `bsr: ["0f bc /r : rv, rmv"]`, tests: GAS },
  {
    name: "rbp-mod00", what: "rbp/r13 base without displacement encoded as mod 00 (RIP-relative)", file: "toolchain/x64/encoder.ts",
    from: "const mod = disp === 0 && base !== 5 ? 0 :", to: "const mod = disp === 0 ? 0 :", tests: GAS,
  },
  {
    name: "disp8-128", what: "disp8 range widened to 128", file: "toolchain/x64/encoder.ts",
    from: "disp >= -128 && disp <= 127 ? 1 : 2", to: "disp >= -128 && disp <= 128 ? 1 : 2", tests: GAS,
  },
  {
    name: "short-branch-126", what: "short-branch limit narrowed to 126", file: "toolchain/x64/assembler.ts",
    from: "if (rel < -128 || rel > 127) {", to: "if (rel < -128 || rel > 126) {", tests: [...GAS, { files: ["toolchain/x64/assembler.test.ts"] }, { files: ["toolchain/x64/link.gas.test.ts"] }],
  },
  {
    name: "bench-switch-constant", what: "a benchmark constant miscounted (one instruction more on the switch path)", file: "monitor-gen/entry.ts",
    from: "export const SWITCH_PATH_OUTSIDE_PROBES = 3 + 15 + 1 + 6 + 1 + 1 + 15 + 1 + 1;", to: "export const SWITCH_PATH_OUTSIDE_PROBES = 3 + 15 + 1 + 6 + 1 + 1 + 15 + 1 + 2;",
    tests: [{ files: ["bench/constants.test.ts"] }],
  },
  // The AOT compiler: the differential fuzzer against V8 claims these.
  { name: "bounds-late", what: "memory bounds end one byte late", file: "toolchain/aot/masm.ts", from: "    const end = offset + bytes;", to: "    const end = offset + bytes - 1;", tests: [FUZZ] },
  { name: "fused-negation", what: "negated condition of a fused compare-and-branch (lt_s → not gt_s)", file: "toolchain/aot/visitor.ts", from: `l: "ge", ge: "l"`, to: `l: "g", ge: "l"`, tests: [FUZZ] },
  { name: "ge_u-cc", what: "i32.ge_u emitted with the wrong condition code (above instead of above-or-equal)", file: "toolchain/aot/visitor.ts", from: `8: "ge", 9: "ae",`, to: `8: "ge", 9: "a",`, tests: [FUZZ] },
  { name: "int-min-div", what: "the INT_MIN / -1 trap removed", file: "toolchain/aot/masm.ts", from: "        a.je(this.trap(Trap.IntOverflow));", to: "        // (trap removed)", tests: [FUZZ] },
  // Core's logic as the simulator drives it: the spec's worked example claims these.
  {
    // The resource service's destroy builder (core AssemblyScript since ADR 0017, run by V8 for the simulator).
    name: "destroy-keeps-descriptor", what: "destroy leaves the descriptor page with the ultravisor", file: "core/boot/assembly/resource-service.ts",
    from: "changeOwner(dAt, dMap, dIdx, dIdx, ultra, avail);", to: "changeOwner(dAt, dMap, dIdx, dIdx, ultra, ultra);",
    tests: [{ files: ["sim/figure8.test.ts", "sim/resource-service.test.ts"] }],
  },
  { name: "end-transaction", what: "the printer writes End Transaction", file: "core/notation.ts", from: `...tx.ops.map(formatOp), "Commit Transaction"]`, to: `...tx.ops.map(formatOp), "End Transaction"]`, tests: [{ files: ["sim/figure8.test.ts"] }] },
  // The machine: the QEMU tests claim these.
  {
    name: "boot-reserved-available", what: "the boot partition marks firmware-reserved memory Available", file: "core/boot/assembly/boot.ts",
    from: "markRange(base, end, missing, usable(type) ? avail : boot);", to: "markRange(base, end, missing, avail);", tests: [HW_DB],
  },
  {
    name: "loader-ram-top", what: "the loader overstates its RAM top by 8 MiB", file: "loader-efi/ultravisor.ts",
    from: `    a.mov(qword(L("g_ram_top")), r15);`, to: `    a.mov(rcx, r15).add(rcx, 0x800000).mov(qword(L("g_ram_top")), rcx);`, tests: [HW_DB],
  },
  {
    name: "guest-iopl3", what: "guests run with IOPL=3", file: "monitor-gen/lead.ts",
    from: "a.mov(qword(r13, SAVED_FRAME.cs), SEL.ucode).mov(qword(r13, SAVED_FRAME.rflags), 0x202);", to: "a.mov(qword(r13, SAVED_FRAME.cs), SEL.ucode).mov(qword(r13, SAVED_FRAME.rflags), 0x3202);", tests: [HW_CONTAIN],
  },
  {
    name: "fxrstor-skipped", what: "on a processor without XSAVE, a partition's x87/SSE state is saved but never restored", file: "monitor-gen/cpu.ts",
    from: "a.fxrstor64(ptr(rdi, STATE_PAGE.xsave));", to: "a.nop();", tests: [{ files: ["test/hw/isolation-fxsave.test.ts"] }],
  },
  // Linux partitions (docs/specs/linux-partition.md): the initramfs writer against GNU cpio, the zero page against
  // gcc's offsetof and the e820 rule, the bzImage checks against corrupted copies of Debian's kernel.
  {
    name: "cpio-name-pad", what: "cpio name padding forgets the NUL", file: "toolchain/initramfs/cpio.ts",
    from: "const namePad = pad4(head.length + name.length + 1);", to: "const namePad = pad4(head.length + name.length);",
    tests: [{ files: ["toolchain/initramfs/initramfs.test.ts"] }],
  },
  {
    name: "cpio-rdev-swap", what: "device numbers written minor first", file: "toolchain/initramfs/cpio.ts",
    from: "f.rmaj, f.rmin, name.length + 1", to: "f.rmin, f.rmaj, name.length + 1", tests: [{ files: ["toolchain/initramfs/initramfs.test.ts"] }],
  },
  {
    name: "e820-hole-ram", what: "the legacy hole described as RAM (the map no longer the partition's usable memory)", file: "toolchain/linux/boot-params.ts",
    from: "size: LEGACY_HOLE.end - LEGACY_HOLE.start, type: E820_RESERVED", to: "size: LEGACY_HOLE.end - LEGACY_HOLE.start, type: E820_RAM",
    tests: [{ files: ["toolchain/linux/boot-params.test.ts"] }, { files: ["test/hw/linux-direct.test.ts"] }],
  },
  {
    name: "zero-page-cmdline", what: "cmd_line_ptr points at the zero page", file: "toolchain/linux/boot-params.ts",
    from: "v.setUint32(HDR.cmdLinePtr, LOW.cmdline, true);", to: "v.setUint32(HDR.cmdLinePtr, LOW.zeroPage, true);",
    tests: [{ files: ["toolchain/linux/boot-params.test.ts"] }, { files: ["test/hw/linux-direct.test.ts"] }],
  },
  {
    name: "bzimage-xlf", what: "a kernel without XLF_KERNEL_64 accepted", file: "toolchain/linux/bzimage.ts",
    from: "if (!(xloadflags & XLF_KERNEL_64))", to: "if (!(xloadflags & 0x7f))", tests: [{ files: ["toolchain/linux/bzimage.test.ts"] }],
  },
  {
    name: "linux-fit", what: "the initrd allowed to overlap the kernel's init_size", file: "toolchain/linux/layout.ts",
    from: "initrdAddr < kernelEnd", to: "initrdAddr < k.prefAddress",
    tests: [{ files: ["toolchain/linux/boot-params.test.ts"] }, { files: ["definition/linux.test.ts"] }],
  },
];

/** Original texts of files being mutated, saved before any write: path → text. */
type Saved = Record<string, string>;

function restoreAll(): void {
  if (!existsSync(restoreFile)) return;
  const saved = JSON.parse(readFileSync(restoreFile, "utf8")) as Saved;
  for (const [f, text] of Object.entries(saved)) writeFileSync(join(root, f), text);
  rmSync(restoreFile);
}

function apply(m: Mutation): void {
  const path = join(root, m.file);
  const text = readFileSync(path, "utf8");
  const n = text.split(m.from).length - 1;
  if (n !== 1) throw new Error(`mutation ${m.name}: its text occurs ${n} times in ${m.file} (must be once): update the list`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(restoreFile, JSON.stringify({ [m.file]: text }));
  writeFileSync(path, text.replace(m.from, () => m.to));
}

function run(t: TestRun, log: string): Promise<{ failed: boolean; out: string; seconds: number }> {
  const args = ["vitest", "run", ...t.files, ...(t.filter ? ["-t", t.filter] : [])];
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn("npx", args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" } });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      writeFileSync(log, `$ npx ${args.join(" ")}\n${out}`);
      resolve({ failed: code !== 0, out, seconds: (Date.now() - start) / 1000 });
    });
  });
}

interface Row {
  name: string;
  what: string;
  killedBy: string | null;
  seconds: number;
  note: string;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("--list")) {
    console.log("Usage: npm run mutate -- [NAME…] [--all]\n  --all: run every claiming test of a mutation, not only up to the first that fails\nMutations:");
    for (const m of MUTATIONS) console.log(`  ${m.name.padEnd(26)} ${m.what} (${m.file})`);
    return 0;
  }
  restoreAll(); // an earlier run that was killed
  const names = argv.filter((a) => !a.startsWith("--"));
  const unknown = names.filter((n) => !MUTATIONS.some((m) => m.name === n));
  if (unknown.length) throw new Error(`unknown mutation(s): ${unknown.join(", ")} (npm run mutate -- --list)`);
  const chosen = names.length ? MUTATIONS.filter((m) => names.includes(m.name)) : MUTATIONS;
  const all = argv.includes("--all");
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      restoreAll();
      console.error(`\nmutate: ${sig}: sources restored`);
      process.exit(130);
    });
  }
  mkdirSync(outDir, { recursive: true });
  const rows: Row[] = [];
  for (const m of chosen) {
    process.stdout.write(`${m.name}: `);
    let row: Row = { name: m.name, what: m.what, killedBy: null, seconds: 0, note: "" };
    try {
      apply(m);
      for (const [i, t] of m.tests.entries()) {
        const r = await run(t, join(outDir, `${m.name}.${i}.log`));
        row.seconds += r.seconds;
        const seed = /AOT differential seed: (\d+)/.exec(r.out)?.[1];
        if (seed) row.note = `seed ${seed}`;
        if (r.failed) {
          // The files vitest reports as failed (else the whole run, e.g. when nothing could be collected).
          const plain = r.out.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
          const failed = [...new Set([...plain.matchAll(/^\s*FAIL\s+(\S+\.test\.ts)/gm)].map((x) => x[1]!))];
          const label = `${failed.length ? failed.join(" ") : t.files.join(" ")}${t.filter ? ` -t "${t.filter}"` : ""}`;
          row.killedBy ??= label;
          if (!all) break;
        }
      }
    } finally {
      restoreAll();
    }
    row = { ...row, seconds: Math.round(row.seconds) };
    rows.push(row);
    console.log(row.killedBy ? `killed by ${row.killedBy} (${row.seconds} s${row.note ? `, ${row.note}` : ""})` : `SURVIVED (${row.seconds} s)`);
  }
  console.log("\n| mutation | what it breaks | result | time |\n| --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.name} | ${r.what} | ${r.killedBy ? `killed by ${r.killedBy}${r.note ? ` (${r.note})` : ""}` : "**survived**"} | ${r.seconds} s |`);
  const survivors = rows.filter((r) => !r.killedBy);
  console.log(survivors.length ? `\n${survivors.length} of ${rows.length} mutations survived: ${survivors.map((r) => r.name).join(", ")}` : `\nno survivor: all ${rows.length} mutations killed (logs in out/mutate/)`);
  return survivors.length ? 1 : 0;
}

if (process.argv[1]?.endsWith("mutate.ts")) main().then((code) => process.exit(code), (e: unknown) => {
  restoreAll();
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
});
