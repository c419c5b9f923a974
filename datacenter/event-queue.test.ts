// The event queue pops in (time, scheduling order), the order a stable sort gives: random pushes and pops, including
// many equal times, against a sorted array.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { EventQueue } from "./event-queue.ts";

describe("event queue", () => {
  it("pops in time order, equal times in the order scheduled", () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
      const q = new EventQueue();
      const oracle: Array<{ t: number; id: number }> = [];
      let id = 0;
      for (const op of ops) {
        if (op >= 0) {
          const mine = id++;
          q.push(op, () => {});
          oracle.push({ t: op, id: mine });
          oracle.sort((a, b) => a.t - b.t || a.id - b.id);
        } else {
          const got = q.pop();
          const want = oracle.shift();
          expect(got === undefined ? undefined : { t: got.t, id: got.seq }).toEqual(want);
        }
        expect(q.length).toBe(oracle.length);
        expect(q.peek()?.seq).toBe(oracle[0]?.id);
      }
    }), { numRuns: 300 });
  });
});
