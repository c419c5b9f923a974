// Types of core/verify-core.mjs (plain JavaScript, shared by core/build.ts and the asc worker).
/** What is wrong with `bytes` as core.wasm, as one message, or null when nothing is. `binaryen`: a binaryen.js module. */
export function coreWasmProblem(binaryen: unknown, bytes: Uint8Array): string | null;
