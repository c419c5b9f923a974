// The host definition: one schema for every reader of a host file — `uvt build --config` (the bare-metal image,
// partitions/config.ts), `uvt sim` (sim/scenario.ts) and the tests. It says what a host is (memory, processors and
// NUMA nodes, the firmware map when simulated, the database layout knobs of the spec's worked example), which
// partitions it starts with (kind, memory, processors and duty, channels, what their program does), how a bare-metal
// run is paced, and, for the simulator, the operations to run and what to expect. Written with zod so that the same
// schema validates files and generates docs/schema/host.schema.json (definition/json-schema.ts) for editors.
// Cross-field rules (duplicate names, servers that exist, one idle partition, nodes that add up) are in check.ts;
// what only one reader can honour (bare metal runs one processor) is checked by that reader, through the same
// positioned errors (definition/errors.ts).
import { z } from "zod";
import { ChannelType } from "../core/channel.ts";
import { KIND } from "../core/notation.ts";
import { parseBytes } from "../core/mapview.ts";

/** The revision this build reads; a file states it so that a later format can be told apart. */
export const REVISION = 2;

/** Names the database gives its pseudo partitions (memory-layout.md §4): a partition may not take them. */
export const RESERVED_NAMES: readonly string[] = Object.entries(KIND).filter(([, k]) => k <= KIND.Ultravisor).map(([n]) => n);

export const PARTITION_KINDS = ["idle", "ultravisor", "io", "command", "guest", "operations"] as const;
export type PartitionKind = (typeof PARTITION_KINDS)[number];

/**
 * What a test guest does wrong on the machine (partitions/programs.ts builds each; examples/ultravisor-containment.yaml
 * and ultravisor-isolation.yaml): the containment faults, "wasm-oob" (the AssemblyScript guest's), the isolation
 * attacks "exec-stack", "exec-data" (NX), "sgdt" (UMIP), and "sse-a"/"sse-b", the pair of guests that watch for each
 * other's extended state (test/hw/isolation.test.ts), and "flood-command", a guest that loops the refused COMMAND
 * hypercall as fast as it can (the audit log's rate limit, test/hw/audit-flood.test.ts); the fuzzers of
 * test/hw/fuzz.test.ts: "fuzz-hypercall" (random hypercall numbers and arguments from a seeded PRNG),
 * "fuzz-channel" (random values written into the client side of its console channel's header) and "canary"
 * (a guest that fills a page of its window with a pattern and re-checks it before every line); "fuzz-server", the
 * fault of an I/O partition (test/hw/fuzz-server.test.ts): random values written into the headers of every channel
 * it serves, the server side. PCI devices (docs/specs/pci-devices.md, test/hw/pci-devices.test.ts): "pci-owner" reads its
 * devices through their BARs and prints what it found (not a fault: the owner's check), "pci-bar" touches another
 * partition's device's memory BAR, "pci-cf8" writes the configuration address port 0xCF8, "pci-port" reads another
 * partition's device's I/O port — each must be stopped alone. "storage-mdl" (docs/specs/storage-channel.md §6,
 * test/hw/storage.test.ts): a client of the storage channel whose requests name memory that is not its own (another
 * partition's pages, by physical address or past its window) and which asks the monitor for bus addresses: each
 * refused, nothing transferred. "rogue-dma", the I/O partition's other test fault (test/hw/iommu.test.ts,
 * docs/specs/storage-channel.md §9): before serving, its device is told to READ into a client's page that DMA_ADDR never
 * validated; behind the IOMMU the write faults.
 */
export const FAULT_KINDS = ["write-outside", "write-unmapped", "cli", "hlt", "out", "cr3", "wasm-oob", "exec-stack", "exec-data", "sgdt", "sse-a", "sse-b", "flood-command", "fuzz-hypercall", "fuzz-channel", "canary", "fuzz-server",
  "pci-owner", "pci-bar", "pci-cf8", "pci-port", "storage-mdl", "rogue-dma"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Hardware-virtualized guests (docs/specs/svm.md): the guest runs under SVM with nested page tables instead of at
 * CPL 3. "realmode-demo" starts in real mode and switches itself to long mode (the default demo's V); the others
 * are test-only probes (test/hw/svm.test.ts): "absent" probes unowned ports, unknown MSRs and unmapped addresses,
 * "vmrun", "vmsave", "clgi", "stgi" and "triple-fault" commit a violation, "reach" reads and writes guest-physical
 * addresses of other partitions' and the database's pages, "svme-clear" clears EFER.SVME in its shadow, "cli-spin"
 * spins with interrupts off, "db-loop" single-steps itself with a #DB handler that returns with TF still set (a
 * benign-exception storm); "bench" times CPUID and COM1 exits (bench/svm.bench.ts). test/hw/svm-absent.test.ts: "mmio"
 * reads and writes the APIC/IOAPIC page with every MOV form (the absent class: all ones, writes dropped), "mmio-rmw"
 * uses an instruction the monitor does not emulate there (a violation), "sweep" reads and writes one quadword every
 * 128 KiB of guest-physical [1 MiB, 256 MiB) (every other partition's host-physical pages among them), "ac-loop" drops to
 * CPL 3 with alignment checking on and an #AC handler that returns to the faulting access (a benign-exception storm),
 * "uart-reset" runs Linux's 8250 autoconfig probes on COM1 and resets through the keyboard controller, "halt" halts
 * with interrupts off (both stop the guest, docs/specs/linux-pc.md §6), "pc-irq" takes PIT interrupts through the
 * 8259A and sends a line from its UART THRE interrupt handler.
 */
export const VM_KINDS = ["realmode-demo", "absent", "vmrun", "vmsave", "clgi", "stgi", "triple-fault", "reach", "svme-clear", "cli-spin", "db-loop", "bench",
  "mmio", "mmio-rmw", "sweep", "ac-loop", "uart-reset", "halt", "pc-irq"] as const;
export type VmKind = (typeof VM_KINDS)[number];

export const CHANNEL_TYPES = Object.keys(ChannelType) as Array<keyof typeof ChannelType>;

/** The strings core/mapview.ts parseBytes reads as sizes (the JSON Schema states it so editors check sizes too). */
export const SIZE_PATTERN = "^\\s*\\d+\\s*([KMGTPEkmgtpe]?)(i?[Bb])?\\s*$";

/** A size: "4 GB", "64GB", "4 MiB" or a byte count; read as bytes (bigint: hosts reach 4 EB). */
export const size = z
  .union([z.string().regex(new RegExp(SIZE_PATTERN), { error: 'a size such as "4 GB", "64 MB" or a byte count' }), z.int().min(0)])
  .transform((v, ctx) => {
    try {
      return parseBytes(v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  })
  .meta({ description: 'bytes: "4 GB", "64 MB", "4 KiB" (binary multiples) or a plain byte count' });

const PAGE_RE = /^\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]\s*$/;
/** A 4 KiB page by its partition number "[G,M,K]" (the spec's notation) or [G, M, K]; read as the page number. */
export const page = z
  .union([
    z.string().regex(PAGE_RE, { error: 'a page "[G,M,K]" with G, M, K in 0..1023' }),
    z.tuple([z.int().min(0).max(1023), z.int().min(0).max(1023), z.int().min(0).max(1023)]),
  ])
  .transform((v, ctx) => {
    const [g, m, k] = typeof v === "string" ? PAGE_RE.exec(v)!.slice(1).map(Number) : v;
    if (g! > 1023 || m! > 1023 || k! > 1023) {
      ctx.addIssue({ code: "custom", message: `[${g},${m},${k}] has a number above 1023 (G, M, K are in 0..1023)` });
      return z.NEVER;
    }
    return (g! * 1024 + m!) * 1024 + k!;
  })
  .meta({ description: 'a 4 KiB page: "[G,M,K]" or [G, M, K], each 0..1023' });

const PLACEMENT_RE = /^\s*Map\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]\s*,?\s*(?:Index\s*\(\s*(\d+)\s*\)|IndexRange\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))\s*$/i;
/** "Map[0,1,0], Index(2)" or "Map[0,1,1], IndexRange(768,1023)": entries of one map page. */
const placementRun = z
  .string()
  .regex(PLACEMENT_RE, { error: 'a placement such as "Map[0,1,0], Index(2)" or "Map[0,1,1], IndexRange(768,1023)"' })
  .transform((text, ctx) => {
    const m = PLACEMENT_RE.exec(text)!;
    const [g, mm, k] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const first = Number(m[4] ?? m[5]);
    const last = Number(m[4] ?? m[6]);
    if (g > 1023 || mm > 1023 || k > 1023) ctx.addIssue({ code: "custom", message: `Map[${g},${mm},${k}]: G, M, K are in 0..1023` });
    if (first > last || last > 1023) ctx.addIssue({ code: "custom", message: `index range ${first}..${last} is not within 0..1023` });
    return { map: (g * 1024 + mm) * 1024 + k, first, last };
  });

export const name = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: "1 to 15 letters, digits, _ . - (no spaces)" })
  .refine((n) => !RESERVED_NAMES.includes(n), { error: `a name the database keeps for itself (${RESERVED_NAMES.join(", ")})` });

export const vcpu = z
  .strictObject({
    duty: z.int().min(1).max(16).optional().meta({ description: "quanta per 16-quantum cycle on its processor" }),
    dedicated: z.boolean().optional().meta({ description: "a whole processor to itself ([0087])" }),
    cstate: z.int().min(0).max(3).optional().meta({ description: "ACPI C-state; only C0 VCPUs are scheduled ([0139])" }),
  })
  .refine((v) => v.duty !== undefined || v.dedicated === true, { error: "give duty (1..16 sixteenths of a processor) or dedicated: true" });

export const channel = z.strictObject({
  type: z.enum(CHANNEL_TYPES),
  server: z.string().min(1).meta({ description: "the serving partition's name" }),
});

export const behaviour = z
  .strictObject({
    lang: z.enum(["as", "asm"]).optional()
      .meta({ description: "guests on bare metal: AssemblyScript through the AOT compiler (as) or the typed assembler (asm, the default)" }),
    fault: z.enum(FAULT_KINDS).optional().meta({ description: "test guests: commit this fault (containment)" }),
    faultAfter: z.int().min(0).max(1_000_000).optional().meta({ description: "lines printed before the fault (default 2)" }),
    probeCommand: z.boolean().optional().meta({ description: "try the command hypercall once; it is refused and audited" }),
    benchHypercalls: z.int().min(1).max(1_000_000).optional().meta({ description: "bench builds: TIME hypercall round trips measured at start" }),
    vm: z.enum(VM_KINDS).optional()
      .meta({ description: "run the guest hardware-virtualized (SVM, docs/specs/svm.md): realmode-demo, or a test probe" }),
    disk: z.strictObject({
      first: z.int().min(0).max(0x7fff_ffff).meta({ description: "the first block of the guest's range" }),
      blocks: z.int().min(1).max(4096).meta({ description: "blocks in its range" }),
      passes: z.int().min(1).max(1_000_000).default(3).meta({ description: "passes over the range (generations 1..passes)" }),
      bench: z.boolean().optional().meta({ description: "bench builds: time 4 KiB reads of the range through the channel instead (bench/storage.bench.ts)" }),
    }).optional()
      .meta({ description: "bare metal: the storage workload (docs/specs/storage-channel.md §6) through a storage channel to the I/O partition" }),
    pair: z.enum(["primary", "secondary"]).optional()
      .meta({ description: "bare metal, io partitions: a member of the storage pair (docs/specs/storage-failover.md §7); the io partition without it serves the consoles" }),
    failAtRequest: z.int().min(1).max(1_000_000).optional()
      .meta({ description: "the pair's primary fails (a wasm trap) at the N-th storage request it takes, its device request in flight" }),
  })
  .meta({ description: "what the partition's program does (guests)" });

/**
 * A Linux partition (docs/specs/linux-partition.md §1): an unmodified kernel under the SVM backend. Every key is
 * optional: the cached Debian kernel, the default initramfs and the default command line. Paths are relative to the
 * definition file's folder. The files are checked when the definition is read for a build (definition/linux.ts).
 */
export const linux = z
  .strictObject({
    kernel: z.string().min(1).optional().meta({ description: "a bzImage (default: Debian's kernel cached by scripts/setup)" }),
    initrd: z.string().min(1).optional().meta({ description: "an initramfs, cpio or compressed (default: busybox and an /init that reports and powers off)" }),
    cmdline: z.string().max(4095).optional().meta({ description: 'the kernel command line (default "console=ttyS0 reboot=k panic=-1")' }),
  })
  .meta({ description: "run an unmodified Linux kernel in this partition (needs memory)" });

export const partition = z.strictObject({
  name,
  kind: z.enum(PARTITION_KINDS).default("guest"),
  user: z.string().min(1).max(16).optional().meta({ description: "the principal that owns it (default User<name>)" }),
  memory: size.optional().meta({ description: "simulator: a multiple of 4 MB (default 4 MB); bare metal gives a fixed allotment" }),
  node: z.int().min(0).max(63).optional().meta({ description: "NUMA node preferred for memory and processors" }),
  pcpu: z.int().min(0).max(4095).optional().meta({ description: "the physical processor its VCPUs prefer ([0148]), when the host has it and it has room" }),
  duty: z.int().min(1).max(16).optional().meta({ description: "one VCPU with this many sixteenths of a processor" }),
  vcpus: z.union([z.int().min(1).max(64), z.array(vcpu).min(1).max(64)]).optional()
    .meta({ description: "a count (each a whole processor's duty) or one entry per VCPU" }),
  channels: z.array(channel).max(64).optional()
    .meta({ description: "default: a console channel to the I/O partition; the command partition's command channel to the ultravisor" }),
  behaviour: behaviour.optional(),
  linux: linux.optional(),
});

const firmwareRegion = z.strictObject({
  base: size,
  length: size,
  type: z.enum(["usable", "reserved"]),
});

export const host = z.strictObject({
  memory: size.prefault("256 MB").meta({ description: "installed memory (default 256 MB, what `uvt run` gives QEMU)" }),
  pcpus: z.int().min(1).max(4096).optional().meta({ description: "physical processors; a host with processors boots its command partition" }),
  nodes: z.array(z.strictObject({ memory: size, pcpus: z.int().min(1).max(4096) })).min(1).max(64).optional()
    .meta({ description: "NUMA nodes in address order; memory and pcpus add up to the host's" }),
  firmware: z.array(firmwareRegion).min(1).max(4096).optional()
    .meta({ description: "simulator: the firmware memory map (default: all of memory usable; docs/specs/host-definition.md)" }),
  order: z.int().min(2).max(5).optional().meta({ description: "simulator: map order (default the smallest covering memory)" }),
  bootMemory: size.optional().meta({ description: "memory at 0 the boot partition keeps: 4 MB, the only value (the boot module's fixed share on both sides)" }),
  reserve: z.tuple([page, page]).optional().meta({ description: "simulator: first and last page of the database's 4 MB reserved for the ultravisor ([0217])" }),
  split: z.array(z.strictObject({ map: page, index: z.int().min(0).max(1023), into: page })).max(1024).optional()
    .meta({ description: "simulator: map entries divided at boot ([0219])" }),
  iommu: z.boolean().optional()
    .meta({ description: "bare metal: the machine has an Intel IOMMU (VT-d; uvt run adds it) and the ultravisor confines the I/O partition's DMA with it (docs/specs/storage-channel.md §9)" }),
});

export const run = z.strictObject({
  quantumTicks: z.int().min(10_000).max(0xffff_ffff).default(2_000_000).meta({ description: "APIC timer counts per quantum (QEMU: 1 GHz, so 2 ms)" }),
  runQuanta: z.int().min(0).max(0x7fff_ffff).default(800).meta({ description: "stop after this many quanta with a summary; 0 runs until powered off" }),
  guestPeriod: z.int().min(1).max(1_000_000).default(8).meta({ description: "quanta between two lines of a guest" }),
  exitCode: z.int().min(0).max(127).default(33).meta({ description: "isa-debug-exit code of a finished run (QEMU exits with 2N+1)" }),
  probes: z.boolean().default(false).meta({ description: "bench builds: time-stamp probes on the timer → switch path" }),
});

const createOp = z.strictObject({
  name: z.string().regex(/^[\x20-\x7e]{1,16}$/).refine((n) => !n.includes('"'), { error: "no quotes" }),
  user: z.string().min(1).max(16).optional(),
  kind: z.enum(Object.keys(KIND) as Array<keyof typeof KIND>).optional(),
  size: size.optional(),
  at: z.union([placementRun.transform((r) => [r]), z.array(placementRun).min(1)]).optional(),
}).refine((c) => c.size !== undefined || c.at !== undefined, { error: "give size, or at (explicit placement)" });

const OPERATION_KEYS = ["create", "destroy", "merge", "split", "transaction", "backup", "define", "stop", "ioComplete", "console", "serial", "fail", "submit", "schedule", "tick"] as const;
export type OperationKey = (typeof OPERATION_KEYS)[number];

export const operation = z
  .strictObject({
    title: z.string().optional(),
    expectError: z.string().regex(/^[A-Z_]+$/, { error: "an error name such as NOT_COMMAND or CHANNEL_DEFINITION" }).optional(),
    create: createOp.optional(),
    destroy: z.string().min(1).optional(),
    merge: z.strictObject({ map: page, index: z.int().min(0).max(1023) }).optional(),
    split: z.strictObject({ map: page, index: z.int().min(0).max(1023), into: page.optional() }).optional(),
    transaction: z.string().min(1).optional().meta({ description: "transactions in the spec's notation ([0222])" }),
    backup: z.literal(true).optional(),
    define: partition.optional(),
    stop: z.union([z.string().min(1), z.strictObject({ partition: z.string().min(1), inflight: z.array(z.string().min(1)).optional() })]).optional(),
    ioComplete: z.string().min(1).optional(),
    console: z.strictObject({ from: z.string().min(1), text: z.string() }).optional(),
    fail: z.string().min(1).optional()
      .meta({ description: "a fault injected into this running partition: it stops; the ultravisor's watchdog restarts it from its definition (docs/specs/command-channel.md)" }),
    serial: z.string().max(256).optional()
      .meta({ description: "a line typed on the serial console: create NAME MEMORY [TYPE:SERVER]..., stop NAME, destroy NAME or restart NAME (docs/specs/command-channel.md)" }),
    submit: z.strictObject({ from: z.string().min(1), transaction: z.string().min(1) }).optional(),
    schedule: z.literal(true).optional(),
    tick: z.int().min(1).max(1 << 30).optional(),
  })
  .superRefine((op, ctx) => {
    const present = OPERATION_KEYS.filter((k) => op[k] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message: `exactly one operation per entry${present.length ? ` (found ${present.join(", ")})` : ""} (one of ${OPERATION_KEYS.join(", ")})`,
      });
    }
  });

export const expect = z.strictObject({
  owners: z.array(z.strictObject({ address: size, is: z.string().min(1) })).optional(),
  mapPages: z.int().min(1).max(1 << 20).optional(),
  output: z.array(z.string()).optional().meta({ description: "lines that must be printed, in this order (substrings)" }),
});

/** A PCI address "bb:dd.f" (hex): bus, device 0–1f, function 0–7 (docs/specs/pci-devices.md §2). */
export const PCI_ADDRESS_PATTERN = "^([0-9a-fA-F]{2}):([01][0-9a-fA-F])\\.([0-7])$";

/** A device given to a partition (docs/specs/pci-devices.md §2): the N-th `uvt run --disk`, or a PCI address. */
export const device = z
  .strictObject({
    disk: z.int().min(0).max(30).optional().meta({ description: "the N-th data disk of uvt run --disk (0 = the first): the N-th modern virtio-blk on bus 0" }),
    pci: z.string().regex(new RegExp(PCI_ADDRESS_PATTERN), { error: 'a PCI address "bb:dd.f" in hex, such as "00:02.0"' }).optional()
      .meta({ description: 'a PCI function by address "bb:dd.f" (bus 00 only)' }),
    owner: z.string().min(1).meta({ description: "the partition that owns it (kind io or guest; normally the I/O partition)" }),
  })
  .meta({ description: "a PCI device and the partition that owns it" });

export const hostDefinition = z
  .strictObject({
    $schema: z.string().optional().meta({ description: "JSON files: the schema's path, for editors" }),
    revision: z.literal(REVISION, { error: `this build reads revision ${REVISION}` }),
    name: z.string().optional(),
    host: host.prefault({}),
    partitions: z.array(partition).min(1).max(256).optional()
      .meta({ description: "the partitions the host starts with; uvt build needs them" }),
    devices: z.array(device).max(31).optional()
      .meta({ description: "bare metal: PCI devices given to partitions (docs/specs/pci-devices.md); the simulator has no PCI bus" }),
    run: run.prefault({})
      .meta({ description: "bare metal: pacing of a run" }),
    operations: z.array(operation).max(1_000_000).default([]).meta({ description: "simulator: operations in order" }),
    expect: expect.optional().meta({ description: "simulator: outcomes checked after the operations" }),
  })
  .meta({ title: "ultravisor host definition", description: "One host for uvt build, uvt sim and the tests (docs/specs/host-definition.md)" });

export type HostDefinition = z.output<typeof hostDefinition>;
export type PartitionDefinition = z.output<typeof partition>;
export type VcpuDefinition = z.output<typeof vcpu>;
export type ChannelDefinition = z.output<typeof channel>;
export type DeviceDefinition = z.output<typeof device>;
export type LinuxDefinition = z.output<typeof linux>;
export type OperationDefinition = z.output<typeof operation>;
export type RunDefinition = z.output<typeof run>;
export { OPERATION_KEYS };
