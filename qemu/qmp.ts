// QMP client of the QEMU harness: JSON over the unix socket the Machine asks QEMU to listen on. Negotiates
// capabilities, runs commands one at a time (matched by id), collects asynchronous events, and reads guest
// physical memory through pmemsave into a temp file.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LineSplitter } from "./lines.ts";

export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpStatus {
  running: boolean;
  /** QEMU's RunState: "running", "paused", "shutdown", "internal-error", "guest-panicked", ... */
  status: string;
}

/** An error reply from QEMU: `cls` is its error class (GenericError, CommandNotFound, ...). */
export class QmpError extends Error {
  override name = "QmpError";
  constructor(
    readonly command: string,
    readonly cls: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${cls}: ${desc}`);
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient {
  private readonly lines = new LineSplitter({ terminal: false });
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners: Array<(e: QmpEvent) => void> = [];
  private closedError: Error | undefined;
  /** Every event received so far, in order (SHUTDOWN, RESET, STOP, ...). */
  readonly events: QmpEvent[] = [];
  /** QEMU's greeting: version and capabilities offered. */
  greeting: unknown;

  private constructor(private readonly sock: Socket) {}

  /**
   * Connects to QEMU's QMP socket, retrying while QEMU is still creating it, then negotiates capabilities.
   * `alive` lets the caller stop the retries early when QEMU has already died.
   */
  static async connect(path: string, timeoutMs = 10_000, alive: () => boolean = () => true): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once("connect", () => {
            s.off("error", reject);
            resolve(s);
          });
          s.once("error", reject);
        });
        const client = new QmpClient(sock);
        try {
          await client.handshake(Math.max(1000, deadline - Date.now()));
        } catch (e) {
          client.close();
          throw e;
        }
        return client;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const retryable = code === "ENOENT" || code === "ECONNREFUSED";
        if (!retryable || Date.now() >= deadline || !alive()) {
          throw new Error(`cannot connect to QMP socket ${path}: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private handshake(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
      const onGreeting = (msg: Record<string, unknown>): void => {
        clearTimeout(timer);
        this.greeting = msg["QMP"];
        this.execute("qmp_capabilities").then(() => resolve(), reject);
      };
      this.greetingHandler = onGreeting;
      this.sock.setEncoding("utf8");
      this.sock.on("data", (d: string) => this.onData(d));
      this.sock.on("close", () => this.onClose(new Error("QMP connection closed")));
      this.sock.on("error", (e) => this.onClose(e));
      this.closeHandler = (e) => {
        clearTimeout(timer);
        reject(e);
      };
    });
  }

  private greetingHandler: ((msg: Record<string, unknown>) => void) | undefined;
  /** Fails the handshake when QEMU closes the socket (it died) before greeting us. */
  private closeHandler: ((e: Error) => void) | undefined;

  private onData(d: string): void {
    for (const raw of this.lines.push(d)) {
      const line = raw.trim();
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // QEMU only sends JSON; a torn line would be our bug, not worth killing the boot over.
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if ("QMP" in msg) {
      const h = this.greetingHandler;
      this.greetingHandler = undefined;
      this.closeHandler = undefined;
      h?.(msg);
      return;
    }
    if ("event" in msg) {
      const ev = msg as unknown as QmpEvent;
      this.events.push(ev);
      for (const l of this.listeners) l(ev);
      return;
    }
    const id = typeof msg["id"] === "string" ? msg["id"] : undefined;
    const p = id !== undefined ? this.pending.get(id) : undefined;
    if (!p || id === undefined) return;
    this.pending.delete(id);
    if ("error" in msg) {
      const err = msg["error"] as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, err.class ?? "Error", err.desc ?? "unknown error"));
    } else {
      p.resolve(msg["return"]);
    }
  }

  private onClose(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    this.closeHandler?.(e);
    this.closeHandler = undefined;
    for (const p of this.pending.values()) p.reject(new Error(`QMP ${p.command}: ${e.message}`));
    this.pending.clear();
  }

  /** Runs one QMP command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedError) return Promise.reject(new Error(`QMP ${command}: ${this.closedError.message}`));
    const id = `uv${this.nextId++}`;
    const msg: Record<string, unknown> = { execute: command, id };
    if (args) msg["arguments"] = args;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(JSON.stringify(msg) + "\n");
    });
  }

  onEvent(listener: (e: QmpEvent) => void): void {
    this.listeners.push(listener);
  }

  queryStatus(): Promise<QmpStatus> {
    return this.execute<QmpStatus>("query-status");
  }

  /** Presses the virtual power button (ACPI); the guest decides whether to shut down. */
  async systemPowerdown(): Promise<void> {
    await this.execute("system_powerdown");
  }

  /** Ends QEMU at once. The connection closes as QEMU exits, so a lost reply is expected, not an error. */
  async quit(): Promise<void> {
    await this.execute("quit").catch((e: Error) => {
      if (!/closed|ECONNRESET|EPIPE/.test(e.message)) throw e;
    });
  }

  /** Runs a human-monitor (HMP) command such as "info registers" and returns its text output. */
  humanMonitorCommand(commandLine: string): Promise<string> {
    return this.execute<string>("human-monitor-command", { "command-line": commandLine });
  }

  /** Reads guest physical memory: QEMU writes it to a temp file with pmemsave, and we read that back. */
  async readPhysical(address: number | bigint, length: number): Promise<Uint8Array> {
    const addr = BigInt(address);
    if (addr < 0n || length <= 0 || !Number.isSafeInteger(length)) {
      throw new RangeError(`readPhysical: bad range 0x${addr.toString(16)}+${length}`);
    }
    if (addr > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`readPhysical: address 0x${addr.toString(16)} too large for QMP's JSON`);
    const dir = mkdtempSync(join(tmpdir(), "uv-pmem-"));
    try {
      const file = join(dir, "mem.bin");
      await this.execute("pmemsave", { val: Number(addr), size: length, filename: file });
      const data = readFileSync(file);
      if (data.length !== length) throw new Error(`pmemsave wrote ${data.length} bytes, expected ${length}`);
      return new Uint8Array(data.buffer, data.byteOffset, data.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  close(): void {
    this.onClose(new Error("QMP connection closed by us"));
    this.sock.destroy();
  }
}
