// Host liveness by etcd leases (docs/specs/operations.md §7; layer: ops/): a host announces itself with the key
// PREFIX/hosts/NAME attached to a lease it keeps alive; when the host dies or is cut off, etcd deletes the key when the
// lease expires, and a clean shutdown revokes the lease at once. The policy service never hears "I died" from a host:
// it reads PREFIX/hosts/ once and then watches it from the next revision, a put being a host up and a delete a host
// down. The data center's deterministic mode keeps its own simulated leases (datacenter/, ADR 0013).
import type { Etcd3, Lease, Watcher } from "etcd3";

const NAME_RE = /^[A-Za-z0-9_-]{1,31}$/;

/** A host's announcement: revoke() takes it back at once; `lost` is set when etcd said the lease is gone. */
export class HostAnnouncement {
  lost: Error | undefined;
  private constructor(private readonly lease: Lease, readonly host: string) {
    lease.on("lost", (e: Error) => (this.lost = e));
  }

  /** Announces `host` with a lease of `ttl` seconds (kept alive every ttl/3 by the client). */
  static async announce(client: Etcd3, prefix: string, host: string, ttl = 3): Promise<HostAnnouncement> {
    if (!NAME_RE.test(host)) throw new Error(`host name "${host}" is not 1–31 letters, digits, _ or -`);
    const lease = client.lease(ttl);
    await lease.grant();
    await lease.put(`${prefix}hosts/${host}`).value(JSON.stringify({ host, since: new Date().toISOString() }));
    return new HostAnnouncement(lease, host);
  }

  async revoke(): Promise<void> {
    await this.lease.revoke();
  }

  /** Stops renewing without revoking: the host looks dead to the cluster, which deletes its key after the TTL. */
  stopRenewing(): void {
    this.lease.release();
  }
}

export type HostEvent = { host: string; up: boolean; at: number };

/** The set of live hosts under a prefix, kept current by a watch; `onChange` hears every up and down. */
export class HostWatcher {
  readonly alive = new Set<string>();
  private constructor(private readonly watcher: Watcher) {}

  static async start(client: Etcd3, prefix: string, onChange: (e: HostEvent) => void): Promise<HostWatcher> {
    const base = `${prefix}hosts/`;
    const res = await client.getAll().prefix(base).exec();
    // Watch from the revision after the read: no change between the read and the watch is missed.
    const watcher = await client.watch().prefix(base).startRevision(String(BigInt(res.header.revision) + 1n)).create();
    const w = new HostWatcher(watcher);
    for (const kv of res.kvs) {
      const host = kv.key.toString().slice(base.length);
      w.alive.add(host);
      onChange({ host, up: true, at: Date.now() });
    }
    watcher.on("put", (kv) => {
      const host = kv.key.toString().slice(base.length);
      if (w.alive.has(host)) return;
      w.alive.add(host);
      onChange({ host, up: true, at: Date.now() });
    });
    watcher.on("delete", (kv) => {
      const host = kv.key.toString().slice(base.length);
      if (!w.alive.delete(host)) return;
      onChange({ host, up: false, at: Date.now() });
    });
    return w;
  }

  async close(): Promise<void> {
    await this.watcher.cancel();
  }
}
