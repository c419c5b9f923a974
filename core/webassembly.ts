// Typed access to V8's WebAssembly API for the TypeScript side: the project's tsconfig has no DOM lib (where
// TypeScript keeps these types), so the few members core/ and sim/ use are declared here, module-scoped, to avoid
// clashing with any global declaration another part of the project may add.

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface WasmModule {}
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
export type WasmImportValue = WasmMemory | ((...args: never[]) => unknown) | number;

interface WasmApi {
  Memory: new (desc: { initial: number; maximum?: number }) => WasmMemory;
  Module: { new (bytes: Uint8Array): WasmModule; imports(m: WasmModule): Array<{ module: string; name: string; kind: string }> };
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
}

export const WA: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
