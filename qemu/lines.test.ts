// Unit tests of the line splitter (qemu/lines.ts), with OVMF's real escape sequences as input, and in the raw mode
// the QMP client reads its JSON replies with.
import { describe, expect, it } from "vitest";
import { LineSplitter, stripTerminal } from "./lines.ts";

describe("LineSplitter", () => {
  it("joins chunks split anywhere, including inside CRLF and UTF-8 sequences", () => {
    const s = new LineSplitter();
    const bytes = new TextEncoder().encode("héllo\r\nworld\r\npartial");
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...s.push(bytes.subarray(i, i + 1)));
    expect(out).toEqual(["héllo", "world"]);
    expect(s.peek()).toBe("partial");
    expect(s.flush()).toBe("partial");
    expect(s.flush()).toBeUndefined();
  });

  it("removes the terminal escapes OVMF's console sends", () => {
    const raw = "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001\r\n\x1b[1m\x1b[33m\x1b[40mShell> \x1b[0m\x1b[37m\x1b[40m\n";
    expect(new LineSplitter().push(raw)).toEqual(["BdsDxe: loading Boot0001", "Shell> "]);
    expect(stripTerminal("a\x1b(Bb\x07c")).toBe("abc");
  });

  it("leaves lines as sent (but for the line end) when terminal cleaning is off", () => {
    const s = new LineSplitter({ terminal: false });
    const line = '{"return": {}, "id": "7"} \x1b[1m\x07';
    expect([...s.push(line.slice(0, 9)), ...s.push(`${line.slice(9)}\r\n{"event"`)]).toEqual([line]);
    expect(s.peek()).toBe('{"event"');
    expect(new LineSplitter().push(`${line}\n`)).toEqual(['{"return": {}, "id": "7"} ']);
  });
});
