// Unit tests of `uvt run`'s gdb line (cli/commands/run.ts): the add-symbol-file offset is load address − preferred
// base, written as gdb's expression parser takes it (negative when the firmware loads below the base, as OVMF does).
import { describe, expect, it } from "vitest";
import { addSymbolFileCommand } from "./run.ts";

describe("addSymbolFileCommand", () => {
  it("writes a negative offset with its sign, a positive one plainly", () => {
    expect(addSymbolFileCommand("out/BOOTX64.elf", 0xdeb9000n, 0x140000000n)).toBe("add-symbol-file out/BOOTX64.elf -o -0x132147000");
    expect(addSymbolFileCommand("o/BOOTX64.elf", 0x150010000n, 0x140000000n)).toBe("add-symbol-file o/BOOTX64.elf -o 0x10010000");
    expect(addSymbolFileCommand("o/BOOTX64.elf", 0x140000000n, 0x140000000n)).toBe("add-symbol-file o/BOOTX64.elf -o 0x0");
  });
});
