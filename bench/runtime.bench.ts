// Benchmarks of the run-time life cycle as far as it runs today (issue 17; docs/specs/command-channel.md, "Status"):
// in the simulator, a typed `create` and `stop` through the command partition's line reader and the resource
// service's builders (V8) and core; and the builders themselves on the two engines that run them — V8 and our AOT
// backend's native code (the command partition's, on the machine) — over one database. The machine figures
// (run-time create → first line, stop → memory Available in quanta, I/O partition restart) wait for run-time
// partitions on the machine and are not measured yet.
import { bestOf, round, type Bench, type Figure } from "./bench.ts";
import { Platform } from "../sim/platform.ts";
import { Host } from "../sim/host.ts";
import { ResourceService } from "../sim/resource-service.ts";
import { bootModuleWasm } from "../core/boot-module.ts";
import { instantiateBoth } from "../toolchain/aot/testing/differential.ts";

const MB = 1n << 20n;

async function typedCycle(): Promise<Figure[]> {
  const pf = await Platform.boot({ memory: 1n << 30n }, { pcpus: 2 });
  pf.definePartition({ name: "IO", kind: "IO", memory: 16n * MB, vcpus: [{ duty: 4 }] });
  const n = 200;
  const run = (): void => {
    for (let i = 0; i < n; i++) {
      pf.typed("create G 64M console:IO storage:IO");
      pf.typed("stop G");
    }
  };
  run();
  const t = await bestOf(3, run);
  return [{ bench: "runtime.sim_typed_create_stop", value: round((t / n) * 1e6, 1), unit: "µs per typed create + stop (simulator: line reader, builders, core, channels, schedule)" }];
}

async function builders(): Promise<Figure[]> {
  const h = await Host.create({ memory: 64n * MB, order: 2 });
  const rs = new ResourceService(h);
  const p = rs.create({ name: "A", size: 8n * MB });
  const ui = h.db.indexPage().index;
  const req = h.db.requestBuffer();
  const bytes = 12 << 20;
  const image = new Uint8Array(h.memory.buffer).slice(0, bytes);
  const pair = instantiateBoth(await bootModuleWasm(), { env: { db_submit: () => 0n, db_log_truncate: () => 0n } }, 256);
  try {
    pair.aot.growMemory(bytes / 65536 - pair.aot.memoryPages);
    pair.v8Memory!.grow(bytes / 65536 - pair.v8Memory!.buffer.byteLength / 65536);
    pair.aot.memory.set(image);
    new Uint8Array(pair.v8Memory!.buffer).set(image);
    const n = 20_000;
    const args = [ui, req, 0x8000, p, 0, 0].map((x) => BigInt(x));
    const v8 = pair.v8.exports["rs_build_destroy"] as (...a: number[]) => number;
    const runV8 = (): void => {
      for (let i = 0; i < n; i++) if (v8(ui, req, 0x8000, p, 0, 0) <= 0) throw new Error("rs_build_destroy refused in V8");
    };
    const runAot = (): void => {
      for (let i = 0; i < n; i++) if (pair.aot.call("rs_build_destroy", args).value === 0n) throw new Error("rs_build_destroy refused in AOT");
    };
    runV8();
    runAot();
    const tv = await bestOf(3, runV8);
    const ta = await bestOf(3, runAot);
    return [{ bench: "runtime.rs_build_destroy_aot", value: round((ta / n) * 1e6, 2), unit: "µs per teardown build (AOT native, one koffi call each)", vs: `V8 ${round((tv / n) * 1e6, 2)} µs`, ratio: round(ta / tv, 2) }];
  } finally {
    pair.aot.dispose();
  }
}

const benches: Bench[] = [
  { name: "runtime.typed", run: typedCycle },
  { name: "runtime.builders", run: builders },
];
export default benches;
