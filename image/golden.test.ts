// Golden listings of the ring-0 generators: the EFI loader (loader-efi/ultravisor.ts emitLoader), the ring-3
// partitions' monitor (monitor-gen/entry.ts emitMonitor), the lead monitor (monitor-gen/lead.ts emitLead) and the SVM
// monitor with a Linux partition's load (monitor-gen/svm/monitor.ts emitSvm), each
// generated alone into its own object with the default image's parameters, its code disassembled by GNU objdump with
// the generator's symbols and relocations written in, its data symbols listed, and compared with image/golden/*.golden.
// A change to a generator shows as a diff a reviewer can read; bless it with UPDATE_GOLDEN=1, as for the AOT backend's
// listings (toolchain/aot/golden.test.ts). Lives in image/ because the plans it feeds the generators are the image's.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Assembler } from "../toolchain/x64/index.ts";
import type { ObjectFile } from "../toolchain/x64/object.ts";
import { emitLoader } from "../loader-efi/ultravisor.ts";
import { emitMonitor } from "../monitor-gen/entry.ts";
import { emitLead } from "../monitor-gen/lead.ts";
import { emitSvm } from "../monitor-gen/svm/monitor.ts";
import { CORE_DB_PLAN, CORE_LOADER_PLAN } from "./ultravisor.ts";

const DIR = join(import.meta.dirname, "golden");
const BLESS = process.env.UPDATE_GOLDEN === "1";

interface Case {
  name: string;
  what: string;
  emit(a: Assembler): void;
}

// The default image's generator inputs (examples/ultravisor.yaml: quantum of 10 ticks, no finite run, exit code 0x31,
// with core), with the I/O partition's emit range as two fixed addresses: the listing is of the generator, not of a host.
const CASES: Case[] = [
  { name: "loader", what: "the EFI loader with core (emitLoader, CORE_LOADER_PLAN)", emit: (a) => emitLoader(a, CORE_LOADER_PLAN) },
  {
    name: "monitor", what: "the ring-3 partitions' monitor (emitMonitor): entry stubs, hypercalls, timer quanta, containment",
    emit: (a) => emitMonitor(a, { quantumTicks: 10, runQuanta: 0, exitCode: 0x31, ioEmit: { lo: 0x40_1000n, hi: 0x40_1100n }, probes: false }),
  },
  {
    name: "lead", what: "the lead monitor with core (emitLead): partition set-up, channels, database checks, start",
    emit: (a) => emitLead(a, { quantumTicks: 10, withCore: true, ui: CORE_DB_PLAN.words[1]! }),
  },
  {
    name: "svm", what: "the SVM monitor (emitSvm) with one Linux partition's load (linux_load): VMRUN loop, exits, the PC's devices, NPF policy",
    emit: (a) => emitSvm(a, [{
      record: 5, memPages: 0x8000,
      files: [{ stage: "linux0$stage0", size: 0x9000, gpa: 0x1000 }, { stage: "linux0$stage1", size: 0x7a_0000, gpa: 0x100_0000 }, { stage: "linux0$stage2", size: 0x10_0000, gpa: 0x7f0_0000 }],
      tscArgAt: 0x3020, entry: { rip: 0x100_0200, rsi: 0x2000, rsp: 0x1000, cr3: 0x4000, gdt: 0x1000 },
    }]),
  },
];

/** objdump's Intel listing of `code`: one line per instruction, "offset: bytes mnemonic operands". */
function disassemble(code: Uint8Array): Array<{ off: number; bytes: number; text: string }> {
  const dir = mkdtempSync(join(tmpdir(), "ring0-golden-"));
  try {
    const bin = join(dir, "f.bin");
    writeFileSync(bin, code);
    const out = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", "--insn-width=16", bin], { encoding: "utf8", maxBuffer: 1 << 28 });
    return out.split("\n").flatMap((l) => {
      const m = /^\s+([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t?(.*)$/.exec(l);
      if (!m) return [];
      const bytes = m[2]!.trim().split(" ").length;
      return [{ off: parseInt(m[1]!, 16), bytes, text: `${m[1]}: ${m[2]!.trim()} ${m[3]!.replace(/\s+/g, " ").trim()}`.trim() }];
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The object as text: every code section disassembled with its symbols and relocations, then the data symbols. */
function listing(obj: ObjectFile): string {
  const out: string[] = [];
  obj.sections.forEach((s, i) => {
    const syms = obj.symbols.filter((x) => x.section === i).sort((x, y) => x.offset - y.offset || x.name.localeCompare(y.name));
    const relocs = obj.relocations.filter((r) => r.section === i);
    if (s.kind === "text") {
      out.push(`== ${s.name} (${s.bytes.length} bytes)`);
      let k = 0;
      for (const ins of disassemble(s.bytes)) {
        while (k < syms.length && syms[k]!.offset <= ins.off) out.push(`${syms[k++]!.name}:`);
        const here = relocs.filter((r) => r.offset >= ins.off && r.offset < ins.off + ins.bytes);
        out.push(`  ${ins.text}${here.map((r) => ` ; ${r.kind} ${r.target}${r.addend ? `${r.addend > 0 ? "+" : ""}${r.addend}` : ""}`).join("")}`);
      }
      while (k < syms.length) out.push(`${syms[k++]!.name}:`);
    } else {
      out.push(`== ${s.name} (${s.kind}, ${s.bytes.length} bytes)`);
      for (const x of syms) out.push(`  ${x.offset.toString(16).padStart(6, "0")} ${x.name}`);
      if (relocs.length) out.push(`  relocations: ${relocs.map((r) => `${r.offset.toString(16)} ${r.kind} ${r.target}`).join(", ")}`);
    }
  });
  return out.join("\n");
}

/**
 * String literals are named by a per-process counter (monitor-gen/console.ts k_str_N), so their numbers depend on what
 * was generated before in the process: renumbered here by first appearance, the listing is the generator's alone.
 */
function renumberStrings(text: string): string {
  const seen = new Map<string, string>();
  return text.replace(/\b([a-z]+_str)_(\d+)\b/g, (all, stem: string) => {
    if (!seen.has(all)) seen.set(all, `${stem}_${seen.size}`);
    return seen.get(all)!;
  });
}

describe("golden listings of the ring-0 generators", () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.what}`, () => {
      const a = new Assembler();
      c.emit(a);
      const body = renumberStrings(listing(a.finish()));
      expect(body.length, "a listing with code").toBeGreaterThan(1000);
      const text = [
        `# Ring-0 golden listing: ${c.name} — generated by image/golden.test.ts (objdump -M intel, unlinked: relocations shown)`,
        `# ${c.what}`,
        `# Bless: UPDATE_GOLDEN=1 npx vitest run image/golden.test.ts`,
        body,
        "",
      ].join("\n");
      const path = join(DIR, `${c.name}.golden`);
      let stored: string | null = null;
      try {
        stored = readFileSync(path, "utf8");
      } catch {
        stored = null;
      }
      if (BLESS) {
        writeFileSync(`${path}.tmp`, text);
        renameSync(`${path}.tmp`, path);
        return;
      }
      if (stored === null) throw new Error(`${path} is missing: run with UPDATE_GOLDEN=1 to create it`);
      expect(text).toBe(stored);
    });
  }
});
