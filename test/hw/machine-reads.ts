// Helpers the hardware tests share for reading a boot: a partition's console lines out of the serial log (the I/O
// partition tags each with the client's name), a page of physical memory as 512 quadwords over QMP, the address bits
// of a page-table entry, a wrapper that prints the whole serial log when a check fails (it is the only evidence of
// what the machine did), one boot to its end, and a block of a disk image file.
import { closeSync, openSync, readSync } from "node:fs";
import { Machine } from "../../qemu/index.ts";

/** Address bits 12–51 of a page-table entry. */
export const PTE_ADDRESS = 0x000f_ffff_ffff_f000n;

/** The 512 quadwords of the 4 KiB page at physical `at`, read over QMP. */
export async function qwords(m: Machine, at: bigint): Promise<bigint[]> {
  const b = await m.readPhysical(at, 4096);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: 512 }, (_, i) => v.getBigUint64(8 * i, true));
}

/** The lines the I/O partition printed for partition `name`, without the "NAME: " tag. */
export function consoleLinesOf(lines: readonly string[], name: string): string[] {
  return lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
}

/** Runs `check`; when it throws, prints the serial log (and `extra` lines) first. */
export function withSerialLog(lines: readonly string[], check: () => void, extra: readonly string[] = []): void {
  try {
    check();
  } catch (e) {
    console.error(lines.join("\n"));
    if (extra.length) console.error(extra.join("\n"));
    throw e;
  }
}

const SSE_TICK = /^sse tick (\d+) checks (\d+) lost (\d+) foreign (\d+)$/;

/**
 * What the sse-a/sse-b guests (partitions/programs.ts) report about their extended state, for the isolation tests:
 * the line naming how they read it, whether they started from the defined initial state, and their last tick's
 * counts of checks, markers lost and foreign markers seen.
 */
export function sseReport(lines: readonly string[], guest: string): { reads?: string; initial?: string; ticks: number; checks: number; lost: number; foreign: number; last?: string } {
  const out = consoleLinesOf(lines, guest);
  const ticks = out.map((l) => SSE_TICK.exec(l)).filter((m) => m !== null);
  const last = ticks.at(-1);
  return {
    ...(out[0] !== undefined ? { reads: out[0] } : {}), ...(out[1] !== undefined ? { initial: out[1] } : {}),
    ticks: ticks.length, checks: Number(last?.[2] ?? 0), lost: Number(last?.[3] ?? -1), foreign: Number(last?.[4] ?? -1),
    ...(last ? { last: last[0] } : {}),
  };
}

const SUMMARY = /^ultravisor: partition (\S+) number \d+ state (ready|waiting|failed|stopped) quanta (\d+) /;

/** Each partition's state and quanta from the ultravisor's end-of-run summary lines. */
export function summaryStates(lines: readonly string[]): Map<string, { state: string; quanta: number }> {
  return new Map(lines.map((l) => SUMMARY.exec(l)).filter((m) => m !== null).map((m) => [m[1]!, { state: m[2]!, quanta: Number(m[3]) }]));
}

/** One partition's state and quanta from the summary; a partition missing from it is an error naming it. */
export function summaryOf(lines: readonly string[], name: string): { state: string; quanta: number } {
  const s = summaryStates(lines).get(name);
  if (!s) throw new Error(`${name} is not in the ultravisor's end-of-run summary`);
  return s;
}

/** The findings every fuzz run shares: it was followed to its end, ended with the ultravisor's exit code, no panic. */
export function runEndFindings(r: { error?: string; exit: unknown; lines: readonly string[] }, exitCode = 0x21): string[] {
  const bad: string[] = [];
  if (r.error !== undefined) bad.push(`the run could not be followed to its end: ${r.error}`);
  if (JSON.stringify(r.exit) !== JSON.stringify({ kind: "guest", code: exitCode })) bad.push(`the run ended with ${JSON.stringify(r.exit)}, not the ultravisor's exit code 0x${exitCode.toString(16)}`);
  if (r.lines.some((l) => l.startsWith("ultravisor: panic"))) bad.push("the ultravisor panicked");
  return bad;
}

/** One boot of `esp` under TCG on `cpus` processors to its end: the serial lines and how it ended (or the error). */
export async function bootToEnd(name: string, esp: string, cpus: number): Promise<{ lines: string[]; exit: unknown; error?: string }> {
  const m = await Machine.start({ name, image: esp, accel: "tcg", smp: cpus, timeoutMs: 120_000, log: () => undefined });
  try {
    const exit = await m.wait();
    return { lines: m.lines.map((l) => l.text), exit };
  } catch (e) {
    return { lines: m.lines.map((l) => l.text), exit: undefined, error: String(e) };
  } finally {
    await m.close();
  }
}

/** Block `n` (512 bytes) of a disk image file, read from the host. */
export function readBlock(file: string, n: number): Uint8Array {
  const b = new Uint8Array(512);
  const fd = openSync(file, "r");
  try {
    readSync(fd, b, 0, 512, n * 512);
  } finally {
    closeSync(fd);
  }
  return b;
}
