// `uvt asm`: assembles a GNU `.intel_syntax noprefix` source with the typed x86-64 assembler (toolchain/x64) into a
// flat binary, a hex dump or a listing. The debugging door into the assembler and the text side of its oracle tests.
import { readFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";
import { flatten } from "../../toolchain/x64/flat.ts";
import { listing } from "../../toolchain/x64/listing.ts";
import { AsmSyntaxError, parseAsm } from "../../toolchain/x64/parse.ts";
import { writeFileAtomic } from "../../image/write-atomic.ts";

const help = `Usage: uvt asm FILE [-o OUT] [--listing] [--format bin|hex] [--base ADDR]

Assembles FILE (GNU .intel_syntax noprefix dialect: one instruction per line, labels, # or ; comments,
db/dw/dd/dq and .byte/.word/.long/.quad/.ascii/.asciz/.zero, .align, .text/.data/.section, byte/word/dword/qword ptr)
with the typed x86-64 assembler. Sections are placed one after another from the base address and linked.
An error in FILE is one line, FILE:LINE:COL: statement: what is wrong, and exit status 2; nothing is written.

Options:
  -o, --out OUT      where to write (default: FILE with .bin for --format bin; standard output for hex and listings)
  --format bin|hex   flat binary (default) or hex bytes, 16 per line
  --listing          print address, bytes and source line for every line that produced output
  --base ADDR        load address of the first section (default 0), e.g. 0x7c00
  --help             this text

Examples:
  uvt asm examples/asm/sum.s -o sum.bin
  uvt asm examples/asm/sum.s --listing`;

function hexDump(bytes: Uint8Array): string {
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) rows.push(Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, "0")).join(" "));
  return rows.join("\n") + (rows.length ? "\n" : "");
}

const command: Command = {
  name: "asm",
  summary: "assemble Intel-syntax x86-64 source to a flat binary, hex or a listing",
  help,
  async run(argv) {
    const args = parseArgs(argv, { values: ["out:o", "format", "base"], booleans: ["listing"] });
    if (args.positionals.length !== 1) throw new UsageError(`expected one source FILE, got ${args.positionals.length} (see uvt asm --help)`);
    const file = args.positionals[0]!;
    const format = args.flags.get("format") ?? "bin";
    if (format !== "bin" && format !== "hex") throw new UsageError(`--format must be bin or hex, not '${format}'`);
    let base = 0n;
    const b = args.flags.get("base");
    if (b !== undefined) {
      try {
        base = BigInt(b);
      } catch {
        throw new UsageError(`--base: '${b}' is not a number (write e.g. 0x7c00)`);
      }
      if (base < 0n) throw new UsageError("--base must not be negative");
    }
    let source: string;
    try {
      source = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
    }
    const wantListing = args.bools.has("listing");
    let text: string | null = null;
    let bytes: Uint8Array;
    try {
      const r = parseAsm(source, file, { spans: wantListing });
      const obj = r.asm.finish();
      const image = flatten(obj, base);
      bytes = image.bytes;
      if (wantListing) text = listing(r.asm, r.spans, image, base);
      else if (format === "hex") text = hexDump(bytes);
    } catch (e) {
      if (e instanceof AsmSyntaxError) {
        console.error(e.message);
        return 2;
      }
      if (e instanceof Error) {
        console.error(`${file}: ${e.message}`);
        return 2;
      }
      throw e;
    }
    const out = args.flags.get("out") ?? (text === null ? join(dirname(file), `${basename(file, extname(file))}.bin`) : undefined);
    if (out === undefined) process.stdout.write(text!);
    else {
      try {
        writeFileAtomic(out, text ?? bytes);
      } catch (e) {
        throw new UsageError(`${(e as Error).message} (pass another -o)`);
      }
      if (text === null) console.error(`uvt asm: wrote ${bytes.length} bytes to ${out}`);
    }
    return 0;
  },
};

export default command;
