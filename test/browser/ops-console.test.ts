// The operations console ([0096]) in a real browser: `uvt ops serve` over examples/ops/small.yaml, Debian's chromium
// driven by puppeteer-core 24. A user defines a partition from the template, then clicks provision → start → stop →
// disable; after each click the page must show the stage and state, the host it was placed on (and that host's memory
// map listing it while it runs), and the store folder must hold the same — read straight from the files (their
// SHA-256 checked here, not by the store's code). A screenshot is kept in artifacts/browser/. A missing chromium
// fails the test (setup installs it).
/// <reference lib="dom" />
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const artifacts = join(root, "artifacts", "browser");
const CHROMIUM = process.env.UV_CHROMIUM ?? "/usr/bin/chromium";
const store = join(mkdtempSync(join(tmpdir(), "uv-ops-console-")), "store");
let browser: Browser;
let server: ResultPromise;
let url = "";

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run ./scripts/setup (it installs Debian's chromium) or set UV_CHROMIUM`);
  server = execa("node", ["cli/uvt.js", "ops", "serve", "--port", "0", "--store", store, "examples/ops/small.yaml"], { cwd: root, reject: false });
  url = await new Promise<string>((resolve, reject) => {
    let out = "";
    server.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /operations console on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void server.then((r) => reject(new Error(`uvt ops serve exited ${r.exitCode}: ${r.stderr}`)));
  });
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}, 90_000);
afterAll(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  await server?.catch(() => {});
  rmSync(join(store, ".."), { recursive: true, force: true });
});

/** The stored definition named `name`, read from its file with its checksum verified here. */
function stored(name: string): { stage: string; state: string; placement?: { host: string } } {
  const dir = join(store, "domains", "Lab");
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".json"))) {
    const text = readFileSync(join(dir, f), "utf8");
    const m = /^\{"format":"uv-ops\/1","sha256":"([0-9a-f]{64})","data":([\s\S]*)\}$/.exec(text)!;
    expect(createHash("sha256").update(m[2]!).digest("hex"), f).toBe(m[1]);
    const data = JSON.parse(m[2]!) as { name: string; stage: string; state: string; placement?: { host: string } };
    if (data.name === name) return data;
  }
  throw new Error(`${name} is not in the store`);
}

async function rowOf(page: Page, name: string): Promise<{ stage: string; state: string; host: string; actions: string[] }> {
  return page.$eval(`#partitions tr[data-name="${name}"]`, (tr) => ({
    stage: tr.querySelector(".stage")!.textContent!, state: tr.querySelector(".state")!.textContent!,
    host: tr.querySelector(".host")!.textContent!, actions: Array.from(tr.querySelectorAll("button"), (b) => b.textContent!),
  }));
}

async function settle(page: Page): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.ready === "1" && !document.body.dataset.busy);
}

describe("operations console in a real browser", () => {
  it("define from a template → provision → start → stop → disable, the page and the store agreeing at each step", async () => {
    const page = await browser.newPage();
    try {
      await page.setViewport({ width: 1400, height: 1000 });
      await page.goto(url, { waitUntil: "load" });
      await settle(page);
      expect(await page.$eval("#estate-name", (e) => e.textContent)).toBe("Small lab");
      expect(await page.$$eval("#hosts section", (s) => s.map((x) => x.getAttribute("data-host")))).toEqual(["A", "B"]);
      // The running example partition is on host A and in A's memory map and schedule.
      expect((await rowOf(page, "svc")).host).toBe("A");
      expect(await page.$$eval('#hosts section[data-host="A"] .memory-map li[data-owner="svc"]', (l) => l.length)).toBe(1);
      expect(await page.$$eval('#hosts section[data-host="A"] table.schedule td', (tds) => tds.some((t) => t.textContent === "svc.0"))).toBe(true);

      // Define from the template.
      await page.select("#def-template", "base");
      await page.type("#def-name", "web2");
      await page.$eval("#def-memory", (e) => ((e as HTMLInputElement).value = "64"));
      await page.click("#def-submit");
      await settle(page);
      expect(await page.$eval("#message", (e) => e.textContent)).toMatch(/^web2 defined \(/);
      let row = await rowOf(page, "web2");
      expect([row.stage, row.state, row.host]).toEqual(["construction", "uninstalled", ""]);
      expect(row.actions).toEqual(["provision", "template"]);
      expect([stored("web2").stage, stored("web2").state]).toEqual(["construction", "uninstalled"]);

      const steps: Array<[string, string, string, string]> = [
        ["provision", "provisioning", "stopped", ""],
        ["start", "provisioning", "running", "B"], // the template's console:Serial is only on B
        ["stop", "provisioning", "stopped", ""],
        ["disable", "disabled", "disabled", ""],
      ];
      for (const [action, stage, state, host] of steps) {
        await page.click(`#partitions tr[data-name="web2"] button[data-action="${action}"]`);
        await settle(page);
        row = await rowOf(page, "web2");
        expect([row.stage, row.state, row.host], action).toEqual([stage, state, host]);
        const s = stored("web2");
        expect([s.stage, s.state, s.placement?.host ?? ""], `store after ${action}`).toEqual([stage, state, host]);
        const onB = await page.$$eval('#hosts section[data-host="B"] .memory-map li[data-owner="web2"]', (l) => l.length);
        expect(onB, `B's memory map after ${action}`).toBe(state === "running" ? 1 : 0);
        if (action === "start") {
          mkdirSync(artifacts, { recursive: true });
          await page.screenshot({ path: join(artifacts, "ops-console-running.png") as `${string}.png`, fullPage: true });
        }
      }
      // A refused action: the page says why and nothing changes.
      const before = JSON.stringify(stored("web2"));
      const refused = await page.evaluate(async () => {
        const r = await fetch("/api/transition", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: "web2", action: "start" }) });
        return { status: r.status, body: (await r.json()) as { error: string } };
      });
      expect(refused.status).toBe(400);
      expect(refused.body.error).toContain("web2: start is not allowed in stage disabled");
      expect(JSON.stringify(stored("web2"))).toBe(before);
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, "ops-console.png") as `${string}.png`, fullPage: true });
    } finally {
      await page.close();
    }
  }, 120_000);
});
