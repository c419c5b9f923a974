// Splits a byte or text stream into lines: the guest's serial console for Machine.onLine/waitFor, and QMP's JSON
// replies (qmp.ts). Firmware output carries terminal escapes (OVMF's ConOut speaks VT100 over the serial port) and
// CR/LF pairs; serial lines are delivered without them.

/** Removes ANSI/VT100 escape sequences (CSI, OVMF's `ESC [=3h`, charset selects) and stray control characters. */
export function stripTerminal(s: string): string {
  /* eslint-disable no-control-regex -- matching terminal control characters is this function's job */
  return s
    .replace(/\x1b\[[0-9;=?]*[ -/]*[@-~]/g, "")
    .replace(/\x1b[()][0-9A-Za-z]/g, "")
    .replace(/\x1b[@-Z\\-_]/g, "")
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
  /* eslint-enable no-control-regex */
}

/**
 * Feed it chunks; it returns the complete lines they finish, without the line end. `flush()` hands out the
 * unterminated rest. With `terminal` (the default) lines are also cleaned of terminal escapes and control characters;
 * a protocol stream (QMP) passes false and gets its lines as sent.
 */
export class LineSplitter {
  private rest = "";
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private readonly clean: (line: string) => string;

  constructor(options: { terminal?: boolean } = {}) {
    this.clean = options.terminal === false ? (l) => l.replace(/\r+$/, "") : (l) => stripTerminal(l.replace(/\r+$/, ""));
  }

  push(chunk: Uint8Array | string): string[] {
    this.rest += typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    const parts = this.rest.split("\n");
    this.rest = parts.pop()!;
    return parts.map(this.clean);
  }

  /** The text after the last newline, cleaned, or undefined when there is none. */
  flush(): string | undefined {
    const r = this.rest + this.decoder.decode();
    this.rest = "";
    return r === "" ? undefined : this.clean(r);
  }

  /** The current unterminated line, cleaned (for waitFor patterns on prompts that never end in a newline). */
  peek(): string {
    return this.clean(this.rest);
  }
}
