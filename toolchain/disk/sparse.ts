// A disk image as a list of written regions over zeros: the FAT and GPT writers add their sectors here and the
// image is written sparse (truncate to size, write only the regions) through a temporary file that is renamed into
// place, so a 64 MiB image costs what its data costs and a failed write leaves no half image behind.
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface Extent {
  offset: number;
  data: Uint8Array;
}

export class SparseImage {
  readonly extents: Extent[] = [];
  constructor(readonly size: number) {}

  /** Places `data` at byte `offset`; regions must not overlap (the writers own disjoint sectors). */
  add(offset: number, data: Uint8Array): void {
    if (offset < 0 || offset + data.length > this.size)
      throw new Error(`internal: region ${offset}+${data.length} is outside the ${this.size}-byte image`);
    if (data.length > 0) this.extents.push({ offset, data });
  }

  /** The whole image in memory (tests, small images). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    for (const e of this.extents) out.set(e.data, e.offset);
    return out;
  }

  /** Reads `length` bytes at `offset` from the regions (zeros elsewhere). */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (const e of this.extents) {
      const from = Math.max(offset, e.offset);
      const to = Math.min(offset + length, e.offset + e.data.length);
      if (from < to) out.set(e.data.subarray(from - e.offset, to - e.offset), from - offset);
    }
    return out;
  }

  /** Writes the image to `path` via a temporary file in the same directory and an atomic rename. */
  async writeTo(path: string): Promise<void> {
    const tmp = await this.writeTemp(path);
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw SparseImage.failure(path, tmp, err);
    }
  }

  /**
   * The first half of writeTo: writes the image to a temporary file beside `path` and returns its name, for callers
   * that rename a set of files into place together (image/efi-image.ts). On failure the temporary file is removed.
   */
  async writeTemp(path: string): Promise<string> {
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    let created = false;
    try {
      const fh = await open(tmp, "wx");
      created = true;
      try {
        await fh.truncate(this.size);
        const sorted = [...this.extents].sort((a, b) => a.offset - b.offset);
        for (const e of sorted) {
          let done = 0;
          while (done < e.data.length) {
            const { bytesWritten } = await fh.write(e.data, done, e.data.length - done, e.offset + done);
            done += bytesWritten;
          }
        }
      } finally {
        await fh.close();
      }
      return tmp;
    } catch (err) {
      // Only a file this call created is removed: "wx" failing means the name belongs to someone else.
      if (created) await unlink(tmp).catch(() => undefined);
      throw SparseImage.failure(path, tmp, err);
    }
  }

  /** The temporary name means nothing to the user: report the target, keep the errno code for callers. */
  private static failure(path: string, tmp: string, err: unknown): Error {
    const e = err as NodeJS.ErrnoException;
    return Object.assign(new Error(`cannot write ${path}: ${e.message.split(tmp).join(path)}`), { code: e.code });
  }
}
