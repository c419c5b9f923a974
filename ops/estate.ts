// Estate files (layer: ops/): the YAML or JSON a user writes to describe an operations estate — zones, hosts with
// the zones they offer, domains, and partition definitions with the life-cycle actions to apply at creation — read
// and checked with zod (sizes as in host definitions: "4 GB"), then loaded into a fresh store through the policy
// service, so an example estate passes the same checks as a request. docs/specs/operations.md §1; examples/ops/*.yaml.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { size } from "../definition/host.ts";
import { ACTIONS } from "./lifecycle.ts";
import { type Estate, OpsError, ZONE_TYPES } from "./model.ts";
import { PolicyService, type PolicyOptions } from "./policy.ts";
import type { DefinitionStore } from "./store/store.ts";

export const ESTATE_REVISION = 1;

const bytes = size.transform((b) => Number(b));
const zoneRef = z.strictObject({ type: z.enum(ZONE_TYPES), zone: z.string().min(1) });
const when = z.union([
  z.strictObject({ day: z.enum(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), time: z.string() }),
  z.strictObject({ monthday: z.int(), time: z.string() }),
]);
const config = z.strictObject({ name: z.string(), memory: bytes.default(0), vcpus: z.int().default(0), disable: z.array(z.string()).optional() });

export const estateFileSchema = z.strictObject({
  estate: z.literal(ESTATE_REVISION),
  name: z.string().default("estate"),
  zones: z.array(z.strictObject({ type: z.enum(ZONE_TYPES), name: z.string().min(1) })).default([]),
  hosts: z.array(z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,31}$/), memory: bytes, pcpus: z.int().min(1).max(64), domain: z.string(),
    zones: z.array(zoneRef).default([]),
  })).default([]),
  domains: z.array(z.strictObject({ name: z.string(), kind: z.enum(["partition", "system"]), hosts: z.array(z.string()).default([]) })).default([]),
  partitions: z.array(z.strictObject({
    name: z.string(), domain: z.string(), guid: z.string().optional(), template: z.string().optional(),
    stage: z.enum(["construction", "template"]).optional(), channels: z.array(zoneRef).optional(),
    configurations: z.array(config).optional(), volume: z.string().optional(),
    schedule: z.array(z.strictObject({ when, state: z.enum(["running", "paused", "stopped"]), configuration: z.string().optional() })).optional(),
    then: z.array(z.enum(ACTIONS)).default([]),
  })).default([]),
});
export type EstateFile = z.infer<typeof estateFileSchema>;

/** Reads and checks an estate file; problems are one OpsError with a line per problem, `FILE: path: message`. */
export function readEstateFile(file: string): EstateFile {
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new OpsError(`${file}: cannot read the estate: ${(e as Error).message.split("\n")[0]}`);
  }
  const r = estateFileSchema.safeParse(raw);
  if (!r.success) throw new OpsError(r.error.issues.map((i) => `${file}: ${i.path.join(".") || "(top)"}: ${i.message}`).join("\n"));
  const e = r.data;
  // Cross references: hosts in domains, host domains, zones offered.
  const problems: string[] = [];
  const hostNames = new Set(e.hosts.map((h) => h.name));
  if (hostNames.size !== e.hosts.length) problems.push("hosts: two hosts have the same name");
  for (const d of e.domains) for (const h of d.hosts) if (!hostNames.has(h)) problems.push(`domains.${d.name}: host ${h} is not in hosts`);
  for (const h of e.hosts) {
    if (!e.domains.some((d) => d.name === h.domain && d.kind === "system")) problems.push(`hosts.${h.name}: domain ${h.domain} is not a system domain of the estate`);
    for (const z of h.zones) if (!e.zones.some((x) => x.type === z.type && x.name === z.zone)) problems.push(`hosts.${h.name}: zone ${z.type}:${z.zone} is not in zones`);
    if (h.memory < 256 * 1048576) problems.push(`hosts.${h.name}: memory must be at least 256 MB (the system partitions take 128 MB)`);
  }
  if (problems.length) throw new OpsError(problems.map((p) => `${file}: ${p}`).join("\n"));
  return e;
}

export function estateOf(e: EstateFile): Estate {
  return { name: e.name, zones: e.zones, hosts: e.hosts, domains: e.domains };
}

/** Writes the estate into an empty store and defines its partitions (applying each one's `then` actions). */
export async function loadEstate(store: DefinitionStore, e: EstateFile, opts: PolicyOptions = {}): Promise<PolicyService> {
  if ((await store.load()).estate) throw new OpsError("the store holds an estate already");
  await store.commit([{ estate: estateOf(e) }]);
  const ps = await PolicyService.open(store, opts);
  for (const p of e.partitions) {
    const { then, ...req } = p;
    const d = await ps.define(req);
    for (const a of then) await ps.transition(d.guid, a);
  }
  return ps;
}
