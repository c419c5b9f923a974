// Tests of the symbolisation `uvt run` applies to the monitor's panic and fault lines (image/symbol-map.ts): a ring-0
// rip becomes <symbol+0xoff> after the load offset is taken off, addresses outside the image's code stay bare.
import { describe, expect, it } from "vitest";
import { formatSymbolMap, imageBaseOf, parseSymbolMap, symbolize, symbolizeLine } from "./symbol-map.ts";

const BASE = 0x140000000n;
const map = formatSymbolMap(
  [
    { address: BASE + 0x1000n, rva: 0x1000, section: ".text", name: "efi_main" },
    { address: BASE + 0x1b65n, rva: 0x1b65, section: ".text", name: "switch_to" },
    { address: BASE + 0x1c30n, rva: 0x1c30, section: ".text", name: "on_timer" },
    { address: BASE + 0x5000n, rva: 0x5000, section: ".rdata", name: "msg" },
    { address: BASE + 0x9000n, rva: 0x9000, section: ".bss", name: "g_stack" },
  ],
  BASE,
  "BOOTX64.EFI",
  33,
);
const entries = parseSymbolMap(map);
// Where OVMF put a 256 MiB guest's image in one of our boots: actual − preferred.
const LOAD = 0xde4f000n;
const OFFSET = LOAD - BASE;

describe("symbolize", () => {
  it("names an address inside a routine as symbol+offset, the start as the bare symbol", () => {
    expect(symbolize(entries, BASE + 0x1c30n)).toBe("on_timer");
    expect(symbolize(entries, BASE + 0x1c4an)).toBe("on_timer+0x1a");
    expect(symbolize(entries, BASE + 0x1b70n)).toBe("switch_to+0xb");
  });
  it("leaves addresses outside the image's code unnamed", () => {
    expect(symbolize(entries, BASE)).toBeUndefined(); // the PE headers
    expect(symbolize(entries, BASE + 0x5004n)).toBeUndefined(); // read-only data
    expect(symbolize(entries, BASE + 0x9010n)).toBeUndefined(); // past the last symbol
    expect(symbolize(entries, 0x8000001234n)).toBeUndefined(); // a partition window address
  });
  it("reads the preferred base from the map's header", () => {
    expect(imageBaseOf(map)).toBe(BASE);
    expect(imageBaseOf("# nothing\n")).toBeUndefined();
  });
});

describe("symbolizeLine", () => {
  it("appends the symbol to a panic line's ring-0 rip, relocated by the load offset", () => {
    const rip = `0x${(LOAD + 0x1c4an).toString(16)}`;
    expect(symbolizeLine(`ultravisor: panic: vector 13 rip ${rip} cr2 0x0 error 0x0`, entries, OFFSET)).toBe(
      `ultravisor: panic: vector 13 rip ${rip} <on_timer+0x1a> cr2 0x0 error 0x0`,
    );
  });
  it("without the offset the same rip names nothing (it is not in the image at its preferred base)", () => {
    const line = `ultravisor: panic: vector 13 rip 0x${(LOAD + 0x1c4an).toString(16)} cr2 0x0 error 0x0`;
    expect(symbolizeLine(line, entries, 0n)).toBe(line);
  });
  it("leaves a partition fault's window rip bare (the map has no partition symbols) and names image code", () => {
    const window = "partition X: fault vector 14 at 0x10 rip 0x8000001234 error 0x4";
    expect(symbolizeLine(window, entries, OFFSET)).toBe(window);
    const idle = `partition idle: fault vector 6 at 0x${(LOAD + 0x1b65n).toString(16)} rip 0x${(LOAD + 0x1b65n).toString(16)} error 0x0`;
    expect(symbolizeLine(idle, entries, OFFSET)).toBe(`${idle.replace(/ error/, " <switch_to> error")}`);
  });
  it("touches no other line, even one with a rip in it", () => {
    const other = `X: rip 0x${(LOAD + 0x1c30n).toString(16)} said hello`;
    expect(symbolizeLine(other, entries, OFFSET)).toBe(other);
  });
});
