// FAT file names for fat.ts: validation of long names, 8.3 short names by the Microsoft FAT specification's
// basis-name and numeric-tail algorithm, and VFAT long-file-name (LFN) directory entries with their checksums.

/** Characters a long name may not contain (besides control characters). */
const LONG_INVALID = new Set(['"', "*", "/", ":", "<", ">", "?", "\\", "|"]);
/** Punctuation valid in a short name (letters and digits aside). */
const SHORT_PUNCTUATION = new Set(["!", "#", "$", "%", "&", "'", "(", ")", "-", "@", "^", "_", "`", "{", "}", "~"]);
export const MAX_LONG_NAME = 255;
const LFN_CHARS = 13;

/** Throws with a message naming `where` if `name` cannot be a FAT long name. */
export function validateLongName(name: string, where: string): void {
  if (name === "") throw new Error(`${where}: empty path component (doubled or trailing "/")`);
  if (name === "." || name === "..") throw new Error(`${where}: "${name}" is not allowed as a name; give plain paths`);
  if (name.length > MAX_LONG_NAME)
    throw new Error(`${where}: name is ${name.length} UTF-16 units; FAT long names hold at most ${MAX_LONG_NAME}`);
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || LONG_INVALID.has(ch))
      throw new Error(`${where}: character ${JSON.stringify(ch)} is not allowed in FAT names (nor any of " * / : < > ? \\ |)`);
  }
  if (/[ .]$/.test(name)) throw new Error(`${where}: a FAT name cannot end in a space or a period`);
}

function isShortChar(ch: string): boolean {
  return /^[A-Z0-9]$/.test(ch) || SHORT_PUNCTUATION.has(ch);
}

interface Basis {
  primary: string;
  ext: string;
  /** The long name is exactly this 8.3 name, up to case: no numeric tail needed unless it collides. */
  fits: boolean;
}

/** Steps 1–7 of the specification's basis-name generation. */
function basisName(name: string): Basis {
  let lossy = false;
  let s = "";
  for (const ch of name) {
    const up = ch >= "a" && ch <= "z" ? ch.toUpperCase() : ch;
    if (up === "." || up === " " || isShortChar(up)) s += up;
    else {
      s += "_";
      lossy = true;
    }
  }
  s = s.replace(/ /g, "").replace(/^\.+/, "");
  const firstDot = s.indexOf(".");
  const lastDot = s.lastIndexOf(".");
  let primary = (firstDot >= 0 ? s.slice(0, firstDot) : s).slice(0, 8);
  const ext = lastDot >= 0 ? s.slice(lastDot + 1).slice(0, 3) : "";
  if (primary === "") {
    primary = "_";
    lossy = true;
  }
  const display = ext ? `${primary}.${ext}` : primary;
  const upper = name.replace(/[a-z]/g, (c) => c.toUpperCase());
  return { primary, ext, fits: !lossy && upper === display };
}

function pack(primary: string, ext: string): Uint8Array {
  const out = new Uint8Array(11).fill(0x20);
  for (let i = 0; i < primary.length; i++) out[i] = primary.charCodeAt(i);
  for (let i = 0; i < ext.length; i++) out[8 + i] = ext.charCodeAt(i);
  return out;
}

/** "README.TXT" from the 11-byte field. */
export function displayShortName(short: Uint8Array): string {
  const text = String.fromCharCode(...short);
  const base = text.slice(0, 8).trimEnd();
  const ext = text.slice(8).trimEnd();
  return ext ? `${base}.${ext}` : base;
}

export interface AssignedName {
  /** The 11-byte short name field. */
  short: Uint8Array;
  /** Whether LFN entries must precede the short entry (the long name is not exactly the short name). */
  needsLfn: boolean;
}

/**
 * Short names for the entries of one directory, in the order given. Names that already are valid 8.3 names keep
 * them; the others get the basis name, with the lowest free numeric tail where the conversion lost information,
 * the name did not fit 8.3, or the basis is taken.
 */
export function assignShortNames(names: readonly string[]): AssignedName[] {
  const bases = names.map(basisName);
  const used = new Set<string>();
  // Exact 8.3 names claim their short names first so that a generated "LONGFI~1.TXT" cannot take one of them.
  bases.forEach((b) => {
    if (b.fits) used.add(`${b.primary}.${b.ext}`);
  });
  return bases.map((b, i) => {
    if (b.fits) {
      const short = pack(b.primary, b.ext);
      return { short, needsLfn: displayShortName(short) !== names[i] };
    }
    for (let n = 1; n < 1_000_000; n++) {
      const tail = `~${n}`;
      const primary = b.primary.slice(0, 8 - tail.length) + tail;
      const key = `${primary}.${b.ext}`;
      if (!used.has(key)) {
        used.add(key);
        return { short: pack(primary, b.ext), needsLfn: true };
      }
    }
    throw new Error(`no free short name for "${names[i]}" (a million similar names in one directory)`);
  });
}

/** The LFN checksum of an 11-byte short name (rotate right by one, add the next byte, modulo 256). */
export function shortNameChecksum(short: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short[i]!) & 0xff;
  return sum;
}

/** Number of 32-byte LFN entries `name` needs. */
export function lfnEntryCount(name: string): number {
  return Math.ceil(name.length / LFN_CHARS);
}

/** The LFN entries for `name` in on-disk order (highest sequence number, flagged 0x40, first). */
export function lfnEntries(name: string, short: Uint8Array): Uint8Array {
  const count = lfnEntryCount(name);
  const units = new Uint16Array(count * LFN_CHARS).fill(0xffff);
  for (let i = 0; i < name.length; i++) units[i] = name.charCodeAt(i);
  if (name.length < units.length) units[name.length] = 0x0000;
  const sum = shortNameChecksum(short);
  const out = new Uint8Array(count * 32);
  const view = new DataView(out.buffer);
  // Character slots inside an entry: 5 at byte 1, 6 at byte 14, 2 at byte 28.
  const slots = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
  for (let k = 0; k < count; k++) {
    const seq = count - k; // sequence number of the k-th entry on disk
    const e = k * 32;
    out[e] = seq | (seq === count ? 0x40 : 0);
    out[e + 11] = 0x0f;
    out[e + 13] = sum;
    for (let j = 0; j < LFN_CHARS; j++) view.setUint16(e + slots[j]!, units[(seq - 1) * LFN_CHARS + j]!, true);
  }
  return out;
}
