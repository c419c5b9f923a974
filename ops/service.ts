// The redundant operations service (claim 47; docs/specs/operations.md §7; layer: ops/): several processes run it
// against one etcd cluster, and the one holding PREFIX/leader — a key attached to its own lease — is active. It
// campaigns with a create-only transaction, fences its store with the key's create revision (so once its lease is
// gone, whatever it still tries to commit is refused), loads every definition and opens the policy service over
// them. A standby polls until the key is gone (the active one's lease expired or was revoked) and campaigns again.
import type { Etcd3, Lease } from "etcd3";
import { PolicyService, type PolicyOptions } from "./policy.ts";
import { EtcdStore } from "./store/etcd-store.ts";

export interface ServiceOptions {
  /** The estate's key prefix (ends with "/"). */
  prefix: string;
  /** This process's name in PREFIX/leader. */
  id: string;
  /** Lease TTL in seconds (etcd's smallest useful one is about 2). */
  ttl?: number;
  /** How often a standby looks at the leader key. */
  pollMs?: number;
  policy?: PolicyOptions;
}

export class OperationsService {
  /** Set when the lease is gone (expired in the cluster, or revoked): the service must stop acting. */
  lost: Error | undefined;

  private constructor(readonly ps: PolicyService, readonly store: EtcdStore, private readonly lease: Lease, readonly leaderRevision: string) {
    lease.on("lost", (e: Error) => (this.lost = e));
  }

  /** The current leader's id, or undefined. */
  static async leader(client: Etcd3, prefix: string): Promise<string | undefined> {
    return (await client.get(`${prefix}leader`).string()) ?? undefined;
  }

  /** Waits until this process holds PREFIX/leader, then opens the policy service over the fenced store. */
  static async campaign(client: Etcd3, opts: ServiceOptions): Promise<OperationsService> {
    const key = `${opts.prefix}leader`;
    const lease = client.lease(opts.ttl ?? 2);
    const leaseId = await lease.grant();
    let revision: string;
    for (;;) {
      const res = await client.if(key, "Create", "==", 0).then(client.put(key).value(opts.id).lease(leaseId)).commit();
      if (res.succeeded) {
        // The put created the key in this transaction: its create revision is the transaction's revision.
        revision = res.header.revision;
        break;
      }
      if (lease.revoked()) throw new Error(`${opts.id}: lease lost while waiting to become active`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
    }
    const store = new EtcdStore(client, opts.prefix);
    store.fenceWith({ key, createRevision: revision });
    const ps = await PolicyService.open(store, opts.policy);
    return new OperationsService(ps, store, lease, revision);
  }

  /** Gives the leadership up at once (a clean shutdown): a standby takes over within its poll. */
  async resign(): Promise<void> {
    await this.lease.revoke();
  }
}
