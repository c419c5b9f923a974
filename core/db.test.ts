// Tests of core.wasm's database entry points on raw linear memory (V8 runs the real module): attaching garbage,
// bootstrap parameter errors, and a corrupted audit log are reported with error codes, never a trap.
import { describe, expect, it } from "vitest";
import { loadCore } from "./wasm.ts";
import { WA } from "./webassembly.ts";

type Fn = (...a: number[]) => number;
const PARAMS = 0x808000;
const page = (m: number, k: number): number => m * 1024 + k;

async function fresh(pages = 192) {
  const memory = new WA.Memory({ initial: pages, maximum: 65536 });
  const core = await loadCore({ memory });
  const f = core.exports as Record<string, Fn>;
  const v = new DataView(memory.buffer);
  const params = (words: number[]): void => {
    for (let i = 0; i < 16; i++) v.setUint32(PARAMS + 4 * i, words[i] ?? 0, true);
  };
  return { memory, f, v, params };
}

// order 3, ui [0,1,23], missing 19, avail 20, idle 21, boot 22, log [0,2,528]+496, region 1, top [0,1,0], PMM [0,1,1], PKM [0,1,18]
const GOOD = [3, page(1, 23), page(1, 19), page(1, 20), page(1, 21), page(1, 22), 0x800 + 528, 496, 1, page(1, 0), page(1, 1), page(1, 18)];

describe("core.wasm database entry points", () => {
  it("reports garbage and missing state with codes", async () => {
    const { f } = await fresh();
    expect(f.db_get_owner!(0, 0)).toBe(-17);
    expect(f.db_submit!(PARAMS)).toBe(-17);
    expect(f.db_recover!()).toBe(-17);
    expect(f.db_replay!(0)).toBe(-17);
    expect(f.db_attach!(page(1, 23))).toBe(-17);
    expect(f.db_attach!(0xffffffff)).toBe(-17);
    const small = await fresh(129);
    expect(small.f.db_attach!(page(1, 23))).toBe(-4);
  });

  it("validates bootstrap parameters", async () => {
    const { f, params } = await fresh();
    const bad = (patch: (w: number[]) => void): number => {
      const w = [...GOOD];
      patch(w);
      params(w);
      return f.db_bootstrap!(PARAMS);
    };
    expect(bad((w) => (w[0] = 7))).toBe(-1);
    expect(bad((w) => (w[8] = 2))).toBe(-4);
    expect(bad((w) => (w[3] = w[2]!))).toBe(-1);
    expect(bad((w) => (w[6] = 0x800))).toBe(-4);
    expect(bad((w) => (w[1] = page(3, 23)))).toBe(-4);
    expect(bad((w) => (w[12] = page(1, 40)))).toBe(-1);
    params(GOOD);
    expect(f.db_bootstrap!(PARAMS)).toBe(0);
    expect(f.db_order!()).toBe(3);
    expect(f.db_get_owner!(0x400000 + 23 * 4096, 0)).toBe(page(1, 24));
    expect(f.db_get_owner!(0, 1)).toBe(page(1, 19));
  });

  it("detects a corrupted audit log on recovery and replay", async () => {
    const { f, v, params } = await fresh();
    params(GOOD);
    expect(f.db_bootstrap!(PARAMS)).toBe(0);
    const log = f.db_log_address!();
    // An in-flight transaction whose BEGIN record is garbage.
    v.setUint32(log + 8, 64, true);
    v.setUint32(log + 28, 1, true);
    v.setUint32(log + 64, 0x77, true);
    expect(f.db_recover!()).toBe(-18);
    // A "committed" region that does not hold transactions.
    v.setUint32(log + 28, 0, true);
    v.setUint32(log + 12, 64, true);
    expect(f.db_replay!(0)).toBe(-18);
    // A header that claims more than the log holds is refused at attach.
    v.setUint32(log + 8, 0x7fffffff, true);
    expect(f.db_attach!(f.db_ui_address!() / 4096)).toBe(-17);
  });
});
