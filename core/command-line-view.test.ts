// The command partition's line reader (core/boot/assembly/command-line.ts) against a hostile read-only view of the
// database, run by V8 (the same module the machine AOT-compiles): an index page whose map has a negative (map) entry
// at 4 KiB scale pointing back at its own page, an order outside core's 2–5, and a map page beyond the module's
// memory. Each must end in a refusal (the name is not live; no memory is Available) — not in a recursion without
// end (V8: "Maximum call stack size exceeded"; the machine: the command partition's stack overrun) or a trap.
import { beforeAll, describe, expect, it } from "vitest";
import { COMMAND_LINE, bootModule, instantiateBootModule, type BootModule } from "./boot-module.ts";

const PAGE = 4096;
const UI = 20; // the index page's number
const MAP = 21; // its top map page
const TEXT = 40 * PAGE;
const OUT = TEXT + 256;
/** Index-page offsets (core/assembly/lib/layout.ts UI_MAP_LOW, UI_ORDER, UI_AVAIL). */
const UI_MAP_LOW = 12;
const UI_ORDER = 16;
const UI_AVAIL = 28;
const CL_TOO_MUCH_MEMORY = -2002;
const CL_NAME = -2004;

let boot: BootModule;
let mem: DataView;

beforeAll(async () => {
  boot = instantiateBootModule(await bootModule(), { db_submit: () => -1, db_log_truncate: () => -1 });
  const have = boot.memory.buffer.byteLength / 65536;
  if (have < 64) boot.memory.grow(64 - have); // 4 MiB
  mem = new DataView(boot.memory.buffer);
});

/** An index page at UI with the given order and top map page, Available = 7, and MAP's 1024 entries from `entry`. */
function view(order: number, top: number, entry: (i: number) => number): void {
  new Uint8Array(boot.memory.buffer, UI * PAGE, 2 * PAGE).fill(0);
  mem.setUint32(UI * PAGE + UI_MAP_LOW, top, true);
  mem.setUint32(UI * PAGE + UI_ORDER, order, true);
  mem.setUint32(UI * PAGE + UI_AVAIL, 7, true);
  for (let i = 0; i < 1024; i++) mem.setInt32(MAP * PAGE + 4 * i, entry(i), true);
}

function line(text: string): number {
  new Uint8Array(boot.memory.buffer, TEXT, text.length).set(Buffer.from(text, "latin1"));
  const verb = boot.cl.parse(TEXT, text.length, OUT);
  expect(verb, text).toBeGreaterThan(0);
  expect(mem.getUint32(OUT + COMMAND_LINE.verb, true)).toBe(verb);
  return boot.cl.check(UI, OUT, PAGE);
}

describe("cl_check against a hostile view", () => {
  const selfMap = (i: number): number => (i === 0 ? (MAP | 0x8000_0000) : 0);
  for (const order of [2, 1, 0, 0xffff_ffff]) {
    it(`a map entry pointing back at its own page, order ${order}: refused, no endless walk`, () => {
      view(order, MAP, selfMap);
      expect(line("stop X")).toBe(CL_NAME);
      expect(line("create X 4K")).toBe(CL_TOO_MUCH_MEMORY);
    });
  }

  it("a top map page beyond the module's memory: refused, no trap", () => {
    view(2, 0x3fff_0000, () => 0);
    expect(line("stop X")).toBe(CL_NAME);
  });

  it("every entry of a scale-2 map page pointing back at it (a walk of 1024^k pages): refused in bounded work", () => {
    view(5, MAP, () => MAP | 0x8000_0000);
    const t0 = Date.now();
    expect(line("stop X")).toBe(CL_NAME);
    expect(Date.now() - t0, "milliseconds").toBeLessThan(20_000);
  });

  it("the checks still see a well-formed view: Available bytes counted, the name found", () => {
    // Order 2: the top map's entry 0 is a scale-1 map (page 22) of the first 4 MiB; pages 7.. Available (owner 7).
    view(2, MAP, (i) => (i === 0 ? (22 | 0x8000_0000) : 0));
    for (let i = 0; i < 1024; i++) mem.setInt32(22 * PAGE + 4 * i, i >= 100 && i < 110 ? 7 : 0, true);
    expect(line("create X 40K")).toBe(0);
    expect(line("create X 44K")).toBe(CL_TOO_MUCH_MEMORY);
  });
});
