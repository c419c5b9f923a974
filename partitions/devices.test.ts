// Tests of the host definition's device list (definition/host.ts `devices`, definition/check.ts checkDevices,
// partitions/config.ts; docs/specs/pci-devices.md §2), read as uvt build reads it: what loads into the image's assignments, and each rule that
// refuses an entry at the key it is about, in the one positioned error format; a host without devices is unchanged.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DefinitionError } from "../definition/errors.ts";
import { figure1Config, loadConfig } from "./config.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-devices-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOST = `revision: 2
partitions:
  - { name: idle, kind: idle }
  - { name: io, kind: io, duty: 2 }
  - { name: X, duty: 4 }
  - { name: V, duty: 2, behaviour: { vm: absent } }
`;

function load(devices: string): ReturnType<typeof loadConfig> | string {
  const p = join(dir, "host.yaml");
  writeFileSync(p, `${HOST}devices:\n${devices}`);
  try {
    return loadConfig(p);
  } catch (e) {
    if (e instanceof DefinitionError) return e.message.replaceAll(p, "host.yaml");
    throw e;
  }
}

describe("the host definition's PCI devices", () => {
  it("turns disk N and a bus-0 address into assignments with the owner's index", () => {
    const c = load(`  - { disk: 0, owner: io }\n  - { pci: "00:1f.2", owner: X }\n  - { disk: 1, owner: X }\n`);
    expect(typeof c === "string" ? c : c.devices).toEqual([
      { match: { disk: 0 }, owner: 1, dma: true },
      { match: { bdf: (0x1f << 3) | 2 }, owner: 2 },
      { match: { disk: 1 }, owner: 2 },
    ]);
  });

  it("leaves a host without devices as it was (no devices key in its configuration)", () => {
    expect("devices" in figure1Config()).toBe(false);
  });

  it.each([
    ["neither disk nor pci", `  - { owner: io }\n`, "host.yaml:8:7: devices[0].owner: give exactly one of disk (the N-th uvt run --disk) or pci"],
    ["both", `  - { disk: 0, pci: "00:02.0", owner: io }\n`, "host.yaml:8:32: devices[0].owner: give exactly one of disk"],
    ["a malformed address", `  - { pci: "0:2.0", owner: io }\n`, 'host.yaml:8:12: devices[0].pci: "0:2.0" is not a PCI address "bb:dd.f" in hex'],
    ["function 8", `  - { pci: "00:02.8", owner: io }\n`, 'host.yaml:8:12: devices[0].pci: "00:02.8" is not a PCI address'],
    ["device 0x20", `  - { pci: "00:20.0", owner: io }\n`, 'host.yaml:8:12: devices[0].pci: "00:20.0" is not a PCI address'],
    ["a bus other than 0", `  - { pci: "01:00.0", owner: io }\n`, "host.yaml:8:12: devices[0].pci: bus 01 is not enumerated: the ultravisor walks bus 00 only"],
    ["an unknown owner", `  - { disk: 0, owner: nobody }\n`, "host.yaml:8:23: devices[0].owner: 'nobody' is not a partition of this host (partitions: io, X, V)"],
    ["the idle partition", `  - { disk: 0, owner: idle }\n`, "host.yaml:8:23: devices[0].owner: 'idle' cannot own a device: only an io or guest partition running at CPL 3 can (this is the 'idle' partition)"],
    ["a virtualized guest", `  - { disk: 0, owner: V }\n`, "host.yaml:8:23: devices[0].owner: 'V' cannot own a device: only an io or guest partition running at CPL 3 can (this is a virtualized partition)"],
    ["a device twice", `  - { disk: 0, owner: io }\n  - { disk: 0, owner: X }\n`, "host.yaml:9:13: devices[1].disk: disk 0 is already given by devices[0] (a device has one owner)"],
    ["an address twice, in either case", `  - { pci: "00:0a.0", owner: io }\n  - { pci: "00:0A.0", owner: X }\n`, "host.yaml:9:12: devices[1].pci: pci 00:0a.0 is already given by devices[0]"],
  ])("refuses %s, positioned", (_what, devices, message) => {
    const r = load(devices);
    expect(typeof r === "string" ? r : "loaded").toContain(message);
  });
});
