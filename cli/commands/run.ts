// `uvt run`: boots an image under QEMU through the qemu/ harness, streams the guest's serial console to stdout and
// exits 0 when the guest reports the image's success code through isa-debug-exit (1 for any other code), with a gdb
// stub, QEMU's own log and QEMU arguments passed through on request.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { imageBaseOf, parseSymbolMap, successExitOf, symbolizeLine } from "../../image/symbol-map.ts";
import { LOADER_LINES } from "../../loader-efi/ultravisor.ts";
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";
import { BootError, describeExit, HarnessError, imageMemoryMiB, Machine, parseAccel } from "../../qemu/index.ts";

const DEFAULT_IMAGE = "out/esp.img";

const help = `Usage: uvt run [--image PATH] [--accel auto|kvm|tcg] [--mem SIZE] [--smp N] [--timeout S]
               [--disk FILE]... [--expect-exit N] [--gdb[=PORT]] [--qemu-log ITEMS] [--stdin] [-- QEMU-ARGS...]

Boots a disk image (default: ${DEFAULT_IMAGE}, written by 'uvt build') on a QEMU q35 machine with OVMF, prints the
guest's serial console line by line, and exits 0 when the image reports success through the isa-debug-exit port
(0xf4) with its success code. The success code is the image's (recorded by uvt build in BOOTX64.map beside the disk
image: 33 unless the host definition's run.exitCode says otherwise; docs/specs/efi-abi.md); --expect-exit overrides.

Options:
  --image PATH      raw disk image to boot (default ${DEFAULT_IMAGE})
  --accel A         auto (default): KVM only if a probe boot under KVM works on this host, else TCG; kvm; tcg
  --mem SIZE        guest memory, e.g. 256M or 1G; a bare number is MiB (default: 256M, or what an image with
                    Linux partitions says it needs: 256M plus their memory)
  --smp N           number of CPUs (default 1)
  --timeout S       give up after S seconds (default 120; none with --gdb); QEMU is stopped, logs kept in artifacts/
  --disk FILE       attach a data disk (a raw image; 'uvt disk create FILE --size 64M' makes one) as a modern
                    virtio-blk PCI device; repeat for more, in order (docs/specs/storage-channel.md)
  --expect-exit N   the isa-debug-exit code that means success (default: the image's, from its map)
  --gdb[=PORT]      start QEMU halted with its gdb stub on PORT (default 1234) and print the gdb command to attach
  --qemu-log ITEMS  keep QEMU's own log of ITEMS (e.g. int,cpu_reset; see qemu-system-x86_64 -d help) in artifacts/
  --stdin           send what is typed on standard input to the serial port: lines for the command partition
                    (create NAME MEMORY [TYPE:SERVER]..., stop NAME, ...; docs/specs/command-channel.md). The machine
                    reads and answers them; it does not carry them out yet (status -2006)
  -- QEMU-ARGS      everything after -- is passed to QEMU unchanged
  -h, --help        this text

The KVM verdict of --accel auto is cached in node_modules/.cache/ultravisor/accel-probe.json (delete it to probe
again after a host change).

Exit status: 0 when the guest exits with the success code; 1 when it exits with another code (printed), when QEMU
fails or shuts down without an exit code; 124 on timeout; 130 when interrupted (SIGINT), 143 when terminated
(SIGTERM). QEMU never outlives uvt run, even one killed with SIGKILL (QEMU gets the parent-death signal); a killed
run's temp folder is swept by the next run. Needs qemu-system-x86 and ovmf (apt-get install qemu-system-x86 ovmf).

Debugging (docs/specs/efi-abi.md, Debugging): with --gdb, QEMU waits at the reset vector and uvt run prints the gdb
command to attach; type 'continue' in gdb. The image is not in memory yet: when the loader prints "image loaded at
ADDR", uvt run prints the line that loads the symbols there, add-symbol-file DIR/BOOTX64.elf -o OFFSET (OFFSET = ADDR
- the preferred base in BOOTX64.map); interrupt gdb (Ctrl-C), type it, set breakpoints (break on_timer), continue.
OVMF loads a given image at the same address on every boot with the same memory size, so the line of one run also
serves the next before it starts: then use hbreak, since a software breakpoint planted before the firmware copies the
image in is overwritten. Partitions share virtual addresses (every partition's window is at the same address), so a
breakpoint in partition code should be conditioned on the partition: break *ADDR if $cr3 == CR3, with CR3 from the
monitor's "partition NAME started at quantum N: cr3 CR3 ..." line; monitor code is shared and needs no condition.
Panic and fault lines get <symbol+0xoff> after each rip that lies in the image's code, from BOOTX64.map.

Examples:
  uvt build && uvt run
  uvt run --mem 1G --accel tcg --timeout 60
  uvt run --gdb              then, in another terminal, the gdb command it prints
  uvt run --timeout 600 --stdin    then type: create G 8M console:io   (the command partition answers)
  uvt run --qemu-log int,cpu_reset -- -d guest_errors`;

function positiveNumber(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n > 0)) throw new UsageError(`--${name} must be a positive number, not '${text}'`);
  return n;
}

const DEFAULT_GDB_PORT = 1234;
const MAX_TIMER_S = Math.floor((2 ** 31 - 1) / 1000);

/** The map uvt build wrote beside the disk image, if there is one. */
function imageMap(image: string): string | undefined {
  try {
    return readFileSync(join(dirname(image), "BOOTX64.map"), "utf8");
  } catch {
    return undefined;
  }
}

/** gdb's add-symbol-file line for the symbol file beside the image, loaded at `loadAddress`. */
export function addSymbolFileCommand(elf: string, loadAddress: bigint, preferredBase: bigint): string {
  const offset = loadAddress - preferredBase;
  // gdb evaluates -o as an expression: a negative offset (OVMF loads below the 0x140000000 base) is written as one.
  return `add-symbol-file ${elf} -o ${offset < 0n ? `-0x${(-offset).toString(16)}` : `0x${offset.toString(16)}`}`;
}

const command: Command = {
  name: "run",
  summary: "boot an image in QEMU (OVMF), stream its serial console, exit 0 when it reports success",
  help,
  async run(argv) {
    // `--gdb` alone takes the default port; node's parser needs every string flag to carry a value.
    const args = parseArgs(argv.map((a) => (a === "--gdb" ? `--gdb=${DEFAULT_GDB_PORT}` : a)), {
      values: ["accel", "mem", "smp", "timeout", "image", "expect-exit", "gdb", "qemu-log"], booleans: ["stdin"], repeatable: ["disk"], passthrough: true,
    });
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}' (see uvt run --help; QEMU arguments go after --)`);
    const image = args.flags.get("image") ?? DEFAULT_IMAGE;
    if (!args.flags.has("image") && !existsSync(image)) throw new UsageError(`no image at ${image}: run 'uvt build' first or pass --image PATH`);
    const smpText = args.flags.get("smp");
    const smp = positiveNumber("smp", smpText, 1);
    if (!Number.isInteger(smp)) throw new UsageError(`--smp must be a whole number, not '${smpText}'`);
    const gdbText = args.flags.get("gdb");
    const gdbPort = gdbText === undefined ? undefined : Number(gdbText);
    if (gdbPort !== undefined && (!/^\d+$/.test(gdbText!) || gdbPort < 1 || gdbPort > 65535)) throw new UsageError(`--gdb port must be 1-65535, not '${gdbText}'`);
    // Halted for a debugger, a run has no natural end: no timeout unless one is asked for. "None" is the longest delay
    // a Node timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires at once, which ended every --gdb run.
    const timeoutS = gdbPort !== undefined && !args.flags.has("timeout") ? MAX_TIMER_S : positiveNumber("timeout", args.flags.get("timeout"), 120);
    if (timeoutS > MAX_TIMER_S) throw new UsageError(`--timeout must be at most ${MAX_TIMER_S} s (Node's longest timer)`);
    const expectText = args.flags.get("expect-exit");
    if (expectText !== undefined && (!/^\d+$/.test(expectText) || Number(expectText) > 255)) throw new UsageError(`--expect-exit must be an exit code 0-255, not '${expectText}'`);
    const mapText = imageMap(image);
    const success = expectText !== undefined ? Number(expectText) : mapText === undefined ? undefined : successExitOf(mapText);
    const qemuLogItems = args.flags.get("qemu-log");
    if (qemuLogItems !== undefined && !/^[a-z_,]+$/.test(qemuLogItems)) throw new UsageError(`--qemu-log takes QEMU's -d items such as int,cpu_reset, not '${qemuLogItems}'`);
    const qemuLog = qemuLogItems === undefined ? undefined : join(resolve("artifacts"), `qemu-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
    if (qemuLog) mkdirSync(dirname(qemuLog), { recursive: true });
    const extraArgs = [
      ...(gdbPort !== undefined ? ["-gdb", `tcp:127.0.0.1:${gdbPort}`, "-S"] : []),
      ...(qemuLog ? ["-d", qemuLogItems!, "-D", qemuLog] : []),
      ...args.rest,
    ];
    let machine: Machine;
    try {
      machine = await Machine.start({
        name: "uvt-run",
        image,
        accel: parseAccel(args.flags.get("accel") ?? "auto"),
        mem: args.flags.get("mem") ?? `${Math.max(256, imageMemoryMiB(image) ?? 0)}M`,
        smp,
        timeoutMs: timeoutS * 1000,
        log: (m) => console.error(`uvt run: ${m}`),
        ...(extraArgs.length ? { extraArgs } : {}),
        ...(args.lists.has("disk") ? { disks: args.lists.get("disk")! } : {}),
      });
    } catch (e) {
      if (e instanceof HarnessError) throw new UsageError(e.message);
      if (e instanceof BootError) {
        console.error(`uvt run: ${e.message}`);
        return 1;
      }
      throw e;
    }
    console.error(`uvt run: booting ${image} (${machine.accel}, ${machine.memMiB} MiB, ${smp} CPU${smp > 1 ? "s" : ""})`);
    if (qemuLog) console.error(`uvt run: QEMU's log (${qemuLogItems}) goes to ${qemuLog}`);
    const elf = join(dirname(image), "BOOTX64.elf");
    if (gdbPort !== undefined) {
      console.error(`uvt run: QEMU is halted at reset with its gdb stub on 127.0.0.1:${gdbPort}; attach with:`);
      console.error(`  gdb -nx -ex 'set architecture i386:x86-64' -ex 'target remote 127.0.0.1:${gdbPort}'`);
      console.error(existsSync(elf)
        ? `uvt run: then 'continue'; once the loader reports its load address, the add-symbol-file line for ${elf} follows here (see uvt run --help)`
        : `uvt run: no symbol file at ${elf} (uvt build writes it beside the image)`);
    }
    // Symbolisation of panic and fault lines: needs the map and the load offset, which the loader's line gives.
    const symbols = mapText === undefined ? undefined : parseSymbolMap(mapText);
    const preferredBase = mapText === undefined ? undefined : imageBaseOf(mapText);
    let loadOffset: bigint | undefined;
    machine.onLine((l) => {
      const loaded = LOADER_LINES.loadedAt.exec(l.text);
      if (loaded && preferredBase !== undefined) {
        const at = BigInt(loaded[1]!);
        loadOffset = at - preferredBase;
        if (gdbPort !== undefined && existsSync(elf)) console.error(`uvt run: image loaded at ${loaded[1]}; in gdb (Ctrl-C first if it is running): ${addSymbolFileCommand(elf, at, preferredBase)}`);
      }
      console.log(symbols && loadOffset !== undefined ? symbolizeLine(l.text, symbols, loadOffset) : l.text);
    });
    // Ctrl-C or a SIGTERM stops QEMU with us and exits 128 + the signal's number, as a shell reports it (SIGKILL runs
    // no handler: QEMU then dies by its parent-death signal, qemu/machine.ts).
    let signalled: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      signalled ??= sig;
      void machine.close();
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    // --stdin: what is typed goes to the serial port, where the I/O partition reads it.
    const onInput = (chunk: Buffer): void => machine.sendSerial(chunk.toString("latin1"));
    if (args.bools.has("stdin")) process.stdin.on("data", onInput);
    try {
      const exit = await machine.wait();
      if (signalled) {
        console.error(`uvt run: stopped by ${signalled}`);
        return signalled === "SIGINT" ? 130 : 143;
      }
      switch (exit.kind) {
        case "guest":
          if (success === undefined) {
            console.error(`uvt run: ${describeExit(exit)} (the image states no success code: pass --expect-exit N)`);
            return exit.code;
          }
          console.error(`uvt run: ${describeExit(exit)}: ${exit.code === success ? "success" : `failure (the image's success code is ${success})`} after ${(machine.elapsedMs() / 1000).toFixed(1)} s`);
          return exit.code === success ? 0 : 1;
        case "shutdown":
          console.error(`uvt run: ${describeExit(exit)} without an exit code`);
          return success === undefined ? 0 : 1;
        case "timeout":
          console.error(`uvt run: ${describeExit(exit)}${machine.artifacts ? `; logs kept in ${machine.artifacts}` : ""}`);
          return 124;
        default:
          console.error(`uvt run: ${describeExit(exit)}${machine.artifacts ? `; logs kept in ${machine.artifacts}` : ""}`);
          return 1;
      }
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (args.bools.has("stdin")) {
        process.stdin.off("data", onInput);
        process.stdin.pause(); // a flowing stdin would keep the process alive
      }
      await machine.close();
    }
  },
};

export default command;
