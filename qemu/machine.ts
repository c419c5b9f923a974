// The QEMU harness: `Machine` is the only code in the project that starts QEMU. It resolves the inputs (QEMU binary,
// OVMF, image, memory, accelerator), boots a q35 guest with the ESP image as a raw disk, streams the serial port line
// by line, exposes QMP, decodes the isa-debug-exit code, enforces a per-boot timeout and keeps the logs of any
// failed boot under ./artifacts/. Everything above it (uvt run, test/hw, benches) goes through this class.
import { copyFileSync, existsSync, realpathSync, rmSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { execa, type ResultPromise } from "execa";
import { type AccelChoice, type AccelRequest, describeChoice, imageNeedsIommu, imageNeedsSvm, nestedSvmProblem, type ProbeResult, probeKey, requireNestedSvm, resolveAccel } from "./accel.ts";
import { type Accel, buildQemuArgs, type DirectLinux, shellQuote } from "./args.ts";
import { keepArtifacts } from "./artifacts.ts";
import { BootError, HarnessError } from "./errors.ts";
import { decodeExit, describeExit, type ExitReason, qemuErrorLine } from "./exit.ts";
import { LineSplitter } from "./lines.ts";
import { discoverOvmf, type OvmfFiles, type OvmfOptions } from "./ovmf.ts";
import { QmpClient } from "./qmp.ts";
import { makeWorkDir, sweepStaleWorkDirs } from "./workdir.ts";
import { parseMemSize } from "./size.ts";

/** util-linux's setpriv, which sets the parent-death signal before it execs QEMU (Debian: always installed). */
function setpriv(): string {
  const found = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
  if (!found) throw new HarnessError("setpriv (util-linux) is missing: it makes QEMU die with uvt; apt-get install util-linux");
  return found;
}

export interface MachineOptions {
  /** Short name of this boot: names the artifacts folder. */
  name?: string;
  /** Raw disk image with the ESP; omit to boot the firmware alone. */
  image?: string;
  accel?: AccelRequest;
  /** "256M", "1G", or a number of MiB. Default 256 MiB. */
  mem?: string | number;
  smp?: number;
  /** Wall-clock limit of the whole boot; QEMU is killed when it passes. Default 120 s. */
  timeoutMs?: number;
  /** QEMU binary; default $UVT_QEMU or qemu-system-x86_64 from PATH. */
  qemu?: string;
  ovmf?: OvmfOptions;
  /** Writes to the image go to a throw-away overlay (default true). */
  snapshot?: boolean;
  extraArgs?: string[];
  /** Data disks, raw image files attached as virtio-blk devices (qemu/args.ts). */
  disks?: string[];
  /** The -cpu model instead of the accelerator's default (qemu/args.ts). */
  cpu?: string;
  /**
   * Whether the machine has the Intel IOMMU (qemu/args.ts). Default: the image decides (its IOMMU marker, qemu/accel.ts);
   * false leaves it out for an image that asks for it (the test of the ultravisor finding no unit).
   */
  iommu?: boolean;
  /** Harness messages (accelerator choice, artifacts path). Default: stderr, prefixed "qemu: ". */
  log?: (message: string) => void;
  /** Where failed boots keep their logs. Default ./artifacts (relative to the working directory). */
  artifactsDir?: string;
  /** Keep artifacts on failure (default true; the accelerator probe turns it off: its failure is an answer). */
  keepArtifactsOnFailure?: boolean;
  /**
   * Boot a Linux kernel directly (QEMU's -kernel loader under SeaBIOS, no OVMF, no image): the plain-QEMU reference a
   * Linux partition is compared with. The files must exist.
   */
  linux?: DirectLinux;
}

export interface SerialLine {
  text: string;
  /** Milliseconds since QEMU was spawned. */
  ms: number;
}

interface Waiter {
  pattern: RegExp;
  /** Also match the line still being written (prompts such as "Shell> " never end in a newline). */
  partial: boolean;
  resolve: (m: RegExpMatchArray) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const MAX_SMP = 64;
export const DEFAULT_TIMEOUT_MS = 120_000;
/** Under working KVM, OVMF prints its first console output well within a second or two; TCG takes ~4 s. */
export const KVM_PROBE_TIMEOUT_MS = 6_000;

function defaultLog(message: string): void {
  process.stderr.write(`qemu: ${message}\n`);
}

/** Resolves a binary name through PATH, or throws the one-line "install it" error. */
export function findQemu(name = process.env["UVT_QEMU"] || "qemu-system-x86_64"): string {
  const candidates = name.includes("/") ? [resolve(name)] : (process.env["PATH"] ?? "").split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      // try the next PATH entry
    }
  }
  throw new HarnessError(`QEMU not found (${name}): install it with 'apt-get install qemu-system-x86' or set UVT_QEMU`);
}

/** A data disk: an existing raw file of whole sectors (uvt disk create makes one). */
function checkDisk(disk: string): string {
  const p = isAbsolute(disk) ? disk : resolve(disk);
  let size: number;
  try {
    const s = statSync(p);
    if (!s.isFile()) throw new HarnessError(`data disk ${disk} is not a file: pass a raw disk image (uvt disk create FILE --size SIZE makes one)`);
    size = s.size;
  } catch (e) {
    if (e instanceof HarnessError) throw e;
    throw new HarnessError(`data disk not found: ${disk}; create it with 'uvt disk create ${disk} --size 64M'`);
  }
  if (size === 0 || size % 512 !== 0) throw new HarnessError(`data disk ${disk} is ${size} bytes, not a whole number of 512-byte sectors`);
  // The canonical path: the same file reached by two names must become one -blockdev node (qemu/args.ts).
  return realpathSync(p);
}

function checkImage(image: string): string {
  const p = isAbsolute(image) ? image : resolve(image);
  let size: number;
  try {
    const s = statSync(p);
    if (!s.isFile()) throw new HarnessError(`image ${image} is not a file: pass the disk image (esp.img) built by 'uvt build'`);
    size = s.size;
  } catch (e) {
    if (e instanceof HarnessError) throw e;
    throw new HarnessError(`image not found: ${image}; run 'uvt build' first or pass --image PATH`);
  }
  if (size === 0 || size % 512 !== 0) {
    throw new HarnessError(`image ${image} is ${size} bytes, not a whole number of 512-byte sectors: pass a raw disk image (esp.img)`);
  }
  return p;
}

function parseSmp(n: number | undefined): number {
  const smp = n ?? 1;
  if (!Number.isInteger(smp) || smp < 1 || smp > MAX_SMP) throw new HarnessError(`CPU count ${n} is not between 1 and ${MAX_SMP}: pass a smaller --smp`);
  return smp;
}

export class Machine {
  readonly lines: SerialLine[] = [];
  /** Resolves when QEMU has exited, with how it ended. Never rejects. */
  readonly exited: Promise<ExitReason>;
  /** Set once QEMU has exited. */
  exit: ExitReason | undefined;
  /** Folder of kept logs, once a failure has kept them. */
  artifacts: string | undefined;
  qmp: QmpClient | undefined;

  private stderr = "";
  private readonly splitter = new LineSplitter();
  private readonly lineListeners: Array<(l: SerialLine) => void> = [];
  private readonly outputListeners: Array<(chunk: Uint8Array) => void> = [];
  private readonly waiters = new Set<Waiter>();
  /** Index of the first line waitFor has not consumed yet. */
  private cursor = 0;
  /** Set when the harness itself stops QEMU for running late; it then is the boot's exit reason. */
  private timedOut: ExitReason | undefined;
  private closed = false;
  private readonly bootTimer: ReturnType<typeof setTimeout>;
  private readonly t0: number;

  private constructor(
    readonly name: string,
    readonly accel: Accel,
    readonly memMiB: number,
    readonly commandLine: string,
    private readonly proc: ResultPromise<{ stdin: "pipe"; stdout: "pipe"; stderr: "pipe"; buffer: false; reject: false }>,
    private readonly workDir: string,
    readonly serialLogPath: string,
    readonly timeoutMs: number,
    private readonly log: (m: string) => void,
    private readonly artifactsRoot: string,
    private readonly keepOnFailure: boolean,
    t0: number,
  ) {
    this.t0 = t0;
    proc.stdout.on("data", (chunk: Buffer) => {
      for (const l of this.outputListeners) l(chunk);
      for (const text of this.splitter.push(chunk)) this.addLine(text);
      for (const w of [...this.waiters]) if (w.partial) this.tryWaiter(w);
    });
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (s: string) => {
      this.stderr += s;
    });
    // QEMU reads the serial port's input from stdin; an error writing to a dead QEMU is reported by `exited`.
    proc.stdin.on("error", () => undefined);
    this.bootTimer = setTimeout(() => {
      this.timedOut = { kind: "timeout", seconds: this.timeoutMs / 1000 };
      this.failWith(`boot timed out after ${this.timeoutMs / 1000} s`);
      this.kill();
    }, timeoutMs);
    this.exited = proc.then((r) => {
      clearTimeout(this.bootTimer);
      const rest = this.splitter.flush();
      if (rest !== undefined) this.addLine(rest);
      const reason: ExitReason = this.timedOut ?? decodeExit(r.exitCode, r.signal, this.stderr);
      this.exit = reason;
      this.qmp?.close();
      const why = this.timedOut ? describeExit(this.timedOut) : `QEMU exited before the serial output matched: ${describeExit(reason)}`;
      for (const w of [...this.waiters]) this.rejectWaiter(w, why);
      if (reason.kind === "error" && !this.closed) this.failWith(describeExit(reason));
      return reason;
    });
  }

  /** Resolves every input, picks the accelerator, starts QEMU and connects QMP. */
  static async start(opts: MachineOptions = {}): Promise<Machine> {
    const log = opts.log ?? defaultLog;
    const qemu = findQemu(opts.qemu);
    const ovmf = discoverOvmf(opts.ovmf);
    const image = opts.image !== undefined ? checkImage(opts.image) : undefined;
    const disks = opts.disks?.map(checkDisk);
    if (opts.linux) {
      if (image !== undefined) throw new HarnessError("a direct Linux boot takes no disk image: pass linux or image, not both");
      for (const [what, f] of [["kernel", opts.linux.kernel], ["initrd", opts.linux.initrd]] as const) {
        if (!existsSync(f)) throw new HarnessError(`${what} not found: ${f}; run scripts/setup (the cached Debian kernel) or pass an existing file`);
      }
    }
    const memMiB = typeof opts.mem === "number" ? parseMemSize(`${opts.mem}M`) : parseMemSize(opts.mem ?? "256M");
    const smp = parseSmp(opts.smp);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new HarnessError(`timeout ${timeoutMs} ms is not positive: pass a timeout in seconds greater than 0`);
    let choice = await Machine.chooseAccel(opts.accel ?? "auto", qemu, ovmf);
    // An image with hardware-virtualized partitions needs nested SVM under KVM (docs/specs/svm.md).
    if (choice.accel === "kvm" && image !== undefined && imageNeedsSvm(image)) choice = requireNestedSvm(choice, nestedSvmProblem());
    log(describeChoice(choice));
    return Machine.spawn({ ...opts, image, log, ...(disks ? { disks } : {}) }, qemu, ovmf, choice.accel, memMiB, smp, timeoutMs);
  }

  /** The accelerator for `request` with this QEMU and firmware (probing KVM once when `auto`). */
  static chooseAccel(request: AccelRequest, qemu: string, ovmf: OvmfFiles, cacheFile?: string | null): Promise<AccelChoice> {
    return resolveAccel({ request, key: probeKey(qemu, ovmf.code), probe: () => Machine.probeKvm(qemu, ovmf), cacheFile });
  }

  private static async spawn(
    opts: MachineOptions & { log: (m: string) => void },
    qemu: string,
    ovmf: OvmfFiles,
    accel: Accel,
    memMiB: number,
    smp: number,
    timeoutMs: number,
  ): Promise<Machine> {
    sweepStaleWorkDirs();
    const workDir = makeWorkDir();
    const varsCopy = join(workDir, "vars.fd");
    copyFileSync(ovmf.vars, varsCopy);
    const serialLog = join(workDir, "serial.log");
    const qmpSocket = join(workDir, "qmp.sock");
    const args = buildQemuArgs({ ovmf, varsCopy, accel, memMiB, smp, image: opts.image, snapshot: opts.snapshot, serialLog, qmpSocket, extra: opts.extraArgs, ...(opts.cpu !== undefined ? { cpu: opts.cpu } : {}), ...(opts.disks ? { disks: opts.disks } : {}), ...(opts.linux ? { linux: opts.linux } : {}),
      ...((opts.iommu ?? (opts.image !== undefined && !opts.linux && imageNeedsIommu(opts.image))) ? { iommu: true } : {}) });
    const t0 = performance.now();
    // QEMU dies with us even when we are killed outright (SIGKILL runs no handler): setpriv sets the parent-death
    // signal and execs QEMU in the same process, so proc.pid is QEMU's.
    const proc = execa(setpriv(), ["--pdeathsig", "SIGKILL", "--", qemu, ...args], {
      stdin: "pipe", stdout: "pipe", stderr: "pipe", buffer: false, reject: false, forceKillAfterDelay: 3000,
    });
    const m = new Machine(
      opts.name ?? "boot",
      accel,
      memMiB,
      shellQuote([qemu, ...args]),
      proc,
      workDir,
      serialLog,
      timeoutMs,
      opts.log,
      resolve(opts.artifactsDir ?? "artifacts"),
      opts.keepArtifactsOnFailure ?? true,
      t0,
    );
    try {
      m.qmp = await QmpClient.connect(qmpSocket, 10_000, () => m.exit === undefined);
    } catch (e) {
      // QEMU that never opened its socket has usually died with a reason on stderr: that reason is the error.
      const exit = await Promise.race([m.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
      const err = qemuErrorLine(m.stderr);
      const detail = exit ? `${describeExit(exit)}${err && exit.kind !== "error" ? `: ${err}` : ""}` : (e as Error).message;
      // The thrown BootError names the artifacts folder; announcing it as well would say it twice.
      m.failWith(`QEMU did not start: ${detail}`, false);
      await m.close();
      throw new BootError(`QEMU did not start: ${detail}`, m.artifacts);
    }
    return m;
  }

  /** Milliseconds since QEMU was spawned. */
  elapsedMs(): number {
    return performance.now() - this.t0;
  }

  private addLine(text: string): void {
    const line = { text, ms: this.elapsedMs() };
    this.lines.push(line);
    for (const l of this.lineListeners) l(line);
    for (const w of [...this.waiters]) this.tryWaiter(w);
  }

  /** Calls `listener` for every serial line from now on; returns a function that unsubscribes. */
  onLine(listener: (line: SerialLine) => void): () => void {
    this.lineListeners.push(listener);
    return () => {
      const i = this.lineListeners.indexOf(listener);
      if (i >= 0) this.lineListeners.splice(i, 1);
    };
  }

  /** Raw serial bytes as they arrive (escape sequences included). */
  onOutput(listener: (chunk: Uint8Array) => void): void {
    this.outputListeners.push(listener);
  }

  /** Sends bytes to the guest's serial port. */
  sendSerial(text: string): void {
    this.proc.stdin.write(text);
  }

  /**
   * Resolves with the match of the first serial line, not consumed by an earlier waitFor, that matches `pattern`.
   * Lines already received count, so a fast guest cannot race the caller. On timeout or QEMU exit the boot has
   * failed: logs are kept, QEMU is stopped, and the promise rejects with a BootError naming the artifacts folder.
   * With `partial`, the unfinished last line is tried too; a match there consumes the lines before it, not itself.
   */
  waitFor(pattern: RegExp | string, timeoutMs: number, opts: { partial?: boolean } = {}): Promise<RegExpMatchArray> {
    const re = typeof pattern === "string" ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : pattern;
    return new Promise<RegExpMatchArray>((resolve, reject) => {
      const w: Waiter = {
        pattern: re,
        partial: opts.partial ?? false,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.rejectWaiter(w, `serial output did not match ${re} within ${timeoutMs / 1000} s`);
          this.timedOut ??= { kind: "timeout", seconds: timeoutMs / 1000 };
          this.kill();
        }, timeoutMs),
      };
      this.waiters.add(w);
      if (!this.tryWaiter(w) && this.exit !== undefined) this.rejectWaiter(w, `QEMU had already exited: ${describeExit(this.exit)}`);
    });
  }

  private tryWaiter(w: Waiter): boolean {
    for (let i = this.cursor; i < this.lines.length; i++) {
      const m = w.pattern.exec(this.lines[i]!.text);
      if (m) {
        this.cursor = i + 1;
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve(m);
        return true;
      }
    }
    if (w.partial) {
      const m = w.pattern.exec(this.splitter.peek());
      if (m) {
        this.cursor = this.lines.length;
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve(m);
        return true;
      }
    }
    return false;
  }

  private rejectWaiter(w: Waiter, why: string): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    this.failWith(why);
    w.reject(new BootError(`${this.name}: ${why}`, this.artifacts));
  }

  /**
   * Records a failure of this boot: keeps serial log, stderr and command line under the artifacts folder (once) and
   * prints where. Tests call it when the guest's behaviour, not the harness, is wrong.
   */
  failWith(reason: string, announce = true): string | undefined {
    if (this.artifacts || !this.keepOnFailure) return this.artifacts;
    try {
      this.artifacts = keepArtifacts(this.artifactsRoot, {
        name: this.name,
        reason,
        commandLine: this.commandLine,
        stderr: this.stderr,
        serialLog: this.serialLogPath,
      });
      if (announce) this.log(`${this.name}: ${reason}; logs kept in ${this.artifacts}`);
    } catch (e) {
      this.log(`${this.name}: ${reason}; could not keep logs: ${(e as Error).message}`);
    }
    return this.artifacts;
  }

  /** QEMU's stderr so far. */
  stderrText(): string {
    return this.stderr;
  }

  /** Resolves with how QEMU ended (the boot timeout bounds it). */
  wait(): Promise<ExitReason> {
    return this.exited;
  }

  /** Reads guest physical memory over QMP. */
  readPhysical(address: number | bigint, length: number): Promise<Uint8Array> {
    if (!this.qmp) throw new Error("QMP is not connected");
    return this.qmp.readPhysical(address, length);
  }

  private kill(): void {
    if (this.exit === undefined) this.proc.kill("SIGTERM");
  }

  /** Stops QEMU if it still runs (QMP quit, then SIGTERM/SIGKILL) and removes the run's temp folder. */
  async close(): Promise<ExitReason> {
    this.closed = true;
    if (this.exit === undefined) {
      if (this.qmp) await Promise.race([this.qmp.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
      const t = setTimeout(() => this.kill(), 2000);
      await this.exited;
      clearTimeout(t);
    }
    this.qmp?.close();
    rmSync(this.workDir, { recursive: true, force: true });
    return this.exited;
  }

  /**
   * Boots OVMF with no disk under KVM and reports whether it got as far as console output. A host whose KVM cannot run
   * OVMF shows it at once (QEMU stops in "internal-error", or prints "KVM internal error"); a working one prints within
   * a second or two, so the probe costs little either way.
   */
  private static async probeKvm(qemu: string, ovmf: OvmfFiles): Promise<ProbeResult> {
    let m: Machine;
    try {
      m = await Machine.spawn({ name: "kvm-probe", log: () => undefined, keepArtifactsOnFailure: false }, qemu, ovmf, "kvm", 128, 1, KVM_PROBE_TIMEOUT_MS + 5000);
    } catch (e) {
      // The message is "QEMU did not start: <how it ended>: <QEMU's error line>"; the last part is the news.
      return { kvm: false, reason: `KVM unusable: ${(e as Error).message.replace(/^.*?QEMU did not start: /, "")}` };
    }
    try {
      return await new Promise<ProbeResult>((resolve) => {
        let done = false;
        const finish = (r: ProbeResult): void => {
          if (done) return;
          done = true;
          clearInterval(poll);
          clearTimeout(timer);
          resolve(r);
        };
        m.onOutput(() => finish({ kvm: true, reason: "KVM probe boot reached firmware output" }));
        void m.exited.then((x) => finish({ kvm: false, reason: `KVM probe: ${describeExit(x)}` }));
        const timer = setTimeout(() => finish({ kvm: false, reason: `KVM probe: no firmware output within ${KVM_PROBE_TIMEOUT_MS / 1000} s` }), KVM_PROBE_TIMEOUT_MS);
        const poll = setInterval(() => {
          const err = qemuErrorLine(m.stderrText());
          if (err) return finish({ kvm: false, reason: `KVM probe: ${err}` });
          m.qmp?.queryStatus().then(
            (s) => {
              if (s.status === "internal-error" || s.status === "guest-panicked") finish({ kvm: false, reason: `KVM probe: guest stopped in state ${s.status}` });
            },
            () => undefined,
          );
        }, 100);
      });
    } finally {
      await m.close();
    }
  }
}
