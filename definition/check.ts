// Cross-field rules of a host definition, which a schema of single values cannot state: unique names, one idle
// partition, servers that exist before their clients, behaviour only where a program has it, nodes and firmware
// regions that add up and do not overlap, operations that need a host with processors. Each problem is positioned
// at the key it is about. What only one reader can honour is checked by that reader (partitions/config.ts for bare
// metal); what core decides at run time (channel cardinality, placement) is left to core.
import { orderFor } from "../core/db-layout.ts";
import { FOUR_MIB, PAGE as PAGE_BYTES } from "../core/database.ts";
import { formatBytes, span } from "../core/mapview.ts";
import type { Problem } from "./errors.ts";
import type { HostDefinition, PartitionDefinition } from "./host.ts";
import type { LoadedDefinition } from "./load.ts";

type Path = ReadonlyArray<PropertyKey>;

const MB4 = BigInt(FOUR_MIB);
const PAGE = BigInt(PAGE_BYTES);
/** Bytes an order-n map covers: 1024 entries of its top scale (order 2 = 4 GiB … order 5 = 4 EiB). */
export const orderCoverage = (order: number): bigint => span(order) * 1024n;
const MAX_MEMORY = orderCoverage(5);
/** The simulated bootstrap needs the database's 4 MiB page and core's private 4 MiB page above the boot memory. */
const MIN_MEMORY = 12n << 20n;
const fmt = formatBytes;

export function checkDefinition(d: LoadedDefinition): Problem[] {
  const out: Problem[] = [];
  const bad = (path: Path, message: string, key = false): void => {
    out.push(d.problem(path, message, key));
  };
  checkHost(d.def, bad);
  const parts = d.def.partitions ?? [];
  const seen = new Map<string, number>();
  const count = new Map<string, number>();
  parts.forEach((p, i) => {
    const at = ["partitions", i];
    const prev = seen.get(p.name);
    if (prev !== undefined) bad([...at, "name"], `duplicate name '${p.name}' (partitions[${prev}] has it; names are unique)`);
    else seen.set(p.name, i);
    count.set(p.kind, (count.get(p.kind) ?? 0) + 1);
    if ((p.kind === "idle" || p.kind === "ultravisor" || p.kind === "command") && count.get(p.kind) === 2) {
      bad([...at, "kind"], `a second '${p.kind}' partition (a host has at most one)`);
    }
    checkPartition(p, at, bad);
    for (const [k, c] of (p.channels ?? []).entries()) {
      const server = parts.findIndex((q) => q.name === c.server);
      if (server < 0) bad([...at, "channels", k, "server"], `'${c.server}' is not a partition of this host (servers: ${parts.filter((q) => q.kind !== "idle").map((q) => q.name).join(", ")})`);
      else if (server === i) bad([...at, "channels", k, "server"], `a partition cannot serve its own ${c.type} channel`);
      else if (server > i && parts[server]!.kind !== "ultravisor") bad([...at, "channels", k, "server"], `'${c.server}' is listed after its client: list servers first (partitions are created in order)`);
      else if (parts[server]!.kind === "idle") bad([...at, "channels", k, "server"], "the idle partition serves no channels");
    }
  });
  checkDevices(d.def, bad);
  const platform = d.def.host.pcpus !== undefined || d.def.partitions !== undefined;
  d.def.operations.forEach((op, i) => {
    const at = ["operations", i];
    const kind = ["define", "stop", "ioComplete", "console", "serial", "fail", "submit", "schedule", "tick"].find((k) => op[k as keyof typeof op] !== undefined);
    if (kind && !platform) bad([...at, kind], `${kind} needs a host with processors: add host.pcpus (or partitions)`, true);
    if (op.define) {
      if (op.define.kind === "idle" || op.define.kind === "ultravisor") bad([...at, "define", "kind"], `'${op.define.kind}' partitions exist from boot (define guest, io, command or operations)`);
      checkPartition(op.define, [...at, "define"], bad);
    }
  });
  return out;
}

function checkPartition(p: PartitionDefinition, at: Path, bad: (path: Path, m: string, key?: boolean) => void): void {
  if (p.kind === "idle") {
    for (const k of ["duty", "vcpus", "memory", "channels", "behaviour", "node"] as const) {
      if (p[k] !== undefined) bad([...at, k], "the idle partition has none: it runs in every quantum nobody else uses and owns nothing", true);
    }
  } else if (p.duty === undefined && p.vcpus === undefined) {
    bad([...at, "name"], "needs processor time: duty (1..16 sixteenths of a processor) or vcpus", false);
  }
  if (p.duty !== undefined && p.vcpus !== undefined) bad([...at, "vcpus"], "give duty (one VCPU) or vcpus, not both", true);
  if (p.memory !== undefined && (p.memory === 0n || p.memory % MB4 !== 0n)) bad([...at, "memory"], `${fmt(p.memory)} is not a positive multiple of 4 MB (the smallest page a partition gets)`);
  if (p.linux !== undefined) {
    if (p.kind !== "guest") bad([...at, "linux"], `only a guest runs Linux (this is a '${p.kind}' partition)`, true);
    if (p.behaviour !== undefined) bad([...at, "behaviour"], "a Linux partition's program is its kernel: no behaviour beside linux", true);
    if (p.memory === undefined) bad([...at, "linux"], "a Linux partition needs memory (e.g. memory: 128 MB: the kernel's init_size, its initrd and what it runs in)", true);
  }
  const b = p.behaviour;
  if (b) {
    // The one exception: the hostile I/O partition of test builds (test/hw/fuzz-server.test.ts).
    const hostileServer = p.kind === "io" && (b.fault === "fuzz-server" || b.fault === "rogue-dma") && Object.keys(b).length === 1;
    // A member of the storage pair (docs/specs/storage-failover.md §7): pair, and failAtRequest beside pair: primary.
    const pairMember = p.kind === "io" && b.pair !== undefined && Object.keys(b).every((k) => k === "pair" || k === "failAtRequest");
    if (b.pair !== undefined && p.kind !== "io") bad([...at, "behaviour", "pair"], `only an io partition is a member of the storage pair (this is a '${p.kind}' partition)`);
    if (b.failAtRequest !== undefined && b.pair !== "primary") bad([...at, "behaviour", "failAtRequest"], "failAtRequest is the storage pair's primary's fault: give it beside pair: primary", true);
    if (p.kind !== "guest" && !hostileServer && !pairMember) {
      bad([...at, "behaviour"], `only guests have a behaviour (this is a '${p.kind}' partition${p.kind === "io" ? "; an I/O partition takes only { fault: fuzz-server } or { fault: rogue-dma }, the hostile server and the rogue device of test builds, or { pair: primary | secondary, failAtRequest }, a member of the storage pair" : ""})`, true);
    }
    if (p.kind === "guest" && b.fault === "fuzz-server") bad([...at, "behaviour", "fault"], "fuzz-server is the I/O partition's test fault (the hostile channel server), not a guest's");
    if (p.kind === "guest" && b.fault === "rogue-dma") bad([...at, "behaviour", "fault"], "rogue-dma is the I/O partition's test fault (its device told to DMA into a page it was not given), not a guest's");
    if (b.faultAfter !== undefined && b.fault === undefined) bad([...at, "behaviour", "faultAfter"], "faultAfter needs a fault", true);
    if (b.fault === "wasm-oob" && b.lang !== "as") bad([...at, "behaviour", "fault"], "wasm-oob is an AssemblyScript guest's fault: add lang: as");
    if (b.lang === "as" && b.fault !== undefined && b.fault !== "wasm-oob") bad([...at, "behaviour", "fault"], `an AssemblyScript guest's only fault is wasm-oob (${b.fault} needs lang: asm)`);
    if (b.vm !== undefined && (b.lang !== undefined || b.fault !== undefined || b.probeCommand !== undefined || b.benchHypercalls !== undefined)) {
      bad([...at, "behaviour", "vm"], "a virtualized guest runs its own program: no lang, fault, probeCommand or benchHypercalls with vm", true);
    }
    if (b.lang === "as" && b.benchHypercalls !== undefined) bad([...at, "behaviour", "benchHypercalls"], "benchHypercalls exists only for asm guests (lang: asm)", true);
  }
}

/** The host's device list (docs/specs/pci-devices.md §2): one of disk/pci, bus 0, a CPL-3 owner, no device twice. */
function checkDevices(def: HostDefinition, bad: (path: Path, m: string, key?: boolean) => void): void {
  const parts = def.partitions ?? [];
  const seen = new Map<string, number>();
  (def.devices ?? []).forEach((dev, i) => {
    const at = ["devices", i];
    if ((dev.disk === undefined) === (dev.pci === undefined)) {
      bad([...at, "owner"], "give exactly one of disk (the N-th uvt run --disk) or pci (an address \"bb:dd.f\")", true);
      return;
    }
    if (dev.pci !== undefined && !dev.pci.startsWith("00:")) {
      bad([...at, "pci"], `bus ${dev.pci.slice(0, 2)} is not enumerated: the ultravisor walks bus 00 only (every device QEMU's q35 gets from uvt run is there)`);
    }
    const key = dev.disk !== undefined ? `disk ${dev.disk}` : `pci ${dev.pci!.toLowerCase()}`;
    const prev = seen.get(key);
    if (prev !== undefined) bad([...at, dev.disk !== undefined ? "disk" : "pci"], `${key} is already given by devices[${prev}] (a device has one owner)`);
    else seen.set(key, i);
    const owner = parts.find((p) => p.name === dev.owner);
    if (!owner) {
      bad([...at, "owner"], `'${dev.owner}' is not a partition of this host (partitions: ${parts.filter((q) => q.kind === "io" || q.kind === "guest").map((q) => q.name).join(", ") || "none"})`);
    } else if ((owner.kind !== "io" && owner.kind !== "guest") || owner.linux !== undefined || owner.behaviour?.vm !== undefined) {
      bad([...at, "owner"], `'${dev.owner}' cannot own a device: only an io or guest partition running at CPL 3 can (this is ${owner.linux ? "a Linux" : owner.behaviour?.vm ? "a virtualized" : `the '${owner.kind}'`} partition); give it to the I/O partition`);
    }
  });
}

function checkHost(def: HostDefinition, bad: (path: Path, m: string, key?: boolean) => void): void {
  const h = def.host;
  if (h.memory < MIN_MEMORY) bad(["host", "memory"], `${fmt(h.memory)} is too little (at least 12 MB: boot memory, the database's page and core's private page)`);
  if (h.memory > MAX_MEMORY) bad(["host", "memory"], `${fmt(h.memory)} is more than an order-5 map covers (at most 4 EB)`);
  if (h.memory % PAGE !== 0n) bad(["host", "memory"], `${h.memory} bytes is not a whole number of 4 KB pages`);
  if (h.order !== undefined && orderCoverage(h.order) < h.memory) {
    bad(["host", "order"], `an order-${h.order} map covers ${fmt(orderCoverage(h.order))}, less than host.memory (${fmt(h.memory)}); leave order out or raise it`);
  }
  if (h.nodes) {
    if (h.pcpus === undefined) bad(["host", "nodes"], "nodes need host.pcpus (a host with processors)", true);
    const cpus = h.nodes.reduce((a, n) => a + n.pcpus, 0);
    if (h.pcpus !== undefined && cpus !== h.pcpus) bad(["host", "nodes"], `the nodes have ${cpus} processors, host.pcpus says ${h.pcpus} (they must add up)`);
    const mem = h.nodes.reduce((a, n) => a + n.memory, 0n);
    if (mem !== h.memory) bad(["host", "nodes"], `the nodes have ${fmt(mem)} of memory, host.memory says ${fmt(h.memory)} (they must add up)`);
  }
  // The boot partition's module keeps exactly the first 4 MB, on the machine and in the simulator (one module runs both).
  if (h.bootMemory !== undefined && h.bootMemory !== MB4) bad(["host", "bootMemory"], `${fmt(h.bootMemory)}: the boot partition keeps the first 4 MB (write 4 MB or leave it out)`);
  if (h.firmware) {
    const top = orderCoverage(h.order ?? (h.memory <= MAX_MEMORY ? orderFor(h.memory) : 5));
    h.firmware.forEach((r, i) => {
      const at = ["host", "firmware", i];
      if (r.base % PAGE !== 0n) bad([...at, "base"], `${r.base} is not 4 KB aligned (a firmware region starts on a page)`);
      if (r.length === 0n || r.length % PAGE !== 0n) bad([...at, "length"], `${r.length} bytes is not a positive whole number of 4 KB pages`);
      if (r.base + r.length > top) bad([...at, "length"], `the region ends at ${fmt(r.base + r.length)}, beyond what the map covers (${fmt(top)})`);
    });
    const sorted = h.firmware.map((r, i) => ({ ...r, i })).sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : a.i - b.i));
    // Sorted by base, a region overlaps an earlier one exactly when it starts below the furthest end so far.
    let reach = sorted[0]!;
    for (const b of sorted.slice(1)) {
      if (b.base < reach.base + reach.length) bad(["host", "firmware", b.i, "base"], `overlaps firmware[${reach.i}] (${fmt(reach.base)} + ${fmt(reach.length)}): every byte is described once`);
      if (b.base + b.length > reach.base + reach.length) reach = b;
    }
  }
}

