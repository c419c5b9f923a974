// `uvt run`: boots an image under QEMU through the qemu/ harness, streams the guest's serial console to stdout and
// exits with the code the guest wrote to isa-debug-exit.
import { existsSync } from "node:fs";
import { parseArgs } from "../args.ts";
import { type Command, UsageError } from "../command.ts";
import { BootError, describeExit, HarnessError, Machine, parseAccel } from "../../qemu/index.ts";

const DEFAULT_IMAGE = "out/esp.img";

const help = `Usage: uvt run [--accel auto|kvm|tcg] [--mem SIZE] [--smp N] [--timeout S] [--image PATH]

Boots a disk image (default: ${DEFAULT_IMAGE}, written by 'uvt build') on a QEMU q35 machine with OVMF, prints the
guest's serial console line by line, and exits with the code the guest wrote to the isa-debug-exit port (0xf4).

Options:
  --accel A      auto (default): KVM only if a probe boot under KVM works on this host, else TCG; kvm; tcg
  --mem SIZE     guest memory, e.g. 256M (default) or 1G; a bare number is MiB
  --smp N        number of CPUs (default 1)
  --timeout S    give up after S seconds (default 120); QEMU is stopped and its logs are kept under artifacts/
  --image PATH   raw disk image to boot (default ${DEFAULT_IMAGE})
  --help         this text

The KVM verdict of --accel auto is cached in node_modules/.cache/ultravisor/accel-probe.json (delete it to probe
again after a host change).

Exit status: the guest's isa-debug-exit code; 0 when QEMU shuts down normally; 124 on timeout; 1 when QEMU fails;
130 when interrupted (SIGINT), 143 when terminated (SIGTERM). QEMU never outlives uvt run, even one killed with
SIGKILL (QEMU gets the parent-death signal); a killed run's temp folder is swept by the next run.
Needs qemu-system-x86 and ovmf (apt-get install qemu-system-x86 ovmf).

Examples:
  uvt build && uvt run
  uvt run --mem 1G --accel tcg --timeout 60`;

function positiveNumber(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n > 0)) throw new UsageError(`--${name} must be a positive number, not '${text}'`);
  return n;
}

const command: Command = {
  name: "run",
  summary: "boot an image in QEMU (OVMF), stream its serial console, exit with the guest's code",
  help,
  async run(argv) {
    const args = parseArgs(argv, { values: ["accel", "mem", "smp", "timeout", "image"] });
    if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}' (see uvt run --help)`);
    const image = args.flags.get("image") ?? DEFAULT_IMAGE;
    if (!args.flags.has("image") && !existsSync(image)) throw new UsageError(`no image at ${image}: run 'uvt build' first or pass --image PATH`);
    const smpText = args.flags.get("smp");
    const smp = positiveNumber("smp", smpText, 1);
    if (!Number.isInteger(smp)) throw new UsageError(`--smp must be a whole number, not '${smpText}'`);
    const timeoutS = positiveNumber("timeout", args.flags.get("timeout"), 120);
    let machine: Machine;
    try {
      machine = await Machine.start({
        name: "uvt-run",
        image,
        accel: parseAccel(args.flags.get("accel") ?? "auto"),
        mem: args.flags.get("mem") ?? "256M",
        smp,
        timeoutMs: timeoutS * 1000,
        log: (m) => console.error(`uvt run: ${m}`),
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
    machine.onLine((l) => console.log(l.text));
    // Ctrl-C or a SIGTERM stops QEMU with us and exits 128 + the signal's number, as a shell reports it (SIGKILL runs
    // no handler: QEMU then dies by its parent-death signal, qemu/machine.ts).
    let signalled: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      signalled ??= sig;
      void machine.close();
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      const exit = await machine.wait();
      if (signalled) {
        console.error(`uvt run: stopped by ${signalled}`);
        return signalled === "SIGINT" ? 130 : 143;
      }
      switch (exit.kind) {
        case "guest":
          console.error(`uvt run: ${describeExit(exit)}`);
          return exit.code;
        case "shutdown":
          console.error(`uvt run: ${describeExit(exit)}`);
          return 0;
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
      await machine.close();
    }
  },
};

export default command;
