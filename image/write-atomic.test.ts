// writeFileAtomic (write-atomic.ts) on the real file system: replaces whole files, names the target on failure and
// leaves no temporary file behind.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeFileAtomic } from "./write-atomic.ts";

const dir = mkdtempSync(join(tmpdir(), "uvt-atomic-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("writeFileAtomic", () => {
  it("replaces an existing file and leaves only the target", () => {
    const path = join(dir, "out.bin");
    writeFileSync(path, "old contents, longer than the new");
    writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(["out.bin"]);
  });

  it("names the target and the reason, keeps the errno code, and cleans up", () => {
    const err = (() => {
      try {
        writeFileAtomic(join(dir, "missing", "x.bin"), "data");
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
      return undefined;
    })();
    expect(err?.message).toBe(`cannot write ${join(dir, "missing", "x.bin")}: its directory does not exist`);
    expect(err?.code).toBe("ENOENT");
    // A directory in the way of the rename: the temporary file must not survive.
    mkdirSync(join(dir, "adir"));
    expect(() => writeFileAtomic(join(dir, "adir"), "x")).toThrow(`cannot write ${join(dir, "adir")}: it is a directory`);
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });
});
