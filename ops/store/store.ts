// The operations partition's persistent database of partition definitions (docs/specs/operations.md §5; layer:
// ops/store/): [0248]'s folder tree, one subfolder per domain and one file per partition, made crash-safe with a
// write-ahead journal and atomic replace. A commit appends one checksummed record to `journal` and fsyncs it (the
// commit point), then writes each changed file as NAME.tmp, fsyncs it, renames it over NAME and fsyncs the folder.
// Opening replays the journal over the tree (idempotent), drops a torn last record (never committed), and
// checkpoints. Every file carries a SHA-256 of its data; a bad one is refused with its path. The interface
// (DefinitionStore) is narrow so that a distributed store can implement it: load everything, commit a batch. It is
// Promise-returning because the other backend (etcd-store.ts, §7) answers over the network; FileStore does its work
// synchronously inside each call, so a returned Promise is already settled-durable as before.
import { createHash } from "node:crypto";
import { DOMAIN_RE, type Estate, GUID_RE, type PartitionDefinition } from "../model.ts";
import type { Fs } from "./fs.ts";

export const FORMAT = "uv-ops/1";
/** Records after which the journal is checkpointed (replaced by a header only). */
export const CHECKPOINT_EVERY = 16;

export type Change =
  | { put: PartitionDefinition }
  | { delete: { domain: string; guid: string } }
  | { estate: Estate };

export interface StoreState {
  /** Sequence number of the last committed batch (0: none). */
  seq: number;
  estate: Estate | undefined;
  /** domain → guid → definition. */
  domains: Map<string, Map<string, PartitionDefinition>>;
}

export interface DefinitionStore {
  load(): Promise<StoreState>;
  /** Commits the batch atomically; resolves to its sequence number. Rejects (and commits nothing) on bad input. */
  commit(changes: Change[]): Promise<number>;
  close(): Promise<void>;
}

/** A store file that fails its checksum or shape: `path` is the file, relative to the store's root. */
export class StoreCorrupt extends Error {
  override name = "StoreCorrupt";
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: corrupt store file: ${reason} (restore it from a backup, or remove it to drop that definition)`);
  }
}

export class StoreRefused extends Error {
  override name = "StoreRefused";
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A checksummed envelope around `data`. */
export function seal(data: unknown): string {
  const text = JSON.stringify(data);
  return `{"format":"${FORMAT}","sha256":"${sha256(text)}","data":${text}}`;
}

/** Opens an envelope; the reason when it is not a good one. */
export function unseal(bytes: Uint8Array): { data: unknown } | string {
  let text: string;
  try {
    text = dec.decode(bytes);
  } catch {
    return "not UTF-8";
  }
  const m = /^\{"format":"([^"]*)","sha256":"([0-9a-f]{64})","data":([\s\S]*)\}\s*$/.exec(text);
  if (!m) return "not a store envelope";
  if (m[1] !== FORMAT) return `format ${m[1]} (this build reads ${FORMAT})`;
  if (sha256(m[3]!) !== m[2]) return "checksum mismatch";
  try {
    return { data: JSON.parse(m[3]!) as unknown };
  } catch {
    return "checksum matches but the data is not JSON";
  }
}

function defPath(domain: string, guid: string): string {
  return `domains/${domain}/${guid}.json`;
}

export function checkNames(domain: string, guid: string): void {
  if (!DOMAIN_RE.test(domain) || domain === "." || domain === "..") throw new StoreRefused(`domain name "${domain}" cannot be a folder name (letters, digits, _ . -, up to 64)`);
  if (!GUID_RE.test(guid)) throw new StoreRefused(`"${guid}" is not a lower-case version-4 GUID`);
}

/** Refuses an empty batch and names that could not be folder names (both backends apply the same rules). */
export function checkBatch(changes: Change[]): void {
  if (!Array.isArray(changes) || changes.length === 0) throw new StoreRefused("an empty commit");
  for (const c of changes) {
    if ("put" in c) checkNames(c.put.domain, c.put.guid);
    else if ("delete" in c) checkNames(c.delete.domain, c.delete.guid);
    else if (!("estate" in c)) throw new StoreRefused("a change is a put, a delete or an estate");
  }
}

interface Record {
  seq: number;
  changes: Change[];
}

export class FileStore implements DefinitionStore {
  private state: StoreState = { seq: 0, estate: undefined, domains: new Map() };
  private records = 0;

  /** Opens (and recovers) the store in `fs`; an empty fs is an empty store. */
  constructor(private readonly fs: Fs) {
    this.open();
  }

  async load(): Promise<StoreState> {
    return this.loadSync();
  }

  /** load() without the Promise, for the synchronous callers of the power-cut tests. */
  loadSync(): StoreState {
    // Copies: the caller cannot change the store's state except by commit.
    const domains = new Map<string, Map<string, PartitionDefinition>>();
    for (const [d, m] of this.state.domains) domains.set(d, new Map([...m].map(([g, v]) => [g, structuredClone(v)])));
    return { seq: this.state.seq, estate: this.state.estate && structuredClone(this.state.estate), domains };
  }

  async commit(changes: Change[]): Promise<number> {
    return this.commitSync(changes);
  }

  /** commit() without the Promise: the power-cut tests cut the power inside it and catch PowerCut synchronously. */
  commitSync(changes: Change[]): number {
    checkBatch(changes);
    const rec: Record = { seq: this.state.seq + 1, changes: structuredClone(changes) };
    // The commit point: the record is durable in the journal.
    this.fs.append("journal", enc.encode(`${seal(rec)}\n`));
    this.fs.fsync("journal");
    this.records++;
    this.apply(rec);
    if (this.records >= CHECKPOINT_EVERY) this.checkpoint();
    return rec.seq;
  }

  async close(): Promise<void> {
    // Nothing is buffered: every commit is durable when it returns.
  }

  // ---------------------------------------------------------------------------------------------- recovery

  private open(): void {
    const estate = this.fs.read("estate.json");
    if (estate) this.state.estate = this.readData("estate.json", estate) as Estate;
    for (const d of this.fs.list("domains")) {
      if (!this.fs.isDir(`domains/${d}`)) continue;
      const m = new Map<string, PartitionDefinition>();
      for (const f of this.fs.list(`domains/${d}`)) {
        if (f.endsWith(".tmp")) continue; // an unfinished atomic replace: the journal still holds its change
        const path = `domains/${d}/${f}`;
        const def = this.readData(path, this.fs.read(path)!) as PartitionDefinition;
        if (!f.endsWith(".json") || def.guid !== f.slice(0, -5) || def.domain !== d) throw new StoreCorrupt(path, "file name does not match the definition's domain and GUID");
        m.set(def.guid, def);
      }
      this.state.domains.set(d, m);
    }
    const j = this.fs.read("journal");
    if (!j) return;
    let text: string;
    try {
      text = dec.decode(j);
    } catch {
      // Only a torn tail can be invalid UTF-8 after a cut mid-character; decode leniently and let the lines decide.
      text = new TextDecoder().decode(j);
    }
    const lines = text.split("\n");
    const complete = text.endsWith("\n") ? lines.slice(0, -1) : lines;
    const tornLast = !text.endsWith("\n") && text.length > 0;
    let seq: number | undefined;
    for (let i = 0; i < complete.length; i++) {
      const isLast = i === complete.length - 1;
      const r = unseal(enc.encode(complete[i]!));
      if (typeof r === "string") {
        if (isLast && tornLast) break; // a torn append: its fsync never returned
        throw new StoreCorrupt(`journal line ${i + 1}`, r);
      }
      const data = r.data as { header?: { next: number } } & Partial<Record>;
      if (data.header) {
        seq = data.header.next - 1;
        continue;
      }
      if (typeof data.seq !== "number" || !Array.isArray(data.changes)) throw new StoreCorrupt(`journal line ${i + 1}`, "not a journal record");
      if (seq !== undefined && data.seq !== seq + 1) throw new StoreCorrupt(`journal line ${i + 1}`, `sequence ${data.seq} after ${seq}`);
      seq = data.seq;
      this.apply(data as Record);
    }
    if (seq !== undefined) this.state.seq = seq;
    this.checkpoint();
  }

  private readData(path: string, bytes: Uint8Array): unknown {
    const r = unseal(bytes);
    if (typeof r === "string") throw new StoreCorrupt(path, r);
    return r.data;
  }

  // ---------------------------------------------------------------------------------------------- the tree

  /** Writes a file by atomic replace: NAME.tmp, fsync, rename, fsync of the folder. */
  private replace(dir: string, path: string, text: string): void {
    this.fs.write(`${path}.tmp`, enc.encode(text));
    this.fs.fsync(`${path}.tmp`);
    this.fs.rename(`${path}.tmp`, path);
    this.fs.fsyncDir(dir);
  }

  private ensureDomain(domain: string): void {
    if (!this.fs.isDir("domains")) {
      this.fs.mkdir("domains");
      this.fs.fsyncDir("");
    }
    if (!this.fs.isDir(`domains/${domain}`)) {
      this.fs.mkdir(`domains/${domain}`);
      this.fs.fsyncDir("domains");
    }
  }

  /** Applies a committed record to the tree and the state (also during replay, where it may repeat work). */
  private apply(rec: Record): void {
    for (const c of rec.changes) {
      if ("estate" in c) {
        this.replace("", "estate.json", seal(c.estate));
        this.state.estate = structuredClone(c.estate);
      } else if ("put" in c) {
        const d = c.put;
        this.ensureDomain(d.domain);
        this.replace(`domains/${d.domain}`, defPath(d.domain, d.guid), seal(d));
        let m = this.state.domains.get(d.domain);
        if (!m) this.state.domains.set(d.domain, (m = new Map()));
        m.set(d.guid, structuredClone(d));
      } else {
        const { domain, guid } = c.delete;
        if (this.fs.read(defPath(domain, guid))) {
          this.fs.unlink(defPath(domain, guid));
          this.fs.fsyncDir(`domains/${domain}`);
        }
        this.state.domains.get(domain)?.delete(guid);
      }
    }
    this.state.seq = rec.seq;
  }

  /** Replaces the journal by a header holding the next sequence number: everything before is in the tree. */
  private checkpoint(): void {
    this.replace("", "journal", `${seal({ header: { next: this.state.seq + 1 } })}\n`);
    this.records = 0;
  }
}
