// ChannelZonesAvailable ([0290]) on the worked example of Fig. 13 ([0275]–[0277]): five hosts, eight guests, two
// SANs, two networks, two direct-attached storages. The hosts' and guests' channels are written from the text of
// [0275]–[0276]; the expected hosts are [0277]'s sentences (G1–G3 on H1 or H2, G6–G8 on H4 or H5; we read G6–G8,
// not [0279]'s G5–G8: docs/specs/operations.md §3), and G4/G5 each on the single host with its DAS.
import { describe, expect, it } from "vitest";
import { channelZonesAvailable, matchingHosts, missingZones, ZoneIndex } from "./zones.ts";
import type { Estate, HostDef, ZoneRef } from "./model.ts";

const san = (z: string): ZoneRef => ({ type: "storage", zone: z });
const net = (z: string): ZoneRef => ({ type: "network", zone: z });
const host = (name: string, zones: ZoneRef[]): HostDef => ({ name, memory: 8 << 30, pcpus: 4, domain: "System", zones });

// [0275]: H1 HBA→SAN1, NIC→NET1; H4, H5 HBA→SAN2, NIC→NET2; H2 like H1 plus a NIC on NET2 and DAS2; H3 "similar to
// H2, except naturally the DAS is distinct". Read literally H3 would also reach SAN1, and [0277]'s "G1, G2, G3 can run
// on either H1 or H2" would be false (the last test shows it); we follow [0277]: H3 has its NICs and DAS3, no HBA on
// SAN1 (docs/specs/operations.md §3).
const H3_LITERAL = host("H3", [san("SAN1"), net("NET1"), net("NET2"), san("DAS3")]);
const HOSTS = [
  host("H1", [san("SAN1"), net("NET1")]),
  host("H2", [san("SAN1"), net("NET1"), net("NET2"), san("DAS2")]),
  host("H3", [net("NET1"), net("NET2"), san("DAS3")]),
  host("H4", [san("SAN2"), net("NET2")]),
  host("H5", [san("SAN2"), net("NET2")]),
];
// [0276]: G1–G3 SAN1 + NET1; G6–G8 SAN2 + NET2; G4, G5 firewalls between NET1 and NET2 with storage on DAS2, DAS3.
const GUESTS: Record<string, ZoneRef[]> = {
  G1: [san("SAN1"), net("NET1")], G2: [san("SAN1"), net("NET1")], G3: [san("SAN1"), net("NET1")],
  G4: [san("DAS2"), net("NET1"), net("NET2")], G5: [san("DAS3"), net("NET1"), net("NET2")],
  G6: [san("SAN2"), net("NET2")], G7: [san("SAN2"), net("NET2")], G8: [san("SAN2"), net("NET2")],
};
const EXPECTED: Record<string, string[]> = {
  G1: ["H1", "H2"], G2: ["H1", "H2"], G3: ["H1", "H2"], G4: ["H2"], G5: ["H3"], G6: ["H4", "H5"], G7: ["H4", "H5"], G8: ["H4", "H5"],
};

describe("ChannelZonesAvailable, Fig. 13", () => {
  for (const [g, zones] of Object.entries(GUESTS)) {
    it(`${g} can run on ${EXPECTED[g]!.join(" or ")}`, () => {
      expect(HOSTS.filter((h) => channelZonesAvailable(zones, h.zones)).map((h) => h.name)).toEqual(EXPECTED[g]);
      expect(new ZoneIndex(HOSTS).candidates(zones).sort()).toEqual(EXPECTED[g]);
    });
  }
  it("with H3 read literally (an HBA on SAN1 like H2), G1 could also run on H3, against [0277]", () => {
    const literal = HOSTS.map((h) => (h.name === "H3" ? H3_LITERAL : h));
    expect(literal.filter((h) => channelZonesAvailable(GUESTS.G1!, h.zones)).map((h) => h.name)).toEqual(["H1", "H2", "H3"]);
  });
  it("a type must match as well as the zone name", () => {
    expect(channelZonesAvailable([{ type: "network", zone: "SAN1" }], HOSTS[0]!.zones)).toBe(false);
    expect(missingZones([net("NET2"), san("SAN1")], HOSTS[0]!.zones)).toEqual(["network:NET2"]);
  });
  it("a guest with no channels runs anywhere; the domain limits the hosts", () => {
    const estate: Estate = { name: "fig13", zones: [], hosts: HOSTS, domains: [{ name: "Test", kind: "partition", hosts: ["H1", "H4"] }] };
    expect(matchingHosts(estate, "Test", []).map((h) => h.name)).toEqual(["H1", "H4"]);
    expect(matchingHosts(estate, "Test", GUESTS.G6!).map((h) => h.name)).toEqual(["H4"]);
    expect(matchingHosts(estate, "Nope", []).map((h) => h.name)).toEqual([]);
  });
});
