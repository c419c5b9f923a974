// hw.* intrinsics: the unprivileged ones run on the host (rdtsc, pause, mfence and mfence_strict, flush with its bounds check, panic
// through the trap handler); the privileged ones are checked by disassembling their inline sequence with objdump. Also
// checks that docs/specs/intrinsics.md lists exactly the intrinsics the table implements.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Trap } from "./abi.ts";
import { compileWasm } from "./compile.ts";
import { HostInstance } from "./host.ts";
import { INTRINSICS } from "./intrinsics.ts";
import { I32, I64, ModuleBuilder, op } from "./testing/wasm-builder.ts";

/** objdump's Intel-syntax instruction text of raw x86-64 code, one line per instruction. */
function disassemble(code: Uint8Array): string[] {
  const dir = mkdtempSync(join(tmpdir(), "aot-intr-"));
  try {
    writeFileSync(join(dir, "f.bin"), code);
    const text = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", join(dir, "f.bin")], { encoding: "utf8" });
    return text.split("\n").filter((l) => /^\s+[0-9a-f]+:\t/.test(l)).map((l) => l.split("\t").pop()!.replace(/ +/g, " ").trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function withIntrinsic(name: string, params: number[], results: number[], args: number[][]): Uint8Array {
  const b = new ModuleBuilder();
  b.importFunc("hw", name, params, results);
  b.setMemory(1, 1);
  b.func([I32, I32], results, [], [...args.flat(), ...op.call(0)], "f");
  return b.build();
}

describe("hw intrinsics on the host", () => {
  it("rdtsc returns an increasing 64-bit counter; pause and mfence run", () => {
    const b = new ModuleBuilder();
    b.importFunc("hw", "rdtsc", [], [I64]);
    b.importFunc("hw", "pause", [], []);
    b.importFunc("hw", "mfence", [], []);
    b.func([], [I64], [], [...op.call(0), ...op.call(1), ...op.call(2), ...op.call(0), 0x7d], "elapsed_neg");
    b.func([], [I64], [], [...op.call(0)], "tsc");
    const inst = new HostInstance(b.build());
    try {
      const a = inst.call("tsc", []).value;
      const c = inst.call("tsc", []).value;
      expect(c).toBeGreaterThan(a);
      const d = BigInt.asIntN(64, inst.call("elapsed_neg", []).value);
      expect(d).toBeLessThan(0n);
    } finally {
      inst.dispose();
    }
  });

  it("hw.mfence is a locked or on the stack, hw.mfence_strict a real mfence (ADR 0003); both run and keep the stack", () => {
    const b = new ModuleBuilder();
    b.importFunc("hw", "mfence", [], []);
    b.importFunc("hw", "mfence_strict", [], []);
    // A value in a local's frame slot and one on the wasm value stack survive both barriers unchanged.
    b.func([I64], [I64], [I64], [...op.get(0), ...op.set(1), ...op.get(0), ...op.call(0), ...op.call(1), ...op.call(0), ...op.get(1), 0x7c], "f");
    const bytes = b.build();
    const text = disassemble(compileWasm(bytes).code);
    const barriers = text.filter((l) => /lock|fence/.test(l));
    expect(barriers).toEqual(["lock or DWORD PTR [rsp],0x0", "mfence", "lock or DWORD PTR [rsp],0x0"]);
    const inst = new HostInstance(bytes);
    try {
      expect(inst.call("f", [0x123456789n]).value).toBe(0x2468acf12n);
    } finally {
      inst.dispose();
    }
  });

  it("flush writes back a range of linear memory and traps outside it", () => {
    const inst = new HostInstance(withIntrinsic("flush", [I32, I32], [], [op.get(0), op.get(1)]));
    try {
      expect(inst.call("f", [0, 65536]).trap).toBe(0);
      expect(inst.call("f", [100, 5000]).trap).toBe(0);
      expect(inst.call("f", [65000, 537]).trap).toBe(Trap.MemoryOutOfBounds);
      expect(inst.call("f", [0xffffffff, 2]).trap).toBe(Trap.MemoryOutOfBounds);
    } finally {
      inst.dispose();
    }
  });

  it("panic reaches the trap handler with code Panic and the message pointer", () => {
    const inst = new HostInstance(withIntrinsic("panic", [I32, I32, I32, I32], [], [op.get(0), op.get(1), op.i32(7), op.i32(9)]));
    try {
      const r = inst.call("f", [1234, 5]);
      expect(r.trap).toBe(Trap.Panic);
      expect(r.detail & 0xffffffffn).toBe(1234n);
    } finally {
      inst.dispose();
    }
  });
});

describe("privileged intrinsics (disassembly)", () => {
  const cases: [string, number[], number[], string[]][] = [
    ["outb", [I32, I32], [], ["out dx,al"]],
    ["ind", [I32], [I32], ["in eax,dx"]],
    ["rdmsr", [I32], [I64], ["rdmsr", "shl rdx,0x20"]],
    ["wrmsr", [I32, I64], [], ["wrmsr", "shr rdx,0x20"]],
    ["read_cr3", [], [I64], ["mov rax,cr3"]],
    ["write_cr3", [I64], [], ["mov cr3,rax"]],
    ["invlpg", [I64], [], ["invlpg"]],
    ["hlt", [], [], ["hlt"]],
    ["mmio_read8", [I64], [I32], ["movzx eax,BYTE PTR [rcx]"]],
    ["mmio_read16", [I64], [I32], ["movzx eax,WORD PTR [rcx]"]],
    ["mmio_read32", [I64], [I32], ["mov eax,DWORD PTR [rcx]"]],
    ["mmio_write8", [I64, I32], [], ["mov BYTE PTR [rcx],al"]],
    ["mmio_write16", [I64, I32], [], ["mov WORD PTR [rcx],ax"]],
    ["mmio_write32", [I64, I32], [], ["mov DWORD PTR [rcx],eax"]],
    ["hypercall", [I64, I64, I64], [I64], ["int 0x80"]],
  ];
  for (const [name, params, results, want] of cases) {
    it(`hw.${name} lowers inline to ${want.join("; ")}`, () => {
      const b = new ModuleBuilder();
      b.importFunc("hw", name, params, results);
      b.func([], results, [], [...params.flatMap((t) => (t === I64 ? op.i64(3) : op.i32(3))), ...op.call(0)], "f");
      const c = compileWasm(b.build());
      const dir = mkdtempSync(join(tmpdir(), "aot-intr-"));
      try {
        writeFileSync(join(dir, "f.bin"), c.code);
        const text = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", join(dir, "f.bin")], { encoding: "utf8" });
        for (const w of want) expect(text.replace(/ +/g, " ")).toContain(w);
        // Inline: the only calls in the code are the trap stubs' calls of the handler at [r14+0x20].
        const calls = text.split("\n").filter((l) => /\tcall /.test(l));
        expect(calls.every((l) => l.includes("[r14+0x20]"))).toBe(true);
        expect(c.imports[0]!.intrinsic).toBe(name);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("hw.hypercall follows docs/specs/hypercall-abi.md: rax = number, rcx = a, rdx = b, int 0x80, result from rax", () => {
    const b = new ModuleBuilder();
    b.importFunc("hw", "hypercall", [I64, I64, I64], [I64]);
    b.func([], [I64], [], [...op.i64(0x11), ...op.i64(0x22), ...op.i64(0x33), ...op.call(0), ...op.i64(1), 0x7c], "f");
    const c = compileWasm(b.build());
    const dir = mkdtempSync(join(tmpdir(), "aot-intr-"));
    try {
      writeFileSync(join(dir, "f.bin"), c.code);
      const text = execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", join(dir, "f.bin")], { encoding: "utf8" });
      const lines = text.split("\n").map((l) => l.split("\t").pop()!.replace(/ +/g, " ").trim());
      const at = lines.indexOf("int 0x80");
      expect(at).toBeGreaterThan(0);
      // The three moves before the gate load the ABI's registers (any order); the result is read from rax after it.
      expect(lines.slice(at - 3, at).sort()).toEqual(["mov eax,0x11", "mov ecx,0x22", "mov edx,0x33"]);
      expect(lines[at + 1]).toMatch(/^mov r[a-z0-9]+,rax$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the host runtime refuses privileged intrinsics instead of executing them", () => {
    for (const [name, params, results] of cases) {
      const b = new ModuleBuilder();
      b.importFunc("hw", name, params, results);
      b.func([], [], [], [], "f");
      expect(() => new HostInstance(b.build()), name).toThrow(new RegExp(`hw\\.${name} is a privileged intrinsic`));
    }
  });

  it("docs/specs/intrinsics.md lists every intrinsic of the table", () => {
    const doc = readFileSync(join(import.meta.dirname, "../../docs/specs/intrinsics.md"), "utf8");
    const listed = [...doc.matchAll(/^\| `hw\.([a-z0-9_]+)`/gm)].map((m) => m[1]).sort();
    expect(listed).toEqual([...INTRINSICS.keys()].sort());
  });
});
