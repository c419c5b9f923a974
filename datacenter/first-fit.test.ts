// The first-fit index against the scan it replaces: random updates and queries over a few sizes (including ones that
// are not powers of two), each answer compared with a linear search of the same values.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FirstFitIndex } from "./first-fit.ts";

function scan(values: number[], need: number, from: number): number {
  for (let i = Math.max(0, from); i < values.length; i++) if (values[i]! >= need) return i;
  return -1;
}

describe("first-fit index", () => {
  it("answers as a linear scan does, after any updates", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 70 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: -1, max: 20 }), fc.integer({ min: 0, max: 21 }), fc.integer({ min: -2, max: 80 })), { maxLength: 200 }),
      (n, ops) => {
        const idx = new FirstFitIndex(n);
        const values = new Array<number>(n).fill(-1);
        for (const [i, v, need, from] of ops) {
          idx.set(i % n, v);
          values[i % n] = v;
          expect(idx.leftmost(need, from)).toBe(scan(values, need, from));
          expect(idx.get(i % n)).toBe(v);
        }
      },
    ), { numRuns: 300 });
  });

  it("refuses an index out of range and changes nothing", () => {
    const idx = new FirstFitIndex(3);
    idx.set(1, 5);
    expect(() => idx.set(3, 9)).toThrow(RangeError);
    expect(() => idx.set(-1, 9)).toThrow(RangeError);
    expect(idx.leftmost(0)).toBe(1);
    expect(idx.leftmost(6)).toBe(-1);
  });
});
