// CRC-32 (ISO-HDLC, the zlib/PNG/GPT one: reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF), used by
// gpt.ts for the header and partition-array checksums. Our own table-driven version so nothing depends on the Node
// release (node:zlib's crc32 arrived in 20.15; the project supports 20.9).

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes`; pass a previous result as `crc` to continue over a further chunk. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
