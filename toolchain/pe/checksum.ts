// The PE image checksum (optional header CheckSum): used by the writer (write.ts) to fill the field and by the reader
// (read.ts) to verify it. The algorithm is the one of IMAGEHLP's CheckSumMappedFile: a 16-bit one's-complement-style
// sum of the file taken as little-endian words (the CheckSum field itself counted as zero, an odd trailing byte
// counted as a word with a zero high byte), folded to 16 bits, plus the file length.

export function peChecksum(file: Uint8Array, checksumOffset: number): number {
  let sum = 0;
  const words = file.length >>> 1;
  for (let i = 0; i < words; i++) {
    const at = i * 2;
    // The 4-byte field is words at checksumOffset and checksumOffset + 2.
    if (at === checksumOffset || at === checksumOffset + 2) continue;
    sum += file[at]! | (file[at + 1]! << 8);
    // Fold eagerly: the running value then never leaves the safe-integer range whatever the file size.
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (file.length & 1) {
    sum += file[file.length - 1]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return ((sum & 0xffff) + file.length) >>> 0;
}
