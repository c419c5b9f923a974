// Every life-cycle action from every (stage, state) pair of [0304]–[0312]: allowed exactly where the table of
// docs/specs/operations.md §2 allows it, refused with a reason everywhere else. The expected table below is
// transcribed from the spec document, not computed from ops/lifecycle.ts.
import { describe, expect, it } from "vitest";
import { ACTIONS, category, decide, type Rule } from "./lifecycle.ts";
import type { Stage, State } from "./model.ts";

const PAIRS: Array<[Stage, State]> = [
  ["construction", "uninstalled"],
  ...(["provisioning", "operating", "manual"] as const).flatMap((s) => (["stopped", "saved", "running", "paused"] as const).map((t): [Stage, State] => [s, t])),
  ["disabled", "disabled"], ["decommissioned", "disabled"], ["template", "disabled"],
];

/** action → "stage/state" → [new stage, new state] (from the spec document's tables). */
const LIVE = ["provisioning", "operating", "manual"] as const;
const EXPECTED: Record<string, Record<string, [Stage, State]>> = {
  provision: { "construction/uninstalled": ["provisioning", "stopped"] },
  template: { "construction/uninstalled": ["template", "disabled"], "provisioning/stopped": ["template", "disabled"] },
  operate: {
    ...Object.fromEntries((["stopped", "saved", "running", "paused"] as const).map((t) => [`provisioning/${t}`, ["operating", t]])),
    ...Object.fromEntries((["stopped", "saved", "running", "paused"] as const).map((t) => [`manual/${t}`, ["operating", t]])),
    "disabled/disabled": ["operating", "stopped"],
  },
  manual: Object.fromEntries((["stopped", "saved", "running", "paused"] as const).map((t) => [`operating/${t}`, ["manual", t]])),
  disable: Object.fromEntries(LIVE.flatMap((s) => (["stopped", "saved", "running", "paused"] as const).map((t) => [`${s}/${t}`, ["disabled", "disabled"]]))),
  decommission: { "disabled/disabled": ["decommissioned", "disabled"] },
  start: Object.fromEntries(LIVE.flatMap((s) => (["stopped", "saved"] as const).map((t) => [`${s}/${t}`, [s, "running"]]))),
  stop: Object.fromEntries(LIVE.flatMap((s) => (["running", "paused"] as const).map((t) => [`${s}/${t}`, [s, "stopped"]]))),
  pause: Object.fromEntries(LIVE.map((s) => [`${s}/running`, [s, "paused"]])),
  resume: Object.fromEntries(LIVE.map((s) => [`${s}/paused`, [s, "running"]])),
  save: Object.fromEntries(LIVE.flatMap((s) => (["running", "paused"] as const).map((t) => [`${s}/${t}`, [s, "saved"]]))),
};

describe("life-cycle table", () => {
  it("names every action of the spec document", () => {
    expect([...ACTIONS].sort()).toEqual(Object.keys(EXPECTED).sort());
  });
  for (const action of ACTIONS) {
    it(`${action}: allowed exactly where the spec table says, to the stage and state it says; refused elsewhere with a reason`, () => {
      for (const [stage, state] of PAIRS) {
        const key = `${stage}/${state}`;
        const d = decide({ name: "P", stage, state, configurations: [{ name: "c", memory: 4 << 20, vcpus: 1 }] }, action);
        const want = EXPECTED[action]![key];
        if (want) {
          expect(typeof d, `${action} from ${key}: ${String(d)}`).toBe("object");
          const r = d as Rule;
          expect([r.to ?? stage, r.toState ?? state], `${action} from ${key}`).toEqual(want);
          expect(r.source).toMatch(/\[0\d{3}\]|decision/);
        } else {
          expect(typeof d, `${action} from ${key} must be refused`).toBe("string");
          expect(d as string).toContain(`${action} is not allowed in stage ${stage}`);
        }
      }
    });
  }
  it("provision needs a configuration ([0305])", () => {
    expect(decide({ name: "P", stage: "construction", state: "uninstalled", configurations: [] }, "provision")).toMatch(/at least one configuration/);
  });
  it("an unknown action is refused", () => {
    expect(decide({ name: "P", stage: "operating", state: "running", configurations: [] }, "explode")).toMatch(/unknown action/);
  });
  it("[0312]'s categories", () => {
    expect(["uninstalled", "stopped", "saved", "starting", "running", "paused", "disabled"].map((s) => category(s as State)))
      .toEqual(["uninstalled", "inactive", "inactive", "active", "active", "active", "disabled"]);
  });
});
