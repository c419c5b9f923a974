// Layout checks of monitor-gen/pci.ts against docs/specs/pci-devices.md §4–5: the device list's fields do not overlap
// and fit their entry and its two pages, and the partition addresses it uses (DEVLIST, DEVWIN + physical address)
// stay canonical and clear of the window and the database view. The code itself is checked on the machine
// (test/hw/pci-devices.test.ts: QEMU's info pci is the oracle of the enumeration).
import { describe, expect, it } from "vitest";
import { DBWIN, WINDOW } from "./layout.ts";
import { BAR_MAP_MAX, DEVLIST, DEVWIN, DEVWIN_LIMIT, PCI_LIST, configAddress } from "./pci.ts";

describe("the device list and the device window", () => {
  it("lays every field of an entry inside its 256 bytes without overlap, and 31 entries inside two pages", () => {
    const fields: Array<[string, number, number]> = [
      ["bdf", PCI_LIST.bdf, 2], ["vendor", PCI_LIST.vendor, 2], ["device", PCI_LIST.device, 2], ["header", PCI_LIST.headerType, 1],
      ["class", PCI_LIST.class, 4], ["owner", PCI_LIST.owner, 4], ["caps", PCI_LIST.caps, 2],
      ...[0, 1, 2, 3, 4, 5].flatMap((i): Array<[string, number, number]> => [[`bar${i}`, PCI_LIST.barAddress(i), 8], [`size${i}`, PCI_LIST.barSize(i), 8], [`kind${i}`, PCI_LIST.barKind(i), 1]]),
      ...[0, 1, 2, 3, 4].map((k): [string, number, number] => [`cap${k}`, PCI_LIST.cap(k), 12]),
    ];
    const used = new Map<number, string>();
    for (const [name, at, size] of fields) {
      expect(at + size, `${name} ends inside the entry`).toBeLessThanOrEqual(PCI_LIST.entrySize);
      for (let b = at; b < at + size; b++) {
        expect(used.get(b), `byte ${b} of ${name}`).toBeUndefined();
        used.set(b, name);
      }
    }
    expect(PCI_LIST.header + PCI_LIST.maxEntries * PCI_LIST.entrySize).toBeLessThanOrEqual(PCI_LIST.pages * 4096);
    expect(PCI_LIST.header + (PCI_LIST.maxEntries + 1) * PCI_LIST.entrySize, "no room is wasted for a 32nd entry").toBeGreaterThan(PCI_LIST.pages * 4096);
  });

  it("keeps DEVWIN + every mappable physical address canonical and in PML4 slots no other mapping uses", () => {
    const slot = (va: bigint): bigint => va >> 39n;
    // pci_map refuses a BAR that ends above DEVWIN_LIMIT, so its last byte is at most DEVWIN + DEVWIN_LIMIT − 1.
    expect(DEVWIN + DEVWIN_LIMIT - 1n < 1n << 47n, "the lower canonical half").toBe(true);
    expect(BigInt(BAR_MAP_MAX) < DEVWIN_LIMIT).toBe(true);
    for (const other of [WINDOW, DBWIN, DEVLIST]) expect(slot(other) < slot(DEVWIN), `slot of 0x${other.toString(16)}`).toBe(true);
    expect(slot(DEVLIST)).not.toBe(slot(WINDOW));
    expect(slot(DEVLIST)).not.toBe(slot(DBWIN));
    expect(DEVLIST % 4096n).toBe(0n);
    expect(slot(DEVLIST + BigInt(PCI_LIST.pages * 4096) - 1n)).toBe(slot(DEVLIST));
  });

  it("encodes configuration addresses as mechanism #1 does: enable bit, bus, device, function, dword offset", () => {
    // PCI Local Bus 3.0 §3.2.2.3.2: bit 31 enable, 23:16 bus, 15:11 device, 10:8 function, 7:2 register.
    expect(configAddress(0, 0, 0, 0)).toBe(0x8000_0000);
    expect(configAddress(0, 0x1f, 3, 0x10)).toBe(0x8000_fb10);
    expect(configAddress(1, 2, 1, 0x3e)).toBe(0x8001_113c);
  });
});
