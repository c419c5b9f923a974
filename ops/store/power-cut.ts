// A filesystem that loses power (layer: ops/store/, used by the crash test): an in-memory model of what a real disk
// keeps when the power goes. Each file has its volatile data (what reads see) and its durable data (what fsync
// wrote); each directory has volatile and durable entries (fsyncDir makes them durable). `cutAt(n)` makes the n-th
// mutating call (write, append, fsync, fsyncDir, rename, unlink, mkdir) fail with PowerCut before it takes effect,
// and every later one too; `afterCut()` is the disk after the power comes back: only what was durable. With
// `torn`, a file's unsynced appended bytes survive in part (half of them), as a partly written sector would.
import type { Fs } from "./fs.ts";

export class PowerCut extends Error {
  override name = "PowerCut";
}

interface Inode {
  data: Uint8Array;
  durable: Uint8Array;
}

interface Dir {
  entries: Map<string, Inode | Dir>;
  durable: Map<string, Inode | Dir>;
}

const isDir = (x: Inode | Dir): x is Dir => "entries" in x;

export class PowerCutFs implements Fs {
  private root: Dir = { entries: new Map(), durable: new Map() };
  /** Mutating calls made so far. */
  ops = 0;
  private cut = Infinity;
  torn = false;

  cutAt(n: number): void {
    this.cut = n;
  }

  get isCut(): boolean {
    return this.ops >= this.cut;
  }

  private mutate(): void {
    if (this.ops + 1 >= this.cut) {
      this.ops = Math.max(this.ops, this.cut);
      throw new PowerCut(`power cut at mutating call ${this.cut}`);
    }
    this.ops++;
  }

  private walk(path: string): { dir: Dir; name: string } {
    const parts = path.split("/").filter(Boolean);
    const name = parts.pop() ?? "";
    let d = this.root;
    for (const p of parts) {
      const n = d.entries.get(p);
      if (!n || !isDir(n)) throw new Error(`ENOENT: ${path}`);
      d = n;
    }
    return { dir: d, name };
  }

  private dirAt(path: string): Dir {
    if (!path) return this.root;
    const { dir, name } = this.walk(path);
    const n = dir.entries.get(name);
    if (!n || !isDir(n)) throw new Error(`ENOTDIR: ${path}`);
    return n;
  }

  private file(path: string): Inode | undefined {
    try {
      const { dir, name } = this.walk(path);
      const n = dir.entries.get(name);
      return n && !isDir(n) ? n : undefined;
    } catch {
      return undefined;
    }
  }

  read(path: string): Uint8Array | undefined {
    return this.file(path)?.data.slice();
  }

  write(path: string, data: Uint8Array): void {
    this.mutate();
    const { dir, name } = this.walk(path);
    const n = dir.entries.get(name);
    if (n && !isDir(n)) n.data = data.slice();
    else dir.entries.set(name, { data: data.slice(), durable: new Uint8Array(0) });
  }

  append(path: string, data: Uint8Array): void {
    this.mutate();
    const { dir, name } = this.walk(path);
    const n = dir.entries.get(name);
    if (n && !isDir(n)) {
      const b = new Uint8Array(n.data.length + data.length);
      b.set(n.data);
      b.set(data, n.data.length);
      n.data = b;
    } else dir.entries.set(name, { data: data.slice(), durable: new Uint8Array(0) });
  }

  fsync(path: string): void {
    this.mutate();
    const f = this.file(path);
    if (!f) throw new Error(`ENOENT: ${path}`);
    f.durable = f.data.slice();
  }

  fsyncDir(dir: string): void {
    this.mutate();
    const d = this.dirAt(dir);
    d.durable = new Map(d.entries);
  }

  rename(from: string, to: string): void {
    this.mutate();
    const a = this.walk(from);
    const n = a.dir.entries.get(a.name);
    if (!n) throw new Error(`ENOENT: ${from}`);
    const b = this.walk(to);
    a.dir.entries.delete(a.name);
    b.dir.entries.set(b.name, n);
  }

  unlink(path: string): void {
    this.mutate();
    const { dir, name } = this.walk(path);
    if (!dir.entries.delete(name)) throw new Error(`ENOENT: ${path}`);
  }

  mkdir(path: string): void {
    const { dir, name } = this.walk(path);
    if (dir.entries.has(name)) return;
    this.mutate();
    dir.entries.set(name, { entries: new Map(), durable: new Map() });
  }

  list(dir: string): string[] {
    try {
      return [...this.dirAt(dir).entries.keys()].sort();
    } catch {
      return [];
    }
  }

  isDir(path: string): boolean {
    try {
      this.dirAt(path);
      return true;
    } catch {
      return false;
    }
  }

  /** The disk after the power comes back: durable entries and durable data only (torn appends if `torn`). */
  afterCut(): PowerCutFs {
    const fresh = new PowerCutFs();
    const copyFile = (f: Inode): Inode => {
      let data = f.durable;
      const d = f.durable;
      if (this.torn && f.data.length > d.length && d.every((b, i) => f.data[i] === b)) {
        data = f.data.slice(0, d.length + Math.floor((f.data.length - d.length) / 2));
      }
      return { data: data.slice(), durable: data.slice() };
    };
    const copyDir = (d: Dir): Dir => {
      const out: Dir = { entries: new Map(), durable: new Map() };
      for (const [k, v] of d.durable) {
        const c = isDir(v) ? copyDir(v) : copyFile(v);
        out.entries.set(k, c);
        out.durable.set(k, c);
      }
      return out;
    };
    fresh.root = copyDir(this.root);
    return fresh;
  }
}
