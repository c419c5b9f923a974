// The etcd backend of the definitions store (docs/specs/operations.md §7; layer: ops/store/): the same DefinitionStore
// as the folder store, kept in an etcd v3 cluster under one key prefix. Each definition is one key
// PREFIX/def/DOMAIN/GUID, the estate is PREFIX/estate, and PREFIX/seq holds the last batch's sequence number and id
// (the id tells, after a transaction whose answer was lost with a dying member, whether it landed). A batch
// is one etcd transaction: compare PREFIX/seq's mod revision with the one this store last saw (compare-and-swap), then
// write seq+1 and every put and delete; a lost race re-reads the sequence number and tries again, so batches from
// several writers are serialised like the folder store's journal. A fence (the operations service's leader key and
// its create revision, service.ts) can be added to every transaction: a writer that lost its lease can no longer
// commit. Values are the folder store's checksummed envelopes, so a bad value is refused with its key.
import type { Etcd3 } from "etcd3";
import type { Estate, PartitionDefinition } from "../model.ts";
import { type Change, checkBatch, type DefinitionStore, seal, StoreCorrupt, StoreRefused, type StoreState, unseal } from "./store.ts";

/** etcd's default --max-txn-ops is 128; a batch (plus the sequence key) must fit one transaction. */
export const MAX_BATCH = 120;

/** The writer no longer holds the key that fences its transactions (another service is active). */
export class StoreFenced extends Error {
  override name = "StoreFenced";
}

/** How long a commit retries a transaction whose outcome the network hid (a member or leader lost). */
const RETRY_MS = 15_000;

function parseSeq(key: string, text: string): { seq: number; id: string } {
  const m = /^(\d{1,15}) (\S+)$/.exec(text);
  if (!m) throw new StoreCorrupt(key, "not a sequence number and batch id");
  return { seq: Number(m[1]), id: m[2]! };
}

/**
 * A batch whose transaction never got an answer within the retry window (no majority of members reachable): it may
 * still land when a majority is back (Raft can commit an entry its leader logged before losing quorum). The caller
 * must not go on from its own picture of the state: reload from the store (the operations service exits, and it or
 * a standby loads the store again).
 */
export class StoreOutcomeUnknown extends Error {
  override name = "StoreOutcomeUnknown";
}

export interface Fence {
  key: string;
  /** The create revision the key had when this writer won it; a re-created key has another. */
  createRevision: string;
}

export class EtcdStore implements DefinitionStore {
  private seqRev = "0";
  private seq = 0;
  private fence: Fence | undefined;
  private batchIds = 0;

  /**
   * `prefix` ends with "/" and is this estate's own space in the cluster (tests use one per run); `retryMs` bounds
   * how long a commit keeps asking about a transaction whose answer was lost (default 15 s).
   */
  constructor(private readonly client: Etcd3, readonly prefix = "uv-ops/", private readonly retryMs = RETRY_MS) {
    if (!prefix.endsWith("/")) throw new StoreRefused(`etcd key prefix "${prefix}" must end with /`);
  }

  /** From now on every commit also requires `fence.key` to exist with that create revision. */
  fenceWith(fence: Fence | undefined): void {
    this.fence = fence;
  }

  private defKey(domain: string, guid: string): string {
    return `${this.prefix}def/${domain}/${guid}`;
  }

  async load(): Promise<StoreState> {
    // One range over the prefix: one revision, so the sequence number and the definitions agree.
    const res = await this.client.getAll().prefix(this.prefix).exec();
    const state: StoreState = { seq: 0, estate: undefined, domains: new Map() };
    let seqRev = "0";
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const rest = key.slice(this.prefix.length);
      if (rest === "seq") {
        state.seq = parseSeq(key, kv.value.toString()).seq;
        seqRev = kv.mod_revision;
      } else if (rest === "estate") {
        state.estate = this.open(key, kv.value) as Estate;
      } else if (rest.startsWith("def/")) {
        const [domain, guid, extra] = rest.slice(4).split("/");
        const d = this.open(key, kv.value) as PartitionDefinition;
        if (extra !== undefined || d?.domain !== domain || d?.guid !== guid) throw new StoreCorrupt(key, "key does not match the definition's domain and GUID");
        let m = state.domains.get(domain!);
        if (!m) state.domains.set(domain!, (m = new Map()));
        m.set(guid!, d);
      }
      // Other keys under the prefix (hosts/, leader, placements/) belong to liveness and the service.
    }
    this.seq = state.seq;
    this.seqRev = seqRev;
    return state;
  }

  private open(key: string, value: Buffer): unknown {
    const r = unseal(value);
    if (typeof r === "string") throw new StoreCorrupt(key, r);
    return r.data;
  }

  async commit(changes: Change[], extra: Array<{ key: string; value: string }> = []): Promise<number> {
    checkBatch(changes);
    if (changes.length + extra.length > MAX_BATCH) throw new StoreRefused(`a batch of ${changes.length + extra.length} changes: the etcd store takes at most ${MAX_BATCH} in one transaction`);
    const seqKey = `${this.prefix}seq`;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const next = this.seq + 1;
      let txn = this.client.if(seqKey, "Mod", "==", this.seqRev);
      // Create-only extra keys (the service's placement records): a second writer of the same record fails.
      for (const x of extra) txn = txn.and(x.key, "Create", "==", 0);
      if (this.fence) txn = txn.and(this.fence.key, "Create", "==", this.fence.createRevision);
      const id = `${process.pid}.${Date.now().toString(36)}.${(this.batchIds++).toString(36)}`;
      const ops: Array<ReturnType<Etcd3["put"]> | ReturnType<ReturnType<Etcd3["delete"]>["key"]>> = [this.client.put(seqKey).value(`${next} ${id}`)];
      for (const c of changes) {
        if ("estate" in c) ops.push(this.client.put(`${this.prefix}estate`).value(seal(c.estate)));
        else if ("put" in c) ops.push(this.client.put(this.defKey(c.put.domain, c.put.guid)).value(seal(c.put)));
        else ops.push(this.client.delete().key(this.defKey(c.delete.domain, c.delete.guid)));
      }
      for (const x of extra) ops.push(this.client.put(x.key).value(x.value));
      let res;
      try {
        res = await txn.then(...ops).commit();
      } catch (e) {
        // The outcome is unknown (a member died with the request, a leader election): the batch id in the sequence
        // key tells whether this transaction landed; never apply a batch twice.
        if (Date.now() - started > this.retryMs) {
          throw new StoreOutcomeUnknown(`batch ${next} (id ${id}) under ${this.prefix}: no answer from a majority of the etcd cluster within ${this.retryMs} ms (${(e as Error).message}); it may still land: reload the state from the store before going on`);
        }
        await new Promise((r) => setTimeout(r, 50));
        const landed = await this.readSeq().catch(() => undefined);
        if (landed?.id === id) {
          this.seq = next;
          this.seqRev = landed.rev;
          return next;
        }
        if (landed) ({ seq: this.seq, rev: this.seqRev } = landed);
        continue;
      }
      if (res.succeeded) {
        this.seq = next;
        this.seqRev = res.header.revision;
        return next;
      }
      // Which compare failed? The fence and the extras refuse; a moved sequence key is a lost race: try again.
      if (this.fence) {
        const f = await this.client.get(this.fence.key).exec();
        if (f.kvs[0]?.create_revision !== this.fence.createRevision) throw new StoreFenced(`${this.fence.key} is no longer held by this writer (another operations service is active): nothing committed`);
      }
      for (const x of extra) {
        if ((await this.client.get(x.key).exec()).kvs.length) throw new StoreRefused(`${x.key} exists already: nothing committed`);
      }
      ({ seq: this.seq, rev: this.seqRev } = await this.readSeq());
      if (attempt > 1000) throw new Error("etcd store: the sequence key keeps changing (1000 lost compare-and-swaps in a row)");
    }
  }

  /** The sequence key: number, the id of the batch that wrote it, and its mod revision. */
  private async readSeq(): Promise<{ seq: number; id: string; rev: string }> {
    const kv = (await this.client.get(`${this.prefix}seq`).exec()).kvs[0];
    if (!kv) return { seq: 0, id: "", rev: "0" };
    return { ...parseSeq(`${this.prefix}seq`, kv.value.toString()), rev: kv.mod_revision };
  }

  async close(): Promise<void> {
    // The client belongs to the caller (it may hold leases of liveness and election too).
  }
}
