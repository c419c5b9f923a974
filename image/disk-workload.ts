// The storage workload's block records and their check from outside (docs/specs/storage-channel.md §6): block n that
// a guest writes holds "block <n> <partition> gen <g>" and zeros to the end of the block; the guest prints
// "disk: acked block <n> gen <g>" when the write completed GOOD. checkDiskImage reads a disk image and the serial log
// and reports every acknowledged block that does not hold its partition's latest acknowledged generation (or the one
// pass after it, whose acknowledgement the end of the run may have cut off), and every
// record found at a block other than the one it names. Used by `uvt disk check`. Bare-metal image layer.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { SECTOR } from "./data-disk.ts";

/** Decimal as the guests write it: no sign, no leading zeros. */
const DEC = "(0|[1-9]\\d*)";
const RECORD = new RegExp(`^block ${DEC} (\\S+) gen ${DEC}$`);
const ACK = new RegExp(`^(\\S+): disk: acked block ${DEC} gen ${DEC}$`);

/** The 512 bytes a guest writes to block `n` on pass `gen`. */
export function blockRecord(n: number, partition: string, gen: number): Uint8Array {
  if (!/^\S+$/.test(partition)) throw new RangeError(`a partition name has no spaces: '${partition}'`);
  const b = new Uint8Array(SECTOR);
  const text = Buffer.from(`block ${n} ${partition} gen ${gen}`, "latin1");
  if (text.length > SECTOR) throw new RangeError("record longer than a block");
  b.set(text);
  return b;
}

/** A block's record, or null when the block holds none (all zeros) or something else (then `bad` says what). */
export function parseBlock(b: Uint8Array): { n: number; partition: string; gen: number } | null | { bad: string } {
  const end = b.indexOf(0);
  const len = end < 0 ? b.length : end;
  if (len === 0) return b.every((x) => x === 0) ? null : { bad: "bytes after an empty record" };
  const m = RECORD.exec(Buffer.from(b.subarray(0, len)).toString("latin1"));
  if (!m) return { bad: "not a block record" };
  if (!b.subarray(len).every((x) => x === 0)) return { bad: "not zero-padded to the end of the block" };
  return { n: Number(m[1]), partition: m[2]!, gen: Number(m[3]) };
}

/** The latest acknowledged generation of each (partition, block) in a serial log. */
export function acksOf(log: string): Map<string, Map<number, number>> {
  const acks = new Map<string, Map<number, number>>();
  for (const line of log.split(/\r?\n/)) {
    const m = ACK.exec(line.trim());
    if (!m) continue;
    const per = acks.get(m[1]!) ?? new Map<number, number>();
    const block = Number(m[2]);
    per.set(block, Math.max(per.get(block) ?? -1, Number(m[3])));
    acks.set(m[1]!, per);
  }
  return acks;
}

export interface DiskCheck {
  blocks: number;
  acknowledged: number;
  records: number;
  problems: string[];
}

/** Reads `image` block by block and checks it against the acknowledgements of `log`. */
export function checkDiskImage(image: string, log: string): DiskCheck {
  const acks = acksOf(log);
  const fd = openSync(image, "r");
  const problems: string[] = [];
  let records = 0;
  try {
    const size = fstatSync(fd).size;
    if (size % SECTOR !== 0) problems.push(`${image} is ${size} bytes, not whole ${SECTOR}-byte blocks`);
    const blocks = Math.floor(size / SECTOR);
    const buf = new Uint8Array(SECTOR);
    const found = new Map<number, { partition: string; gen: number }>();
    for (let n = 0; n < blocks; n++) {
      if (readSync(fd, buf, 0, SECTOR, n * SECTOR) !== SECTOR) {
        problems.push(`block ${n}: short read (the file changed during the check?)`);
        break;
      }
      const r = parseBlock(buf);
      if (r === null) continue;
      if ("bad" in r) {
        problems.push(`block ${n}: ${r.bad}`);
        continue;
      }
      records++;
      if (r.n !== n) problems.push(`block ${n} holds the record of block ${r.n} (${r.partition} gen ${r.gen}): misplaced`);
      else found.set(n, r);
    }
    // A record of a partition the log never acknowledged anything for: not this run's (a reused disk), or garbage.
    for (const [n, f] of found) if (!acks.has(f.partition)) problems.push(`block ${n} holds ${f.partition} gen ${f.gen}, a partition this log acknowledged nothing for (use a fresh disk per run)`);
    let acknowledged = 0;
    for (const [partition, per] of acks) {
      for (const [n, gen] of per) {
        acknowledged++;
        const f = found.get(n);
        if (n >= blocks) problems.push(`${partition} was acknowledged block ${n}, past the disk's ${blocks} blocks`);
        else if (!f) problems.push(`block ${n}: ${partition} gen ${gen} was acknowledged, the block holds no record`);
        // One pass newer is fine: its write completed but the run ended before its acknowledgement was printed.
        else if (f.partition !== partition || (f.gen !== gen && f.gen !== gen + 1)) problems.push(`block ${n}: ${partition} gen ${gen} was acknowledged, the block holds ${f.partition} gen ${f.gen}`);
      }
    }
    // A log without one acknowledgement proves nothing: the workload did not run, or this is not its log.
    if (acknowledged === 0) problems.push("the log acknowledges no block: the workload did not run, or this is not its serial log");
    return { blocks, acknowledged, records, problems };
  } finally {
    closeSync(fd);
  }
}
