// The partition life cycle as a table (docs/specs/operations.md §2; layer: ops/): the seven stages of [0304]–[0311],
// the states of [0312], and every action allowed from each. Each rule carries its source sentence or says it is a
// decision. `decide` only reads: it answers with the rule or the reason the action is refused, so a refused request
// changes nothing. What an action does on a host (place, release) is the policy service's (ops/policy.ts).
import type { PartitionDefinition, Stage, State } from "./model.ts";

export const ACTIONS = ["provision", "template", "operate", "manual", "disable", "decommission", "start", "stop", "pause", "resume", "save"] as const;
export type Action = (typeof ACTIONS)[number];

/** What the policy service must do on a host for the transition. */
export type HostEffect = "none" | "place" | "release" | "release-if-active";

export interface Rule {
  action: Action;
  from: readonly Stage[];
  /** Allowed states; any state of those stages when absent. */
  fromStates?: readonly State[];
  /** New stage; unchanged when absent. */
  to?: Stage;
  /** New state; unchanged when absent. */
  toState?: State;
  host: HostEffect;
  source: string;
}

const LIVE: readonly Stage[] = ["provisioning", "operating", "manual"];
const INACTIVE: readonly State[] = ["stopped", "saved"];
export const ACTIVE: readonly State[] = ["starting", "running", "paused"];

export const RULES: readonly Rule[] = [
  { action: "provision", from: ["construction"], to: "provisioning", toState: "stopped", host: "none",
    source: "[0305]–[0306]: once construction is complete (at least one configuration) the partition enters provisioning" },
  { action: "template", from: ["construction"], to: "template", toState: "disabled", host: "none",
    source: "[0311]: partitions can move directly from construction to the template stage" },
  { action: "template", from: ["provisioning"], fromStates: ["stopped"], to: "template", toState: "disabled", host: "none",
    source: "[0311]: one may move a stopped partition from the provisioning stage to the template stage" },
  { action: "operate", from: ["provisioning"], to: "operating", host: "none",
    source: "[0307]: once provisioning is completed, the partition enters the operating stage" },
  { action: "operate", from: ["manual"], to: "operating", host: "none", source: "decision: the way back from manual" },
  { action: "operate", from: ["disabled"], to: "operating", toState: "stopped", host: "none",
    source: "[0310]: disabled partitions remain inactive until moved back to the operating stage" },
  { action: "manual", from: ["operating"], to: "manual", host: "none",
    source: "decision: [0304] Manual beside Operating (Automatic): operating without automatic policy" },
  { action: "disable", from: LIVE, to: "disabled", toState: "disabled", host: "release-if-active",
    source: "[0310]: partitions can be explicitly disabled, like unplugging the virtual power cord (decision: an active one is stopped first)" },
  { action: "decommission", from: ["disabled"], to: "decommissioned", toState: "disabled", host: "none",
    source: "[0310]: permanently deactivated by moving to the decommissioned stage" },
  { action: "start", from: LIVE, fromStates: INACTIVE, toState: "running", host: "place",
    source: "[0306] started and stopped; [0183] on activation the operations partition selects a host; [0312] Starting, Running" },
  { action: "stop", from: LIVE, fromStates: ["running", "paused"], toState: "stopped", host: "release", source: "[0306], [0186]" },
  { action: "pause", from: LIVE, fromStates: ["running"], toState: "paused", host: "none", source: "[0312]: Paused (Standby) is active (decision: resources kept)" },
  { action: "resume", from: LIVE, fromStates: ["paused"], toState: "running", host: "none", source: "decision: the way back from pause" },
  { action: "save", from: LIVE, fromStates: ["running", "paused"], toState: "saved", host: "release", source: "[0312]: Saved (Hibernate) is inactive" },
];

/** The stage's category of [0312]. */
export function category(state: State): "uninstalled" | "inactive" | "active" | "disabled" {
  if (state === "uninstalled") return "uninstalled";
  if (state === "disabled") return "disabled";
  return ACTIVE.includes(state) ? "active" : "inactive";
}

/** The rule that allows `action` on `def`, or the reason it is refused (nothing is changed either way). */
export function decide(def: Pick<PartitionDefinition, "stage" | "state" | "configurations" | "name">, action: string): Rule | string {
  if (!(ACTIONS as readonly string[]).includes(action)) return `unknown action "${action}" (known: ${ACTIONS.join(", ")})`;
  const rules = RULES.filter((r) => r.action === action);
  const rule = rules.find((r) => r.from.includes(def.stage) && (!r.fromStates || r.fromStates.includes(def.state)));
  if (!rule) {
    const allowed = rules.map((r) => `${r.from.join("/")}${r.fromStates ? ` (${r.fromStates.join("/")})` : ""}`).join("; ");
    return `${def.name}: ${action} is not allowed in stage ${def.stage} (state ${def.state}); it is allowed from ${allowed}`;
  }
  if (action === "provision" && def.configurations.length === 0) {
    return `${def.name}: provision needs at least one configuration ([0305]); add one first`;
  }
  return rule;
}

/** Actions allowed now (what the console offers). */
export function allowedActions(def: Pick<PartitionDefinition, "stage" | "state" | "configurations" | "name">): Action[] {
  return ACTIONS.filter((a) => typeof decide(def, a) !== "string");
}
