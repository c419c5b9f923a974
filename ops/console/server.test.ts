// The console's JSON API treats the browser as hostile: a body that is not JSON, not an object, too large or of the
// wrong type, an unknown route, and a request the policy service refuses each get an error status with a reason, and
// none changes the store. The page itself is checked in a browser by test/browser/ops-console.test.ts.
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEstate, readEstateFile } from "../estate.ts";
import { FileStore } from "../store/store.ts";
import { PowerCutFs } from "../store/power-cut.ts";
import { consoleServer } from "./server.ts";

const root = join(import.meta.dirname, "..", "..");
let server: Server;
let base = "";
let store: FileStore;

beforeAll(async () => {
  store = new FileStore(new PowerCutFs());
  const ps = await loadEstate(store, readEstateFile(join(root, "examples", "ops", "small.yaml")));
  server = consoleServer(ps);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const post = async (path: string, body: string, type = "application/json"): Promise<{ status: number; error?: string }> => {
  const r = await fetch(base + path, { method: "POST", headers: { "content-type": type }, body });
  return { status: r.status, ...((await r.json()) as { error?: string }) };
};

describe("console API", () => {
  it("serves the page and the estate", async () => {
    const page = await fetch(base + "/");
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain("<title>Operations console</title>");
    const s = (await (await fetch(base + "/api/estate")).json()) as { name: string; partitions: Array<{ name: string; actions: string[] }> };
    expect(s.name).toBe("Small lab");
    expect(s.partitions.find((p) => p.name === "svc")!.actions).toEqual(["manual", "disable", "stop", "pause", "save"]);
  });

  it("refuses hostile requests with a reason and changes nothing", async () => {
    const seq = (await store.load()).seq;
    const cases: Array<[string, string, string | undefined, number, RegExp]> = [
      ["/api/define", "{not json", undefined, 400, /not JSON/],
      ["/api/define", "[1,2]", undefined, 400, /must be a JSON object/],
      ["/api/define", JSON.stringify({ name: "x".repeat(70000), domain: "Lab" }), undefined, 400, /request body over 65536 bytes/],
      ["/api/define", JSON.stringify({ name: 7, domain: "Lab" }), undefined, 400, /name must be a string/],
      ["/api/define", JSON.stringify({ name: "<img src=x>", domain: "Lab" }), undefined, 400, /is not 1–15 letters/],
      ["/api/define", JSON.stringify({ name: "ok", domain: "Lab" }), "text/plain", 400, /application\/json/],
      ["/api/transition", JSON.stringify({ id: "svc", action: "decommission" }), undefined, 400, /decommission is not allowed in stage operating/],
      ["/api/transition", JSON.stringify({ id: "nobody", action: "start" }), undefined, 400, /no partition definition "nobody"/],
      ["/api/advance", JSON.stringify({ minutes: -5 }), undefined, 400, /minutes must be an integer/],
      ["/api/nothing", "{}", undefined, 404, /no route POST \/api\/nothing/],
    ];
    for (const [path, body, type, status, reason] of cases) {
      const r = await post(path, body, type);
      expect(r.status, `${path} ${body.slice(0, 40)}`).toBe(status);
      expect(r.error).toMatch(reason);
    }
    expect((await store.load()).seq).toBe(seq);
  });
});
