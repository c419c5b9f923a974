// The simulated host follows the audit log incrementally (sim/host.ts committed()): over a long run each log record
// is decoded once, so the cost per commit does not grow with the log (issue: a 10,000-partition scenario decoded the
// whole log at every commit). Counted in bytes decoded, not timed; the timing is `npm run bench -- sim`.
import { describe, expect, it } from "vitest";
import { Database } from "../core/database.ts";
import { Host } from "./host.ts";
import { ResourceService } from "./resource-service.ts";

describe("the host's audit-log follower", () => {
  it("decodes each record once across commits, backups and log truncation", async () => {
    const host = await Host.create({ memory: 64n << 30n, keepBackup: false });
    const seen: number[] = [];
    const seq0 = host.db.logHeader().nextSeq;
    host.listeners.push((tx) => seen.push(tx.seq!));
    // Count the bytes each read decodes (a spy would keep every decoded array alive).
    const original = Database.prototype.readAuditFrom;
    let decoded = 0;
    Database.prototype.readAuditFrom = function (this: Database, from: number) {
      const r = original.call(this, from);
      decoded += r.end - from;
      return r;
    };
    const rs = new ResourceService(host);
    let logged = 0;
    let last = host.db.logHeader();
    for (let i = 0; i < 1500; i++) {
      rs.create({ name: `P${i}`, size: 4n << 20n });
      rs.destroy(`P${i}`);
      const h = host.db.logHeader();
      // Bytes the log grew by since the last look (a backup empties it: then everything in it is new).
      logged += h.baseSeq === last.baseSeq ? h.committedEnd - last.committedEnd : h.committedEnd;
      last = h;
    }
    Database.prototype.readAuditFrom = original;
    expect(host.db.logHeader().baseSeq, "the log was emptied by backups along the way").toBeGreaterThan(1);
    expect(decoded).toBe(logged);
    // Every commit (3000 creates and destroys, and the splits placement needed) reached the listener once, in order.
    expect(seen.length).toBe(host.db.logHeader().nextSeq - seq0);
    expect(seen.length).toBeGreaterThanOrEqual(3000);
    expect(seen.every((s, i) => i === 0 || s === seen[i - 1]! + 1)).toBe(true);
  }, 60_000);
});
