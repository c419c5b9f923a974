// The platform seam of core.wasm: imports from module `hw` (docs/specs/core-wasm.md lists them). The AOT backend
// lowers each one to inline instructions; the simulator supplies them from core/wasm.ts.

/** Write back the cache lines of [addr, addr+len) to memory: the spec's "flushed to main memory" ([0156]). */
@external("hw", "flush")
export declare function hw_flush(addr: usize, len: u32): void;
