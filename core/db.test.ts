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
    for (let i = 0; i < 17; i++) v.setUint32(PARAMS + 4 * i, words[i] ?? 0, true);
  };
  return { memory, f, v, params };
}

// order 3, ui [0,1,23], missing 19, avail 20, idle 21, boot 22, log [0,2,528]+496, region 1, top [0,1,0], PMM [0,1,1],
// PKM [0,1,18], hostBytes 0, private 4 MiB page [0,2,*] (word 16)
const GOOD = [3, page(1, 23), page(1, 19), page(1, 20), page(1, 21), page(1, 22), 0x800 + 528, 496, 1, page(1, 0), page(1, 1), page(1, 18), 0, 0, 0, 0, 2];

describe("core.wasm database entry points", () => {
  it("reports garbage and missing state with codes", async () => {
    const { f } = await fresh();
    expect(f.db_get_owner!(0, 0)).toBe(-17);
    expect(f.db_submit!(PARAMS)).toBe(-17);
    expect(f.db_recover!()).toBe(-17);
    expect(f.db_replay!(0)).toBe(-17);
    expect(f.db_attach!(page(1, 23))).toBe(-17);
    expect(f.db_attach!(0xffffffff)).toBe(-17);
    // A database whose private 4 MiB page [0,2,*] lies beyond linear memory does not attach.
    const { f: g, params, memory } = await fresh();
    params(GOOD);
    expect(g.db_bootstrap!(PARAMS)).toBe(0);
    const small = await fresh(129);
    new Uint8Array(small.memory.buffer).set(new Uint8Array(memory.buffer, 0, 129 * 65536));
    expect(small.f.db_attach!(page(1, 23))).toBe(-17);
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
    expect(bad((w) => (w[8] = 2))).toBe(-4); // the database's page may not be the private one
    expect(bad((w) => (w[16] = 0))).toBe(-4); // nor may the private page be the first 4 MiB
    expect(bad((w) => (w[16] = 1))).toBe(-4); // or the database's own
    expect(bad((w) => (w[16] = 3))).toBe(-4); // beyond memory (192 wasm pages = 12 MiB), and the log is outside it
    expect(bad((w) => (w[3] = w[2]!))).toBe(-1);
    expect(bad((w) => (w[6] = 0x800))).toBe(-4);
    expect(bad((w) => (w[1] = page(3, 23)))).toBe(-4);
    expect(bad((w) => (w[12] = page(1, 40)))).toBe(-1);
    params(GOOD);
    expect(f.db_bootstrap!(PARAMS)).toBe(0);
    expect(f.db_order!()).toBe(3);
    expect(f.db_get_owner!(0x400000 + 23 * 4096, 0)).toBe(page(1, 24));
    expect(f.db_get_owner!(0, 1)).toBe(page(1, 19));
    expect(f.db_private_address!()).toBe(0x800000);
  });

  it("places the private 4 MiB page where the bootstrap says, records it in the index page and finds it at attach", async () => {
    const { f, v, params } = await fresh(512); // 32 MiB
    const w = [...GOOD];
    w[16] = 6; // [0,6,*] = 24–28 MiB
    w[6] = page(6, 528);
    w[7] = 496;
    params(w);
    expect(f.db_bootstrap!(PARAMS)).toBe(0);
    expect(f.db_private_address!()).toBe(0x1800000);
    expect(f.db_log_address!()).toBe(page(6, 528) * 4096);
    const ui = f.db_ui_address!();
    expect(v.getUint32(ui + 64, true)).toBe(6);
    expect(v.getUint32(ui + 4, true)).toBe(0x00020000);
    // The PMM says the ultravisor owns [0,6,*]; [0,2,*] is Missing like the rest.
    expect(f.db_get_owner!(0x1800000, 0)).toBe(page(1, 24));
    expect(f.db_get_owner!(0x1bff000, 0)).toBe(page(1, 24));
    expect(f.db_get_owner!(0x800000, 0)).toBe(page(1, 19));
    // Nothing was written in [0,2,*] but the parameter block this test put there: the old fixed place is not used.
    new Uint8Array(v.buffer, PARAMS, 68).fill(0);
    expect(new Uint8Array(v.buffer, 0x800000, 0x400000).findIndex((x) => x !== 0)).toBe(-1);
    // The map directory is at +64 KiB of the private page: attach rebuilds it there.
    new Uint8Array(v.buffer, 0x1810000, 0x200000).fill(0);
    expect(f.db_attach!(page(1, 23))).toBe(0);
    expect(v.getUint16(0x1810000 + 2 * page(1, 0), true)).not.toBe(0);
    // A log outside the private page is refused at bootstrap and at attach.
    w[6] = page(2, 528);
    params(w);
    expect(f.db_bootstrap!(PARAMS)).toBe(-4);
    v.setUint32(ui + 44, page(5, 528), true);
    expect(f.db_attach!(page(1, 23))).toBe(-17);
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
