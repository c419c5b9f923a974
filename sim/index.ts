// The simulator as a typed library: the one documented entry point (package.json "exports" and "types"). A program
// loads a host definition, runs it, and reads the results as data — the same path `uvt sim` takes:
//   const s = loadScenario("examples/ultravisor.yaml"); const r = await runScenario(s, () => {});
//   const out = simOutput(s, r);   // the versioned shape of docs/specs/sim-output.md
// The sources are TypeScript run through tsx (docs/adr/0001-foundations.md); import them from a tsx-run program.
export { loadScenario, parseScenario, scenarioOf, type Scenario, type Operation, type BootPlan } from "./scenario.ts";
export { runScenario, type RunResult } from "./run-scenario.ts";
export { simOutput, simCsv, CSV_TABLES, OUTPUT_FORMAT, OUTPUT_VERSION, type SimOutput, type CsvTable } from "./output.ts";
export { simOutputSchema } from "./output-schema.ts";
export { pictures, memoryMapSvg, scheduleSvg, channelsSvg } from "./pictures.ts";
export { reportHtml } from "./report.ts";
export { Host, type HostConfig } from "./host.ts";
export { Platform, type PlatformConfig, type PartitionDef, type VcpuDef, type ChannelDef } from "./platform.ts";
export { ResourceService } from "./resource-service.ts";
export { DefinitionError, type Problem } from "../definition/errors.ts";
