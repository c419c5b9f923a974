// The operations console's HTTP side ([0096]: "principally a web interface ... that interacts with the policy
// service"; docs/specs/operations.md; layer: ops/console/): node:http serving one static page (page.html, which
// renders everything with DOM textContent, so no HTML is built from data here) and a JSON API over the policy
// service. Requests are untrusted: bodies are size-limited JSON, every request the policy service refuses answers
// 400 with the reason and changes nothing. Routes:
//   GET  /                        the page          GET /api/estate    estate, definitions, hosts, allowed actions
//   POST /api/define              { name, domain, template?, channels?, configurations? }
//   POST /api/transition          { id, action }    POST /api/configure { id, configuration }
//   POST /api/advance             { minutes }       (simulated time, for schedules)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { allowedActions } from "../lifecycle.ts";
import { OpsError } from "../model.ts";
import type { PolicyService } from "../policy.ts";
import { StoreCorrupt, StoreRefused } from "../store/store.ts";
import { formatWhen } from "../schedule.ts";

const MAX_BODY = 64 * 1024;
const PAGE = readFileSync(join(import.meta.dirname, "page.html"), "utf8");

/** Everything the page shows, as data. */
export function estateJson(ps: PolicyService): unknown {
  const estate = ps.estate();
  return {
    name: estate.name, now: ps.clock(ps.now), zones: estate.zones, domains: estate.domains,
    hosts: estate.hosts.map((h) => ps.hostView(h.name)),
    partitions: ps.definitions().map((d) => ({
      guid: d.guid, name: d.name, domain: d.domain, stage: d.stage, state: d.state, host: d.placement?.host ?? null,
      partition: d.placement?.partition ?? null, active: d.active ?? null, next: d.next ?? null,
      channels: d.channels.map((c) => `${c.type}:${c.zone}`),
      configurations: d.configurations.map((c) => ({ name: c.name, memory: c.memory, vcpus: c.vcpus })),
      schedule: (d.schedule ?? []).map((e) => `${formatWhen(e.when)}: ${e.state}${e.configuration ? ` with ${e.configuration}` : ""}`),
      actions: allowedActions(d), history: d.history.slice(-8),
    })),
    log: ps.log.slice(-20),
  };
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json; charset=utf-8"): void {
  const text = typeof body === "string" && !type.startsWith("application/json") ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff", "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" });
  res.end(text);
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!(req.headers["content-type"] ?? "").startsWith("application/json")) throw new OpsError("send the request as application/json");
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new OpsError(`request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new OpsError("the request body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new OpsError("the request body must be a JSON object");
  return v as Record<string, unknown>;
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== "string") throw new OpsError(`${what} must be a string`);
  return v;
};

export function consoleServer(ps: PolicyService): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://console");
      try {
        if (req.method === "GET" && url.pathname === "/") return send(res, 200, PAGE, "text/html; charset=utf-8");
        if (req.method === "GET" && url.pathname === "/api/estate") return send(res, 200, estateJson(ps));
        if (req.method === "POST" && url.pathname === "/api/define") {
          const b = await body(req);
          const configurations = b.configurations === undefined ? undefined : (b.configurations as unknown[]).map((c) => {
            const o = c as Record<string, unknown>;
            return { name: str(o.name, "configuration name"), memory: Number(o.memory), vcpus: Number(o.vcpus) };
          });
          const d = await ps.define({
            name: str(b.name, "name"), domain: str(b.domain, "domain"),
            ...(b.template ? { template: str(b.template, "template") } : {}),
            ...(configurations ? { configurations } : {}),
          });
          return send(res, 200, { guid: d.guid, name: d.name });
        }
        if (req.method === "POST" && url.pathname === "/api/transition") {
          const b = await body(req);
          const d = await ps.transition(str(b.id, "id"), str(b.action, "action"));
          return send(res, 200, { guid: d.guid, stage: d.stage, state: d.state, host: d.placement?.host ?? null });
        }
        if (req.method === "POST" && url.pathname === "/api/configure") {
          const b = await body(req);
          const d = await ps.configure(str(b.id, "id"), str(b.configuration, "configuration"));
          return send(res, 200, { guid: d.guid, next: d.next });
        }
        if (req.method === "POST" && url.pathname === "/api/advance") {
          const b = await body(req);
          const m = Number(b.minutes);
          if (!Number.isInteger(m) || m < 0 || m > 60 * 24 * 366) throw new OpsError("minutes must be an integer 0–527040");
          await ps.advanceTo(ps.now + m);
          return send(res, 200, { now: ps.clock(ps.now) });
        }
        return send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
      } catch (e) {
        if (e instanceof OpsError || e instanceof StoreRefused) return send(res, 400, { error: e.message });
        if (e instanceof StoreCorrupt) return send(res, 500, { error: e.message });
        return send(res, 500, { error: `internal error: ${(e as Error).message}` });
      }
    })();
  });
}
