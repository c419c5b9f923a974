// The audit log's EVENT record (memory-layout.md §11.3, core's db_log_event) on a simulated host: recorded between
// transactions without changing txCount or nextSeq, decoded by readAudit, stepped over by replay, and refused (with
// nothing written) for kind 0 or while a transaction is in flight.
import { describe, expect, it } from "vitest";
import { EVENT_KIND } from "../core/database.ts";
import { Platform } from "./platform.ts";

async function host(): Promise<Platform> {
  return Platform.boot({ memory: 16n << 30n, keepBackup: false }, { pcpus: 4 }, () => {}, {
    system: [
      { name: "IOa", kind: "IO", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }] },
      { name: "Command", kind: "Command", user: "System", memory: 64n << 20n, vcpus: [{ duty: 2 }], channels: [{ type: "command", server: "Ultravisor" }] },
    ],
  });
}

const logBytes = (p: Platform): Buffer => {
  const h = p.host.db.logHeader();
  return Buffer.from(new Uint8Array(p.host.memory.buffer, p.host.db.logAddress(), 64 + h.committedEnd));
};

describe("EVENT records in the audit log", () => {
  it("are recorded between transactions, decoded in order, and leave txCount, nextSeq and replay alone", async () => {
    const p = await host();
    const before = p.host.db.logHeader();
    const txs = p.host.db.readAudit().transactions.length;
    expect(p.host.db.logEvent(EVENT_KIND.storageFailover, 0x401, 0x402)).toBe(0);
    const after = p.host.db.logHeader();
    expect([after.txCount, after.nextSeq, after.committedEnd]).toEqual([before.txCount, before.nextSeq, before.committedEnd + 24]);
    p.definePartition({ name: "G", kind: "Guest", memory: 1n << 30n, vcpus: [{ duty: 2 }] });
    const audit = p.host.db.readAudit();
    expect(audit.events).toEqual([{ kind: 1, a: 0x401, b: 0x402, nextSeq: before.nextSeq }]);
    expect(audit.transactions.length).toBeGreaterThan(txs);
    // Replay walks the whole log and steps over the event (a sequence past every transaction applies none: what is
    // checked is that the walk does not take the EVENT for a damaged transaction, LOG_CORRUPT).
    expect(p.host.db.replay(0x7fff_ffff)).toBe(0);
  });

  it("are refused with nothing written for kind 0", async () => {
    const p = await host();
    const bytes = logBytes(p);
    expect(p.host.db.logEvent(0, 1, 2)).toBe(-1);
    expect(logBytes(p).equals(bytes)).toBe(true);
  });
});
