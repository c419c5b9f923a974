// GNU objdump as an oracle for PE files: runs `objdump -p` / `-h` / `-s` on a file and parses the parts the tests
// compare with what write.ts was asked to produce and what read.ts decodes. Test support only; binutils reads
// pei-x86-64 independently of our code, which is the point.
import { execFileSync } from "node:child_process";

export interface ObjdumpHeaders {
  /** Optional-header fields by objdump's names (Magic, ImageBase, …), as the numbers it printed. */
  fields: Map<string, bigint>;
  /** COFF characteristic flag words objdump listed ("executable", "large address aware", …). */
  flags: string[];
  characteristics: number;
  /** Data directory entries: [rva, size] by index. */
  directories: [number, number][];
  /** Base relocations as objdump interpreted .reloc: page, type name and RVA. */
  relocations: { rva: number; type: string }[];
}

export function objdumpPrivate(path: string): ObjdumpHeaders {
  const out = execFileSync("objdump", ["-p", path], { encoding: "utf8" });
  const fields = new Map<string, bigint>();
  const flags: string[] = [];
  const directories: [number, number][] = [];
  const relocations: { rva: number; type: string }[] = [];
  let characteristics = -1;
  let inFlags = false;
  for (const line of out.split("\n")) {
    const ch = /^Characteristics 0x([0-9a-f]+)/.exec(line);
    if (ch) {
      characteristics = parseInt(ch[1]!, 16);
      inFlags = true;
      continue;
    }
    if (inFlags) {
      if (line.startsWith("\t")) {
        flags.push(line.trim());
        continue;
      }
      inFlags = false;
    }
    const dir = /^Entry ([0-9a-f]) ([0-9a-f]+) ([0-9a-f]+)/.exec(line);
    if (dir) {
      directories[parseInt(dir[1]!, 16)] = [parseInt(dir[2]!, 16), parseInt(dir[3]!, 16)];
      continue;
    }
    const rel = /^\treloc\s+\d+ offset\s+[0-9a-f]+ \[([0-9a-f]+)\] (\w+)/.exec(line);
    if (rel) {
      relocations.push({ rva: parseInt(rel[1]!, 16), type: rel[2]! });
      continue;
    }
    const f = /^([A-Za-z0-9]+)\s+([0-9a-f]+)(\s|$)/.exec(line);
    if (f && !fields.has(f[1]!)) fields.set(f[1]!, BigInt(`0x${f[2]!}`));
  }
  return { fields, flags, characteristics, directories, relocations };
}

export interface ObjdumpSection {
  name: string;
  size: number;
  vma: bigint;
  fileOffset: number;
  flags: string[];
}

export function objdumpSections(path: string): ObjdumpSection[] {
  const lines = execFileSync("objdump", ["-h", path], { encoding: "utf8" }).split("\n");
  const out: ObjdumpSection[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+2\*\*\d+/.exec(lines[i]!);
    if (!m) continue;
    out.push({
      name: m[1]!,
      size: parseInt(m[2]!, 16),
      vma: BigInt(`0x${m[3]!}`),
      fileOffset: parseInt(m[4]!, 16),
      flags: (lines[i + 1] ?? "").trim().split(/,\s*/),
    });
  }
  return out;
}

/** Section contents as `objdump -s -j NAME` prints them. */
export function objdumpContents(path: string, section: string): Uint8Array {
  const out = execFileSync("objdump", ["-s", "-j", section, path], { encoding: "utf8" });
  const bytes: number[] = [];
  for (const line of out.split("\n")) {
    const m = /^ [0-9a-f]+ /.exec(line);
    if (!m) continue;
    // Four groups of up to 8 hex digits fill a fixed 35-column field; the ASCII rendering follows it.
    const hexPart = line.slice(m[0].length, m[0].length + 35).trim();
    for (const group of hexPart.split(/\s+/))
      for (let i = 0; i < group.length; i += 2) bytes.push(parseInt(group.slice(i, i + 2), 16));
  }
  return Uint8Array.from(bytes);
}
