// Abort handler for all of core.wasm: the build routes AssemblyScript's `abort` here (`--use abort=…`), and it
// hands the message to the platform through `hw.panic`. Bare metal halts; the simulator throws.

@external("hw", "panic")
declare function hw_panic(msg: usize, file: usize, line: u32, col: u32): void;

function corePanic(message: string | null, fileName: string | null, line: u32, column: u32): void {
  hw_panic(changetype<usize>(message), changetype<usize>(fileName), line, column);
  unreachable();
}
