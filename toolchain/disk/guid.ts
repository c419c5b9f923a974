// GUIDs for the GPT (gpt.ts): parsing the textual form, encoding it in UEFI's mixed-endian byte order, and deriving
// reproducible GUIDs and volume IDs from a seed so the same build inputs give the same image bytes.
import { createHash } from "node:crypto";

/** The EFI System Partition type (UEFI spec, "GPT Partition Entry"). */
export const ESP_TYPE_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** 16 bytes as stored on disk: time_low, time_mid, time_hi little-endian, then the last 8 bytes in order. */
export function encodeGuid(text: string): Uint8Array {
  if (!GUID_RE.test(text)) throw new Error(`"${text}" is not a GUID (expected 8-4-4-4-12 hex digits)`);
  const h = text.replace(/-/g, "");
  const b = Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
  return Uint8Array.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

function seeded(seed: string, purpose: string): Buffer {
  return createHash("sha256").update(`uvt-esp/${seed}/${purpose}`).digest();
}

/** A version-4-shaped GUID (textual form) determined by seed and purpose. */
export function seededGuid(seed: string, purpose: string): string {
  const b = seeded(seed, purpose).subarray(0, 16);
  // RFC 4122 layout on the textual form: version in the high nibble of field 3, variant 10xx in byte 8.
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString("hex").toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A 32-bit value determined by seed and purpose (the FAT volume serial number). */
export function seededU32(seed: string, purpose: string): number {
  return seeded(seed, purpose).readUInt32LE(0);
}
