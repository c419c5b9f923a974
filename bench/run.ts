// `npm run bench [-- NAME...]`: runs every bench/*.bench.ts (or those matching NAME) and prints one JSON line per figure.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Bench } from "./bench.ts";

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2).filter((a) => a !== "--");
if (filters.includes("--help")) {
  console.log("Usage: npm run bench [-- NAME...]\nRuns the benchmarks in bench/*.bench.ts; NAME selects by prefix. Prints one JSON object per line.");
  process.exit(0);
}
const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts")).sort();
let matched = 0;
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: Bench | Bench[] };
  const benches = Array.isArray(mod.default) ? mod.default : [mod.default];
  for (const b of benches) {
    const stem = f.replace(/\.bench\.ts$/, "");
    if (filters.length && !filters.some((n) => b.name.startsWith(n) || stem.startsWith(n))) continue;
    matched++;
    process.stderr.write(`bench: ${b.name} ...\n`);
    const t0 = performance.now();
    for (const fig of await b.run()) console.log(JSON.stringify(fig));
    // A step line with its timing on stderr: stdout stays one JSON object per line.
    process.stderr.write(`bench: ${b.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
}
if (matched === 0) {
  console.error(`bench: nothing matches ${filters.join(" ")}; files: ${files.join(", ") || "none"}`);
  process.exit(2);
}
