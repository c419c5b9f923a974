// Chooses the accelerator for a boot. `auto` means KVM only if a probe boot under KVM actually reaches firmware output:
// on some hosts /dev/kvm exists but cannot run OVMF (nested virtualization without the needed features), and
// QEMU then stops with "KVM internal error" instead of failing to start. The verdict is cached per process and in a
// small file keyed on the QEMU binary and the firmware, so only the first boot on a machine pays for the probe.
import { accessSync, constants, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { hostname, release, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Accel } from "./args.ts";
import { HarnessError } from "./errors.ts";

export type AccelRequest = Accel | "auto";

export interface ProbeResult {
  kvm: boolean;
  /** Why KVM was or was not chosen, for the printed choice. */
  reason: string;
}

export interface AccelChoice {
  accel: Accel;
  reason: string;
  /** Where the verdict came from. */
  source: "forced" | "probe" | "process-cache" | "file-cache" | "no-kvm-device";
}

export function parseAccel(text: string): AccelRequest {
  if (text === "auto" || text === "kvm" || text === "tcg") return text;
  throw new HarnessError(`accelerator '${text}' not known: pass auto, kvm or tcg`);
}

/** Why /dev/kvm cannot be used at all, or undefined when it can be opened read-write. */
export function kvmDeviceProblem(device = "/dev/kvm"): string | undefined {
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${device} does not exist` : `${device} is not accessible (${code ?? "error"})`;
  }
}

/**
 * Identity of what the verdict depends on: the QEMU binary and firmware (path, size, mtime: an upgrade of either
 * re-runs the probe), and the host and kernel (KVM's abilities come from them; node_modules may be shared).
 */
export function probeKey(qemuBinary: string, ovmfCode: string): string {
  const id = (p: string): string => {
    try {
      const s = statSync(p);
      return `${p}:${s.size}:${Math.floor(s.mtimeMs)}`;
    } catch {
      return `${p}:?`;
    }
  };
  return `${id(qemuBinary)}|${id(ovmfCode)}|${hostname()}|${release()}`;
}

/** node_modules/.cache/ultravisor when the project has node_modules (like other tools' caches), else the temp dir. */
export function defaultCacheFile(): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  try {
    if (statSync(join(root, "node_modules")).isDirectory()) return join(root, "node_modules", ".cache", "ultravisor", "accel-probe.json");
  } catch {
    // no node_modules: fall through to the temp dir
  }
  return join(tmpdir(), "ultravisor-accel-probe.json");
}

type CacheFile = Record<string, ProbeResult & { at: string }>;

function readCache(file: string): CacheFile {
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as unknown;
    return v && typeof v === "object" ? (v as CacheFile) : {};
  } catch {
    return {};
  }
}

function writeCache(file: string, key: string, r: ProbeResult): void {
  try {
    const all = readCache(file);
    all[key] = { ...r, at: new Date().toISOString() };
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all, null, 2) + "\n");
    renameSync(tmp, file);
  } catch {
    // A cache we cannot write only costs a probe next time.
  }
}

const processCache = new Map<string, ProbeResult>();

/** Forgets the in-process verdicts (tests use it to exercise the file cache). */
export function clearProcessAccelCache(): void {
  processCache.clear();
}

export interface ResolveAccelOptions {
  request: AccelRequest;
  key: string;
  /** Runs the probe boot under KVM. */
  probe: () => Promise<ProbeResult>;
  cacheFile?: string | null;
  kvmDevice?: string;
}

export async function resolveAccel(o: ResolveAccelOptions): Promise<AccelChoice> {
  if (o.request === "tcg") return { accel: "tcg", reason: "requested", source: "forced" };
  const dev = kvmDeviceProblem(o.kvmDevice);
  if (o.request === "kvm") {
    if (dev) throw new HarnessError(`--accel kvm: ${dev}; use --accel tcg or auto`);
    return { accel: "kvm", reason: "requested", source: "forced" };
  }
  if (dev) return { accel: "tcg", reason: dev, source: "no-kvm-device" };
  const mem = processCache.get(o.key);
  if (mem) return choice(mem, "process-cache");
  const file = o.cacheFile === undefined ? defaultCacheFile() : o.cacheFile;
  if (file) {
    const hit = readCache(file)[o.key];
    if (hit && typeof hit.kvm === "boolean") {
      const r = { kvm: hit.kvm, reason: String(hit.reason) };
      processCache.set(o.key, r);
      return choice(r, "file-cache");
    }
  }
  const r = await o.probe();
  processCache.set(o.key, r);
  if (file) writeCache(file, o.key, r);
  return choice(r, "probe");
}

function choice(r: ProbeResult, source: AccelChoice["source"]): AccelChoice {
  return { accel: r.kvm ? "kvm" : "tcg", reason: r.reason, source };
}

export function describeChoice(c: AccelChoice): string {
  const from = c.source === "file-cache" || c.source === "process-cache" ? ", cached probe" : c.source === "probe" ? ", probed" : "";
  return `accelerator ${c.accel} (${c.reason}${from})`;
}

// ---- hardware-virtualized partitions (docs/specs/svm.md) ------------------------------------------------------------
/** Bytes the image builder embeds when the image holds a hardware-virtualized partition: such an image needs SVM.
 * The builder's copy is monitor-gen/svm/layout.ts's (this layer imports nothing of ours; test/svm-marker.test.ts). */
export const SVM_IMAGE_MARKER = "ultravisor-image: hardware-virtualized partitions (SVM with nested paging)";

/** Whether the image file holds SVM_IMAGE_MARKER (read only when KVM was chosen: TCG emulates SVM anyway). */
export function imageNeedsSvm(image: string): boolean {
  try {
    return readFileSync(image).includes(SVM_IMAGE_MARKER);
  } catch {
    return false;
  }
}

/** Bytes the image builder embeds when the host asks for the IOMMU (docs/specs/storage-channel.md §9): uvt run then
 * adds `-device intel-iommu` and `iommu_platform=on` (qemu/args.ts). The builder's copy is monitor-gen/iommu.ts's
 * (test/svm-marker.test.ts). */
export const IOMMU_IMAGE_MARKER = "ultravisor-image: DMA confined by the Intel IOMMU (VT-d)";

/** Whether the image file holds IOMMU_IMAGE_MARKER. */
export function imageNeedsIommu(image: string): boolean {
  try {
    return readFileSync(image).includes(IOMMU_IMAGE_MARKER);
  } catch {
    return false;
  }
}

/** The text before the decimal MiB an image needs at least (image/ultravisor.ts writes it when Linux partitions make
 * the default 256 MiB too small); the builder's copy is monitor-gen/svm/layout.ts's (test/svm-marker.test.ts). */
export const MEMORY_MARKER = "ultravisor-image: machine memory at least MiB ";

/** The memory (MiB) the image says it needs, or undefined when it says nothing (or cannot be read). */
export function imageMemoryMiB(image: string): number | undefined {
  try {
    const bytes = readFileSync(image);
    const at = bytes.indexOf(MEMORY_MARKER);
    if (at < 0) return undefined;
    const m = /^\d{1,7}/.exec(bytes.subarray(at + MEMORY_MARKER.length, at + MEMORY_MARKER.length + 8).toString("latin1"));
    return m ? Number(m[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** Why this KVM cannot run an SVM guest inside our guest (no nested SVM), or undefined when kvm_amd offers it. */
export function nestedSvmProblem(paramFile = "/sys/module/kvm_amd/parameters/nested"): string | undefined {
  try {
    const v = readFileSync(paramFile, "utf8").trim();
    return v === "1" || v === "Y" ? undefined : `kvm_amd nested=${v}`;
  } catch {
    return "kvm_amd is not loaded (an Intel host offers VT-x, which this version's SVM backend cannot use)";
  }
}

/**
 * A KVM choice kept only when nested SVM works; `auto` falls back to TCG with the reason in the printed choice,
 * `--accel kvm` is refused. Under TCG, `-cpu max` shows `svm npt` to the guest (qemu/args.ts).
 */
export function requireNestedSvm(c: AccelChoice, problem: string | undefined): AccelChoice {
  if (c.accel !== "kvm" || problem === undefined) return c;
  const why = `the image holds a hardware-virtualized partition and this KVM has no nested SVM (${problem})`;
  if (c.source === "forced") throw new HarnessError(`--accel kvm: ${why}; use --accel tcg or auto`);
  return { accel: "tcg", reason: `${why}: TCG emulates SVM with nested paging`, source: c.source };
}
