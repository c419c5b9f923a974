// The storage pair's rules in a host definition (docs/specs/storage-failover.md §7.1): examples/storage-pair.yaml
// loads into the image's configuration with its members, its fault and bus mastering for both devices, and each
// broken pair is refused at the key it is about, in the one error format (definition/check.ts for what every reader
// shares, partitions/config.ts for what only the machine has).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DefinitionError } from "../definition/errors.ts";
import { FIGURE1_FILE, loadConfig } from "./config.ts";

const dir = mkdtempSync(join(tmpdir(), "uv-pair-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(text: string): string {
  const p = join(dir, "host.yaml");
  writeFileSync(p, text);
  try {
    loadConfig(p);
  } catch (e) {
    if (e instanceof DefinitionError) return e.message.replaceAll(p, "host.yaml");
    throw e;
  }
  return "no error";
}

const PAIR = `revision: 2
partitions:
  - { name: idle, kind: idle }
  - { name: io, kind: io, duty: 4 }
  - { name: sa, kind: io, duty: 3, behaviour: { pair: primary, failAtRequest: 20 } }
  - { name: sb, kind: io, duty: 3, behaviour: { pair: secondary } }
  - { name: A, kind: guest, duty: 3, behaviour: { disk: { first: 0, blocks: 24 } } }
devices:
  - { disk: 0, owner: sa }
  - { disk: 1, owner: sb }
`;

describe("the storage pair in a host definition", () => {
  it("examples/storage-pair.yaml loads: two members with a disk each, bus mastering on for both, the primary's fault", () => {
    const c = loadConfig(join(FIGURE1_FILE, "..", "storage-pair.yaml"));
    expect(c.partitions.map((p) => [p.name, p.kind, p.pair, p.failAtRequest])).toEqual([
      ["idle", "idle", undefined, undefined], ["io", "io", undefined, undefined], ["sa", "io", "primary", 20], ["sb", "io", "secondary", undefined],
      ["A", "guest", undefined, undefined], ["B", "guest", undefined, undefined],
    ]);
    expect(c.devices).toEqual([{ match: { disk: 0 }, owner: 2, dma: true }, { match: { disk: 1 }, owner: 3, dma: true }]);
    expect(refusal(PAIR)).toBe("no error");
  });

  it("failAtRequest belongs to the primary alone", () => {
    expect(refusal(PAIR.replace("{ pair: secondary }", "{ pair: secondary, failAtRequest: 3 }"))).toBe(
      "host.yaml:6:66: partitions[3].behaviour.failAtRequest: failAtRequest is the storage pair's primary's fault: give it beside pair: primary");
    expect(refusal(PAIR.replace("{ pair: primary, failAtRequest: 20 }", "{ pair: primary, failAtRequest: 0 }"))).toMatch(/^host\.yaml:5:\d+: .*(>=1|at least 1|too small)/);
  });

  it("only io partitions are members, one primary and one secondary, a console I/O partition beside them", () => {
    expect(refusal(PAIR.replace("{ disk: { first: 0, blocks: 24 } }", "{ pair: primary, disk: { first: 0, blocks: 24 } }"))).toMatch(
      /^host\.yaml:7:\d+: partitions\[4\]\.behaviour\.pair: only an io partition is a member of the storage pair \(this is a 'guest' partition\)/);
    expect(refusal(PAIR.replace("{ pair: secondary }", "{ pair: primary }"))).toMatch(/a storage pair has exactly one primary \(found 2\)/);
    expect(refusal(PAIR.replace("{ pair: secondary }", "{ pair: primary }"))).toMatch(/a storage pair has exactly one secondary \(found 0\)/);
    expect(refusal(PAIR.replace("{ name: io, kind: io, duty: 4 }", "{ name: io, kind: io, duty: 4, behaviour: { pair: secondary } }").replace("{ pair: secondary } }\n", "{ pair: secondary } }\n"))).toMatch(
      /exactly one partition of kind 'io' is needed on bare metal \(found 0 besides the storage pair's members\)/);
  });

  it("each member owns exactly one data disk", () => {
    expect(refusal(PAIR.replace("  - { disk: 1, owner: sb }\n", ""))).toBe(
      "host.yaml:6:55: partitions[3].behaviour.pair: the pair's secondary 'sb' must own exactly one data disk (devices: [{ disk: N, owner: sb }]; it owns 0 devices)");
    expect(refusal(PAIR.replace("  - { disk: 1, owner: sb }\n", "  - { disk: 1, owner: sb }\n  - { disk: 2, owner: sb }\n"))).toMatch(/the pair's secondary 'sb' must own exactly one data disk .*it owns 2 devices/);
  });
});
