// Runs a validated scenario on a simulated host: each operation becomes transactions through the resource service
// (or is given directly in patent notation), the log is printed as the spec prints it ([0222]–[0224]), expected
// outcomes are checked, and the final map is printed per scale.
import { DbError, errorName } from "./database.ts";
import { Host } from "./host.ts";
import { formatBytes } from "./mapview.ts";
import { formatTransaction, parseLog, pn, type Transaction } from "./notation.ts";
import { ResourceService } from "./resource-service.ts";
import type { Operation, Scenario } from "./scenario.ts";

export interface RunResult {
  /** Failed expectations, each naming the scenario line. */
  failures: string[];
  host: Host;
  /** Transactions committed by each operation, in order. */
  logs: Transaction[][];
}

function describe(op: Operation): string {
  switch (op.kind) {
    case "create":
      return `create ${op.name}${op.size !== undefined ? ` (${formatBytes(op.size)})` : ""}`;
    case "destroy":
      return `destroy ${op.who}`;
    case "merge":
      return `merge Map${pn(op.map)} Index(${op.index})`;
    case "split":
      return `split Map${pn(op.map)} Index(${op.index})`;
    case "transaction":
      return "transaction";
    case "backup":
      return "backup";
  }
}

export async function runScenario(s: Scenario, print: (line: string) => void, opts: { map?: boolean } = {}): Promise<RunResult> {
  const host = await Host.create(s.host);
  const rs = new ResourceService(host);
  const failures: string[] = [];
  const logs: Transaction[][] = [];
  let current: Transaction[] = [];
  host.listeners.push((tx) => current.push(tx));
  print(`Host: ${formatBytes(host.installed)} installed, map order ${host.order}${s.name ? ` — ${s.name}` : ""}`);
  for (const op of s.operations) {
    current = [];
    print("");
    print(`${op.title ?? describe(op)}:`);
    let error: unknown;
    try {
      switch (op.kind) {
        case "create":
          rs.create({
            name: op.name, ...(op.principal ? { principal: op.principal } : {}),
            ...(op.partitionKind ? { kind: op.partitionKind } : {}), ...(op.size !== undefined ? { size: op.size } : {}),
            ...(op.at ? { at: op.at } : {}),
          });
          break;
        case "destroy":
          rs.destroy(op.who);
          break;
        case "merge":
          rs.merge(op.map, op.index);
          break;
        case "split":
          rs.split(op.map, op.index, op.into);
          break;
        case "transaction":
          for (const tx of parseLog(op.text)) host.submit(tx, "transaction");
          break;
        case "backup":
          host.backup();
          break;
      }
    } catch (e) {
      error = e;
    }
    for (const tx of current) {
      print("");
      for (const l of formatTransaction(tx)) print(l);
    }
    logs.push(current);
    const code = error instanceof DbError ? errorName(error.code) : error ? "ERROR" : undefined;
    if (error) print(`  rejected: ${(error as Error).message}`);
    if (op.expectError !== undefined) {
      if (code !== op.expectError) failures.push(`${s.file}:${op.line}: expected error ${op.expectError}, got ${code ?? "success"}`);
    } else if (error) {
      failures.push(`${s.file}:${op.line}: ${describe(op)} failed: ${(error as Error).message}`);
    }
  }
  for (const o of s.expect.owners) {
    const got = host.db.owner(o.address);
    let want: number | undefined;
    try {
      want = rs.resolve(o.is);
    } catch {
      const ui = host.db.indexPage();
      want = ({ Missing: ui.missing, Available: ui.avail, Idle: ui.idle, Boot: ui.boot, Ultravisor: ui.ultra } as Record<string, number>)[o.is];
    }
    if (want === undefined) failures.push(`${s.file}:${o.line}: unknown partition "${o.is}"`);
    else if (got !== want) failures.push(`${s.file}:${o.line}: owner of ${formatBytes(o.address)} is ${got < 0 ? errorName(got) : pn(got)}, expected ${o.is} ${pn(want)}`);
  }
  if (s.expect.mapPages !== undefined) {
    const n = host.view.maps().length;
    if (n !== s.expect.mapPages) failures.push(`${s.file}:${s.expect.mapPagesLine}: ${n} map pages, expected ${s.expect.mapPages}`);
  }
  if (opts.map !== false) {
    print("");
    print("Resulting memory map:");
    const names = new Map<number, string>();
    for (const [n, p] of rs.names()) names.set(p, n);
    for (const l of host.view.format((p) => names.get(p) ?? host.db.readDescriptor(p)?.name)) print(l);
  }
  return { failures, host, logs };
}
