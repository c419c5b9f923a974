// Property: for random file trees (8.3, lower-case, long, dotted, lossy and non-ASCII names; empty, small and
// multi-cluster files; nested and empty directories) on FAT16 and FAT32 volumes, fsck.fat finds nothing to complain
// about and mtools reads every file and directory back exactly.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { writeEspImage } from "./esp.ts";
import type { FatFile } from "./fat.ts";
import { fsckPartition, mcopyAll } from "./oracles.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-espprop-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const name = fc.oneof(
  fc.stringMatching(/^[A-Z0-9_]{1,8}(\.[A-Z0-9]{1,3})?$/),
  fc.stringMatching(/^[a-z0-9]{1,8}(\.[a-z]{1,3})?$/),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._+,;=[\]-]{0,40}[A-Za-z0-9]$/),
  fc.constantFrom("résumé.txt", "日本語.bin", "a.b.c.d", ".hidden", "Read Me.TXT", "~"),
  // Names sharing the basis LONGFI.TXT: numeric tails must not collide, nor take the exact 8.3 name.
  fc.constantFrom("LONGFI~1.TXT", "longfilename.txt", "longfilename2.txt", "Long File Name.txt", "LONGFI~3.TXT"),
);

interface Tree {
  files: FatFile[];
  /** Every directory, implied or explicit. */
  dirs: string[];
  /** Directories given explicitly (possibly empty). */
  explicit: string[];
}

const fold = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());

interface Draw {
  parts: string[];
  /** File size, or null for a directory. */
  size: number | null;
}

/** Turns random draws into a valid tree: a draw that clashes with an earlier one (kind or case) is dropped. */
function toTree(draws: readonly Draw[]): Tree {
  const seen = new Map<string, { kind: "file" | "dir"; spelled: string }>();
  const tree: Tree = { files: [], dirs: [], explicit: [] };
  draws.forEach((d, k) => {
    const paths = d.parts.map((_, i) => "/" + d.parts.slice(0, i + 1).join("/"));
    const kindAt = (i: number) => (i < paths.length - 1 || d.size === null ? "dir" : "file");
    const ok = paths.every((p, i) => {
      const e = seen.get(fold(p));
      return !e || (e.spelled === p && e.kind === "dir" && kindAt(i) === "dir");
    });
    if (!ok) return;
    paths.forEach((p, i) => {
      if (seen.has(fold(p))) return;
      seen.set(fold(p), { kind: kindAt(i), spelled: p });
      if (kindAt(i) === "dir") tree.dirs.push(p);
    });
    const path = paths[paths.length - 1]!;
    if (d.size === null) tree.explicit.push(path);
    else {
      const data = new Uint8Array(d.size);
      for (let i = 0; i < d.size; i++) data[i] = (i * 31 + k * 7) & 0xff;
      tree.files.push({ path, data });
    }
  });
  return tree;
}

const fileDraw: fc.Arbitrary<Draw> = fc
  .record({
    dir: fc.array(fc.constantFrom("EFI", "BOOT", "ultravisor", "Long Directory Name", "d.2", "x"), { maxLength: 3 }),
    name,
    size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 3000, max: 70000 })),
  })
  .map((r) => ({ parts: [...r.dir, r.name], size: r.size }));
const emptyDirDraw: fc.Arbitrary<Draw> = fc
  .constantFrom(["empty"], ["EFI", "void"], ["a b", "c d"])
  .map((parts) => ({ parts: [...parts], size: null }));

describe("ESP images from random trees", () => {
  it("read back identically through fsck.fat and mtools", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof({ weight: 9, arbitrary: fileDraw }, { weight: 1, arbitrary: emptyDirDraw }), { minLength: 1, maxLength: 25 }),
        fc.constantFrom(8, 20, 40),
        async (draws, sizeMiB) => {
          const tree = toTree(draws);
          const image = join(dir, `r${run}.img`);
          const out = join(dir, `r${run}`);
          run++;
          const info = await writeEspImage(image, { files: tree.files, directories: tree.explicit, sizeMiB });
          const f = fsckPartition(image, info.partitionOffset, info.partitionSectors, join(dir, "part.img"));
          expect(f.complaints).toEqual([]);
          expect(f.status).toBe(0);
          mkdirSync(out);
          const got = mcopyAll(image, info.partitionOffset, out);
          expect([...got.files.keys()].sort()).toEqual(tree.files.map((x) => x.path).sort());
          for (const file of tree.files) expect(Buffer.from(file.data).equals(got.files.get(file.path)!)).toBe(true);
          expect([...got.dirs].sort()).toEqual([...tree.dirs].sort());
          rmSync(image);
          rmSync(out, { recursive: true });
        },
      ),
      { numRuns: 20 },
    );
  });
});
