// Sizes as host definitions write them ("4 GB", "64GB", "4 MiB", 4096): one parser for the schema (definition/host.ts)
// and every reader of a size (the simulator's scenario operations, `uvt run --mem` keeps its own QEMU-style syntax).
// K, M, G, T, P, E are binary multiples (1 GB = 2^30 bytes), as the spec's worked examples count ([0215]).

/** Bytes of a size; throws RangeError with the accepted forms on anything else. */
export function parseBytes(text: string | number): bigint {
  if (typeof text === "number") {
    if (!Number.isSafeInteger(text) || text < 0) throw new RangeError(`${text} is not a byte count`);
    return BigInt(text);
  }
  const m = /^\s*(\d+)\s*([KMGTPE]?)(i?B)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a size (examples: 4 GB, 64GB, 4 MB, 4096)`);
  const p = m[2] ? "KMGTPE".indexOf(m[2].toUpperCase()) + 1 : 0;
  return BigInt(m[1]!) << BigInt(10 * p);
}

/** The pattern parseBytes accepts for strings (the JSON Schema states it so editors check sizes too). */
export const SIZE_PATTERN = "^\\s*\\d+\\s*([KMGTPEkmgtpe]?)(i?[Bb])?\\s*$";
