// The `uvt report` page in a real browser: Debian's chromium, driven by puppeteer-core (24.x, the line that runs on
// Node 20), opens the report of the Figure 1 host and of the two-node lifecycle example and checks that each picture
// is present and not blank (its drawn elements, and pixels of more than one colour in a screenshot of it) and that
// the numbers in the page equal the simulator's (`uvt sim --format json` of the same file). A screenshot of each
// page is kept in artifacts/ for a person to look at. A missing chromium fails the test (setup installs it).
/// <reference lib="dom" />
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import puppeteer, { type Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simOutputSchema } from "../../sim/output-schema.ts";

const root = join(import.meta.dirname, "..", "..");
const scratch = mkdtempSync(join(tmpdir(), "uv-browser-"));
const artifacts = join(root, "artifacts", "browser");
const CHROMIUM = process.env.UV_CHROMIUM ?? "/usr/bin/chromium";
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run ./scripts/setup (it installs Debian's chromium) or set UV_CHROMIUM`);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function simJson(file: string) {
  const r = await execa("node", ["cli/uvt.js", "sim", file, "--format", "json"], { cwd: root, reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return simOutputSchema.parse(JSON.parse(r.stdout));
}

describe("uvt report in a real browser", () => {
  for (const example of ["ultravisor", "partition-lifecycle"]) {
    it(`examples/${example}.yaml: the pictures are drawn and the page's numbers are the simulator's`, async () => {
      const file = `examples/${example}.yaml`;
      const out = join(scratch, `${example}.html`);
      const made = await execa("node", ["cli/uvt.js", "report", file, "-o", out], { cwd: root, reject: false });
      expect(made.exitCode, made.stderr).toBe(0);
      const data = await simJson(file);
      const page = await browser.newPage();
      try {
        await page.setViewport({ width: 1400, height: 1000 });
        await page.goto(pathToFileURL(out).href, { waitUntil: "load" });
        // Pictures: each figure holds an SVG with drawn elements, and its screenshot has more than one colour.
        for (const [id, cls, want] of [
          // The picture draws the first 48 map pages (and counts the rest).
          ["memory-map", "rect.entry", data.memoryMap.slice(0, 48).reduce((n, m) => n + m.entries.length, 0)],
          ["schedule", "rect.quantum", (data.schedule?.pcpus.length ?? 0) * 16],
          ["channels", "line.channel", data.channels.length],
        ] as const) {
          const drawn = await page.$$eval(`#${id} svg ${cls}`, (els) => els.length);
          expect(drawn, id).toBe(want);
          const shot = await (await page.$(`#${id} svg`))!.screenshot({ encoding: "base64" });
          const colours = await page.evaluate(async (b64: string) => {
            const img = new Image();
            img.src = `data:image/png;base64,${b64}`;
            await img.decode();
            const c = document.createElement("canvas");
            c.width = img.width;
            c.height = img.height;
            const ctx = c.getContext("2d")!;
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(0, 0, c.width, c.height).data;
            const seen = new Set<number>();
            for (let i = 0; i < px.length && seen.size < 50; i += 4 * 7) seen.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
            return seen.size;
          }, shot as string);
          expect(colours, `${id} is not blank`).toBeGreaterThan(3);
        }
        // Numbers: the summary, the schedule and the channel table say what the simulator computed.
        const cells = async (sel: string): Promise<string[][]> => page.$$eval(`${sel} tbody tr`, (rows) => rows.map((r) => Array.from(r.querySelectorAll("td"), (td) => td.textContent ?? "")));
        const summary = new Map((await cells("#summary")).map(([k, v]) => [k!, v!]));
        expect(summary.get("transactions in the audit log since the last backup")).toBe(String(data.audit.transactions));
        expect(summary.get("rejected submissions")).toBe(String(data.audit.rejected));
        expect(summary.get("channels")).toBe(String(data.channels.length));
        expect(summary.get("map pages")).toBe(String(data.memoryMap.length));
        const sched = await cells("#schedule-table");
        expect(sched).toEqual((data.schedule?.pcpus ?? []).map((p) => [String(p.pcpu), String(p.busy), ...p.quanta]));
        const chans = await cells("#channel-table");
        expect(chans.map((r) => [r[0], r[1], r[2], r[3]])).toEqual(data.channels.map((c) => [String(c.slot), c.type, c.clientName ?? c.client, c.serverName ?? c.server ?? ""]));
        const auditRows = (await cells("#audit-table")).length;
        expect(auditRows).toBe(data.boot.reduce((n, t) => n + t.ops.length, 0) + data.operations.reduce((n, op) => n + op.transactions.reduce((m, t) => m + t.ops.length, 0), 0));
        mkdirSync(artifacts, { recursive: true });
        await page.screenshot({ path: join(artifacts, `report-${example}.png`) as `${string}.png`, fullPage: true });
      } finally {
        await page.close();
      }
    }, 90_000);
  }
});
