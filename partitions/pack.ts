// Turns an assembled partition program into its window blob (docs/specs/image-layout.md): the info page, then the
// program's sections linked at their window addresses (.text, .rdata, .data, .bss in that order, the first section
// after the code on a page boundary so the monitor can map code pages alone executable), zero-filled up to the stack. The loader copies the blob into the partition's own pages and maps them at the window; nothing in it is
// relocated at boot.
import { Assembler } from "../toolchain/x64/index.ts";
import { link } from "../toolchain/x64/link.ts";
import type { ObjectFile, SectionKind } from "../toolchain/x64/object.ts";
import { INFO, PAGE, WINDOW_LAYOUT, WINDOW } from "../monitor-gen/layout.ts";
import { PROGRAM_ENTRY } from "./programs.ts";

export interface SlotInfo {
  role: "client" | "server";
  /** The partition at the other end (the client's name on the server side: the I/O partition tags lines with it). */
  peer: string;
  /** The channel's type code (core/channel.ts ChannelType), written at the slot record's byte 9 so a server knows what it serves without trusting the client-written header; 0 when not given. */
  type?: number;
}

export interface PackedPartition {
  /** Info page + linked image (the window's first pages; the loader zero-fills the rest). */
  blob: Uint8Array;
  entry: bigint;
  symbols: Map<string, bigint>;
  /** Window address range of the linked image. */
  image: { start: bigint; end: bigint };
}

const ORDER: SectionKind[] = ["text", "rdata", "data", "bss"];
const NAME_BYTES = 16;

function asciiName(name: string, what: string): Uint8Array {
  if (!/^[\x21-\x7e]{1,15}$/.test(name)) throw new RangeError(`${what} '${name}' must be 1–15 printable ASCII characters without spaces`);
  const b = new Uint8Array(NAME_BYTES);
  b.set(Buffer.from(name, "ascii"));
  return b;
}

export function packPartition(program: Assembler | ObjectFile, info: { name: string; number: number; slots: SlotInfo[] }): PackedPartition {
  const obj = program instanceof Assembler ? program.finish() : program;
  if (info.slots.length > WINDOW_LAYOUT.maxSlots) throw new RangeError(`partition ${info.name}: ${info.slots.length} channel slots, at most ${WINDOW_LAYOUT.maxSlots}`);
  const order = obj.sections.map((s, i) => ({ s, i })).sort((x, y) => ORDER.indexOf(x.s.kind) - ORDER.indexOf(y.s.kind) || x.i - y.i);
  const bases = new Array<bigint>(obj.sections.length);
  let at = WINDOW_LAYOUT.image;
  let codeEnd = 0;
  for (const { s, i } of order) {
    // The code ends on a page boundary: its pages alone are mapped executable, everything after them NX.
    if (s.kind !== "text" && codeEnd === 0) codeEnd = at = Math.ceil(at / PAGE) * PAGE;
    const align = Math.max(s.align, 16);
    at = Math.ceil(at / align) * align;
    bases[i] = WINDOW + BigInt(at);
    at += s.bytes.length;
  }
  if (codeEnd === 0) codeEnd = Math.ceil(at / PAGE) * PAGE;
  if (at > WINDOW_LAYOUT.image + WINDOW_LAYOUT.imageMax) {
    throw new RangeError(`partition ${info.name}: image is ${at - WINDOW_LAYOUT.image} bytes, more than the window's ${WINDOW_LAYOUT.imageMax} (docs/specs/image-layout.md)`);
  }
  const linked = link(obj, bases);
  const entry = linked.symbols.get(PROGRAM_ENTRY);
  if (entry === undefined) throw new Error(`partition ${info.name}: program has no ${PROGRAM_ENTRY} symbol`);
  const blob = new Uint8Array(Math.ceil(at / PAGE) * PAGE);
  for (const { s, i } of order) if (s.kind !== "bss") blob.set(linked.sections[i]!, Number(bases[i]! - WINDOW));
  const d = new DataView(blob.buffer);
  d.setBigUint64(INFO.number, BigInt(info.number), true);
  d.setBigUint64(INFO.slots, BigInt(info.slots.length), true);
  blob.set(asciiName(info.name, "partition name"), INFO.name);
  d.setBigUint64(INFO.ownedBytes, BigInt(WINDOW_LAYOUT.stackTop), true);
  d.setBigUint64(INFO.codeEnd, BigInt(codeEnd), true);
  info.slots.forEach((slot, k) => {
    const o = INFO.slot(k);
    // A server's slot turns live when the monitor connects the channel (the client may start later): 0 until then.
    d.setBigUint64(o, slot.role === "client" ? WINDOW + BigInt(WINDOW_LAYOUT.slot(k)) : 0n, true);
    d.setUint8(o + 8, slot.role === "client" ? 0 : 1);
    d.setUint8(o + 9, slot.type ?? 0);
    blob.set(asciiName(slot.peer, "peer name"), o + 16);
  });
  return { blob, entry, symbols: linked.symbols, image: { start: WINDOW + BigInt(WINDOW_LAYOUT.image), end: WINDOW + BigInt(at) } };
}

/** FNV-1a (32-bit) — the checksum the guests print over their own code and constants. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}
