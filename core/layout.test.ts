// The layout check: every magic, offset, kind and size that AssemblyScript (core.wasm, the boot module), TypeScript
// (core's bindings, the simulator) and the generated x64 (which takes its numbers from the TypeScript tables) share
// must agree. AssemblyScript cannot import TypeScript, so each AssemblyScript table is read here from its source and
// compared with the TypeScript table of the same facts, and both with the spec's tables where the spec has one. A
// drift on either side fails this test with the name of the fact.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  CHANNEL_SLOTS, ERRORS, EVENT_KIND, FOUR_MIB, LOG_LEN, PAGE, PD_MAGIC, PN_MASK, PRIVATE, REC, REF_BIT, REQ_MAGIC, REQUEST_MAX,
  UI_CHANNELS, UI_COMMAND, requestLength,
} from "./database.ts";
import { KIND } from "./notation.ts";
import { CHANNEL_HEADER, CHANNEL_HEADER_BYTES, CHANNEL_SIGNATURE, QUEUE_HEADER, QUEUE_HEADER_BYTES, SIGNAL, SIGNAL_FLAGS } from "./channel-layout.ts";
import { BOOT_MODULE_SOURCE, UEFI_DESCRIPTOR, USABLE_UEFI_TYPES } from "./boot-module.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const read = (p: string): string => readFileSync(join(root, p), "utf8");

/** `[export] const NAME: T = VALUE;` of an AssemblyScript file, VALUE a literal (hex, underscores, sign) or `a << b`. */
function asConstants(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lit = (v: string): number => Number(v.replace(/_/g, ""));
  for (const m of text.matchAll(/^(?:export )?const ([A-Z][A-Z0-9_]*): \w+ = (-?[0-9a-fx_]+)(?: << (\d+))?;/gm)) {
    out.set(m[1]!, m[3] === undefined ? lit(m[2]!) : lit(m[2]!) * 2 ** Number(m[3]));
  }
  return out;
}

/** The `if (type == REC_A || type == REC_B) return X;` lines of an AssemblyScript length function, resolved. */
function asLengths(text: string, fn: string, k: Map<string, number>): Map<number, number> {
  const body = text.slice(text.indexOf(`function ${fn}(`));
  const out = new Map<number, number>();
  for (const line of body.slice(0, body.indexOf("\n}")).split("\n")) {
    const m = /if \((.*)\) return (\w+);/.exec(line);
    if (!m) continue;
    const value = /^\d+$/.test(m[2]!) ? Number(m[2]) : k.get(m[2]!);
    for (const t of m[1]!.matchAll(/type == (REC_\w+)/g)) out.set(k.get(t[1]!)!, value!);
  }
  return out;
}

/** `{field: offset}` of the markdown table after `heading` in docs/specs/channel-abi.md (rows with a backticked name). */
function specTable(heading: string): Map<string, number> {
  const text = read("docs/specs/channel-abi.md");
  const start = text.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const out = new Map<string, number>();
  let inTable = false;
  for (const line of text.slice(start).split("\n").slice(1)) {
    if (line.startsWith("|")) inTable = true;
    else if (inTable) break;
    const m = /^\|\s*(\d+)\s*\|\s*\d+\s*\|\s*`([a-z_0-9]+)`\s*\|/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]));
  }
  return out;
}

const layout = read("core/assembly/lib/layout.ts");
const L = asConstants(layout);
const get = (name: string): number => {
  const v = L.get(name);
  if (v === undefined) throw new Error(`core/assembly/lib/layout.ts has no constant ${name}`);
  return v;
};

describe("layout check: core/assembly/lib/layout.ts against core's TypeScript tables", () => {
  it("magics, page geometry and the index page offsets TypeScript uses", () => {
    expect({ PD_MAGIC, REQ_MAGIC, REF_BIT, PN_MASK, PAGE, FOUR_MIB, UI_COMMAND, UI_CHANNELS, CHANNEL_SLOTS, REQUEST_MAX }).toEqual({
      PD_MAGIC: get("PD_MAGIC"), REQ_MAGIC: get("REQ_MAGIC"), REF_BIT: get("REF_BIT"), PN_MASK: get("PN_MASK"),
      PAGE: 2 ** get("PAGE_SHIFT"), FOUR_MIB: 2 ** get("PAGE_SHIFT") * get("ENTRIES"), UI_COMMAND: get("UI_COMMAND"),
      UI_CHANNELS: get("UI_CHANNELS"), CHANNEL_SLOTS: get("CHANNEL_SLOTS"), REQUEST_MAX: get("REQUEST_MAX"),
    });
  });

  it("the private page's offsets (privateArea)", () => {
    expect(PRIVATE).toEqual({ scratch: get("PRIV_SCRATCH"), requestBuffer: get("PRIV_REQUEST"), directory: get("PRIV_DIRECTORY"), corePages: get("PRIVATE_PAGES") });
  });

  it("record types, request and log lengths", () => {
    const names: Record<keyof typeof REC, string> = {
      begin: "REC_BEGIN", changeOwner: "REC_CHANGE_OWNER", initialize: "REC_INIT", destroy: "REC_DESTROY", split: "REC_SPLIT",
      merge: "REC_MERGE", defineChannel: "REC_DEFINE_CHANNEL", assignServer: "REC_ASSIGN_SERVER", removeChannel: "REC_REMOVE_CHANNEL",
      setCommand: "REC_SET_COMMAND", rejected: "REC_REJECTED", event: "REC_EVENT", commit: "REC_COMMIT",
    };
    for (const [k, n] of Object.entries(names)) expect(REC[k as keyof typeof REC], k).toBe(get(n));
    const asRecs = [...L.keys()].filter((n) => /^REC_[A-Z_]+$/.test(n) && !["REC_TYPE", "REC_LENGTH"].includes(n));
    expect(asRecs.sort(), "every AssemblyScript record type has a TypeScript name").toEqual(Object.values(names).sort());
    const req = asLengths(layout, "requestLength", L);
    const ops = ["changeOwner", "initialize", "destroy", "split", "merge", "defineChannel", "assignServer", "removeChannel", "setCommand"] as const;
    for (const op of ops) expect(requestLength({ op } as Parameters<typeof requestLength>[0]), `request length of ${op}`).toBe(req.get(REC[op]));
    expect(LOG_LEN).toEqual(Object.fromEntries(asLengths(layout, "logLength", L)));
  });

  it("error codes", () => {
    const asErrors = [...L.entries()].filter(([n]) => n.startsWith("E_"));
    expect(asErrors.length).toBeGreaterThan(20);
    for (const [n, code] of asErrors) expect(ERRORS[code]?.name, `${n} = ${code}`).toBe(n.slice(2));
    expect(Object.keys(ERRORS).length).toBe(asErrors.length);
  });

  it("descriptor kinds", () => {
    for (const [k, n] of [["Missing", "KIND_MISSING"], ["Available", "KIND_AVAILABLE"], ["Idle", "KIND_IDLE"], ["Boot", "KIND_BOOT"],
      ["Ultravisor", "KIND_ULTRAVISOR"], ["Command", "KIND_COMMAND"], ["Guest", "KIND_GUEST"]] as const) {
      expect(KIND[k], k).toBe(get(n));
    }
    // core accepts kinds 1..8 and Guest (ops.ts): IO and Operations are inside that range.
    expect(read("core/assembly/lib/ops.ts")).toContain("(kind >= 1 && kind <= 8) || kind == KIND_GUEST");
    expect(Math.max(...Object.values(KIND).filter((v) => v !== KIND.Guest))).toBe(8);
  });
});

describe("layout check: channel headers (core/assembly/channel.ts, core/channel-layout.ts, channel-abi.md)", () => {
  const C = asConstants(read("core/assembly/channel.ts"));
  const AS_NAMES: Record<string, string> = {
    CH_SIG: "signature", CH_LEGACY: "legacy_state", CH_HDRSIZE: "header_size", CH_SIZE: "size", CH_FEATURES: "features",
    CH_TYPE: "chtype", CH_PARTITION: "partition_handle", CH_HANDLE: "handle", CH_SPACE: "ch_space_offset", CH_VERSION: "version_id",
    CH_PINDEX: "partition_index", CH_ZONE: "zone_guid", CH_CLI_STR: "cli_str_offset", CH_CLI_BOOT: "cli_state_boot",
    CH_CMD_CLI: "cmd_state_cli", CH_CLI_OS: "cli_state_os", CH_CHARACTERISTIC: "ch_characteristic", CH_CMD_SRV: "cmd_state_srv",
    CH_SRV_STATE: "srv_state", CH_ERR_BOOT: "cli_error_boot", CH_RECOVER: "recover_channel",
    Q_VERSION: "version", Q_CHTYPE: "chtype", Q_SIZE: "size", Q_SIG_BASE: "sig_base_offset", Q_FEATURES: "features",
    Q_NUM_SENT: "num_sent", Q_NUM_OVERFLOWS: "num_overflows", Q_SIGNAL_SIZE: "signal_size", Q_MAX_SLOTS: "max_slots",
    Q_MAX_SIGNALS: "max_signals", Q_HEAD: "head", Q_NUM_RECEIVED: "num_received", Q_TAIL: "tail", Q_NUM_IRQ: "num_irq_received",
    Q_NUM_EMPTY: "num_empty",
  };

  it("core.wasm's offsets are the TypeScript table's, and every one of them is named", () => {
    const offsets = [...C.keys()].filter((n) => /^(CH|Q)_/.test(n) && !["CH_SIGNATURE", "CH_HEADER_SIZE", "Q_HEADER_SIZE"].includes(n) && !/^CH_(TRANSITION|OK|FULL_OR_EMPTY|BAD_\w+)$/.test(n));
    expect(offsets.filter((n) => !(n in AS_NAMES)), "offsets of core/assembly/channel.ts without a name here").toEqual([]);
    for (const n of offsets) {
      const table: Record<string, number> = n.startsWith("CH_") ? CHANNEL_HEADER : QUEUE_HEADER;
      expect(table[AS_NAMES[n]!], n).toBe(C.get(n));
    }
    expect({ CHANNEL_SIGNATURE, CHANNEL_HEADER_BYTES, QUEUE_HEADER_BYTES }).toEqual({
      CHANNEL_SIGNATURE: C.get("CH_SIGNATURE"), CHANNEL_HEADER_BYTES: C.get("CH_HEADER_SIZE"), QUEUE_HEADER_BYTES: C.get("Q_HEADER_SIZE"),
    });
  });

  it("the TypeScript table is the spec's, field by field (the spec's tables are gcc's offsetof: core/channel-abi.test.ts)", () => {
    const rows = (t: Map<string, number>): Record<string, number> => Object.fromEntries(t);
    expect(CHANNEL_HEADER).toEqual(rows(specTable("## 1. Channel header")));
    expect(QUEUE_HEADER).toEqual(rows(specTable("## 2. Signal-queue header")));
    const cdb = specTable("## 4. Requests");
    const { inline, ...header } = SIGNAL;
    expect(header).toEqual(rows(cdb));
    expect(inline, "inline data right after the 64-byte CDB header").toBe(cdb.get("reserved2")! + 8);
  });
});

describe("layout check: a request's flag bits", () => {
  it("are the spec's, and the AssemblyScript partitions use the same numbers (partition.ts MORE, command.ts COMPLETION)", () => {
    const row = read("docs/specs/channel-abi.md").split("\n").find((l) => /^\| 4 \| 4 \| `flags` \|/.test(l));
    expect(row, "the flags row of channel-abi.md section 4").toBeTruthy();
    const bits = Object.fromEntries([...row!.matchAll(/bit (\d+) `([A-Z_]+)`/g)].map((m) => [m[2]!, 1 << Number(m[1])]));
    expect(bits).toEqual({ TO_SERVER: SIGNAL_FLAGS.toServer, FROM_SERVER: SIGNAL_FLAGS.fromServer, COMPLETION: SIGNAL_FLAGS.completion, MORE: SIGNAL_FLAGS.more });
    expect(asConstants(read("partitions/assembly/partition.ts")).get("FLAG_MORE")).toBe(SIGNAL_FLAGS.more);
    expect(asConstants(read("partitions/assembly/command.ts")).get("FLAG_COMPLETION")).toBe(SIGNAL_FLAGS.completion);
  });
});

describe("layout check: the audit log's EVENT record (memory-layout.md §11.3)", () => {
  it("has core's record type and kinds on both sides, and the spec's row", () => {
    const k = asConstants(read("core/assembly/lib/layout.ts"));
    expect(k.get("REC_EVENT")).toBe(REC.event);
    expect(k.get("EVENT_LENGTH")).toBe(24);
    expect(k.get("EVENT_STORAGE_FAILOVER")).toBe(EVENT_KIND.storageFailover);
    expect(read("docs/specs/memory-layout.md")).toContain("| 0x0C | EVENT | u32 kind, u32 a, u32 b, u32 nextSeq (log only, section 11.3) | 24 |");
  });
});

describe("layout check: the boot module (core/boot/assembly/boot.ts) against core/boot-module.ts", () => {
  const boot = readFileSync(BOOT_MODULE_SOURCE, "utf8");
  it("reads UEFI descriptors at the offsets and with the usable types the TypeScript side states", () => {
    const B = asConstants(boot);
    expect({ type: B.get("UEFI_TYPE"), base: B.get("UEFI_BASE"), pages: B.get("UEFI_PAGES") }).toEqual({
      type: UEFI_DESCRIPTOR.type, base: UEFI_DESCRIPTOR.base, pages: UEFI_DESCRIPTOR.pages,
    });
    const usable = /function usable\(t: u32\): bool \{\n\s*return ([^;]*);/.exec(boot);
    expect(usable, "usable() in boot.ts").toBeTruthy();
    expect([...usable![1]!.matchAll(/t == (\d+)/g)].map((m) => Number(m[1]))).toEqual([...USABLE_UEFI_TYPES]);
  });

  it("declares no layout constant of its own: magics, records and index offsets come from core's layout.ts", () => {
    const own = [...asConstants(boot).keys()].filter((n) => n in Object.fromEntries(L));
    expect(own, "constants boot.ts redefines instead of importing").toEqual([]);
    expect(boot).toMatch(/from "\.\.\/\.\.\/assembly\/lib\/layout"/);
    expect(boot).not.toMatch(/0x5254_?5655|0x4450_?5655/);
  });
});
