// Tests of the ultravisor image builder without booting: GNU objdump reads BOOTX64.EFI (an EFI application whose
// entry is the loader) and disassembles the ring-0 code and the partition windows; the embedded schedule table is
// the one core.wasm computes for the configured duties; the channel template is a visorbus channel header; each
// window's info page names the partition and its channels; the AssemblyScript I/O partition's port instructions all lie
// in the line writer the monitor watches. The booted behaviour is test/hw/ultravisor.test.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objdumpPrivate } from "../toolchain/pe/objdump.ts";
import { writeEfiImage } from "./efi-image.ts";
import { buildUltravisorImage, formatCommandTemplate, type UltravisorImage } from "./ultravisor.ts";
import { loadCore } from "../core/wasm.ts";
import { carve, chanExports, ChannelType } from "../core/channel.ts";
import { parseSymbolMap } from "./symbol-map.ts";
import { readSchedule } from "../core/schedule.ts";
import { CMDCHAN, INFO, WINDOW, cmdSigBase } from "../monitor-gen/layout.ts";
import { IO_EMIT, IO_RECEIVE } from "../partitions/programs.ts";

let dir: string;
let img: UltravisorImage;
let efi: string;
let map: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "uv-image-"));
  img = await buildUltravisorImage();
  const out = await writeEfiImage(dir, img);
  efi = out.efi;
  map = readFileSync(out.map, "utf8");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** objdump -d of raw x86-64 bytes placed at `vma`. */
function disassemble(bytes: Uint8Array, vma: bigint): string {
  const f = join(dir, `blob-${vma.toString(16)}.bin`);
  writeFileSync(f, bytes);
  return execFileSync("objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", `--adjust-vma=0x${vma.toString(16)}`, f], { encoding: "utf8", maxBuffer: 64 << 20 });
}

describe("ultravisor image", () => {
  it("is an EFI application entered at the loader, with the monitor's privileged instructions in its text", () => {
    const p = objdumpPrivate(efi);
    const syms = parseSymbolMap(map);
    expect(p.fields.get("Subsystem")).toBe(10n);
    expect(p.fields.get("ImageBase")! + p.fields.get("AddressOfEntryPoint")!).toBe(syms.find((s) => s.name === "efi_main")!.address);
    const text = execFileSync("objdump", ["-d", efi], { encoding: "utf8", maxBuffer: 64 << 20 });
    for (const insn of ["lgdt", "lidt", "ltr", "iretq", "lretq", "mov    %rax,%cr3", "wrmsr", "hlt"]) expect(text, insn).toContain(insn);
  });

  it("embeds the schedule core.wasm computes: each partition's duty in quanta, the idle partition in the rest", () => {
    const t = readSchedule(img.schedule.buffer as ArrayBuffer, 0);
    const entries = t.rows[0]!.entries;
    img.config.partitions.forEach((p, i) => {
      const n = entries.filter((e) => e.partition === i + 1).length;
      expect(n, p.name).toBe(p.kind === "idle" ? 16 - img.config.partitions.reduce((s, q) => s + q.duty, 0) : p.duty);
    });
    // The table bytes are in the image, where the monitor reads them.
    expect(Buffer.from(img.efi).indexOf(Buffer.from(img.schedule))).toBeGreaterThan(0);
  });

  it("embeds core's schedule for each processor count up to host.pcpus, the one-processor table first (docs/specs/smp.md §2.1)", () => {
    expect(img.config.pcpus).toBe(2);
    expect(img.schedules).toHaveLength(2);
    expect(img.schedules[0]!.bytes).toEqual(img.schedule);
    // With two processors X and Y (pcpu: 1) share PCPU 1, every partition keeps its duty, and the partitions bound to
    // PCPU 0 are there.
    const two = readSchedule(img.schedules[1]!.bytes.buffer as ArrayBuffer, 0);
    expect(two.rows).toHaveLength(2);
    const name = (n: number): string => img.config.partitions[n - 1]!.name;
    const rowOf = (g: string): number[] => two.rows.flatMap((r, p) => (r.entries.some((e) => name(e.partition) === g) ? [p] : []));
    for (const p of img.config.partitions) {
      if (p.kind === "idle") continue;
      expect(rowOf(p.name), p.name).toEqual([p.pcpu === 1 ? 1 : 0]);
      expect(two.rows[rowOf(p.name)[0]!]!.entries.filter((e) => name(e.partition) === p.name).length, p.name).toBe(p.duty);
    }
    expect(img.schedules[1]!.rows).toEqual(two.rows.map((r) => r.entries.map((e) => name(e.partition)).join(" ")));
    // g_sched_tables follows g_sched_pcpus; every table's bytes are in the image, where the monitor reads them.
    const syms = parseSymbolMap(map);
    const at = (n: string): bigint => syms.find((s) => s.name === n)!.address;
    const file = Buffer.from(img.efi);
    expect(at("g_sched_tables") - at("g_sched_pcpus")).toBe(8n);
    for (const [k, t] of img.schedules.entries()) expect(file.indexOf(Buffer.from(t!.bytes)), `table for ${k + 1}`).toBeGreaterThan(0);
  });

  it("windows carry an info page naming the partition and every channel's peer; the I/O partition serves all consoles", () => {
    const io = img.partitions.find((p) => p.spec.kind === "io")!.packed!;
    const d = new DataView(io.blob.buffer, io.blob.byteOffset);
    const clients = img.config.partitions.filter((p) => p.kind !== "idle" && p.kind !== "io").map((p) => p.name);
    expect(Number(d.getBigUint64(INFO.slots, true))).toBe(clients.length);
    clients.forEach((name, k) => {
      expect(d.getUint8(INFO.slot(k) + 8), `slot ${k} role`).toBe(1);
      expect(Buffer.from(io.blob.subarray(INFO.slot(k) + 16, INFO.slot(k) + 32)).toString("ascii").replace(/\0+$/, "")).toBe(name);
    });
    // The line writer really writes to a port (so the TSS bitmap is what lets it), and guests reach the monitor by int 0x80.
    const lo = io.symbols.get(IO_EMIT.start)!, hi = io.symbols.get(IO_EMIT.end)!;
    const emit = disassemble(io.blob.subarray(Number(lo - WINDOW), Number(hi - WINDOW)), lo);
    expect(emit).toMatch(/out\s+%al,\(%dx\)/);
    expect(emit).toMatch(/in\s+\(%dx\),%al/);
    // The I/O partition (AssemblyScript) has no port instruction outside its line writer: while its rip is anywhere
    // else, no line is half written, which is what the monitor's check of that range relies on.
    // The byte reader (typed lines) is the one other function with port instructions: reads only.
    const rlo = io.symbols.get(IO_RECEIVE.start)!, rhi = io.symbols.get(IO_RECEIVE.end)!;
    const receive = disassemble(io.blob.subarray(Number(rlo - WINDOW), Number(rhi - WINDOW)), rlo);
    expect(receive).toMatch(/in\s+\(%dx\),%al/);
    expect(receive).not.toMatch(/\sout[bwl]?\s/);
    const ro = io.symbols.get("p_ro_end")!;
    const [first, second] = lo < rlo ? [[lo, hi], [rlo, rhi]] : [[rlo, rhi], [lo, hi]];
    const piece = (a: bigint, b: bigint): string => (b > a ? disassemble(io.blob.subarray(Number(a - WINDOW), Number(b - WINDOW)), a) : "");
    const rest = piece(WINDOW + 0x1000n, first![0]!) + piece(first![1]!, second![0]!) + piece(second![1]!, ro);
    expect(rest).toMatch(/int\s+\$0x80/);
    expect(rest).not.toMatch(/\s(in|out)[bwl]?\s+[%($]/); // register, (%dx) and immediate-port forms
    const x = img.partitions.find((p) => p.spec.name === "X")!.packed!;
    expect(disassemble(x.blob.subarray(0x1000, Number(x.image.end - WINDOW)), WINDOW + 0x1000n)).toContain("int    $0x80");
  });

  it("formats the channel template with core.wasm's chan_format: visorbus signature, one console queue, server ready", () => {
    const bytes = Buffer.from(img.efi);
    const at = bytes.indexOf(Buffer.from("ECNL\0\0\0\0", "latin1"));
    expect(at).toBeGreaterThan(0);
    expect(bytes.readUInt32LE(at + 12)).toBe(128); // header_size
    expect(bytes.readBigUInt64LE(at + 64)).toBe(128n); // ch_space_offset
    expect(bytes.readUInt32LE(at + 120)).toBe(1); // srv_state READY
    expect(bytes.readUInt32LE(at + 128 + 48)).toBe(128); // signal_size
    expect(bytes.readUInt32LE(at + 128 + 52)).toBe(16); // max_slots
  });

  it("formats the command channel's own template: type command, requests and completions queues, as many 128-byte slots as fit a page", async () => {
    const core = await loadCore();
    const chan = chanExports(core);
    const page = formatCommandTemplate(core);
    // The page is embedded in the image (the command channel's record points at it).
    const bytes = Buffer.from(img.efi);
    expect(bytes.indexOf(Buffer.from(page))).toBeGreaterThan(0);
    const d = new DataView(page.buffer);
    const guid = new Uint8Array(16);
    const scratch = carve(core, 4096);
    expect(chan.chan_format(scratch, 4096, 1, 128, 2, ChannelType.command)).toBe(0);
    guid.set(new Uint8Array(core.memory.buffer, scratch + 32, 16));
    expect([...page.subarray(32, 48)]).toEqual([...guid]); // chtype: the command GUID
    expect(d.getUint32(120, true)).toBe(1); // srv_state READY
    expect(chan.chan_format_bytes(2, 128, CMDCHAN.maxSlots)).toBeLessThanOrEqual(4096);
    expect(chan.chan_format_bytes(2, 128, CMDCHAN.maxSlots + 1)).toBeGreaterThan(4096);
    for (const q of [CMDCHAN.requests, CMDCHAN.completions]) {
      const h = 128 + 128 * q;
      expect(d.getUint32(h + 4, true), `queue ${q} role`).toBe(q);
      expect(d.getUint32(h + 48, true)).toBe(128);
      expect(d.getUint32(h + 52, true)).toBe(CMDCHAN.maxSlots);
      expect(Number(d.getBigUint64(h + 16, true)), `queue ${q} sig_base_offset`).toBe(cmdSigBase(q));
    }
    expect(img.channels.filter((c) => c.kind === "command").length).toBe(1);
  });
});
